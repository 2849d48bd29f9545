package worker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ErrFull means the job does not fit in what is left of this worker.
var ErrFull = errors.New("worker is at capacity")

// capacity is the admission model: each job counts at the larger of its configured CPU cost and
// its measured CPU use, so a job that costs more than configured stops the worker from claiming
// more than it can run. Other processes on the machine are not counted: in a pod the worker's CPUs
// are its own, and on a shared machine max_cpu_utilization leaves the rest.
type capacity struct {
	total   float64 // cores jobs may use: NumCPU × max_cpu_utilization
	maxJobs int

	mu       sync.Mutex // guards reserved, measured
	reserved map[string]float64
	measured map[string]float64
}

func newCapacity(cpus, utilization float64, maxJobs int) *capacity {
	return &capacity{total: cpus * utilization, maxJobs: maxJobs, reserved: map[string]float64{}, measured: map[string]float64{}}
}

func (c *capacity) usedLocked() float64 {
	var sum float64
	for id, v := range c.reserved {
		sum += max(v, c.measured[id])
	}
	return sum
}

// available is the cores a new job may still take.
func (c *capacity) available() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total - c.usedLocked()
}

// measuredTotal is the CPU the running jobs were last measured to use.
func (c *capacity) measuredTotal() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum float64
	for _, v := range c.measured {
		sum += v
	}
	return sum
}

func (c *capacity) canAccept(cost float64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reserved) < c.maxJobs && c.total-c.usedLocked() >= cost
}

func (c *capacity) reserve(id string, cost float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reserved) >= c.maxJobs {
		return fmt.Errorf("%w: %d jobs running (capacity.max_jobs)", ErrFull, len(c.reserved))
	}
	if free := c.total - c.usedLocked(); free < cost {
		return fmt.Errorf("%w: job needs %.3f cores, %.3f free", ErrFull, cost, free)
	}
	c.reserved[id] = cost
	return nil
}

// observe records a job's measured CPU use in cores.
func (c *capacity) observe(id string, cores float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.reserved[id]; ok {
		c.measured[id] = cores
	}
}

func (c *capacity) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reserved, id)
	delete(c.measured, id)
}

// loadFraction is how much of the budget is in use, 0..1.
func (c *capacity) loadFraction() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return min(1, c.usedLocked()/c.total)
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every Linux we run on.
const clockTicks = 100

// processCPU returns the CPU seconds (user + system) a process has used (proc(5), fields 14–15).
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (ut + st) / clockTicks, nil
}
