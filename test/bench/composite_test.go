package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

// BenchmarkRoomComposite composes two 1280x720 30 fps publishers (H.264 + Opus each) into the
// default 720p30 grid and measures the job's CPU and memory over 20 s.
func BenchmarkRoomComposite(b *testing.B) {
	window := 20 * time.Second
	s := stack.New(b)
	w := s.StartWorker(b, "worker", "")
	s.CreateRoom(b, "cbench")
	for _, id := range []string{"a", "b"} {
		s.Publish(b, "cbench", id, stack.Media{Name: "cam", Codec: "h264720", Seconds: 60}, stack.Media{Name: "mic", Codec: "opus", Seconds: 60})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	info, err := s.Egress().StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{RoomName: "cbench",
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "composite"}}})
	if err != nil {
		b.Fatal(err)
	}
	stack.Eventually(b, 15*time.Second, "active", func() bool { return active(s, info.EgressId) })
	startLat := time.Since(t0)
	time.Sleep(3 * time.Second)
	pid := w.Jobs(b)[0].PID
	c0, _ := procStat(pid)
	time.Sleep(window)
	c1, rss := procStat(pid)
	pss, _ := memory(pid)
	_, _ = s.Egress().StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId})
	cores := (c1 - c0) / window.Seconds()
	b.ReportMetric(cores, "cores")
	fmt.Printf("room composite, 2 publishers 720p30 → grid 720p30 MP4 (H.264 3 Mb/s + AAC):\n")
	fmt.Printf("  CPU              %.3f cores (job process)\n", cores)
	fmt.Printf("  memory           RSS %.1f MB, PSS %.1f MB\n", float64(rss)/1e6, float64(pss)/1e6)
	fmt.Printf("  start → ACTIVE   %s\n", startLat.Round(time.Millisecond))
}
