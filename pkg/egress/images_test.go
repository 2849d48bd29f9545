package egress

import (
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
)

func TestImagePlan(t *testing.T) {
	tests := []struct {
		in            *livekit.ImageOutput
		every         time.Duration
		width, height int
		ok            bool
	}{
		{&livekit.ImageOutput{}, 10 * time.Second, 1280, 720, true},
		{&livekit.ImageOutput{CaptureInterval: 2, Width: 320}, 2 * time.Second, 320, 180, true},
		{&livekit.ImageOutput{Height: 360}, 10 * time.Second, 640, 360, true},
		{&livekit.ImageOutput{Width: 321, Height: 180}, 0, 0, 0, false},
		{&livekit.ImageOutput{Width: 8, Height: 8}, 0, 0, 0, false},
		{&livekit.ImageOutput{ImageCodec: livekit.ImageCodec(7)}, 0, 0, 0, false},
	}
	for _, tc := range tests {
		p, err := imagePlan(tc.in, 1280, 720)
		if (err == nil) != tc.ok || (tc.ok && (p.Every != tc.every || p.Width != tc.width || p.Height != tc.height)) {
			t.Errorf("%v: %+v, %v", tc.in, p, err)
		}
	}
}

func TestImageNames(t *testing.T) {
	at := time.Date(2026, 11, 30, 20, 1, 2, 345e6, time.UTC)
	for suffix, want := range map[livekit.ImageFileSuffix]string{
		livekit.ImageFileSuffix_IMAGE_SUFFIX_INDEX:          "snap_00007.jpeg",
		livekit.ImageFileSuffix_IMAGE_SUFFIX_TIMESTAMP:      "snap_20261130200102345.jpeg",
		livekit.ImageFileSuffix_IMAGE_SUFFIX_NONE_OVERWRITE: "snap.jpeg",
	} {
		im := &imageOutput{out: &livekit.ImageOutput{FilenameSuffix: suffix}, base: "snap"}
		if got := im.name(7, at); got != want {
			t.Errorf("%v: %q, want %q", suffix, got, want)
		}
	}
}
