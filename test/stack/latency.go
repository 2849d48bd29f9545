package stack

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The latency probe measures glass-to-glass latency through an ingress without decoding anything:
//
//	generator ──I420 640x360──▶ FIFO ──▶ ffmpeg (x264 zerolatency) ──RTMP──▶ ingress ──▶ SFU ──▶ Subscriber
//	   │ every ~500 ms one frame of noise,                                              groups RTP into
//	   │ the rest flat grey; Marks() = when                                             frames (FrameSizes)
//	   ▼ each noise frame was written                                                        │
//	MatchLatency: mark ↔ much-larger-than-usual frame, by RTP time  ◀─────────────────────────┘
//
// Noise costs hundreds of times the bits of flat grey, in any encoder at any layer, so the noise
// frames stand out by size alone even after the ingress has re-encoded them. The gaps between
// marks vary (300–700 ms in 100 ms steps, 500 on average) so that their pattern, which the
// frames' RTP timestamps keep, tells which mark a frame answers even when the latency is longer
// than a gap.

const (
	probeWidth, probeHeight = 640, 360
	probeFrameBytes         = probeWidth * probeHeight * 3 / 2 // I420
)

// LatencyProbe is a running probe stream; its ffmpeg is the embedded Proc.
type LatencyProbe struct {
	*Proc
	done chan struct{} // closed when the generator has stopped writing

	mu    sync.Mutex // guards marks, late and err
	marks []time.Time
	late  int // frames not written because the previous write ended after their slot
	err   error
}

// PushLatencyProbe publishes the probe stream to url (with stream key) for dur: raw frames written
// in real time at fps, encoded by ffmpeg with as little buffering as it allows. From stallAt for
// stall (if stall > 0) nothing is written, as when a publisher stalls; afterwards frames resume at
// the wall-clock rate with no backlog, and their timestamps jump like a live encoder's would.
func PushLatencyProbe(t testing.TB, url string, fps int, dur time.Duration, stallAt, stall time.Duration) *LatencyProbe {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "probe.yuv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("latency probe fifo: %v", err)
	}
	// Opened read-write, a FIFO never blocks on open (Linux), whenever ffmpeg opens its end.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("latency probe fifo: %v", err)
	}
	p := Start(t, "ffmpeg-latency", nil, "ffmpeg", probeArgs(fifo, fps, url)...)
	watchFFmpeg(t, p)
	lp := &LatencyProbe{Proc: p, done: make(chan struct{})}
	go func() { // unblocks a write if ffmpeg dies: we hold a read end too, so no EPIPE would
		select {
		case <-p.done:
			w.Close()
		case <-lp.done:
		}
	}()
	go lp.generate(w, fps, dur, stallAt, stall)
	return lp
}

// probeArgs: raw video from the FIFO, stamped with wall-clock time on arrival so a stall leaves a
// gap, and silence (-re, so it is paced; an RTMP ingress may expect audio), muxed to FLV as soon as
// each packet exists, until the video ends (-shortest).
func probeArgs(fifo string, fps int, url string) []string {
	rate := strconv.Itoa(fps)
	args := append(ffmpegLive(),
		"-fflags", "nobuffer", "-probesize", "32", "-analyzeduration", "0", "-use_wallclock_as_timestamps", "1",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", strconv.Itoa(probeWidth)+"x"+strconv.Itoa(probeHeight),
		"-framerate", rate, "-i", fifo,
		"-re", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
		"-map", "0:v", "-map", "1:a",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", strconv.Itoa(2*fps), "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k",
		"-shortest", "-flush_packets", "1", "-f", "flv", url)
	return args
}

// generate writes frame i at its point on the frame grid until dur, dropping frames it is late
// for, and closes w at the end (ffmpeg then flushes and exits).
func (lp *LatencyProbe) generate(w *os.File, fps int, dur, stallAt, stall time.Duration) {
	defer close(lp.done)
	defer w.Close()
	grey := make([]byte, probeFrameBytes)
	for i := range grey {
		grey[i] = 128 // mid-grey luma, neutral chroma
	}
	noise := make([]byte, probeFrameBytes)
	rng := rand.NewChaCha8([32]byte{'p', 'r', 'o', 'b', 'e'})
	grid := newFrameGrid(time.Now(), fps)
	gaps := rand.New(rand.NewPCG(5, 0))
	markGap := func() time.Duration { return 300*time.Millisecond + 100*time.Millisecond*time.Duration(gaps.IntN(5)) }
	// The first frame is grey: ffmpeg reads it while probing the input and, with -fflags nobuffer,
	// drops it.
	nextMark := markGap()
	next := 0 // first frame that can still get a tick of its own
	for i := 0; grid.since(i) < dur; i++ {
		slot := grid.since(i)
		if wait := time.Until(grid.at(i)); wait > 0 && i >= next {
			time.Sleep(wait)
		} else if i < next || -wait > grid.interval()/3 {
			// Late, after a slow write: drop the frame rather than build a backlog or have it
			// stamped onto the next tick.
			lp.mu.Lock()
			lp.late++
			lp.mu.Unlock()
			continue
		}
		if stall > 0 && slot >= stallAt && slot < stallAt+stall {
			continue
		}
		frame, isMark := grey, slot >= nextMark
		if isMark {
			_, _ = rng.Read(noise) // fresh noise: nothing for the encoder to reference
			frame = noise
			for nextMark <= slot {
				nextMark += markGap()
			}
		}
		at := time.Now()
		_, err := w.Write(frame)
		// ffmpeg stamped the frame when it had read it all, about now: the next frame must come
		// on a later tick, or ffmpeg drops one of the two.
		next = grid.nearest(time.Now()) + 1
		lp.mu.Lock()
		if err == nil && isMark {
			lp.marks = append(lp.marks, at)
		}
		lp.err = err
		lp.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// frameGrid places frames on the multiples of 1/fps s since the Unix epoch. ffmpeg rounds each
// frame's wall-clock arrival to its time base, 1/fps: a frame written on a grid point lands half a
// tick from a rounding boundary, while off the grid jitter would round two frames onto one tick
// and ffmpeg would drop one of them.
type frameGrid struct {
	sec, tick, fps int64 // frame 0 is at sec + tick/fps
}

func newFrameGrid(after time.Time, fps int) frameGrid {
	ns, f := after.UnixNano(), int64(fps)
	return frameGrid{sec: ns / 1e9, tick: ns%1e9*f/1e9 + 1, fps: f}
}

// at is frame i's wall-clock time.
func (g frameGrid) at(i int) time.Time {
	return time.Unix(g.sec, (g.tick+int64(i))*1e9/g.fps)
}

// since is frame i's offset from frame 0.
func (g frameGrid) since(i int) time.Duration { return g.at(i).Sub(g.at(0)) }

func (g frameGrid) interval() time.Duration { return time.Second / time.Duration(g.fps) }

// nearest is the index of the grid point nearest to t (ffmpeg's rounding of a timestamp).
func (g frameGrid) nearest(t time.Time) int {
	return int((int64(t.Sub(g.at(0)))*g.fps + 5e8) / 1e9)
}

// Marks are the wall-clock times the noise frames were written, in order.
func (lp *LatencyProbe) Marks() []time.Time {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return append([]time.Time(nil), lp.marks...)
}

// Late is how many frames the generator skipped because writing the previous one (ffmpeg reading
// it) took past their slot: ffmpeg starting up (some 10 frames) or not keeping up in real time.
func (lp *LatencyProbe) Late() int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.late
}

// Done is closed when the generator has stopped (dur reached, or ffmpeg gone).
func (lp *LatencyProbe) Done() <-chan struct{} { return lp.done }

// Wait waits up to d for the stream to end — the generator done and ffmpeg flushed and exited —
// and fails the test if either failed. It hides Proc.Wait. To end the stream early, use
// lp.Interrupt instead.
func (lp *LatencyProbe) Wait(t testing.TB, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	select {
	case <-lp.done:
	case <-time.After(d):
		t.Fatalf("latency probe still generating after %s", d)
	}
	if !lp.Proc.Wait(time.Until(end)) {
		t.Fatalf("%s did not exit after its input ended; output:\n%s", lp.Name, tail(lp.Output(), 4000))
	}
	lp.mu.Lock()
	err := lp.err
	lp.mu.Unlock()
	if code := lp.cmd.ProcessState.ExitCode(); code != 0 || err != nil {
		t.Fatalf("latency probe: generator error %v, %s exit status %d; output:\n%s", err, lp.Name, code, tail(lp.Output(), 4000))
	}
}
