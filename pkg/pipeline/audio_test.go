package pipeline

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaworker/mediaworker/test/mediatest"
)

func TestOpusDecoder(t *testing.T) {
	packets := mediatest.Opus(t, 440, 3)
	var bytes atomic.Int64
	d, err := NewOpusDecoder(func(pcm []byte) { bytes.Add(int64(len(pcm))) })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packets {
		if err := d.Push(p.Data, p.PTS); err != nil {
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

// TestSilentOpus: the silence packet decodes to 20 ms of (stereo) zeros, cleanly.
func TestSilentOpus(t *testing.T) {
	var pcm []byte
	d, err := NewOpusDecoder(func(b []byte) { pcm = append(pcm, b...) })
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := d.Push(SilentOpus, time.Duration(i)*SilentOpusDuration); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if want := 50 * 960 * PCMChannels * PCMBytes; len(pcm) < want*95/100 || len(pcm) > want*105/100 {
		t.Fatalf("%d bytes of PCM from 1 s of silence packets, want ≈%d", len(pcm), want)
	}
	for i, b := range pcm {
		if b != 0 && b != 0xFF { // ±1 LSB at most
			t.Fatalf("not silence at byte %d: %d", i, b)
		}
	}
}
