package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrFull means the job does not fit in what is left of this worker.
var ErrFull = errors.New("worker is at capacity")

// capacity is the admission model: a job reserves its configured CPU cost while it runs, and a new
// one is accepted only if it fits both in what is not reserved and in what the machine has idle
// (measured), so a worker sharing its machine, or jobs costing more than configured, stop claiming.
type capacity struct {
	total   float64 // cores jobs may use: NumCPU × max_cpu_utilization
	maxJobs int
	busy    func() float64 // measured busy cores on the machine; nil = not measured

	mu       sync.Mutex // guards reserved
	reserved map[string]float64
}

func newCapacity(cpus, utilization float64, maxJobs int, busy func() float64) *capacity {
	return &capacity{total: cpus * utilization, maxJobs: maxJobs, busy: busy, reserved: map[string]float64{}}
}

// available is the cores a new job may still take.
func (c *capacity) available() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.availableLocked()
}

func (c *capacity) availableLocked() float64 {
	var sum float64
	for _, v := range c.reserved {
		sum += v
	}
	free := c.total - sum
	if c.busy != nil {
		// The measured load already includes our running jobs, so compare against the whole budget.
		free = min(free, c.total-c.busy())
	}
	return free
}

func (c *capacity) canAccept(cost float64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reserved) < c.maxJobs && c.availableLocked() >= cost
}

func (c *capacity) reserve(id string, cost float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reserved) >= c.maxJobs {
		return fmt.Errorf("%w: %d jobs running (capacity.max_jobs)", ErrFull, len(c.reserved))
	}
	if free := c.availableLocked(); free < cost {
		return fmt.Errorf("%w: job needs %.3f cores, %.3f free", ErrFull, cost, free)
	}
	c.reserved[id] = cost
	return nil
}

func (c *capacity) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reserved, id)
}

// loadFraction is how much of the budget is reserved, 0..1.
func (c *capacity) loadFraction() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum float64
	for _, v := range c.reserved {
		sum += v
	}
	return min(1, sum/c.total)
}

// cpuSampler measures machine-wide busy cores from /proc/stat.
type cpuSampler struct {
	mu   sync.Mutex
	busy float64
}

// run samples every interval until ctx ends.
func (s *cpuSampler) run(ctx context.Context, interval time.Duration) {
	prevIdle, prevTotal, err := readProcStat()
	if err != nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		idle, total, err := readProcStat()
		if err != nil || total <= prevTotal {
			continue
		}
		frac := 1 - float64(idle-prevIdle)/float64(total-prevTotal)
		s.mu.Lock()
		s.busy = frac * float64(runtime.NumCPU())
		s.mu.Unlock()
		prevIdle, prevTotal = idle, total
	}
}

// Busy returns the last measured busy cores.
func (s *cpuSampler) Busy() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy
}

// readProcStat returns idle and total jiffies of the "cpu" line (proc(5)).
func readProcStat() (idle, total uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, errors.New("empty /proc/stat")
	}
	fields := strings.Fields(sc.Text())
	for i, v := range fields[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return idle, total, nil
}
