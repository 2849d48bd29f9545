// Package integration runs mediaworker against real servers: Redis, livekit-server v1.13.5, MinIO,
// with publishers made by ffmpeg and checks made by ffprobe. Everything runs in a network namespace
// the test binary creates for itself (see stack.RunInNetns).
package integration

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

func TestMain(m *testing.M) { stack.Main(m) }

// waitEvent waits for the webhook `event` about egress id and returns its info.
func waitEvent(t *testing.T, s *stack.Stack, id, event string, d time.Duration) *livekit.EgressInfo {
	t.Helper()
	var info *livekit.EgressInfo
	stack.Eventually(t, d, event+" for "+id, func() bool {
		evs, _ := s.Webhooks.ForEgress(id)
		for _, e := range evs {
			if e.Event == event {
				info = e.EgressInfo
				return true
			}
		}
		return false
	})
	return info
}

// checkWebhookOrder asserts egress_started → egress_updated(ACTIVE) → egress_ended(want), validly signed.
func checkWebhookOrder(t *testing.T, s *stack.Stack, id string, want livekit.EgressStatus) {
	t.Helper()
	evs, bad := s.Webhooks.ForEgress(id)
	if len(bad) > 0 {
		t.Fatalf("webhooks with bad signatures: %v", bad)
	}
	var seq []string
	for _, e := range evs {
		seq = append(seq, e.Event+":"+e.EgressInfo.Status.String())
	}
	got := strings.Join(seq, " ")
	if len(evs) < 3 || evs[0].Event != "egress_started" {
		t.Fatalf("webhooks for %s: %s; want egress_started first", id, got)
	}
	active, ended := -1, -1
	for i, e := range evs {
		if e.Event == "egress_updated" && e.EgressInfo.Status == livekit.EgressStatus_EGRESS_ACTIVE && active < 0 {
			active = i
		}
		if e.Event == "egress_ended" {
			if ended >= 0 {
				t.Fatalf("two egress_ended webhooks: %s", got)
			}
			ended = i
		}
	}
	if active < 0 || ended < active || ended != len(evs)-1 || evs[ended].EgressInfo.Status != want {
		t.Fatalf("webhooks for %s: %s; want started, updated ACTIVE, ended %s last", id, got, want)
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// stopAfter waits for egress id to be ACTIVE, lets it record for d, stops it and returns the
// final info from egress_ended.
func stopAfter(t *testing.T, s *stack.Stack, id string, d time.Duration) *livekit.EgressInfo {
	t.Helper()
	waitEvent(t, s, id, "egress_updated", 15*time.Second)
	time.Sleep(d)
	return stop(t, s, id)
}

// stop stops egress id and waits for its end.
func stop(t *testing.T, s *stack.Stack, id string) *livekit.EgressInfo {
	t.Helper()
	if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: id}); err != nil {
		t.Fatalf("StopEgress: %v", err)
	}
	return waitEvent(t, s, id, "egress_ended", 60*time.Second)
}
