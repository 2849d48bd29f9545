package stack

import (
	"encoding/hex"
	"testing"
)

// sps360 is x264's SPS for 640x360 High profile: 23 macroblock rows cropped by 8 lines.
var sps360, _ = hex.DecodeString("6764001eacd940a02ff970110000030001000003003c0f162d96")

// vp8Key320 is the start of a libvpx 320x180 keyframe, behind a one-byte payload descriptor (S=1).
var vp8Key320, _ = hex.DecodeString("10" + "1062009d012a4001b400" + "0007")

func TestH264Parser(t *testing.T) {
	pps := []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
	filler := []byte{0x0c, 0xff, 0xff, 0xff, 0x80}
	stap := []byte{0x78}
	for _, n := range [][]byte{sps360, pps} {
		stap = append(stap, byte(len(n)>>8), byte(len(n)))
		stap = append(stap, n...)
	}
	fuStart := append([]byte{0x7c, 0x80 | 7}, sps360[1:10]...)
	fuEnd := append([]byte{0x7c, 0x40 | 7}, sps360[10:]...)
	cases := []struct {
		name     string
		payloads [][]byte
		w, h     int // from the last payload
		media    int // of the last payload
	}{
		{"single SPS", [][]byte{sps360}, 640, 360, len(sps360)},
		{"STAP-A SPS+PPS", [][]byte{stap}, 640, 360, len(stap)},
		{"FU-A SPS", [][]byte{fuStart, fuEnd}, 640, 360, len(fuEnd)},
		{"FU-A end without start", [][]byte{fuEnd}, 0, 0, len(fuEnd)},
		{"filler NAL", [][]byte{filler}, 0, 0, 0},
		{"FU-A filler", [][]byte{{0x7c, 0x80 | 12, 0xff, 0xff}}, 0, 0, 0},
		{"truncated SPS", [][]byte{sps360[:4]}, 0, 0, 4},
		{"STAP-A with bad size", [][]byte{{0x78, 0x00, 0x40, 0x67}}, 0, 0, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &h264Parser{}
			var got payloadInfo
			for _, b := range c.payloads {
				got = p.parse(b)
			}
			if got.width != c.w || got.height != c.h || got.media != c.media {
				t.Fatalf("got %dx%d media %d, want %dx%d media %d", got.width, got.height, got.media, c.w, c.h, c.media)
			}
		})
	}
}

func TestVP8Parser(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		w, h    int
	}{
		{"keyframe", vp8Key320, 320, 180},
		{"interframe", append([]byte{0x10, 0x11}, vp8Key320[2:]...), 0, 0},
		{"not frame start", append([]byte{0x00}, vp8Key320[1:]...), 0, 0},
		{"short", vp8Key320[:6], 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := vp8Parser{}.parse(c.payload)
			if got.width != c.w || got.height != c.h || got.media != len(c.payload) {
				t.Fatalf("got %+v, want %dx%d", got, c.w, c.h)
			}
		})
	}
}

func FuzzH264Parser(f *testing.F) {
	f.Add(sps360)
	f.Add([]byte{0x78, 0x00, 0x02, 0x67, 0x64})
	f.Add([]byte{0x7c, 0x87, 0x64, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := &h264Parser{}
		for range 2 { // the second pass runs on FU-A state from the first
			if got := p.parse(b); got.media < 0 || got.media > len(b) {
				t.Fatalf("media %d of %d bytes", got.media, len(b))
			}
		}
	})
}

func FuzzVP8Parser(f *testing.F) {
	f.Add(vp8Key320)
	f.Fuzz(func(t *testing.T, b []byte) { vp8Parser{}.parse(b) })
}
