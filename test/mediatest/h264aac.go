package mediatest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// H264AAC encodes seconds of 320x240 30 fps H.264 (no B-frames, a key frame every second, an
// access unit delimiter before each picture) and 48 kHz stereo AAC, as an encoder tap delivers
// them: Annex-B access units (Keyframe set on IDR pictures) and raw AAC frames (ADTS stripped).
func H264AAC(t testing.TB, seconds int) (video []Frame, aac [][]byte) {
	t.Helper()
	dir, d := t.TempDir(), strconv.Itoa(seconds)
	v, a := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.aac")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", d,
		"-c:v", "libx264", "-bf", "0", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
		"-x264-params", "aud=1", "-bsf:v", "h264_mp4toannexb", "-f", "h264", v)
	ffmpeg(t, "-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", d, "-ac", "2", "-c:a", "aac", "-f", "adts", a)
	for i, au := range splitAUs(readFile(t, v)) {
		video = append(video, Frame{Data: au, PTS: time.Duration(i) * time.Second / 30, Keyframe: i%30 == 0})
	}
	if len(video) != 30*seconds {
		t.Fatalf("%d access units for %d s at 30 fps", len(video), seconds)
	}
	return video, adtsFrames(t, readFile(t, a))
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitAUs cuts an Annex-B stream before each access unit delimiter.
func splitAUs(b []byte) [][]byte {
	var starts []int
	for i := 0; i+3 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 && b[i+3]&0x1f == 9 {
			s := i
			if s > 0 && b[s-1] == 0 {
				s--
			}
			starts = append(starts, s)
		}
	}
	out := make([][]byte, 0, len(starts))
	for i, s := range starts {
		end := len(b)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		out = append(out, b[s:end])
	}
	return out
}

// adtsFrames strips the ADTS headers off an AAC stream.
func adtsFrames(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) >= 7 {
		hdr, n := 7, int(b[3]&3)<<11|int(b[4])<<3|int(b[5]>>5)
		if b[1]&1 == 0 {
			hdr = 9
		}
		if b[0] != 0xff || n < hdr || n > len(b) {
			t.Fatalf("bad ADTS frame")
		}
		out = append(out, b[hdr:n])
		b = b[n:]
	}
	return out
}
