package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

// BenchmarkStreamOutputs measures what stream destinations add to a room composite of two 720p30
// publishers recorded to MP4: the job's CPU with the file alone, then with 1 and 3 RTMP
// destinations (local ffmpeg receivers) fed from the same encode.
func BenchmarkStreamOutputs(b *testing.B) {
	window := 20 * time.Second
	s := stack.New(b)
	w := s.StartWorker(b, "worker", "")
	s.CreateRoom(b, "obench")
	for _, id := range []string{"a", "b"} {
		s.Publish(b, "obench", id, stack.Media{Name: "cam", Codec: "h264720", Seconds: 300}, stack.Media{Name: "mic", Codec: "opus", Seconds: 300})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	measure := func(name string, req *livekit.RoomCompositeEgressRequest) float64 {
		req.RoomName = "obench"
		info, err := s.Egress().StartRoomCompositeEgress(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		stack.Eventually(b, 15*time.Second, "active", func() bool { return active(s, info.EgressId) })
		time.Sleep(3 * time.Second)
		pid := w.Jobs(b)[0].PID
		c0, _ := procStat(pid)
		time.Sleep(window)
		c1, rss := procStat(pid)
		_, _ = s.Egress().StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId})
		end := ended(b, s, info.EgressId)
		stack.Eventually(b, 30*time.Second, "job gone", func() bool { return len(w.Jobs(b)) == 0 })
		cores := (c1 - c0) / window.Seconds()
		fmt.Printf("  %-28s %.3f cores, RSS %.1f MB (%s)\n", name, cores, float64(rss)/1e6, end.Status)
		return cores
	}
	file := func(name string) []*livekit.EncodedFileOutput {
		return []*livekit.EncodedFileOutput{{Filepath: name}}
	}
	fmt.Printf("room composite, 2 publishers 720p30 → 720p30 H.264 3 Mb/s + AAC, job CPU over %s:\n", window)
	base := measure("MP4 file", &livekit.RoomCompositeEgressRequest{FileOutputs: file("o-file")})
	for _, n := range []int{1, 3} {
		var urls []string
		for i := range n {
			u, _, _ := stack.ListenRTMP(b, fmt.Sprintf("k%d%d", n, i))
			urls = append(urls, u)
		}
		c := measure(fmt.Sprintf("MP4 file + %d RTMP", n), &livekit.RoomCompositeEgressRequest{FileOutputs: file(fmt.Sprintf("o-rtmp%d", n)),
			StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_RTMP, Urls: urls}}})
		fmt.Printf("  %-28s %.3f cores per RTMP destination\n", "", (c-base)/float64(n))
	}
}
