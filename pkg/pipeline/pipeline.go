// Package pipeline is the only package that touches GStreamer (go-gst). Callers speak in plans
// and bytes; elements, caps and bus messages stay in here.
package pipeline

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"
)

// ErrPipeline wraps errors GStreamer reports on the bus.
var ErrPipeline = errors.New("media pipeline failed")

var initOnce sync.Once

func initGst() { initOnce.Do(func() { gst.Init(nil) }) }

// graph is a running pipeline with one appsrc ("src") and one appsink ("sink").
type graph struct {
	pipeline *gst.Pipeline
	src      *app.Source
	done     chan error // receives nil on EOS or the first error, then is closed
	closeMu  sync.Mutex
	closed   bool
}

// start parses desc, wires onData to the appsink and sets the pipeline playing.
func start(desc string, onData func([]byte)) (*graph, error) {
	initGst()
	p, err := gst.NewPipelineFromString(desc)
	if err != nil {
		return nil, fmt.Errorf("%w: build %q: %v", ErrPipeline, desc, err)
	}
	srcEl, err := p.GetElementByName("src")
	if err != nil {
		return nil, fmt.Errorf("%w: no appsrc: %v", ErrPipeline, err)
	}
	sinkEl, err := p.GetElementByName("sink")
	if err != nil {
		return nil, fmt.Errorf("%w: no appsink: %v", ErrPipeline, err)
	}
	app.SinkFromElement(sinkEl).SetCallbacks(&app.SinkCallbacks{NewSampleFunc: func(s *app.Sink) gst.FlowReturn {
		sample := s.PullSample()
		if sample == nil {
			return gst.FlowEOS
		}
		if buf := sample.GetBuffer(); buf != nil {
			onData(buf.Bytes())
		}
		return gst.FlowOK
	}})
	g := &graph{pipeline: p, src: app.SrcFromElement(srcEl), done: make(chan error, 1)}
	if err := p.SetState(gst.StatePlaying); err != nil {
		return nil, fmt.Errorf("%w: play: %v", ErrPipeline, err)
	}
	go g.watch()
	return g, nil
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
			err = fmt.Errorf("%w: %s (%s)", ErrPipeline, gerr.Error(), gerr.DebugString())
		}
		g.done <- err
		close(g.done)
		return
	}
}

// push feeds one encoded buffer.
func (g *graph) push(data []byte, pts time.Duration) error {
	buf := gst.NewBufferFromBytes(data)
	buf.SetPresentationTimestamp(gst.ClockTime(pts))
	if ret := g.src.PushBuffer(buf); ret != gst.FlowOK {
		return fmt.Errorf("%w: push: %s", ErrPipeline, ret.String())
	}
	return nil
}

// finish sends EOS, waits for everything to drain out of the sink (bounded), and stops.
func (g *graph) finish(timeout time.Duration) error {
	g.src.EndStream()
	var err error
	select {
	case err = <-g.done:
	case <-time.After(timeout):
		err = fmt.Errorf("%w: did not drain within %s", ErrPipeline, timeout)
	}
	g.closeMu.Lock()
	g.closed = true
	g.closeMu.Unlock()
	_ = g.pipeline.SetState(gst.StateNull)
	return err
}
