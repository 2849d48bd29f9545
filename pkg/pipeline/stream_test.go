package pipeline

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStreamSenders composes 4 s of canvas and silence, taps the encoded streams and sends them to
// an ffmpeg RTMP server and an ffmpeg SRT listener at once, while the same composite is written to
// an MP4: all three hold H.264 + AAC of the length sent.
func TestStreamSenders(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	dir := t.TempDir()
	rtmpURL, flv := listen(t, dir, "rtmp", "got.flv")
	srtURL, ts := listen(t, dir, "srt", "got.ts")
	var senders []*StreamSender
	for _, u := range []string{rtmpURL, srtURL} {
		s, err := NewStreamSender(StreamPlan{URL: u, Video: true, Audio: true, AudioRate: 48000})
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, s)
	}
	var mu sync.Mutex
	var base time.Duration = -1
	feed := func(video bool, data []byte, pts time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if base < 0 {
			if !video {
				return
			}
			base = pts
		}
		for _, s := range senders {
			if video {
				_ = s.PushVideo(data, pts-base)
			} else if pts >= base {
				_ = s.PushAudio(data, pts-base)
			}
		}
	}
	out := filepath.Join(dir, "file.mp4")
	c, err := NewComposer(ComposePlan{Width: 320, Height: 240, Framerate: 30, VideoKbps: 500, Profile: "main", Background: 0xFF2040C0,
		AudioCodec: "aac", AudioKbps: 64, AudioRate: 48000, Output: out, Taps: &Taps{
			Video: func(au []byte, pts time.Duration) { feed(true, au, pts) },
			Audio: func(f []byte, pts time.Duration) { feed(false, f, pts) },
		}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range senders {
		select {
		case err := <-s.Done():
			t.Fatalf("sender failed: %v", err)
		default:
		}
		t0 := time.Now()
		s.Close()
		t.Logf("sender closed in %s", time.Since(t0).Round(time.Millisecond))
	}
	for _, f := range []string{out, flv, ts} {
		waitFile(t, f)
		probe, _ := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration", "-of", "csv=p=0", f).CombinedOutput()
		s := string(probe)
		t.Logf("%s: %s", filepath.Base(f), strings.ReplaceAll(s, "\n", " "))
		if !strings.Contains(s, "h264,320,240") || !strings.Contains(s, "aac") {
			t.Fatalf("%s: ffprobe %s", f, s)
		}
		var d float64
		lines := strings.Split(strings.TrimSpace(s), "\n")
		fmt.Sscanf(lines[len(lines)-1], "%f", &d)
		if d < 2.5 || d > 4.6 {
			t.Fatalf("%s: duration %.2f s, sent ≈ 3.5–4 s", f, d)
		}
		// Packets of both kinds all along (a stream present in the header is not enough).
		pk, _ := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_entries", "stream=codec_type,nb_read_packets", "-of", "csv=p=0", f).Output()
		var v, a int
		for _, l := range strings.Split(strings.TrimSpace(string(pk)), "\n") {
			kind, n, _ := strings.Cut(l, ",")
			k, _ := strconv.Atoi(n)
			if kind == "video" {
				v = k
			} else {
				a = k
			}
		}
		if float64(v) < 30*(d-0.5) || float64(a) < 48000.0/1024*(d-0.5) {
			t.Fatalf("%s: %d video and %d audio packets in %.2f s", f, v, a, d)
		}
		if e, _ := exec.Command("ffmpeg", "-v", "error", "-i", f, "-f", "null", "-").CombinedOutput(); len(e) > 0 {
			t.Fatalf("%s: decode: %s", f, e)
		}
	}
}

// listen runs ffmpeg as a one-connection server ("rtmp" or "srt" listener) copying to name in dir.
func listen(t *testing.T, dir, proto, name string) (string, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out := filepath.Join(dir, name)
	in := fmt.Sprintf("rtmp://127.0.0.1:%d/live/secretkey", port)
	args := []string{"-hide_banner", "-nostdin", "-v", "warning", "-listen", "1", "-i", in, "-c", "copy", out}
	bin := "ffmpeg"
	if proto == "srt" {
		// GStreamer's srtsrc stores what arrives as it arrives (ffmpeg would hold it while probing).
		in = fmt.Sprintf("srt://127.0.0.1:%d", port)
		bin, args = "gst-launch-1.0", []string{"-q", "srtsrc", "uri=" + in + "?mode=listener", "!", "filesink", "buffer-mode=unbuffered", "location=" + out}
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(time.Second) // let it bind (a refused first connection would fail the sender)
	return in, out
}

func waitFile(t *testing.T, f string) {
	for i := 0; i < 50; i++ {
		if st, err := os.Stat(f); err == nil && st.Size() > 0 {
			time.Sleep(500 * time.Millisecond)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never written", f)
}

func TestSilentAAC(t *testing.T) {
	for _, rate := range []int{44100, 48000} {
		f, err := SilentAAC(rate, 128)
		if err != nil || len(f) == 0 || len(f) > 2048 { // voaacenc fills its bit rate: 372 bytes at 128 kb/s
			t.Fatalf("%d Hz: %d bytes, %v", rate, len(f), err)
		}
	}
}

// TestImages captures a still every second from a composite that records nothing else, and one
// every 2 s at another size next to an MP4.
func TestImages(t *testing.T) {
	for _, file := range []bool{false, true} {
		var mu sync.Mutex
		got := map[int][]time.Duration{}
		plan := ComposePlan{Width: 320, Height: 240, Framerate: 30, VideoKbps: 500, Profile: "main", Background: 0xFF2040C0,
			AudioCodec: "aac", AudioKbps: 64, AudioRate: 48000, VideoOnly: true}
		for i, every := range []time.Duration{time.Second, 2 * time.Second} {
			plan.Images = append(plan.Images, ImagePlan{Every: every, Width: 160 * (i + 1), Height: 120 * (i + 1), OnImage: func(jpeg []byte, pts time.Duration) {
				if len(jpeg) < 100 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
					t.Errorf("not a JPEG: % x", jpeg[:min(4, len(jpeg))])
				}
				mu.Lock()
				got[i] = append(got[i], pts)
				mu.Unlock()
			}})
		}
		if file {
			plan.Output = filepath.Join(t.TempDir(), "f.mp4")
		}
		c, err := NewComposer(plan)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(4500 * time.Millisecond)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if n0, n1 := len(got[0]), len(got[1]); n0 < 4 || n0 > 6 || n1 < 2 || n1 > 3 {
			t.Fatalf("file %v: %d stills every 1 s, %d every 2 s in 4.5 s: %v", file, n0, n1, got)
		}
		mu.Unlock()
	}
}

// TestStreamSenderChurn creates and drops senders to a refused RTMP port from 4 goroutines for
// 10 s while the garbage collector runs every 5 ms, as a destination that is retried does. Before
// the wrappers were kept alive across their last C call (graph.stop, pushBytes), and while
// rtmp2sink connected asynchronously, this crashed the process within seconds (SIGSEGV, heap
// corruption), as a job process in CI died while retrying a refused destination. Every sender must
// report the refusal.
func TestStreamSenderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s stress")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/key", l.Addr().(*net.TCPAddr).Port)
	l.Close()
	type sample struct {
		video bool
		data  []byte
		pts   time.Duration
	}
	var mu sync.Mutex
	var samples []sample
	keep := func(video bool) func([]byte, time.Duration) {
		return func(b []byte, pts time.Duration) {
			mu.Lock()
			samples = append(samples, sample{video, b, pts})
			mu.Unlock()
		}
	}
	c, err := NewComposer(ComposePlan{Width: 320, Height: 240, Framerate: 30, VideoKbps: 500, Profile: "main", Background: 0xFF2040C0,
		AudioCodec: "aac", AudioKbps: 64, AudioRate: 48000, Output: filepath.Join(t.TempDir(), "x.mp4"),
		Taps: &Taps{Video: keep(true), Audio: keep(false)}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.GC()
			}
		}
	}()
	defer close(stop)
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	var senders, refused atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				s, err := NewStreamSender(StreamPlan{URL: url, Video: true, Audio: true, AudioRate: 48000})
				if err != nil {
					t.Error(err)
					return
				}
				senders.Add(1)
				for _, x := range samples {
					if x.video {
						_ = s.PushVideo(x.data, x.pts)
					} else {
						_ = s.PushAudio(x.data, x.pts)
					}
				}
				select {
				case err := <-s.Done():
					if err != nil && strings.Contains(err.Error(), "Connection refused") {
						refused.Add(1)
					}
				case <-time.After(5 * time.Second):
				}
				s.Close()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d senders, %d refused", senders.Load(), refused.Load())
	if senders.Load() < 100 || refused.Load() < senders.Load()*9/10 {
		t.Fatalf("%d senders, %d reported the refusal", senders.Load(), refused.Load())
	}
}
