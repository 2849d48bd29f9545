package mediatest

import (
	"os/exec"
	"strconv"
	"testing"
)

// Pixels decodes the frame of path at second sec, scaled to 4x2 (area average), as RGB values in
// row order: a coarse map of what is where on the canvas.
func Pixels(t testing.TB, path string, sec float64) [][3]int {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", strconv.FormatFloat(sec, 'f', 2, 64), "-i", path, "-frames:v", "1",
		"-vf", "scale=4:2:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) != 4*2*3 {
		t.Fatalf("frame at %.1f s: %v (%d bytes)", sec, err, len(out))
	}
	px := make([][3]int, 8)
	for i := range px {
		px[i] = [3]int{int(out[3*i]), int(out[3*i+1]), int(out[3*i+2])}
	}
	return px
}

// ColorOf names a pixel "red", "green" or "blue" by its dominant channel ("other" if none). Tiles are
// letterboxed, so a downscale mixes in black: channels are compared, not levels.
func ColorOf(p [3]int) string {
	switch r, g, b := p[0], p[1], p[2]; {
	case r > 60 && r > 3*g && r > 3*b:
		return "red"
	case g > 40 && g > 3*r && g > 3*b:
		return "green"
	case b > 60 && b > 3*r && b > 3*g:
		return "blue"
	}
	return "other"
}

// Dark says a pixel is black or nearly (an empty tile, the late camera's placeholder).
func Dark(p [3]int) bool { return p[0] < 30 && p[1] < 30 && p[2] < 30 }

// AllColor says every pixel of px is the named colour (see ColorOf).
func AllColor(px [][3]int, name string) bool {
	for _, p := range px {
		if ColorOf(p) != name {
			return false
		}
	}
	return true
}
