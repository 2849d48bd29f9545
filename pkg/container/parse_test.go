package container

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestSplitAnnexB(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want [][]byte
	}{
		{"empty", nil, nil},
		{"no start code", []byte{1, 2, 3}, nil},
		{"4-byte and 3-byte codes", []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2}, [][]byte{{0x67, 1}, {0x68, 2}}},
		{"leading garbage dropped", []byte{9, 9, 0, 0, 1, 0x65, 7}, [][]byte{{0x65, 7}}},
		{"trailing zeros trimmed", []byte{0, 0, 1, 0x41, 5, 0, 0, 0, 0, 1, 0x41, 6, 0, 0}, [][]byte{{0x41, 5}, {0x41, 6}}},
		{"empty NAL units skipped", []byte{0, 0, 1, 0, 0, 1, 0x09, 0xf0}, [][]byte{{0x09, 0xf0}}},
		{"start code at the end", []byte{0, 0, 1, 0x65, 1, 0, 0, 1}, [][]byte{{0x65, 1}}},
	}
	for _, tc := range tests {
		if got := splitAnnexB(tc.in); !slices.EqualFunc(got, tc.want, bytes.Equal) {
			t.Errorf("%s: %x, want %x", tc.name, got, tc.want)
		}
	}
}

func TestVP8Key(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		key  bool
		w, h int
	}{
		{"320x240 key", []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}, true, 320, 240},
		{"scaling bits ignored", []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0xc7, 0x38, 0x44}, true, 1920, 1080},
		{"inter frame", []byte{0x11, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}, false, 0, 0},
		{"bad start code", []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2b, 0x40, 0x01, 0xf0, 0x00}, false, 0, 0},
		{"short", []byte{0x10, 0x02}, false, 0, 0},
	}
	for _, tc := range tests {
		if key, w, h := vp8Key(tc.in); key != tc.key || w != tc.w || h != tc.h {
			t.Errorf("%s: %v %dx%d", tc.name, key, w, h)
		}
	}
}

func TestVP9Header(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		key  bool
		w, h int
	}{
		// marker 10, profile 0, key, shown | sync 49 83 42 | color space 010, range 0 | 319 | 239
		{"profile 0 key 320x240", []byte{0x82, 0x49, 0x83, 0x42, 0x40, 0x13, 0xf0, 0x0e, 0xf0}, true, 320, 240},
		{"show existing frame", []byte{0x88}, false, 0, 0},
		// inter, shown: reset_frame_context(2) refresh(8) refs(12), found_ref 0 0 1
		{"inter with size from a reference", []byte{0x86, 0x00, 0x00, 0x00, 0x80}, false, 0, 0},
		// as above with found_ref 0 0 0, then 639 and 479 (an SVC upper layer)
		{"inter coding its size", []byte{0x86, 0x00, 0x00, 0x00, 0x01, 0x3f, 0x80, 0xef, 0x80}, false, 640, 480},
		{"bad marker", []byte{0x02, 0x49, 0x83, 0x42}, false, 0, 0},
		{"truncated key", []byte{0x82, 0x49, 0x83}, false, 0, 0},
	}
	for _, tc := range tests {
		if key, w, h := vp9Header(tc.in); key != tc.key || w != tc.w || h != tc.h {
			t.Errorf("%s: %v %dx%d", tc.name, key, w, h)
		}
	}
}

func TestVP9Superframe(t *testing.T) {
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"one frame stays as is", [][]byte{{0x82, 1, 2}}},
		{"two small frames", [][]byte{{0x82, 1, 2}, {0x86, 3}}},
		{"2-byte sizes", [][]byte{bytes.Repeat([]byte{0x82}, 300), {0x86, 3}}},
		{"eight frames", [][]byte{{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}}},
	}
	for _, tc := range tests {
		sf := vp9Superframe(tc.frames)
		if got := vp9Frames(sf); !slices.EqualFunc(got, tc.frames, bytes.Equal) {
			t.Errorf("%s: split %x, want %x", tc.name, got, tc.frames)
		}
	}
}

func TestOpusSamples(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want int
	}{
		{"celt 20ms", []byte{0xfc}, 960}, {"silk 60ms", []byte{0x18}, 2880}, {"hybrid 10ms", []byte{0x60}, 480},
		{"two frames 10ms", []byte{0xf5}, 960}, {"code 3 three 20ms", []byte{0xfb, 0x03}, 2880},
		{"code 3 over 120 ms", []byte{0xfb, 0x07}, 0}, {"code 3 no count", []byte{0xfb}, 0}, {"empty", nil, 0},
	}
	for _, tc := range tests {
		if got := opusSamples(tc.p); got != tc.want {
			t.Errorf("%s: %d want %d", tc.name, got, tc.want)
		}
	}
}

func TestVint(t *testing.T) {
	tests := []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x80}}, {126, []byte{0xfe}}, {127, []byte{0x40, 0x7f}}, {16382, []byte{0x7f, 0xfe}},
		{16383, []byte{0x20, 0x3f, 0xff}},
	}
	for _, tc := range tests {
		if got := vint(tc.v); !bytes.Equal(got, tc.want) {
			t.Errorf("vint(%d) = %x, want %x", tc.v, got, tc.want)
		}
	}
}

func TestTicks(t *testing.T) {
	// 1/30 s is 33333333 ns after the depacketizer's rounding down; it must map back to 3000.
	if got := ticks(100*time.Hour+time.Second/30, mp4Timescale); got != 100*3600*90000+3000 {
		t.Errorf("ticks = %d", got)
	}
}

func FuzzAnnexBSplit(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		for _, n := range splitAnnexB(b) {
			if len(n) == 0 || n[len(n)-1] == 0 || bytes.Contains(n, []byte{0, 0, 1}) {
				t.Fatalf("bad NAL unit %x", n)
			}
			total += len(n) + 3
		}
		if total > len(b) {
			t.Fatalf("%d bytes of NAL units and start codes from %d", total, len(b))
		}
	})
}

func FuzzVPX(f *testing.F) {
	f.Add([]byte{0x82, 0x49, 0x83, 0x42, 0x40, 0x13, 0xf0, 0x0e, 0xf0})
	f.Add([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00})
	f.Add(vp9Superframe([][]byte{{0x82, 1}, {0x86, 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		vp8Key(b)
		vp9Header(b)
		opusSamples(b)
		frames := vp9Frames(b)
		if n := len(frames); n > 1 && n <= 8 {
			if got := vp9Frames(vp9Superframe(frames)); !slices.EqualFunc(got, frames, bytes.Equal) {
				t.Fatalf("superframe round trip %x -> %x", frames, got)
			}
		}
	})
}

// FuzzWriters feeds arbitrary samples, as network input can be, to every writer: errors are
// fine, panics are not. Byte 0 picks the codec; then each sample is a length byte, a PTS step
// byte and the data.
func FuzzWriters(f *testing.F) {
	idr := []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 1, 0x65, 0x88, 0x84}
	f.Add(append([]byte{1, byte(len(idr)), 0}, idr...))
	f.Add([]byte{2, 10, 33, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 1, 33, 0x11})
	f.Add([]byte{3, 9, 0, 0x82, 0x49, 0x83, 0x42, 0x40, 0x13, 0xf0, 0x0e, 0xf0, 1, 0, 0x86})
	f.Add([]byte{0, 1, 20, 0xfc, 1, 200, 0xf8})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		codecs := []Codec{CodecOpus, CodecH264, CodecVP8, CodecVP9}
		w, _ := New(codecs[int(b[0])%len(codecs)], &bytes.Buffer{})
		var pts time.Duration
		for b = b[1:]; len(b) >= 2; {
			n := min(int(b[0]), len(b)-2)
			pts += time.Duration(b[1]) * time.Millisecond
			_ = w.WriteSample(Sample{Data: b[2 : 2+n], PTS: pts})
			b = b[2+n:]
		}
		_ = w.Close()
	})
}
