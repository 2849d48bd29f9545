package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

// BenchmarkRoomComposite composes two 1280x720 30 fps publishers (H.264 + Opus each, one layer)
// into the default 720p30 grid and measures the job's CPU and memory over 20 s, then several at once.
func BenchmarkRoomComposite(b *testing.B) {
	benchComposite(b, false, []int{3, 5})
}

// BenchmarkRoomCompositeSimulcast is the same with simulcast cameras (1280x720, 640x360 and
// 320x180 layers, as browsers publish by default): the grid's 640x360 tiles receive the 640x360
// layer, so each input decodes a quarter of the pixels and is not scaled.
func BenchmarkRoomCompositeSimulcast(b *testing.B) {
	benchComposite(b, true, []int{3, 4})
}

func benchComposite(b *testing.B, simulcast bool, atOnce []int) {
	window := 20 * time.Second
	s := stack.New(b)
	// composite_cpu_cost low so that the at-once part is admitted.
	w := s.StartWorker(b, "worker", "capacity: {composite_cpu_cost: 0.3}\n", os.Getenv("BENCH_WORKER_ENV"))
	s.CreateRoom(b, "cbench")
	for _, id := range []string{"a", "b"} {
		s.Publish(b, "cbench", id, stack.Media{Name: "cam", Codec: "h264720", Simulcast: simulcast, Seconds: 90}, stack.Media{Name: "mic", Codec: "opus", Seconds: 90})
	}
	publishers := "2 publishers 720p30 (one layer)"
	if simulcast {
		publishers = "2 simulcast publishers 720p30 (720p/360p/180p layers)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
	printSmaps(pid)
	_, _ = s.Egress().StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId})
	first := ended(b, s, info.EgressId)
	cores := (c1 - c0) / window.Seconds()
	b.ReportMetric(cores, "cores")
	fmt.Printf("room composite, %s → grid 720p30 MP4 (H.264 3 Mb/s + AAC):\n", publishers)
	fmt.Printf("  CPU              %.3f cores (job process)\n", cores)
	fmt.Printf("  memory           RSS %.1f MB, PSS %.1f MB\n", float64(rss)/1e6, float64(pss)/1e6)
	fmt.Printf("  start → ACTIVE   %s\n", startLat.Round(time.Millisecond))
	if fr := first.GetFileResults(); len(fr) == 1 {
		fmt.Printf("  picture          mean luma %s (a black canvas is 16: the inputs are really composed)\n", lumaAverage(fr[0].Location))
	}
	stack.Eventually(b, 30*time.Second, "first composite ended", func() bool { return len(w.Jobs(b)) == 0 })

	// Several at once, each composing the same two publishers: total CPU, and whether each output
	// keeps 30 fps over the time it recorded.
	if os.Getenv("BENCH_ONE") != "" {
		return // one composite only (quicker, when tuning)
	}
	for _, n := range atOnce {
		var ids []string
		for i := range n {
			info, err := s.Egress().StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{RoomName: "cbench",
				FileOutputs: []*livekit.EncodedFileOutput{{Filepath: fmt.Sprintf("many-%d-%d", n, i)}}})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, info.EgressId)
		}
		stack.Eventually(b, 20*time.Second, "all active", func() bool {
			for _, id := range ids {
				if !active(s, id) {
					return false
				}
			}
			return true
		})
		time.Sleep(3 * time.Second)
		var t0, t1 float64
		jobs := w.Jobs(b)
		for _, j := range jobs {
			c, _ := procStat(j.PID)
			t0 += c
		}
		time.Sleep(window)
		for _, j := range jobs {
			c, _ := procStat(j.PID)
			t1 += c
		}
		var fps []string
		for _, id := range ids {
			_, _ = s.Egress().StopEgress(ctx, &livekit.StopEgressRequest{EgressId: id})
		}
		for _, id := range ids {
			if fr := ended(b, s, id).GetFileResults(); len(fr) == 1 {
				fps = append(fps, fmt.Sprintf("%.1f", float64(countFrames(fr[0].Location))/time.Duration(fr[0].Duration).Seconds()))
			}
		}
		fmt.Printf("%d room composites at once (same 2 publishers):\n", n)
		fmt.Printf("  CPU              %.3f cores in all\n", (t1-t0)/window.Seconds())
		fmt.Printf("  output frames/s  %v (frames in each file / its duration)\n", fps)
		stack.Eventually(b, 30*time.Second, "composites ended", func() bool { return len(w.Jobs(b)) == 0 })
	}
}

// countFrames is the number of video frames in a file.
func countFrames(path string) int {
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// lumaAverage is the mean Y of a file's video over all frames.
func lumaAverage(path string) string {
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-an", "-vf", "signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-",
		"-f", "null", "-").Output()
	if err != nil {
		return "not measured"
	}
	var sum float64
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "lavfi.signalstats.YAVG="); ok {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
			n++
		}
	}
	if n == 0 {
		return "not measured"
	}
	return fmt.Sprintf("%.1f over %d frames", sum/float64(n), n)
}
