// Package bench measures mediaworker against the real stack: CPU per job, memory per job, how many
// run at once, and start latency. Run with `make bench`; results go in docs/benchmarks.md.
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

func TestMain(m *testing.M) { stack.Main(m) }

// printSmaps prints, when BENCH_SMAPS is set, the mappings holding most of a process's RSS (kB,
// by file; the Go heap and other anonymous memory apart).
func printSmaps(pid int) {
	if os.Getenv("BENCH_SMAPS") == "" {
		return
	}
	out, _ := exec.Command("sh", "-c", fmt.Sprintf(`awk '/^[0-9a-f]+-/{name=$6; if (name == "" && $1 ~ /^c0/) name="[go heap]"; if (name == "") name="[anonymous]"} /^Rss:/{r[name]+=$2}
		END{for(n in r){ if (n ~ /\.so/) {libs+=r[n]; nlibs++} if (r[n]>2000) print r[n], n } print libs, "(" nlibs " shared libraries)"}' /proc/%d/smaps | sort -rn | head -15`, pid)).Output()
	fmt.Printf("%s", out)
}

// procStat returns CPU seconds (utime+stime) and RSS bytes of a process.
func procStat(pid int) (cpu float64, rss int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	return (ut + st) / 100, rssPages * int64(os.Getpagesize())
}

// memory returns a process's proportional set size (shared pages divided among the processes
// sharing them) and its private anonymous memory, in bytes (proc(5), smaps_rollup).
func memory(pid int) (pss, anon int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Pss:":
			pss = kb << 10
		case "Anonymous:":
			anon = kb << 10
		}
	}
	return pss, anon
}

func median(v []int64) float64 {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return float64(v[len(v)/2]) / 1e6
}

func jobsEnv(n int) int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_JOBS")); err == nil && v > 0 {
		return v
	}
	return n
}

// BenchmarkTrackEgress runs N track egresses at once (half video H.264, half audio Opus, from one
// publisher), samples CPU and RSS of the worker and every job process over a window, and reports.
func BenchmarkTrackEgress(b *testing.B) {
	n := jobsEnv(100)
	window := 20 * time.Second
	s := stack.New(b)
	w := s.StartWorker(b, "worker", "capacity: {max_jobs: 500, track_cpu_cost: 0.005}\n")
	s.CreateRoom(b, "bench")
	pub := s.Publish(b, "bench", "pub", stack.Media{Name: "cam", Codec: "h264", Seconds: 120}, stack.Media{Name: "mic", Codec: "opus", Seconds: 120})
	_, idleRSS := procStat(w.Pid())

	var ids []string
	startLat := map[string][]time.Duration{}
	for i := 0; i < n; i++ {
		track := pub.Tracks["mic"]
		if i%2 == 0 {
			track = pub.Tracks["cam"]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		info, err := s.Egress().StartTrackEgress(ctx, &livekit.TrackEgressRequest{RoomName: "bench", TrackId: track,
			Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: fmt.Sprintf("bench/%d", i)}}})
		cancel()
		if err != nil {
			b.Fatalf("start %d: %v", i, err)
		}
		if i < 10 {
			b.Logf("job %d (%s): StartTrackEgress answered in %s", i, map[bool]string{true: "video", false: "audio"}[i%2 == 0], time.Since(t0).Round(time.Millisecond))
		}
		ids = append(ids, info.EgressId)
		if i < 10 { // latency measured on an unloaded-ish worker: the first jobs, one at a time
			stack.Eventually(b, 15*time.Second, "active", func() bool { return active(s, info.EgressId) })
			kind := map[bool]string{true: "video", false: "audio"}[i%2 == 0]
			startLat[kind] = append(startLat[kind], time.Since(t0))
		}
	}
	stack.Eventually(b, 120*time.Second, "all active", func() bool {
		for _, id := range ids {
			if !active(s, id) {
				return false
			}
		}
		return true
	})
	time.Sleep(3 * time.Second)
	jobs := w.Jobs(b)
	cpu0 := map[int]float64{}
	wcpu0, _ := procStat(w.Pid())
	for _, j := range jobs {
		cpu0[j.PID], _ = procStat(j.PID)
	}
	time.Sleep(window)
	var total float64
	var rss, pss, anon []int64
	for _, j := range jobs {
		c, r := procStat(j.PID)
		p, a := memory(j.PID)
		total += c - cpu0[j.PID]
		rss, pss, anon = append(rss, r), append(pss, p), append(anon, a)
	}
	wcpu1, wrss := procStat(w.Pid())
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	perJob := total / window.Seconds() / float64(len(jobs))
	b.ReportMetric(perJob, "cores/job")
	b.ReportMetric(float64(rss[len(rss)/2])/1e6, "MB-rss/job")
	fmt.Printf("track egress: %d jobs running at once (%d requested)\n", len(jobs), n)
	fmt.Printf("  CPU per job      %.4f cores (all jobs %.3f cores; worker %.4f cores)\n", perJob, total/window.Seconds(), (wcpu1-wcpu0)/window.Seconds())
	fmt.Printf("  memory per job   RSS median %.1f MB (max %.1f MB, ≈32 MB of it the binary's shared pages); PSS median %.1f MB; private anonymous median %.1f MB\n",
		float64(rss[len(rss)/2])/1e6, float64(rss[len(rss)-1])/1e6, median(pss), median(anon))
	fmt.Printf("  worker RSS       idle %.1f MB, with %d jobs %.1f MB\n", float64(idleRSS)/1e6, len(jobs), float64(wrss)/1e6)
	for _, kind := range []string{"audio", "video"} {
		l := startLat[kind]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		fmt.Printf("  start → ACTIVE   %s: median %s, max %s (%d jobs started one at a time; ACTIVE seen as the webhook)\n",
			kind, l[len(l)/2].Round(time.Millisecond), l[len(l)-1].Round(time.Millisecond), len(l))
	}
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _ = s.Egress().StopEgress(ctx, &livekit.StopEgressRequest{EgressId: id})
		cancel()
	}
}

func active(s *stack.Stack, id string) bool {
	evs, _ := s.Webhooks.ForEgress(id)
	for _, e := range evs {
		if e.Event == "egress_updated" && e.EgressInfo.Status == livekit.EgressStatus_EGRESS_ACTIVE {
			return true
		}
	}
	return false
}

// ended waits for the egress_ended webhook of id and returns its info.
func ended(b *testing.B, s *stack.Stack, id string) *livekit.EgressInfo {
	var end *livekit.EgressInfo
	stack.Eventually(b, 60*time.Second, "egress_ended", func() bool {
		evs, _ := s.Webhooks.ForEgress(id)
		for _, e := range evs {
			if e.Event == "egress_ended" {
				end = e.EgressInfo
			}
		}
		return end != nil
	})
	return end
}
