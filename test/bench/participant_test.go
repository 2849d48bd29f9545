package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
	"github.com/mediaworker/mediaworker/test/mediatest"
	"github.com/mediaworker/mediaworker/test/stack"
)

// BenchmarkParticipantEgress transcodes one participant (1280x720 30 fps H.264 camera + Opus) to
// the default preset (720p30 H.264 Main 3 Mb/s + AAC) and measures the job's CPU and memory over
// 20 s, and the encoder's SSIM against its source.
func BenchmarkParticipantEgress(b *testing.B) {
	window := 20 * time.Second
	s := stack.New(b)
	w := s.StartWorker(b, "worker", "", os.Getenv("BENCH_WORKER_ENV"))
	s.CreateRoom(b, "pbench")
	s.Publish(b, "pbench", "pub", stack.Media{Name: "cam", Codec: "h264720", Seconds: 60}, stack.Media{Name: "mic", Codec: "opus", Seconds: 60})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	info, err := s.Egress().StartParticipantEgress(ctx, &livekit.ParticipantEgressRequest{RoomName: "pbench", Identity: "pub",
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "bench"}}})
	if err != nil {
		b.Fatal(err)
	}
	stack.Eventually(b, 15*time.Second, "active", func() bool { return active(s, info.EgressId) })
	startLat := time.Since(t0)
	time.Sleep(2 * time.Second)
	pid := w.Jobs(b)[0].PID
	c0, _ := procStat(pid)
	time.Sleep(window)
	c1, rss := procStat(pid)
	pss, _ := memory(pid)
	printSmaps(pid)
	_, _ = s.Egress().StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId})
	end := ended(b, s, info.EgressId)
	cores := (c1 - c0) / window.Seconds()
	b.ReportMetric(cores, "cores")
	fmt.Printf("participant egress 720p30 → MP4 (H.264 3 Mb/s + AAC):\n")
	fmt.Printf("  CPU              %.3f cores (job process)\n", cores)
	fmt.Printf("  memory           RSS %.1f MB, PSS %.1f MB\n", float64(rss)/1e6, float64(pss)/1e6)
	fmt.Printf("  start → ACTIVE   %s\n", startLat.Round(time.Millisecond))
	if fr := end.GetFileResults(); len(fr) == 1 {
		fmt.Printf("  output           %.1f s, %.2f Mb/s\n", time.Duration(fr[0].Duration).Seconds(), float64(fr[0].Size*8)/1e6/time.Duration(fr[0].Duration).Seconds())
	}
	fmt.Printf("  encoder SSIM against the source (10 s 720p30 clips, 3 Mb/s; official: x264enc veryfast, VBV 2 s, Main, its defaults)\n")
	for _, q := range encoderSSIM(b) {
		fmt.Printf("    %-13s ours %.6f, official %.6f (%+.0f ×10⁻⁵)\n", q.clip, q.ours, q.official, (q.ours-q.official)*1e5)
	}
}

type quality struct {
	clip           string
	ours, official float64
}

// encoderSSIM runs the participant transcoder on three 10 s 720p30 clips as a browser publishes
// them and compares its output with the raw source frame by frame (SSIM), beside the official
// egress's encoder (GStreamer's x264enc veryfast with a 2 s VBV buffer, Main profile, everything
// else x264's and GStreamer's defaults: 3 B-frames, 10 frames of lookahead, frame threads)
// transcoding the same H.264 at the same bit rate: saving CPU and memory must not cost quality.
func encoderSSIM(b *testing.B) []quality {
	var qs []quality
	for _, clip := range mediatest.Clips(b, 10) {
		dir := b.TempDir()
		out := filepath.Join(dir, "ours.mp4")
		tr, err := pipeline.NewTranscoder(pipeline.TranscodePlan{VideoIn: "h264", Width: 1280, Height: 720, Framerate: 30,
			VideoKbps: 3000, Profile: "main", Output: out})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range clip.Frames {
			_ = tr.PushVideo(f.Data, f.PTS)
		}
		if err := tr.Close(); err != nil {
			b.Fatal(err)
		}
		ref := filepath.Join(dir, "official.mp4")
		if o, err := exec.Command("gst-launch-1.0", "-q", "filesrc", "location="+clip.H264, "!", "h264parse", "!", "avdec_h264", "!",
			"videoconvert", "!", "video/x-raw,format=I420", "!", "x264enc", "speed-preset=veryfast", "bitrate=3000", "vbv-buf-capacity=2000",
			"key-int-max=60", "!", "video/x-h264,profile=main", "!", "h264parse", "!", "mp4mux", "!", "filesink", "location="+ref).CombinedOutput(); err != nil {
			b.Fatalf("official encode: %v %s", err, o)
		}
		qs = append(qs, quality{clip.Name, clip.SSIM(b, out), clip.SSIM(b, ref)})
	}
	return qs
}
