package source

import "testing"

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
