package worker

import (
	"errors"
	"os"
	"testing"

	"github.com/mediaworker/mediaworker/pkg/config"
	"github.com/mediaworker/mediaworker/pkg/egress"
)

func TestCapacity(t *testing.T) {
	tests := []struct {
		name     string
		maxJobs  int
		costs    []float64
		measured []float64 // observed after each reserve
		wantErr  []bool
	}{
		{name: "reserved costs fill the budget", maxJobs: 10, costs: []float64{0.7, 0.7, 0.3, 0.2}, measured: []float64{0, 0, 0, 0}, wantErr: []bool{false, false, true, false}},
		{name: "a job using more than its cost counts at its use", maxJobs: 10, costs: []float64{0.05, 0.05, 0.05}, measured: []float64{1.52, 0, 0}, wantErr: []bool{false, false, true}},
		{name: "max jobs", maxJobs: 2, costs: []float64{0.01, 0.01, 0.01}, measured: []float64{0, 0, 0}, wantErr: []bool{false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapacity(2, 0.8, tc.maxJobs) // 1.6 cores
			for i, cost := range tc.costs {
				id := string(rune('a' + i))
				err := c.reserve(id, cost)
				if (err != nil) != tc.wantErr[i] {
					t.Fatalf("job %d cost %v: err %v, want error %v", i, cost, err, tc.wantErr[i])
				}
				if err != nil && !errors.Is(err, ErrFull) {
					t.Fatalf("want ErrFull, got %v", err)
				}
				c.observe(id, tc.measured[i])
			}
		})
	}
}

func TestCapacityRelease(t *testing.T) {
	c := newCapacity(1, 1, 5)
	if err := c.reserve("a", 1); err != nil {
		t.Fatal(err)
	}
	if c.canAccept(0.1) {
		t.Fatal("full worker accepts")
	}
	c.observe("gone", 5) // a job already released is not counted
	c.release("a")
	if !c.canAccept(1) || c.loadFraction() != 0 || c.measuredTotal() != 0 {
		t.Fatal("released capacity not free")
	}
}

func TestProcessCPU(t *testing.T) {
	x := 0
	for i := 0; i < 5e7; i++ {
		x += i
	}
	s, err := processCPU(os.Getpid())
	if err != nil || s <= 0 || x == 0 {
		t.Fatalf("cpu %v err %v", s, err)
	}
}

// TestCostOf: an audio-only transcode reserves the audio cost, not the composite's or transcode's.
func TestCostOf(t *testing.T) {
	s := &Service{conf: config.Default()}
	c := s.conf.Capacity
	for _, tc := range []struct {
		req  *egress.Request
		want float64
	}{
		{&egress.Request{Kind: egress.KindRoomComposite}, c.CompositeCPUCost},
		{&egress.Request{Kind: egress.KindRoomComposite, AudioOnly: true}, c.AudioCPUCost},
		{&egress.Request{Kind: egress.KindTrackComposite, AudioOnly: true}, c.AudioCPUCost},
		{&egress.Request{Kind: egress.KindParticipant}, c.TranscodeCPUCost},
		{&egress.Request{Kind: egress.KindTrack}, c.TrackCPUCost},
	} {
		if got := s.costOf(tc.req); got != tc.want {
			t.Errorf("%s audio-only %v: cost %v, want %v", tc.req.Kind, tc.req.AudioOnly, got, tc.want)
		}
	}
	if c.AudioCPUCost >= c.TranscodeCPUCost {
		t.Errorf("default audio cost %v is not below the transcode cost %v", c.AudioCPUCost, c.TranscodeCPUCost)
	}
}
