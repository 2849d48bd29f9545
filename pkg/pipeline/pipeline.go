// Package pipeline is the only package that touches GStreamer (go-gst). Callers speak in plans
// and bytes; elements, caps and bus messages stay in here.
package pipeline

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"
)

// ErrPipeline wraps errors GStreamer reports on the bus.
var ErrPipeline = errors.New("media pipeline failed")

// Error is a failure GStreamer reported on the bus: Message is for people, Debug (source file,
// element path) for developers, At when it was reported. It wraps ErrPipeline.
type Error struct {
	Message, Debug string
	At             time.Time
}

func (e *Error) Error() string { return fmt.Sprintf("%v: %s (%s)", ErrPipeline, e.Message, e.Debug) }

func (e *Error) Unwrap() error { return ErrPipeline }

var initOnce sync.Once

func initGst() { initOnce.Do(func() { gst.Init(nil) }) }

// graph is a running pipeline fed by named appsrcs, optionally draining into an appsink ("sink").
type graph struct {
	pipeline *gst.Pipeline
	srcs     map[string]*app.Source
	done     chan error    // receives nil on EOS or the first error, then is closed
	failed   chan struct{} // closed when the pipeline reports an error
	closeMu  sync.Mutex
	closed   bool
}

// newGraph wraps a parsed pipeline.
func newGraph(p *gst.Pipeline) *graph {
	return &graph{pipeline: p, srcs: map[string]*app.Source{}, done: make(chan error, 1), failed: make(chan struct{})}
}

// start parses desc, finds the appsrcs named srcs, wires each appsink named in sinks to its
// callback (timestamps in running time) and sets the pipeline playing.
func start(desc string, srcs []string, sinks map[string]func(data []byte, pts, dur time.Duration)) (*graph, error) {
	g, err := build(desc, srcs, sinks)
	if err != nil {
		return nil, err
	}
	return g, g.play()
}

// build is start without setting the pipeline playing (probes can be added first).
func build(desc string, srcs []string, sinks map[string]func(data []byte, pts, dur time.Duration)) (*graph, error) {
	initGst()
	p, err := gst.NewPipelineFromString(desc)
	if err != nil {
		return nil, fmt.Errorf("%w: build %q: %v", ErrPipeline, desc, err)
	}
	g := newGraph(p)
	pickH264Decoder(p.Bin)
	for _, name := range srcs {
		el, err := p.GetElementByName(name)
		if err != nil {
			return nil, fmt.Errorf("%w: no appsrc %q: %v", ErrPipeline, name, err)
		}
		g.srcs[name] = app.SrcFromElement(el)
	}
	for name, fn := range sinks {
		el, err := p.GetElementByName(name)
		if err != nil {
			return nil, fmt.Errorf("%w: no appsink %q: %v", ErrPipeline, name, err)
		}
		onSampleRunning(el, fn)
	}
	return g, nil
}

// play sets a built pipeline playing and starts watching its bus.
func (g *graph) play() error {
	if err := g.pipeline.SetState(gst.StatePlaying); err != nil {
		return fmt.Errorf("%w: play: %v", ErrPipeline, err)
	}
	go g.watch()
	return nil
}

// watch turns bus messages into the single result on done.
func (g *graph) watch() {
	bus := g.pipeline.GetPipelineBus()
	for {
		msg := bus.TimedPopFiltered(gst.ClockTime(100*time.Millisecond), gst.MessageEOS|gst.MessageError)
		if msg == nil {
			g.closeMu.Lock()
			closed := g.closed
			g.closeMu.Unlock()
			if closed {
				g.done <- nil
				close(g.done)
				return
			}
			continue
		}
		var err error
		if msg.Type() == gst.MessageError {
			gerr := msg.ParseError()
			err = &Error{Message: gerr.Error(), Debug: gerr.DebugString(), At: time.Now()}
			close(g.failed)
		}
		g.done <- err
		close(g.done)
		return
	}
}

// addBranch adds the bin desc (an appsrc named "src" first, an element named "out" last) to the
// running pipeline and links it to a new request pad of mixer (compositor or audiomixer).
func (g *graph) addBranch(mixer *gst.Element, desc string) (*gst.Bin, *app.Source, *gst.Pad, error) {
	bin, err := gst.NewBinFromString(desc, false)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: input branch: %v", ErrPipeline, err)
	}
	pickH264Decoder(bin)
	srcEl, err := bin.GetElementByName("src")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: input branch has no appsrc", ErrPipeline)
	}
	out, err := bin.GetElementByName("out")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: input branch has no output", ErrPipeline)
	}
	if !bin.AddPad(gst.NewGhostPad("src", out.GetStaticPad("src")).Pad) {
		return nil, nil, nil, fmt.Errorf("%w: input branch: no output pad", ErrPipeline)
	}
	if err := g.pipeline.Add(bin.Element); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: add input: %v", ErrPipeline, err)
	}
	pad := mixer.GetRequestPad("sink_%u")
	if ret := bin.GetStaticPad("src").Link(pad); ret != gst.PadLinkOK {
		return nil, nil, nil, fmt.Errorf("%w: link input: %s", ErrPipeline, ret.String())
	}
	bin.SyncStateWithParent()
	return bin, app.SrcFromElement(srcEl), pad, nil
}

// monotonic drops buffers leaving element name whose timestamp is not after the previous one's.
// The compositor restarts its output position when it renegotiates as an input joins at the
// start, and sends a second frame at 0: x264 then gives two frames the same timestamp and mp4mux
// fails with "Buffer has no PTS" (seen 1 run in 10 of the composer test before this).
func (g *graph) monotonic(name string) {
	el, err := g.pipeline.GetElementByName(name)
	if err != nil {
		return
	}
	last := gst.ClockTimeNone
	el.GetStaticPad("src").AddProbe(gst.PadProbeTypeBuffer, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		buf := info.GetBuffer()
		if buf == nil {
			return gst.PadProbeOK
		}
		pts := buf.PresentationTimestamp()
		if pts == gst.ClockTimeNone || (last != gst.ClockTimeNone && pts <= last) {
			return gst.PadProbeDrop
		}
		last = pts
		return gst.PadProbeOK
	})
}

// push feeds one encoded buffer to the appsrc named src.
func (g *graph) push(src string, data []byte, pts time.Duration) error {
	if ret := pushBytes(g.srcs[src], data, gst.ClockTime(pts)); ret != gst.FlowOK {
		return fmt.Errorf("%w: push: %s", ErrPipeline, ret.String())
	}
	return nil
}

// pushBytes copies data into a buffer stamped pts (ClockTimeNone: stamped on arrival) and pushes it.
//
// go-gst's Buffer.Ref reads the C pointer and only then calls gst_buffer_ref, so a wrapper whose
// last use is PushBuffer can be finalized (unreffed, freed) in between: the appsrc then gets freed
// memory ("assertion 'GST_IS_BUFFER (buffer)' failed", then heap corruption; reproduced with a
// garbage collection every few milliseconds). The wrapper is kept alive until the push is done.
func pushBytes(src *app.Source, data []byte, pts gst.ClockTime) gst.FlowReturn {
	buf := gst.NewBufferFromBytes(data)
	buf.SetPresentationTimestamp(pts)
	ret := src.PushBuffer(buf)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(src) // an input removed meanwhile: its appsrc must outlive the push
	return ret
}

// finish sends EOS on every appsrc, waits for it to reach the sink (bounded), and stops.
func (g *graph) finish(timeout time.Duration) error { return g.finishLinger(timeout, 0) }

// ErrDrain marks a pipeline error that came only while draining after EOS: everything pushed
// before had been processed without error.
var ErrDrain = errors.New("while draining at the end")

// failedEarly returns an error the pipeline reported before its end was asked for, if any.
func (g *graph) failedEarly() error {
	select {
	case err, ok := <-g.done:
		if ok && err != nil {
			return err
		}
		return nil
	default:
		return nil
	}
}

// finishLinger is finish, waiting linger after EOS before the sinks close.
func (g *graph) finishLinger(timeout, linger time.Duration) error {
	if err := g.failedEarly(); err != nil {
		g.stop()
		return err
	}
	for _, s := range g.srcs {
		s.EndStream()
	}
	return g.drain(timeout, linger)
}

// drain waits for EOS (or an error, marked ErrDrain) to reach the sinks, then stops.
func (g *graph) drain(timeout, linger time.Duration) error {
	var err error
	select {
	case err = <-g.done:
		if err != nil {
			err = fmt.Errorf("%w (%w)", err, ErrDrain)
		}
		time.Sleep(linger)
	case <-time.After(timeout):
		err = fmt.Errorf("%w: did not drain within %s (%w)", ErrPipeline, timeout, ErrDrain)
	}
	g.stop()
	return err
}

// endLive sends EOS to el, a pipeline or a live source (they never end by themselves). GStreamer
// hands it to a source between two buffers, holding el's state lock meanwhile: if something
// downstream never lets the source's buffer go, neither the EOS nor a state change can get in. After
// timeout endLive gives up, so that the job ends (and its process exits) instead of hanging; the
// outputs keep what was written before (MP4 in 1 s fragments). The pipeline is left as it is.
func endLive(el *gst.Element, timeout time.Duration) error {
	sent := make(chan struct{})
	go func() {
		el.SendEvent(gst.NewEOSEvent())
		runtime.KeepAlive(el) // see stop
		close(sent)
	}()
	select {
	case <-sent:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%w: the pipeline is stuck and did not take the end of the stream within %s; what was written before is kept (%w)",
			ErrPipeline, timeout, ErrDrain)
	}
}

// stop ends the pipeline at once; watch then reports nil if nothing was reported yet.
func (g *graph) stop() {
	g.closeMu.Lock()
	g.closed = true
	g.closeMu.Unlock()
	_ = g.pipeline.SetState(gst.StateNull)
	// go-gst passes the C pointer and lets go of its wrapper: when this was the graph's last use
	// (a sender's Close), the garbage collector could finalize the wrapper during the state change,
	// drop the pipeline's last reference and dispose it half-way to NULL (SIGSEGV, reproduced by
	// TestStreamSenderChurn; a job died in CI while a stream destination was retried). The wrapper
	// stays alive until the state change is done.
	runtime.KeepAlive(g.pipeline)
}
