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
	"strconv"
	"strings"
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

// Clip is raw 8-bit 4:2:0 video (the reference for quality measures) and the H.264 a browser would
// publish of it: Constrained Baseline at 3 Mb/s, no B-frames, one access unit per frame.
type Clip struct {
	Name      string
	Raw, H264 string // file paths
	Frames    []Frame
}

// Clips are seconds of three kinds of 1280x720 30 fps picture: ffmpeg's test pattern (flat areas,
// small moving parts), a fractal zoom (fine detail moving everywhere) and a slow pan over a still
// with sensor-like noise (a camera).
func Clips(t testing.TB, seconds int) []Clip {
	t.Helper()
	dir := t.TempDir()
	d := fmt.Sprint(seconds)
	still := filepath.Join(dir, "still.png")
	ffmpeg(t, "-f", "lavfi", "-i", "mandelbrot=size=1920x1080:rate=1:start_scale=0.5", "-frames:v", "1", still)
	var clips []Clip
	for _, c := range []struct {
		name string
		in   []string
	}{
		{"test pattern", []string{"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"}},
		{"fractal zoom", []string{"-f", "lavfi", "-i", "mandelbrot=size=1280x720:rate=30"}},
		{"noisy pan", []string{"-loop", "1", "-framerate", "30", "-i", still, "-vf",
			"crop=1280:720:x='min(t*40,640)':y='min(t*20,360)',noise=alls=6:allf=t"}},
	} {
		clip := Clip{Name: c.name, Raw: filepath.Join(dir, fmt.Sprintf("%d.yuv", len(clips))), H264: filepath.Join(dir, fmt.Sprintf("%d.h264", len(clips)))}
		ffmpeg(t, append(c.in, "-t", d, "-pix_fmt", "yuv420p", "-f", "rawvideo", clip.Raw)...)
		ffmpeg(t, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "1280x720", "-r", "30", "-i", clip.Raw,
			"-c:v", "libx264", "-profile:v", "baseline", "-b:v", "3000k", "-g", "90", "-x264-params", "aud=1",
			"-bsf:v", "h264_mp4toannexb", "-f", "h264", clip.H264)
		for i, au := range splitAUs(readFile(t, clip.H264)) {
			clip.Frames = append(clip.Frames, Frame{Data: au, PTS: time.Duration(i) * time.Second / 30})
		}
		clips = append(clips, clip)
	}
	return clips
}

// SSIM is the mean SSIM (all planes) of a video file against a clip's raw frames, frame by frame
// in order.
func (c Clip) SSIM(t testing.TB, path string) float64 {
	t.Helper()
	return SSIM(t, "[0:v]setpts=N/30/TB[a];[1:v]setpts=N/30/TB[b];[a][b]ssim",
		"-i", path, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "1280x720", "-r", "30", "-i", c.Raw)
}

// SSIM runs ffmpeg on inputs (its input arguments) through graph, which ends in the ssim filter,
// and returns the mean SSIM over all planes.
func SSIM(t testing.TB, graph string, inputs ...string) float64 {
	t.Helper()
	args := append(append([]string{"-v", "info"}, inputs...), "-lavfi", graph, "-f", "null", "-")
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	i := strings.Index(string(out), "All:")
	if err != nil || i < 0 {
		t.Fatalf("ffmpeg ssim %v: %v\n%s", inputs, err, out)
	}
	v, err := strconv.ParseFloat(strings.Fields(string(out)[i+4:])[0], 64)
	if err != nil {
		t.Fatalf("ffmpeg ssim %v: %v", inputs, err)
	}
	return v
}
