package container

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func concatInputs(t *testing.T, names ...string) []Sample {
	var out []Sample
	for _, n := range names {
		out = append(out, input(t, n)...)
	}
	return out
}

func TestWriters(t *testing.T) {
	needFFmpeg(t)
	tests := []struct {
		name     string
		codec    Codec
		inputs   []string
		from     int  // samples dropped before it, as if the recording started mid-GOP
		seekable bool // the writer gets the *os.File itself
		want     string
		w, h     int
		frames   int     // decoded video frames; 0 for audio
		duration float64 // 0: last PTS plus one frame; -1: the container has none. PTS 0 is time 0.
	}{
		{"opus to ogg", CodecOpus, []string{"opus"}, 0, false, "opus", 0, 0, 0, 0},
		{"h264 to fmp4", CodecH264, []string{"h264"}, 0, false, "h264", 320, 240, 90, 0},
		{"h264 slices and AUDs as separate samples", CodecH264, []string{"h264 slices"}, 0, false, "h264", 320, 240, 90, 0},
		{"h264 High 4:4:4", CodecH264, []string{"h264 4:4:4"}, 0, false, "h264", 320, 240, 30, 0},
		{"h264 starting mid-GOP waits for the IDR", CodecH264, []string{"h264"}, 5, false, "h264", 320, 240, 60, 3},
		{"h264 resolution change decodes, first size kept", CodecH264, []string{"h264", "h264 640x480"}, 0, false, "h264", 320, 240, 120, 0},
		{"vp8 to webm", CodecVP8, []string{"vp8"}, 0, true, "vp8", 320, 240, 90, 0},
		{"vp8 to webm mid-GOP", CodecVP8, []string{"vp8"}, 5, true, "vp8", 320, 240, 60, 3},
		{"vp8 to non-seekable webm has no duration", CodecVP8, []string{"vp8"}, 0, false, "vp8", 320, 240, 90, -1},
		{"vp9 to webm", CodecVP9, []string{"vp9"}, 0, true, "vp9", 320, 240, 90, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			samples := concatInputs(t, tc.inputs...)[tc.from:]
			path := write(t, tc.codec, samples, tc.seekable, true)
			p, d, frames := ffprobe(t, path)
			if s := p.Streams[0]; s.CodecName != tc.want || s.Width != tc.w || s.Height != tc.h {
				t.Errorf("stream %+v, want %s %dx%d", s, tc.want, tc.w, tc.h)
			}
			want := tc.duration
			if want == 0 {
				n := len(samples)
				want = (2*samples[n-1].PTS - samples[n-2].PTS).Seconds()
			}
			if math.Abs(d-want) > 0.1 {
				t.Errorf("duration %.3f s, want %.3f s", d, want)
			}
			if tc.frames > 0 && frames != tc.frames {
				t.Errorf("decoded %d frames, want %d", frames, tc.frames)
			}
			if e := decodeErrors(t, path); e != "" {
				t.Errorf("decode: %s", e)
			}
		})
	}
}

// TestCrashSafety leaves files as a SIGKILL after 3 s of media would: no Close.
func TestCrashSafety(t *testing.T) {
	needFFmpeg(t)
	tests := []struct {
		name     string
		codec    Codec
		input    string
		seekable bool
	}{
		{"opus", CodecOpus, "opus", false},
		{"h264", CodecH264, "h264", false},
		{"vp8", CodecVP8, "vp8", true},
		{"vp8 non-seekable", CodecVP8, "vp8", false},
		{"vp9", CodecVP9, "vp9", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			live := write(t, tc.codec, input(t, tc.input), tc.seekable, false)
			b, err := os.ReadFile(live) // what is on disk when the process dies
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "killed"+filepath.Ext(live))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, d, frames := ffprobe(t, path)
			if d < 0 && tc.codec != CodecOpus {
				d = float64(frames) / 30 // no Duration without seeking: measure what plays
			}
			if d < 2 {
				t.Errorf("killed file plays %.3f s (%d frames), want ≥ 2 s", d, frames)
			}
			if e := decodeErrors(t, path); e != "" {
				t.Errorf("decode: %s", e)
			}
		})
	}
}

// TestOpusGap drops a second of packets, as DTX or a muted publisher does: the gap is filled so
// audio after it stays at its PTS.
func TestOpusGap(t *testing.T) {
	needFFmpeg(t)
	var samples []Sample
	for _, s := range input(t, "opus") {
		if s.PTS < time.Second || s.PTS >= 2*time.Second {
			samples = append(samples, s)
		}
	}
	path := write(t, CodecOpus, samples, false, true)
	_, d, _ := ffprobe(t, path)
	want := (samples[len(samples)-1].PTS + 20*time.Millisecond).Seconds()
	if math.Abs(d-want) > 0.02 {
		t.Errorf("duration %.3f s, want %.3f s", d, want)
	}
	if got := pcmSeconds(t, path); math.Abs(got-want) > 0.02 {
		t.Errorf("decodes to %.3f s of audio, want %.3f s", got, want)
	}
	if e := decodeErrors(t, path); e != "" {
		t.Errorf("decode: %s", e)
	}
}

func TestCloseWithoutSamples(t *testing.T) {
	for _, c := range []Codec{CodecOpus, CodecH264, CodecVP8, CodecVP9} {
		t.Run(string(c), func(t *testing.T) {
			var b bytes.Buffer
			w, err := New(c, &b)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			if b.Len() != 0 {
				t.Errorf("%d bytes written", b.Len())
			}
			if err := w.WriteSample(Sample{Data: []byte{1}}); !errors.Is(err, ErrClosed) {
				t.Errorf("write after close: %v", err)
			}
		})
	}
}

func TestUnknownCodec(t *testing.T) {
	tests := []struct {
		name  string
		codec Codec
		ext   string
	}{
		{"opus", CodecOpus, ".ogg"}, {"h264", CodecH264, ".mp4"}, {"vp8", CodecVP8, ".webm"},
		{"vp9", CodecVP9, ".webm"}, {"av1", "av1", ""}, {"empty", "", ""},
	}
	for _, tc := range tests {
		ext, err := Extension(tc.codec)
		_, newErr := New(tc.codec, &bytes.Buffer{})
		if ext != tc.ext || (tc.ext == "") != errors.Is(err, ErrUnknownCodec) || (tc.ext == "") != errors.Is(newErr, ErrUnknownCodec) {
			t.Errorf("%s: Extension %q %v, New %v", tc.name, ext, err, newErr)
		}
	}
}
