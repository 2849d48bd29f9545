//go:build ffmpeg

// Self-checks of the ffmpeg-driven helpers against ffmpeg itself (no worker, no livekit-server):
//
//	go test -tags ffmpeg -run . ./test/stack
package stack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type packet struct {
	PTS  float64
	Size int
	Key  bool
}

func videoPackets(t *testing.T, path string) []packet {
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,size,flags", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	var r struct {
		Packets []struct{ PtsTime, Size, Flags string } `json:"packets"`
	}
	if err := json.Unmarshal([]byte(strings.NewReplacer("pts_time", "PtsTime", "\"size\"", "\"Size\"", "flags", "Flags").Replace(string(out))), &r); err != nil {
		t.Fatal(err)
	}
	var ps []packet
	for _, p := range r.Packets {
		pts, _ := strconv.ParseFloat(p.PtsTime, 64)
		n, _ := strconv.Atoi(p.Size)
		ps = append(ps, packet{pts, n, strings.Contains(p.Flags, "K")})
	}
	return ps
}

// TestLatencyProbeFFmpeg pushes the probe with a 2 s stall to an ffmpeg RTMP server and checks
// the stream: real-time frames, a timestamp gap at the stall, one huge frame per mark — and that
// MatchLatency finds them all among real x264 frames (grey keyframes included).
func TestLatencyProbeFFmpeg(t *testing.T) {
	url, out, listener := ListenRTMP(t)
	const dur, stallAt, stall = 8 * time.Second, 3 * time.Second, 2 * time.Second
	start := time.Now()
	lp := PushLatencyProbe(t, url, 30, dur, stallAt, stall)
	lp.Wait(t, 20*time.Second)
	if !listener.Wait(10 * time.Second) {
		t.Fatal("listener did not finish")
	}
	t.Logf("probe ran %s; %d frames late", time.Since(start).Round(time.Millisecond), lp.Late())
	marks := lp.Marks()
	ps := videoPackets(t, out)
	// 8 s at 30 fps minus the 2 s stall, less the frame ffmpeg's probing eats; every frame the
	// generator wrote (it skips those it is late for) must arrive.
	if got := len(ps) + lp.Late(); got < 178 || got > 180 {
		t.Errorf("%d video frames + %d late, want 179", len(ps), lp.Late())
	}
	// Marks every ~500 ms outside the stall: 6 s of them.
	if len(marks) < 9 || len(marks) > 14 {
		t.Fatalf("%d marks, want ≈11", len(marks))
	}
	gap, keys := 0.0, 0
	var holes []string
	for i := 1; i < len(ps); i++ {
		d := ps[i].PTS - ps[i-1].PTS
		gap = max(gap, d)
		if d > 0.05 {
			holes = append(holes, fmt.Sprintf("%.3f+%.3f", ps[i-1].PTS, d))
		}
	}
	t.Logf("first pts %.3f, holes %v", ps[0].PTS, holes)
	// Pretend each frame arrives 80 ms after it was written: the first huge one 80 ms after the
	// first mark, the others at their PTS distance from it.
	var bigPTS float64
	for _, p := range ps {
		if p.Size > 50000 {
			bigPTS = p.PTS
			break
		}
	}
	frames := make([]FrameArrival, len(ps))
	var keySizes, bigSizes []int
	for i, p := range ps {
		frames[i] = FrameArrival{At: marks[0].Add(time.Duration((p.PTS-bigPTS)*float64(time.Second)) + 80*time.Millisecond),
			Bytes: p.Size, RTPTime: uint32(p.PTS * videoClockRate)}
		if p.Key {
			keys++
			keySizes = append(keySizes, p.Size)
		}
		if p.Size > 50000 {
			bigSizes = append(bigSizes, p.Size)
		}
	}
	t.Logf("largest pts gap %.3f s; keyframes %v; frames > 50 kB: %d %v; big-frame threshold %d B", gap, keySizes, len(bigSizes), bigSizes, bigFrameBytes(frames))
	if gap < 1.8 || gap > 2.3 {
		t.Errorf("largest timestamp gap %.3f s, want ≈2 s at the stall", gap)
	}
	if len(bigSizes) != len(marks) {
		t.Errorf("%d huge frames for %d marks", len(bigSizes), len(marks))
	}
	// PTS are wall-clock times of reading, marks of writing: a few ms apart.
	for i, l := range MatchLatency(marks, frames) {
		if l < 40*time.Millisecond || l > 120*time.Millisecond { // PTS are in 1/30 s ticks
			t.Errorf("mark %d (%s): latency %v, want ≈80 ms", i, marks[i].Sub(start).Round(time.Millisecond), l)
		}
	}
}

// TestPushRTMPFFmpeg pushes OBS-like A/V and stops it with SIGINT: the listener gets H.264 High +
// stereo AAC, and the interrupted ffmpeg does not fail the test.
func TestPushRTMPFFmpeg(t *testing.T) {
	url, out, listener := ListenRTMP(t)
	p := PushRTMP(t, url, RTMPSource{Width: 640, Height: 360})
	time.Sleep(3 * time.Second)
	p.Interrupt(t, 10*time.Second)
	if !listener.Wait(10 * time.Second) {
		t.Fatal("listener did not finish")
	}
	pr := FFprobe(t, out)
	got := map[string]string{}
	for _, s := range pr.Streams {
		got[s.CodecType] = s.CodecName
		if s.CodecType == "video" && (s.Width != 640 || s.Height != 360) {
			t.Errorf("video %dx%d", s.Width, s.Height)
		}
	}
	if got["video"] != "h264" || got["audio"] != "aac" || pr.Duration() < 2 {
		t.Errorf("pushed %v for %.1f s", got, pr.Duration())
	}
}

// TestTryPushRTMPRefused: nothing listens, ffmpeg fails, the test does not.
func TestTryPushRTMPRefused(t *testing.T) {
	p := TryPushRTMP(t, fmt.Sprintf("rtmp://127.0.0.1:%d/x/k", FreePort(t)), RTMPSource{Duration: time.Second})
	if !p.Wait(10 * time.Second) {
		t.Fatal("ffmpeg still running")
	}
	if p.cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("ffmpeg succeeded against nothing:\n%s", p.Output())
	}
}

func TestMakeMediaFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, video, audio, format string }{
		{"a.mp4", "h264", "aac", "mov,mp4,m4a,3gp,3g2,mj2"},
		{"a.mkv", "h264", "aac", "matroska,webm"},
		{"a.webm", "vp8", "opus", "matroska,webm"},
		{"a-vp9.webm", "vp9", "opus", "matroska,webm"},
		{"a.mp3", "", "mp3", "mp3"},
		{"a.ogg", "", "opus", "ogg"},
		{"a.m4a", "", "aac", "mov,mp4,m4a,3gp,3g2,mj2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := MakeMediaFile(t, dir, c.name, RTMPSource{Width: 640, Height: 360, Duration: 3 * time.Second})
			checkProbe(t, path, c.video, c.audio, c.format, 3)
			if msg := DecodeErrors(t, path); msg != "" {
				t.Errorf("decode: %s", msg)
			}
		})
	}
}

func TestMakeHLSServed(t *testing.T) {
	dir := t.TempDir()
	path := MakeHLS(t, dir, RTMPSource{Width: 640, Height: 360, Duration: 5 * time.Second})
	base := ServeDir(t, dir)
	resp, err := http.Get(base + "/" + filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(string(b), "#EXT-X-ENDLIST") || strings.Count(string(b), ".ts") != 3 {
		t.Fatalf("playlist:\n%s", b)
	}
	checkProbe(t, base+"/"+filepath.Base(path), "h264", "aac", "hls", 5)
}

func checkProbe(t *testing.T, path, video, audio, format string, secs float64) {
	t.Helper()
	pr := FFprobe(t, path)
	got := map[string]string{}
	for _, s := range pr.Streams {
		got[s.CodecType] = s.CodecName
	}
	if got["video"] != video || got["audio"] != audio || pr.Format.FormatName != format || !near(pr.Duration(), secs, 0.2) {
		t.Errorf("%s: streams %v, format %s, %.2f s; want video %q audio %q in %s, %v s", path, got, pr.Format.FormatName, pr.Duration(), video, audio, format, secs)
	}
}

func near(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }
