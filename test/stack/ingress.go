package stack

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
)

// Ingress is the server's Ingress API client, as an app would use it.
func (s *Stack) Ingress() *lksdk.IngressClient {
	return lksdk.NewIngressClient(s.HTTPURL, APIKey, APISecret)
}

// RTMPSource describes the synthetic A/V that PushRTMP and the file makers generate: ffmpeg's
// testsrc2 picture and a sine tone.
type RTMPSource struct {
	Width, Height, FPS int // default 1280x720 at 30
	// Duration of the stream; 0 = until stopped (PushRTMP) or 5 s (files, which must end).
	Duration             time.Duration
	AudioOnly, VideoOnly bool
	Tone                 int // Hz, default 440
}

func (src RTMPSource) withDefaults(t testing.TB) RTMPSource {
	t.Helper()
	if src.AudioOnly && src.VideoOnly {
		t.Fatal("RTMPSource: AudioOnly and VideoOnly together leave nothing to send")
	}
	if src.Width == 0 || src.Height == 0 {
		src.Width, src.Height = 1280, 720
	}
	if src.FPS == 0 {
		src.FPS = 30
	}
	if src.Tone == 0 {
		src.Tone = 440
	}
	return src
}

// inputs are ffmpeg's lavfi inputs (and -t); realtime paces them at native rate (-re), as a live
// encoder produces them.
func (src RTMPSource) inputs(realtime bool) []string {
	var args []string
	add := func(graph string) {
		if realtime {
			args = append(args, "-re")
		}
		args = append(args, "-f", "lavfi", "-i", graph)
	}
	if !src.AudioOnly {
		add(fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", src.Width, src.Height, src.FPS))
	}
	if !src.VideoOnly {
		add(fmt.Sprintf("sine=frequency=%d:sample_rate=48000", src.Tone))
	}
	if src.Duration > 0 {
		args = append(args, "-t", strconv.FormatFloat(src.Duration.Seconds(), 'f', 3, 64))
	}
	return args
}

// h264 is OBS's default x264 output: High profile, 2 s fixed GOP, B-frames, 2.5 Mb/s.
func (src RTMPSource) h264() []string {
	gop := strconv.Itoa(2 * src.FPS)
	return []string{"-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast", "-g", gop, "-keyint_min", gop,
		"-bf", "2", "-pix_fmt", "yuv420p", "-b:v", "2500k"}
}

// aac is OBS's default audio: AAC-LC stereo 48 kHz, 128 kb/s.
var aac = []string{"-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"}

// PushRTMP publishes src to url (with stream key) as OBS does: x264 High + AAC in FLV, in real
// time. ffmpeg ends with the test; p.Interrupt stops it earlier the graceful way. If ffmpeg exits
// with an error on its own (refused, disconnected), the test fails with ffmpeg's output.
func PushRTMP(t testing.TB, url string, src RTMPSource) *Proc {
	t.Helper()
	p := TryPushRTMP(t, url, src)
	watchFFmpeg(t, p)
	return p
}

// TryPushRTMP is PushRTMP for pushes the test expects to be refused: ffmpeg exiting with an error
// is not a failure. Check p.Wait and p.Output.
func TryPushRTMP(t testing.TB, url string, src RTMPSource) *Proc {
	t.Helper()
	src = src.withDefaults(t)
	args := append(ffmpegLive(), src.inputs(true)...)
	if !src.AudioOnly {
		args = append(args, src.h264()...)
	}
	if !src.VideoOnly {
		args = append(args, aac...)
	}
	args = append(args, "-f", "flv", url)
	return Start(t, "ffmpeg-rtmp", nil, "ffmpeg", args...)
}

// ffmpegLive are the global options of a long-running ffmpeg: no keyboard, no progress lines, and
// log level info so that a signalled exit says "received signal" (see watchFFmpeg).
func ffmpegLive() []string {
	return []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"}
}

// Interrupt stops p as Ctrl-C would — for ffmpeg, SIGINT means: finish the output, close the
// connection, exit — and waits up to d for it to exit.
func (p *Proc) Interrupt(t testing.TB, d time.Duration) {
	t.Helper()
	p.Signal(syscall.SIGINT)
	if !p.Wait(d) {
		t.Fatalf("%s still running %s after SIGINT; output:\n%s", p.Name, d, tail(p.Output(), 4000))
	}
}

// watchFFmpeg fails the test, with ffmpeg's output, if p exits with an error before the test ends
// and no signal stopped it (ffmpeg logs "received signal" when Interrupt or the cleanup's SIGTERM
// do). It stops watching when the test's cleanups start, before Start's cleanup kills p.
func watchFFmpeg(t testing.TB, p *Proc) {
	quit, exited := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(quit); <-exited })
	go func() {
		defer close(exited)
		select {
		case <-quit:
		case <-p.done:
			code := p.cmd.ProcessState.ExitCode()
			if code != 0 && !strings.Contains(p.Output(), "received signal") {
				t.Errorf("%s exited with status %d before the test stopped it; output:\n%s", p.Name, code, tail(p.Output(), 4000))
			}
		}
	}()
}

// MakeMediaFile encodes src into dir/name for URL ingress, the container and codecs chosen by the
// extension: .mp4 (H.264 + AAC, moov first), .mkv (H.264 + AAC), .webm (VP8 + Opus; VP9 when
// the name contains "vp9"), .mp3, .ogg (Opus), .m4a (AAC). Audio-only formats ignore the video.
func MakeMediaFile(t testing.TB, dir, name string, src RTMPSource) string {
	t.Helper()
	src = src.withDefaults(t)
	if src.Duration == 0 {
		src.Duration = 5 * time.Second
	}
	path := filepath.Join(dir, name)
	ext := strings.ToLower(filepath.Ext(name))
	audioOnly := ext == ".mp3" || ext == ".ogg" || ext == ".m4a"
	if audioOnly && src.VideoOnly {
		t.Fatalf("MakeMediaFile %s: an audio-only format cannot be VideoOnly", name)
	}
	if audioOnly {
		src.AudioOnly = true
	}
	var video, audio, mux []string
	switch ext {
	case ".mp4":
		video, audio, mux = src.h264(), aac, []string{"-movflags", "+faststart", "-f", "mp4"}
	case ".mkv":
		video, audio, mux = src.h264(), aac, []string{"-f", "matroska"}
	case ".webm":
		video, audio, mux = src.vpx(strings.Contains(strings.ToLower(name), "vp9")), opus, []string{"-f", "webm"}
	case ".mp3":
		audio, mux = []string{"-c:a", "libmp3lame", "-b:a", "128k", "-ar", "48000", "-ac", "2"}, []string{"-f", "mp3"}
	case ".ogg":
		audio, mux = opus, []string{"-f", "ogg"}
	case ".m4a":
		audio, mux = aac, []string{"-f", "ipod"}
	default:
		t.Fatalf("MakeMediaFile %s: unknown extension %q", name, ext)
	}
	args := src.inputs(false)
	if !src.AudioOnly {
		args = append(args, video...)
	}
	if !src.VideoOnly {
		args = append(args, audio...)
	}
	runFFmpeg(t, name, append(append(args, mux...), path)...)
	return path
}

// vpx is VP8 (or VP9) at 1 Mb/s, encoded at realtime speed to keep tests quick.
func (src RTMPSource) vpx(vp9 bool) []string {
	enc := "libvpx"
	if vp9 {
		enc = "libvpx-vp9"
	}
	return []string{"-c:v", enc, "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8", "-g", strconv.Itoa(2 * src.FPS),
		"-pix_fmt", "yuv420p"}
}

var opus = []string{"-c:a", "libopus", "-b:a", "96k", "-ar", "48000", "-ac", "2"}

// MakeHLS encodes src (H.264 + AAC, 2 s GOPs so that every segment starts with a keyframe) as an HLS
// VOD playlist dir/index.m3u8 with 2 s segments, and returns the playlist path.
func MakeHLS(t testing.TB, dir string, src RTMPSource) string {
	t.Helper()
	src = src.withDefaults(t)
	if src.Duration == 0 {
		src.Duration = 5 * time.Second
	}
	path := filepath.Join(dir, "index.m3u8")
	args := src.inputs(false)
	if !src.AudioOnly {
		args = append(args, src.h264()...)
	}
	if !src.VideoOnly {
		args = append(args, aac...)
	}
	args = append(args, "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-hls_segment_filename", filepath.Join(dir, "seg%03d.ts"), path)
	runFFmpeg(t, "hls", args...)
	return path
}

// runFFmpeg runs one ffmpeg to completion and fails the test with its output if it fails.
func runFFmpeg(t testing.TB, what string, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-y", "-hide_banner", "-nostdin", "-v", "error"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v\nffmpeg %s\n%s", what, err, strings.Join(args, " "), tail(string(out), 4000))
	}
}

// ServeDir serves dir over HTTP on loopback until the test ends and returns the base URL
// "http://127.0.0.1:PORT" (Range requests work, as ingest of MP4 from a URL needs).
func ServeDir(t testing.TB, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
