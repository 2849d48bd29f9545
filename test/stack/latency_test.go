package stack

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// probeRun simulates what a subscriber receives from the latency probe: 30 fps of 100-byte grey
// frames with a 1500-byte keyframe every 2 s, and a 50 kB noise frame per mark, arriving `latency`
// after it was written. RTP time follows write time, like ffmpeg's wall-clock timestamps.
type probeRun struct {
	marks  []time.Time
	frames []FrameArrival
}

var t0 = time.Unix(1000, 0)

func newProbeRun(seconds int, gaps []int) *probeRun {
	r := &probeRun{}
	for ms, k := 400, 0; ms < seconds*1000; ms, k = ms+gaps[k%len(gaps)], k+1 {
		r.marks = append(r.marks, t0.Add(time.Duration(ms)*time.Millisecond))
	}
	return r
}

// deliver adds the frames written in [from, to) ms with the given latency; noise for the marks
// listed in lost is missing; rtpShift is added to RTP time (an ingress re-basing timestamps).
func (r *probeRun) deliver(from, to int, latency time.Duration, rtpShift time.Duration, lost ...int) {
	for ms := from; ms < to; ms += 33 {
		n := 100
		if ms%2000 < 33 {
			n = 1500
		}
		r.add(ms, n, latency, rtpShift)
	}
	for i, m := range r.marks {
		ms := int(m.Sub(t0) / time.Millisecond)
		if ms >= from && ms < to && !slices.Contains(lost, i) {
			r.add(ms, 50000, latency, rtpShift)
		}
	}
	slices.SortStableFunc(r.frames, func(a, b FrameArrival) int { return a.At.Compare(b.At) })
}

func (r *probeRun) add(ms, n int, latency, rtpShift time.Duration) {
	at := t0.Add(time.Duration(ms) * time.Millisecond)
	rtp := (at.Sub(t0) + rtpShift) * videoClockRate / time.Second
	r.frames = append(r.frames, FrameArrival{First: at.Add(latency), At: at.Add(latency), Bytes: n, RTPTime: uint32(rtp) + 3e9})
}

func TestMatchLatency(t *testing.T) {
	gaps := []int{300, 600, 500, 700, 400, 500, 300, 700} // as the generator varies them
	ms := time.Millisecond
	cases := []struct {
		name  string
		build func(r *probeRun)
		want  func(i int, mark time.Duration) time.Duration // per mark, from its time since t0
	}{
		{"steady 120 ms", func(r *probeRun) { r.deliver(0, 10000, 120*ms, 0) },
			func(int, time.Duration) time.Duration { return 120 * ms }},
		{"backlog of 1.3 s", func(r *probeRun) { r.deliver(0, 10000, 1300*ms, 0) },
			func(int, time.Duration) time.Duration { return 1300 * ms }},
		{"subscriber joins at 3 s", func(r *probeRun) { r.deliver(3000, 10000, 150*ms, 0) },
			func(_ int, m time.Duration) time.Duration { return pick(m >= 3000*ms, 150*ms) }},
		{"joins at 3 s with 0.9 s latency", func(r *probeRun) { r.deliver(3000, 10000, 900*ms, 0) },
			func(_ int, m time.Duration) time.Duration { return pick(m >= 3000*ms, 900*ms) }},
		{"noise frames 4 and 5 lost", func(r *probeRun) { r.deliver(0, 10000, 700*ms, 0, 4, 5) },
			func(i int, _ time.Duration) time.Duration { return pick(i != 4 && i != 5, 700*ms) }},
		{"stall, then a 2 s backlog", func(r *probeRun) {
			r.deliver(0, 4000, 100*ms, 0)
			r.deliver(4000, 10000, 2100*ms, 0)
		}, func(_ int, m time.Duration) time.Duration {
			if m < 4000*ms {
				return 100 * ms
			}
			return 2100 * ms
		}},
		{"beyond 3 s", func(r *probeRun) { r.deliver(0, 10000, 3500*ms, 0) },
			func(int, time.Duration) time.Duration { return -1 }},
		{"timestamps re-based after a stall", func(r *probeRun) {
			r.deliver(0, 4000, 100*ms, 0)
			r.deliver(6000, 10000, 200*ms, -1850*ms)
		}, func(_ int, m time.Duration) time.Duration {
			if m < 4000*ms {
				return 100 * ms
			}
			return pick(m >= 6000*ms, 200*ms)
		}},
		{"a large frame that is not noise", func(r *probeRun) {
			r.deliver(0, 10000, 200*ms, 0)
			r.frames = append(r.frames, FrameArrival{At: t0.Add(5123 * ms), Bytes: 60000, RTPTime: r.frames[150].RTPTime + 1234})
			slices.SortStableFunc(r.frames, func(a, b FrameArrival) int { return a.At.Compare(b.At) })
		}, func(int, time.Duration) time.Duration { return 200 * ms }},
		{"nothing arrives", func(r *probeRun) {}, func(int, time.Duration) time.Duration { return -1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newProbeRun(10, gaps)
			c.build(r)
			got := MatchLatency(r.marks, r.frames)
			for i, m := range r.marks {
				if want := c.want(i, m.Sub(t0)); got[i] != want {
					t.Errorf("mark %d at %s: got %v, want %v\nall: %v", i, m.Sub(t0), got[i], want, fmtLatencies(got))
				}
			}
		})
	}
}

// pick is v if ok, else -1 (no match).
func pick(ok bool, v time.Duration) time.Duration {
	if ok {
		return v
	}
	return -1
}

func fmtLatencies(ds []time.Duration) string {
	s := ""
	for _, d := range ds {
		s += fmt.Sprintf("%v ", d)
	}
	return s
}

func TestWorkerIngressAddr(t *testing.T) {
	cases := []struct {
		extra, url string
		own        bool
	}{
		{"", "", false},
		{"upload: {}\n", "", false},
		{"ingress:\n  rtmp_addr: \"127.0.0.1:2000\"\n", "rtmp://127.0.0.1:2000/x", true},
		{"ingress: {rtmp_addr: ':2001', cpu_cost: 1}\n", "rtmp://127.0.0.1:2001/x", true},
		{"ingress: {rtmp_addr: \"\"}\n", "", true},
		{"ingress: {cpu_cost: 1}\n", "", true},
	}
	for _, c := range cases {
		addr, own := ingressAddr(c.extra)
		if url := rtmpURL(addr); own != c.own || url != c.url {
			t.Errorf("%q: got %q %v, want %q %v", c.extra, url, own, c.url, c.own)
		}
	}
}
