package source

import (
	"testing"
)

func TestTSUnwrapper(t *testing.T) {
	var u tsUnwrapper
	steps := []struct {
		in   uint32
		want int64
	}{{4294967000, 0}, {4294967200, 200}, {104, 400}, {50, 346}, {3000, 3296}}
	for i, s := range steps {
		if got := u.unwrap(s.in); got != s.want {
			t.Fatalf("step %d: unwrap(%d) = %d, want %d", i, s.in, got, s.want)
		}
	}
}

func TestKeyframes(t *testing.T) {
	tests := []struct {
		name string
		f    func([]byte) bool
		in   []byte
		want bool
	}{
		{"h264 idr after sps", isH264Keyframe, []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88}, true},
		{"h264 non-idr", isH264Keyframe, []byte{0, 0, 0, 1, 0x41, 0x9a}, false},
		{"h264 empty", isH264Keyframe, nil, false},
		{"vp8 key", isVP8Keyframe, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, true},
		{"vp8 inter", isVP8Keyframe, []byte{0x11}, false},
		{"vp9 profile0 key", isVP9Keyframe, []byte{0x82, 0x49, 0x83, 0x42}, true},
		{"vp9 profile0 inter", isVP9Keyframe, []byte{0x86}, false},
		{"vp9 show existing", isVP9Keyframe, []byte{0x88}, false},
		{"vp9 bad marker", isVP9Keyframe, []byte{0x02}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f(tc.in); got != tc.want {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
}

func TestDepacketizerUnknown(t *testing.T) {
	if _, _, err := depacketizer("video/AV1X"); err == nil {
		t.Fatal("unknown codec accepted")
	}
}

func FuzzKeyframes(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0x65})
	f.Fuzz(func(t *testing.T, b []byte) {
		isH264Keyframe(b)
		isVP8Keyframe(b)
		isVP9Keyframe(b)
	})
}
