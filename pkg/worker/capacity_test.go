package worker

import (
	"errors"
	"testing"
)

func TestCapacity(t *testing.T) {
	tests := []struct {
		name    string
		busy    func() float64
		maxJobs int
		costs   []float64
		wantErr []bool
	}{
		{name: "reserved costs fill the budget", maxJobs: 10, costs: []float64{0.7, 0.7, 0.3, 0.2}, wantErr: []bool{false, false, true, false}},
		{name: "measured load refuses", busy: func() float64 { return 1.5 }, maxJobs: 10, costs: []float64{0.05, 0.2}, wantErr: []bool{false, true}},
		{name: "max jobs", maxJobs: 2, costs: []float64{0.01, 0.01, 0.01}, wantErr: []bool{false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapacity(2, 0.8, tc.maxJobs, tc.busy) // 1.6 cores
			for i, cost := range tc.costs {
				err := c.reserve(string(rune('a'+i)), cost)
				if (err != nil) != tc.wantErr[i] {
					t.Fatalf("job %d cost %v: err %v, want error %v", i, cost, err, tc.wantErr[i])
				}
				if err != nil && !errors.Is(err, ErrFull) {
					t.Fatalf("want ErrFull, got %v", err)
				}
			}
		})
	}
}

func TestCapacityRelease(t *testing.T) {
	c := newCapacity(1, 1, 5, nil)
	if err := c.reserve("a", 1); err != nil {
		t.Fatal(err)
	}
	if c.canAccept(0.1) {
		t.Fatal("full worker accepts")
	}
	c.release("a")
	if !c.canAccept(1) || c.loadFraction() != 0 {
		t.Fatal("released capacity not free")
	}
}

func TestReadProcStat(t *testing.T) {
	idle, total, err := readProcStat()
	if err != nil || total == 0 || idle > total {
		t.Fatalf("idle %d total %d err %v", idle, total, err)
	}
}
