package container

import (
	"os"
	"path/filepath"
	"testing"
)

func TestScratch(t *testing.T) {
	for _, tc := range []struct{ c Codec; src func(*testing.T, string) []Sample }{
		{CodecOpus, opusPackets}, {CodecH264, h264Samples},
		{CodecVP8, func(t *testing.T, d string) []Sample { return ivfSamples(t, d, "libvpx") }},
	} {
		dir := t.TempDir()
		s := tc.src(t, dir)
		ext, _ := Extension(tc.c)
		f, _ := os.Create(filepath.Join("/tmp/ct", "cut"+ext))
		w, _ := New(tc.c, f)
		for _, x := range s { w.WriteSample(x) }
		f.Close()
	}
}
