package source

import (
	"testing"

	"github.com/livekit/protocol/livekit"
)

func TestFitAspect(t *testing.T) {
	for _, c := range []struct{ w, h, sw, sh, ww, wh int }{
		{640, 720, 1280, 720, 640, 360},  // grid of two: a 16:9 camera in a tall tile
		{960, 720, 1280, 720, 960, 540},  // speaker tile
		{1280, 720, 720, 1280, 405, 720}, // portrait phone on a landscape canvas
		{320, 180, 1280, 720, 320, 180},  // exact
		{640, 360, 0, 0, 640, 360},       // unknown source size: the area
	} {
		if w, h := fitAspect(c.w, c.h, c.sw, c.sh); w != c.ww || h != c.wh {
			t.Errorf("fitAspect(%d×%d, source %d×%d) = %d×%d, want %d×%d", c.w, c.h, c.sw, c.sh, w, h, c.ww, c.wh)
		}
	}
}

func TestLayerFor(t *testing.T) {
	layers := []*livekit.VideoLayer{
		{Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720},
		{Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180},
		{Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360},
	}
	for _, c := range []struct {
		h           int
		want, other uint32 // heights
	}{
		{360, 360, 720}, // a 640x360 grid tile: the middle layer; nudge via the top one
		{330, 360, 720}, // within livekit-server's 0.9 tolerance of 360 → still the middle
		{400, 360, 720}, // 0.9·400 = 360: still the middle, as livekit-server picks
		{420, 720, 180}, // above: the top layer; nudge via the lowest
		{720, 720, 180},
		{180, 180, 720},
		{100, 180, 720},
		{1080, 720, 180}, // larger than any layer: the top one
	} {
		want, other, ok := layerFor(layers, c.h)
		if !ok || want.GetHeight() != c.want || other.GetHeight() != c.other {
			t.Errorf("layerFor(%d) = %v, %v, %v; want heights %d, %d", c.h, want, other, ok, c.want, c.other)
		}
	}
	if _, _, ok := layerFor(layers[:1], 360); ok {
		t.Error("a track with one layer has no layer to check")
	}
	for h, want := range map[int]uint32{720: 720, 540: 720, 352: 360, 200: 180} {
		if got := nearestLayer(layers, h).GetHeight(); got != want {
			t.Errorf("nearestLayer(%d) = %d, want %d", h, got, want)
		}
	}
}
