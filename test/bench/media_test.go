package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

// BenchmarkMediaSourceRouted measures the unified StartEgress MediaSource with audio routes, which
// runs as a native composite: a host's simulcast 720p camera with the host's microphone left and
// an agent's right (→ 720p30 MP4), and audio only with capture_all (three microphones mixed →
// OGG/Opus), one after the other, each job's CPU and memory over 20 s. The audio-only figure is
// what capacity.audio_cpu_cost reserves.
func BenchmarkMediaSourceRouted(b *testing.B) {
	window := 20 * time.Second
	s := stack.New(b)
	w := s.StartWorker(b, "worker", "")
	s.CreateRoom(b, "mbench")
	s.Publish(b, "mbench", "host", stack.Media{Name: "cam", Codec: "h264720", Simulcast: true, Seconds: 120}, stack.Media{Name: "mic", Codec: "opus", Hz: 440, Seconds: 120})
	s.PublishAs(b, livekit.ParticipantInfo_AGENT, "mbench", "bot", stack.Media{Name: "mic", Codec: "opus", Hz: 880, Seconds: 120})
	s.Publish(b, "mbench", "guest", stack.Media{Name: "mic", Codec: "opus", Hz: 1320, Seconds: 120})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	left, right := livekit.AudioChannel_AUDIO_CHANNEL_LEFT, livekit.AudioChannel_AUDIO_CHANNEL_RIGHT
	cases := []struct {
		name  string
		media *livekit.MediaSource
	}{
		{"host's camera, host left + agents right → 720p30 MP4 (H.264 3 Mb/s + AAC)", &livekit.MediaSource{
			Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{Identity: "host"}},
			Audio: &livekit.AudioConfig{Routes: []*livekit.AudioRoute{
				{Match: &livekit.AudioRoute_ParticipantIdentity{ParticipantIdentity: "host"}, Channel: left},
				{Match: &livekit.AudioRoute_ParticipantKind{ParticipantKind: livekit.ParticipantInfo_AGENT}, Channel: right}}}}},
		{"audio only, capture_all (3 microphones) → OGG/Opus", &livekit.MediaSource{Audio: &livekit.AudioConfig{CaptureAll: true}}},
	}
	for i, c := range cases {
		info, err := s.StartEgressV2(ctx, &livekit.StartEgressRequest{RoomName: "mbench", Source: &livekit.StartEgressRequest_Media{Media: c.media},
			Outputs: []*livekit.Output{{Config: &livekit.Output_File{File: &livekit.FileOutput{Filepath: fmt.Sprintf("media-%d", i)}}}}})
		if err != nil {
			b.Fatal(err)
		}
		stack.Eventually(b, 15*time.Second, "active", func() bool { return active(s, info.EgressId) })
		time.Sleep(3 * time.Second)
		pid := w.Jobs(b)[0].PID
		c0, _ := procStat(pid)
		time.Sleep(window)
		c1, rss := procStat(pid)
		pss, _ := memory(pid)
		_, _ = s.Egress().StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId})
		end := ended(b, s, info.EgressId)
		cores := (c1 - c0) / window.Seconds()
		fmt.Printf("v2 media source: %s:\n", c.name)
		fmt.Printf("  CPU              %.3f cores (job process)\n", cores)
		fmt.Printf("  memory           RSS %.1f MB, PSS %.1f MB\n", float64(rss)/1e6, float64(pss)/1e6)
		if fr := end.GetFileResults(); len(fr) == 1 {
			fmt.Printf("  output           %s, %.1f s, %s\n", fr[0].Filename, time.Duration(fr[0].Duration).Seconds(), end.Status)
		}
		if i == len(cases)-1 {
			b.ReportMetric(cores, "audio-cores")
		}
		stack.Eventually(b, 30*time.Second, "job ended", func() bool { return len(w.Jobs(b)) == 0 })
	}
}
