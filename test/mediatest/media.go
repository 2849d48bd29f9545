// Package mediatest makes encoded media at test time with ffmpeg and splits it into frames, the
// way a room delivers them.
package mediatest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Frame is one encoded frame and its time from the first.
type Frame struct {
	Data     []byte
	PTS      time.Duration
	Keyframe bool
}

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (make deps installs it)")
	}
	if out, err := exec.Command("ffmpeg", append([]string{"-y", "-v", "error"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// H264 encodes seconds of a moving test pattern (w×h, fps, keyframe every second, no B-frames)
// and returns its access units.
func H264(t testing.TB, w, h, fps, seconds int) []Frame {
	_, frames := H264File(t, w, h, fps, seconds)
	return frames
}

// H264File is H264 that also returns the Annex-B file it made.
func H264File(t testing.TB, w, h, fps, seconds int) (string, []Frame) {
	return h264(t, fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", w, h, fps), fps, seconds)
}

// BaselineH264File is H264File in the Constrained Baseline profile (what browsers publish over
// WebRTC); H264File's is High.
func BaselineH264File(t testing.TB, w, h, fps, seconds int) (string, []Frame) {
	return h264(t, fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", w, h, fps), fps, seconds, "-profile:v", "baseline")
}

// SolidH264 is H264 of a single colour (an ffmpeg colour name such as "red").
func SolidH264(t testing.TB, color string, w, h, fps, seconds int) []Frame {
	_, f := h264(t, fmt.Sprintf("color=c=%s:size=%dx%d:rate=%d", color, w, h, fps), fps, seconds)
	return f
}

func h264(t testing.TB, lavfi string, fps, seconds int, extra ...string) (string, []Frame) {
	p := filepath.Join(t.TempDir(), "v.h264")
	args := append([]string{"-f", "lavfi", "-i", lavfi, "-t", fmt.Sprint(seconds),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "0", "-g", fmt.Sprint(fps), "-x264-params", "aud=1"}, extra...)
	ffmpeg(t, append(args, "-bsf:v", "h264_mp4toannexb", "-f", "h264", p)...)
	b, _ := os.ReadFile(p)
	aud := []byte{0, 0, 0, 1, 9}
	var out []Frame
	for _, au := range bytes.Split(b, aud) {
		if len(au) == 0 {
			continue
		}
		au = append(append([]byte{}, aud...), au...)
		key := bytes.Contains(au, []byte{0, 0, 1, 0x65}) || bytes.Contains(au, []byte{0, 0, 1, 0x25})
		out = append(out, Frame{Data: au, PTS: time.Duration(len(out)) * time.Second / time.Duration(fps), Keyframe: key})
	}
	return p, out
}

// Opus encodes seconds of a hz tone as 20 ms Opus packets.
func Opus(t testing.TB, hz, seconds int) []Frame {
	p := filepath.Join(t.TempDir(), "a.ogg")
	ffmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000", hz), "-t", fmt.Sprint(seconds),
		"-c:a", "libopus", "-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", p)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []Frame
	for {
		payload, _, err := r.ParseNextPage()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(payload) > 8 && string(payload[:8]) == "OpusTags" {
			continue
		}
		out = append(out, Frame{Data: payload, PTS: time.Duration(len(out)) * 20 * time.Millisecond, Keyframe: true})
	}
}
