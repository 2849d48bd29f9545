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
