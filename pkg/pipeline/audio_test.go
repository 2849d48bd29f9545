package pipeline

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// opusPackets encodes seconds of a tone to Ogg Opus, one 20 ms packet per page, and reads them back.
func opusPackets(t *testing.T, seconds string) [][]byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	p := filepath.Join(t.TempDir(), "a.ogg")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", seconds,
		"-c:a", "libopus", "-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	f, _ := os.Open(p)
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for {
		payload, _, err := r.ParseNextPage()
		if err == io.EOF {
			return packets
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(payload) > 8 && string(payload[:8]) == "OpusTags" {
			continue
		}
		packets = append(packets, payload)
	}
}

func TestOpusDecoder(t *testing.T) {
	packets := opusPackets(t, "3")
	var bytes atomic.Int64
	d, err := NewOpusDecoder(func(pcm []byte) { bytes.Add(int64(len(pcm))) })
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range packets {
		if err := d.Push(p, time.Duration(i)*20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	want := int64(len(packets)) * 20 * PCMRate / 1000 * PCMChannels * PCMBytes
	if got := bytes.Load(); got < want*95/100 || got > want*105/100 {
		t.Fatalf("decoded %d bytes of PCM from %d packets, want ≈%d", got, len(packets), want)
	}
}

func TestOpusDecoderGarbage(t *testing.T) {
	d, err := NewOpusDecoder(func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		_ = d.Push([]byte{0xff, 0x00, 0x13, byte(i)}, time.Duration(i)*20*time.Millisecond)
	}
	_ = d.Close() // must return (an error is fine), never hang or crash
}
