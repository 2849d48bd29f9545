package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	ours, ref := encoderSSIM(b)
	fmt.Printf("  encoder SSIM     ours %s, x264 veryfast default lookahead %s (same 10 s 720p30 source, 3 Mb/s)\n", ours, ref)
}

// encoderSSIM runs the participant transcoder on 10 s of a 720p30 source and compares its output
// with the source frame by frame (SSIM, ffmpeg), beside ffmpeg's x264 veryfast at default lookahead
// (what the official egress runs) transcoding the same H.264 at the same bit rate: the saving in
// memory must not cost quality.
func encoderSSIM(b *testing.B) (ours, reference string) {
	src, frames := mediatest.H264File(b, 1280, 720, 30, 10)
	dir := b.TempDir()
	out := filepath.Join(dir, "ours.mp4")
	tr, err := pipeline.NewTranscoder(pipeline.TranscodePlan{VideoIn: "h264", Width: 1280, Height: 720, Framerate: 30,
		VideoKbps: 3000, Profile: "main", Output: out})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range frames {
		_ = tr.PushVideo(f.Data, f.PTS)
	}
	if err := tr.Close(); err != nil {
		b.Fatal(err)
	}
	ref := filepath.Join(dir, "ref.mp4")
	if o, err := exec.Command("ffmpeg", "-v", "error", "-r", "30", "-i", src,
		"-c:v", "libx264", "-preset", "veryfast", "-b:v", "3000k", "-bf", "0", "-g", "60", ref).CombinedOutput(); err != nil {
		b.Fatalf("reference encode: %v %s", err, o)
	}
	return ssimVsSource(b, out), ssimVsSource(b, ref)
}

func ssimVsSource(b *testing.B, path string) string {
	out, err := exec.Command("ffmpeg", "-v", "info", "-i", path, "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-t", "10", "-lavfi", "[0:v][1:v]ssim", "-f", "null", "-").CombinedOutput()
	if i := strings.Index(string(out), "All:"); err == nil && i >= 0 {
		return strings.Fields(string(out)[i:])[0]
	}
	return "not measured"
}
