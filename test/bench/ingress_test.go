package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/mediaworker/mediaworker/test/mediatest"
	"github.com/mediaworker/mediaworker/test/stack"
)

// BenchmarkRTMPIngress pushes OBS-like RTMP (H.264 High with B-frames, keyframe every 2 s, + AAC)
// at 720p30 and 1080p30 into an ingress with the matching 3-layer preset and measures the session
// process's CPU and memory over 20 s, the frame rate a subscriber gets, and the time from the
// publisher starting to the ingress publishing in the room. Then 3 × 720p at once. The stream is
// encoded once beforehand and pushed with `-c copy`, so the publisher costs no CPU here (OBS runs
// on another machine). BENCH_INGRESS=720p30 runs only that case; BENCH_WORKER_ENV adds a variable
// to the worker's (and its sessions') environment.
func BenchmarkRTMPIngress(b *testing.B) {
	window := 20 * time.Second
	s := stack.New(b)
	// cpu_cost is set low so that the 3-at-once part is admitted and shows what happens.
	w := s.StartWorker(b, "worker", "ingress: {rtmp_addr: \"127.0.0.1:"+fmt.Sprint(stack.FreePort(b))+"\", cpu_cost: 0.3}\n", os.Getenv("BENCH_WORKER_ENV"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	newIngress := func(room string, preset livekit.IngressVideoEncodingPreset) *livekit.IngressInfo {
		info, err := s.Ingress().CreateIngress(ctx, &livekit.CreateIngressRequest{InputType: livekit.IngressInput_RTMP_INPUT,
			RoomName: room, ParticipantIdentity: "obs",
			Video: &livekit.IngressVideoOptions{EncodingOptions: &livekit.IngressVideoOptions_Preset{Preset: preset}}})
		if err != nil {
			b.Fatal(err)
		}
		return info
	}
	started := func(id string) bool {
		evs, _ := s.Webhooks.ForIngress(id)
		return slices.ContainsFunc(evs, func(e *livekit.WebhookEvent) bool { return e.Event == "ingress_started" })
	}
	pidOf := func(id string) int {
		for _, j := range w.Jobs(b) {
			if j.IngressID == id {
				return j.PID
			}
		}
		b.Fatalf("no session for %s", id)
		return 0
	}

	for _, c := range []struct {
		name          string
		width, height int
		preset        livekit.IngressVideoEncodingPreset
	}{
		{"720p30", 1280, 720, livekit.IngressVideoEncodingPreset_H264_720P_30FPS_3_LAYERS},
		{"1080p30", 1920, 1080, livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_3_LAYERS},
	} {
		if only := os.Getenv("BENCH_INGRESS"); only != "" && only != c.name {
			continue
		}
		room := "bench-" + c.name
		info := newIngress(room, c.preset)
		sub := s.Subscribe(b, room)
		file := preEncoded(b, c.width, c.height)
		t0 := time.Now()
		obs := pushFile(b, file, w.RTMPURL+"/"+info.StreamKey)
		stack.Eventually(b, 20*time.Second, "ingress_started", func() bool { return started(info.IngressId) })
		toStarted := time.Since(t0)
		tracks := sub.WaitTracks(b, 2, 20*time.Second)
		var toMedia time.Duration
		for _, tr := range tracks {
			if tr.Kind == lksdk.TrackKindVideo {
				toMedia = tr.FirstPacket.Sub(t0)
			}
		}
		sub.SetQuality(b, "obs", livekit.VideoQuality_HIGH)
		time.Sleep(3 * time.Second)
		pid := pidOf(info.IngressId)
		c0, _ := procStat(pid)
		f0 := len(sub.FrameSizes("obs"))
		time.Sleep(window)
		c1, rss := procStat(pid)
		fps := float64(len(sub.FrameSizes("obs"))-f0) / window.Seconds()
		pss, anon := memory(pid)
		cores := (c1 - c0) / window.Seconds()
		b.ReportMetric(cores, "cores_"+c.name)
		fmt.Printf("RTMP ingress %s → 3 simulcast layers (%s) + Opus:\n", c.name, c.preset)
		fmt.Printf("  CPU                        %.3f cores (session process)\n", cores)
		fmt.Printf("  frames at the subscriber   %.1f fps (HIGH layer)\n", fps)
		fmt.Printf("  memory                     RSS %.1f MB, PSS %.1f MB, private anonymous %.1f MB\n", float64(rss)/1e6, float64(pss)/1e6, float64(anon)/1e6)
		printSmaps(pid)
		fmt.Printf("  publish → ingress_started  %s\n", toStarted.Round(time.Millisecond))
		fmt.Printf("  publish → first video RTP  %s (at the subscriber)\n", toMedia.Round(time.Millisecond))
		obs.Interrupt(b, 10*time.Second)
		sub.Close()
		stack.Eventually(b, 20*time.Second, "session ended", func() bool { return len(w.Jobs(b)) == 0 })
	}

	if os.Getenv("BENCH_INGRESS") != "" {
		return
	}
	// Several 720p ingresses at once: total CPU of the session processes, and whether every one
	// keeps its frame rate (packets at the subscriber).
	const n = 3 // what the admission model takes at the measured cost (2 cores × 0.8)
	var pids []int
	var subs []*stack.Subscriber
	for i := range n {
		room := fmt.Sprintf("many-%d", i)
		info := newIngress(room, livekit.IngressVideoEncodingPreset_H264_720P_30FPS_3_LAYERS)
		subs = append(subs, s.Subscribe(b, room))
		pushFile(b, preEncoded(b, 1280, 720), w.RTMPURL+"/"+info.StreamKey)
		stack.Eventually(b, 30*time.Second, "ingress_started", func() bool { return started(info.IngressId) })
		pids = append(pids, pidOf(info.IngressId))
	}
	time.Sleep(3 * time.Second)
	var total0 float64
	before := make([]int, n)
	for i, p := range pids {
		c, _ := procStat(p)
		total0 += c
		before[i] = len(subs[i].FrameSizes("obs"))
	}
	time.Sleep(window)
	var total1 float64
	var rates []string
	for i, p := range pids {
		c, _ := procStat(p)
		total1 += c
		rates = append(rates, fmt.Sprintf("%.1f", float64(len(subs[i].FrameSizes("obs"))-before[i])/window.Seconds()))
	}
	fmt.Printf("%d RTMP ingresses 720p30 at once:\n", n)
	fmt.Printf("  CPU                        %.3f cores in all\n", (total1-total0)/window.Seconds())
	fmt.Printf("  video frames/s received    %v (one subscriber each, HIGH layer)\n", rates)
}

var encoded = map[string]string{}

// preEncoded is 60 s of testsrc2 + a tone encoded the way OBS sends it (cached per size).
func preEncoded(b *testing.B, w, h int) string { return preEncodedFor(b, w, h, 60) }

func preEncodedFor(b *testing.B, w, h, secs int) string {
	key := fmt.Sprintf("%dx%d-%ds", w, h, secs)
	if p, ok := encoded[key]; ok {
		return p
	}
	p := filepath.Join(b.TempDir(), key+".flv")
	out, err := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30", w, h),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", fmt.Sprint(secs), "-c:v", "libx264", "-profile:v", "high",
		"-preset", "veryfast", "-g", "60", "-keyint_min", "60", "-bf", "2", "-b:v", "2500k", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000", "-f", "flv", p).CombinedOutput()
	if err != nil {
		b.Fatalf("encode %s: %v\n%s", key, err, out)
	}
	encoded[key] = p
	return p
}

// pushFile sends file in real time, looping, without re-encoding.
func pushFile(b *testing.B, file, url string) *stack.Proc {
	return stack.Start(b, "ffmpeg-rtmp", nil, "ffmpeg", "-nostdin", "-loglevel", "warning", "-re", "-stream_loop", "-1",
		"-i", file, "-c", "copy", "-f", "flv", url)
}

// BenchmarkIngressEncoders runs the ingress's decode → 3-layer encode chain and the official
// service's (decodebin, videorate, tee, videoscale, x264enc veryfast zerolatency with its thread
// heuristic ceil(W·H/307200), no explicit GOP) side by side on the same 20 s 720p30 OBS-like input,
// as fast as they go, and compares CPU seconds and each layer's SSIM against the source scaled to
// the layer's size.
func BenchmarkIngressEncoders(b *testing.B) {
	src := preEncodedFor(b, 1280, 720, 20)
	dir := b.TempDir()
	layers := []struct{ w, h, kbps int }{{1280, 720, 1900}, {640, 360, 671}, {320, 180, 237}}
	type result struct {
		cpu  float64
		ssim []float64
	}
	run := func(name string, decode string, enc func(w, h, kbps int) string) result {
		desc := fmt.Sprintf("filesrc location=%s ! flvdemux name=d d.video ! queue ! %s ! tee name=t ", src, decode)
		for i, l := range layers {
			desc += fmt.Sprintf("t. ! queue ! videoscale ! video/x-raw,width=%d,height=%d ! %s ! h264parse ! mp4mux ! filesink location=%s ",
				l.w, l.h, enc(l.w, l.h, l.kbps), filepath.Join(dir, fmt.Sprintf("%s-%d.mp4", name, i)))
		}
		cmd := exec.Command("gst-launch-1.0", append([]string{"-q"}, strings.Fields(desc)...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", name, err, out)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		r := result{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()}
		for i, l := range layers {
			r.ssim = append(r.ssim, mediatest.SSIM(b, fmt.Sprintf("[1:v]scale=%d:%d:flags=bilinear[ref];[0:v][ref]ssim", l.w, l.h),
				"-i", filepath.Join(dir, fmt.Sprintf("%s-%d.mp4", name, i)), "-i", src))
		}
		return r
	}
	ours := run("ours", "h264parse ! avdec_h264 max-threads=1 ! videoconvert ! videorate drop-only=true max-rate=30 ! video/x-raw,format=I420",
		func(w, h, kbps int) string {
			threads := 1
			if w*h > 640*360 {
				threads = 2
			}
			return fmt.Sprintf("x264enc tune=zerolatency speed-preset=veryfast bitrate=%d vbv-buf-capacity=1000 key-int-max=60 bframes=0 threads=%d ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au", kbps, threads)
		})
	official := run("official", "decodebin ! videorate max-rate=30 ! videoconvert",
		func(w, h, kbps int) string {
			return fmt.Sprintf("queue ! x264enc bitrate=%d vbv-buf-capacity=1000 byte-stream=true tune=zerolatency speed-preset=veryfast threads=%d ! video/x-h264,profile=baseline",
				kbps, (w*h+307199)/307200)
		})
	fmt.Printf("ingress encode chain, 20 s of 720p30 → 3 layers (as fast as possible, CPU seconds per second of input):\n")
	fmt.Printf("  ours      %.3f cores   SSIM per layer (720p, 360p, 180p) %.6f\n", ours.cpu/20, ours.ssim)
	fmt.Printf("  official  %.3f cores   SSIM per layer (720p, 360p, 180p) %.6f\n", official.cpu/20, official.ssim)
}
