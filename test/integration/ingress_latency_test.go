package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

// TestIngressLatency measures input → subscriber delay with frames whose arrival can be matched to
// the moment they were written, through a 2 s stall of the publisher: the delay must not grow.
func TestIngressLatency(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	info, err := s.Ingress().CreateIngress(ctx(t), &livekit.CreateIngressRequest{
		InputType: livekit.IngressInput_RTMP_INPUT, RoomName: "latency", ParticipantIdentity: "probe",
	})
	if err != nil {
		t.Fatalf("CreateIngress: %v", err)
	}
	sub := s.Subscribe(t, "latency")
	const stallAt, stall = 7 * time.Second, 2 * time.Second
	started := time.Now()
	probe := stack.PushLatencyProbe(t, w.RTMPURL+"/"+info.StreamKey, 30, 16*time.Second, stallAt, stall)
	sub.WaitTracks(t, 1, 30*time.Second)
	sub.SetQuality(t, "probe", livekit.VideoQuality_HIGH)
	probe.Wait(t, 30*time.Second)
	lat := stack.MatchLatency(probe.Marks(), sub.FrameSizes("probe"))
	var after []time.Duration
	for i, m := range probe.Marks() {
		if lat[i] >= 0 && m.After(started.Add(stallAt+stall+500*time.Millisecond)) {
			after = append(after, lat[i])
		}
	}
	if len(after) < 5 {
		t.Fatalf("only %d marks matched after the stall (all: %v)", len(after), lat)
	}
	slices.Sort(after)
	med := after[len(after)/2]
	t.Logf("latency after a 2 s stall: median %s, max %s over %d marks (all: %v)", med, after[len(after)-1], len(after), lat)
	if med > 400*time.Millisecond {
		t.Fatalf("median latency after the stall %s > 400 ms", med)
	}
}
