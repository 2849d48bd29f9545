package pipeline

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"
)

// ComposePlan is a room composite: every participant's video tiled on one canvas, all audio mixed.
type ComposePlan struct {
	Width, Height, Framerate int
	VideoKbps                int
	Profile                  string
	KeyframeEvery            int
	FixedGOP                 bool   // keyframes exactly every KeyframeEvery frames (HLS segment boundaries)
	Background               uint32 // 0xAARRGGBB
	AudioCodec               string // "aac", "opus" or "mp3"
	AudioKbps, AudioRate     int
	AudioOnly, VideoOnly     bool
	Container                string // "mp4" (fragmented), "ogg" or "mp3"
	Output                   string // file path; "" for no file (taps only)
	Taps                     *Taps  // encoded streams for outputs outside the pipeline; AAC audio only
	Images                   []ImagePlan
	Layout                   string // LayoutGrid (default), LayoutSpeaker or LayoutSingleSpeaker
}

// Composer mixes inputs that come and go while it runs.
//
//	videotestsrc (live, background) → compositor ← one branch per video input: appsrc → decode → convert
//	  → videoconvert → x264enc → h264parse ─┐
//	audiotestsrc (live, silence) → audiomixer ← one branch per audio input: appsrc → opusdec → convert
//	  → encoder ────────────────────────────┴→ mux → filesink
//
// The live background sources drive the output at the frame rate whatever joins or leaves; inputs
// are timestamped on arrival (appsrc do-timestamp), which puts them on the same running time.
type Composer struct {
	g    *graph
	plan ComposePlan
	comp *gst.Element
	amix *gst.Element

	mu      sync.Mutex // guards inputs, order, layout, speaker, sizes, onSize, onRecv
	inputs  map[string]*input
	order   []string // video inputs in tile order
	layout  string   // "grid" (default), "speaker" or "single-speaker"
	speaker string   // video input of the active speaker, "" = the first
	sizes   map[string]TileSize
	onSize  func(id string, size TileSize)
	onRecv  func(id string, w, h int)
}

// TileSize is the size a video input is drawn at; zero when it is hidden or muted.
type TileSize struct{ W, H int }

// Layouts the composer draws.
const (
	LayoutGrid          = "grid"
	LayoutSpeaker       = "speaker"
	LayoutSingleSpeaker = "single-speaker"
)

type input struct {
	bin   *gst.Bin
	src   *app.Source
	pad   *gst.Pad // compositor or audiomixer request pad
	video bool
	muted bool
	drawn drawn // what the compositor pad was last set to
}

// drawn is a video input's compositor pad settings, once set.
type drawn struct {
	set   bool
	at    tile // where it was last shown
	alpha string
}

// NewComposer starts the composite with only its background.
func NewComposer(plan ComposePlan) (*Composer, error) {
	keepFramesOutOfArenas()
	var b stringsBuilder
	if !plan.AudioOnly {
		b.f("%s ! queue ! %s ", canvas("", plan.Background, plan.Width, plan.Height, plan.Framerate, 100*time.Millisecond),
			videoEncoder(plan.Width, plan.Height, plan.VideoKbps, plan.Framerate, plan.KeyframeEvery, plan.FixedGOP, plan.Profile, len(plan.Images) > 0, plan.Output != "" || plan.Taps != nil))
	}
	if !plan.VideoOnly {
		b.f(`audiotestsrc is-live=true wave=silence ! audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved
			! audiomixer name=amix latency=100000000 ! audioconvert ! audioresample ! audio/x-raw,rate=%d,channels=2 ! %s ! tee name=atee `,
			plan.AudioRate, audioEncoder(plan.AudioCodec, plan.AudioKbps))
	}
	if err := encodedTail(&b, !plan.AudioOnly, !plan.VideoOnly, plan.Container, plan.Output, plan.Taps); err != nil {
		return nil, err
	}
	if !plan.AudioOnly {
		imagesTail(&b, plan.Images)
	}
	g, err := build(b.String(), nil, imageSinks(plan.Images, plan.Taps.sinks(!plan.AudioOnly, !plan.VideoOnly)))
	if err != nil {
		return nil, err
	}
	if !plan.AudioOnly {
		g.monotonic("comp")
	}
	if err := g.play(); err != nil {
		return nil, err
	}
	// Wait until PLAYING (the live background sources get there at once): inputs timestamp on
	// arrival with the pipeline clock, which a buffer pushed before it runs does not have.
	if ret, _ := g.pipeline.GetState(gst.StatePlaying, gst.ClockTime(5*time.Second)); ret == gst.StateChangeFailure {
		if err := g.finish(time.Second); err != nil {
			return nil, fmt.Errorf("the composite did not start: %w", err)
		}
		return nil, fmt.Errorf("%w: the composite did not start", ErrPipeline)
	}
	c := &Composer{g: g, plan: plan, inputs: map[string]*input{}, layout: plan.Layout, sizes: map[string]TileSize{}}
	if !plan.AudioOnly {
		c.comp, _ = g.pipeline.GetElementByName("comp")
	}
	if !plan.VideoOnly {
		c.amix, _ = g.pipeline.GetElementByName("amix")
	}
	return c, nil
}

// canvasColor is the colorimetry of the canvas and of every input. WebRTC video says nothing about
// its colours, and GStreamer guesses by size (BT.601 below 720 lines, BT.709 above, chroma sited
// differently from the test source): inputs that differ from the canvas were converted pixel by
// pixel, ≈ 0.05 core per 640x360 input and 4× that at 720p. The inputs are labelled as the canvas
// instead (capssetter, no pixel touched), which is what a browser does when it draws them. The
// label goes on straight after the decoder: a capssetter passes caps queries through, so one after
// videoconvert made videoconvert convert to the canvas colorimetry it asked for.
const canvasColor = "colorimetry=bt709,chroma-site=mpeg2"

// canvas is a live background of colour (0xAARRGGBB) at W×H@fps into a compositor named "comp"
// that waits latency for its inputs; name names the background source ("" for GStreamer's).
func canvas(name string, color uint32, w, h, fps int, latency time.Duration) string {
	named := ""
	if name != "" {
		named = "name=" + name
	}
	raw := fmt.Sprintf("video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1,%s", w, h, fps, canvasColor)
	return fmt.Sprintf(`videotestsrc %s is-live=true pattern=solid-color foreground-color=%d ! %s
		! compositor name=comp background=black latency=%d ! %s`, named, color, raw, latency.Nanoseconds(), raw)
}

// videoInput is a compositor input branch: an appsrc named "src" of encoded video (caps) and its
// decoder chain, labelled with the canvas's colorimetry, to I420 (videoconvert converts only a
// decoder's other formats). With doTimestamp, buffers are timestamped on arrival; else the
// caller's timestamps are kept.
func videoInput(caps, decoder string, doTimestamp bool) string {
	return fmt.Sprintf(`appsrc name=src format=time is-live=true do-timestamp=%t caps="%s"
		! queue max-size-time=1000000000 ! %s ! capssetter join=true caps="video/x-raw,%s"
		! videoconvert ! capsfilter name=out caps=video/x-raw,format=I420`, doTimestamp, caps, decoder, canvasColor)
}

// AddVideo adds a video input (codec "h264", "vp8" or "vp9") and re-tiles.
func (c *Composer) AddVideo(id, codec string) error {
	if c.comp == nil {
		return nil
	}
	caps, dec, err := videoDecoder(codec)
	if err != nil {
		return err
	}
	in, err := c.addBranch(c.comp, videoInput(caps, dec, true))
	if err != nil {
		return err
	}
	in.video = true
	in.pad.SetArg("sizing-policy", "keep-aspect-ratio")
	c.watchDecodedSize(id, in.bin)
	c.relayout(func() {
		c.inputs[id] = in
		c.order = append(c.order, id)
	})
	return nil
}

// AddAudio adds an Opus input to the mix at pan (-1 left only, 0 both channels, 1 right only).
func (c *Composer) AddAudio(id string, pan float64) error {
	if c.amix == nil {
		return nil
	}
	in, err := c.addBranch(c.amix, fmt.Sprintf(`appsrc name=src format=time is-live=true do-timestamp=true
		caps="audio/x-opus,channel-mapping-family=(int)0,rate=(int)48000,channels=(int)2"
		! queue max-size-time=1000000000 ! opusdec plc=true ! audioconvert ! audiopanorama method=simple panorama=%.1f
		! audioconvert ! audioresample ! capsfilter name=out caps="audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved"`, pan))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.inputs[id] = in
	c.mu.Unlock()
	return nil
}

func (c *Composer) addBranch(mixer *gst.Element, desc string) (*input, error) {
	bin, src, pad, err := c.g.addBranch(mixer, desc)
	if err != nil {
		return nil, err
	}
	return &input{bin: bin, src: src, pad: pad}, nil
}

// Push feeds a frame of input id (timestamped on arrival).
func (c *Composer) Push(id string, data []byte) error {
	c.mu.Lock()
	in := c.inputs[id]
	c.mu.Unlock()
	if in == nil {
		return nil
	}
	if ret := pushBytes(in.src, data, gst.ClockTimeNone); ret != gst.FlowOK {
		return fmt.Errorf("%w: push %s: %s", ErrPipeline, id, ret.String())
	}
	return nil
}

// Remove takes input id out of the picture or the mix and re-tiles.
func (c *Composer) Remove(id string) {
	var in *input
	c.relayout(func() {
		in = c.inputs[id]
		delete(c.inputs, id)
		delete(c.sizes, id)
		for i, o := range c.order {
			if o == id {
				c.order = append(c.order[:i], c.order[i+1:]...)
				break
			}
		}
	})
	if in == nil {
		return
	}
	mixer := c.amix
	if in.video {
		mixer = c.comp
	}
	src := in.bin.GetStaticPad("src")
	src.Unlink(in.pad)
	mixer.ReleaseRequestPad(in.pad)
	_ = in.bin.SetState(gst.StateNull)
	_ = c.g.pipeline.Remove(in.bin.Element)
	runtime.KeepAlive(in.bin) // the bin's last reference until it is out of the pipeline (see graph.stop)
}

// SetLayout switches the layout while recording (UpdateLayout); unknown names keep the grid.
func (c *Composer) SetLayout(layout string) {
	c.relayout(func() { c.layout = layout })
}

// SetSpeaker marks the active speaker's video input (speaker layouts put it large).
func (c *Composer) SetSpeaker(id string) {
	c.mu.Lock()
	same := c.speaker == id
	c.mu.Unlock()
	if !same {
		c.relayout(func() { c.speaker = id })
	}
}

// SetMuted shows a muted video input as an empty (background) tile.
func (c *Composer) SetMuted(id string, muted bool) {
	c.relayout(func() {
		if in := c.inputs[id]; in != nil && in.video {
			in.muted = muted
		}
	})
}

// OnTileSizes calls fn with every video input's tile size now and whenever it changes (zero for
// a hidden or muted input), so that the room can ask the SFU for the simulcast layer that fits the
// tile: a 640x360 tile decodes a 640x360 layer instead of scaling down a 1280x720 one.
func (c *Composer) OnTileSizes(fn func(id string, size TileSize)) {
	c.mu.Lock()
	c.onSize = fn
	now := make(map[string]TileSize, len(c.sizes))
	for id, s := range c.sizes {
		now[id] = s
	}
	c.mu.Unlock()
	for id, s := range now {
		fn(id, s)
	}
}

// OnDecodedSize calls fn with a video input's picture size when its decoder first outputs a
// picture and whenever the size changes: which simulcast layer the SFU actually sends.
func (c *Composer) OnDecodedSize(fn func(id string, w, h int)) {
	c.mu.Lock()
	c.onRecv = fn
	c.mu.Unlock()
}

// watchDecodedSize reports the sizes in the caps events leaving input id's decoder chain.
func (c *Composer) watchDecodedSize(id string, bin *gst.Bin) {
	out, err := bin.GetElementByName("out")
	if err != nil {
		return
	}
	out.GetStaticPad("sink").AddProbe(gst.PadProbeTypeEventDownstream, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		ev := info.GetEvent()
		if ev == nil || ev.Type() != gst.EventTypeCaps {
			return gst.PadProbeOK
		}
		st := ev.ParseCaps().GetStructureAt(0)
		if st == nil {
			return gst.PadProbeOK
		}
		w, errW := st.GetValue("width")
		h, errH := st.GetValue("height")
		wi, okW := w.(int)
		hi, okH := h.(int)
		if errW != nil || errH != nil || !okW || !okH {
			return gst.PadProbeOK
		}
		c.mu.Lock()
		fn := c.onRecv
		c.mu.Unlock()
		if fn != nil {
			fn(id, wi, hi)
		}
		return gst.PadProbeOK
	})
}

// relayout changes the composer's state with change, re-tiles, and reports the tile sizes that
// changed (outside the lock: the callback talks to the SFU).
func (c *Composer) relayout(change func()) {
	c.mu.Lock()
	change()
	place := c.layoutLocked()
	var changed map[string]TileSize
	for _, id := range c.order {
		size := TileSize{}
		if t, shown := place[id]; shown && !c.inputs[id].muted {
			size = TileSize{t.w, t.h}
		}
		if old, ok := c.sizes[id]; !ok || old != size {
			c.sizes[id] = size
			if changed == nil {
				changed = map[string]TileSize{}
			}
			changed[id] = size
		}
	}
	fn := c.onSize
	c.mu.Unlock()
	if fn != nil {
		for id, s := range changed {
			fn(id, s)
		}
	}
}

// tile is one input's place on the canvas.
type tile struct{ x, y, w, h int }

// layoutTiles places video inputs (in join order) on a W×H canvas; inputs without a tile are hidden.
func layoutTiles(layout string, order []string, speaker string, W, H int) map[string]tile {
	place := map[string]tile{}
	if len(order) == 0 {
		return place
	}
	main := order[0]
	for _, id := range order {
		if id == speaker {
			main = id
		}
	}
	var others []string
	for _, id := range order {
		if id != main {
			others = append(others, id)
		}
	}
	switch {
	case layout == LayoutSingleSpeaker || (layout == LayoutSpeaker && len(others) == 0):
		place[main] = tile{0, 0, W, H}
	case layout == LayoutSpeaker:
		stripW := W / 4
		place[main] = tile{0, 0, W - stripW, H}
		h := min(H/len(others), stripW*9/16)
		for i, id := range others {
			place[id] = tile{W - stripW, i * h, stripW, h}
		}
	default:
		n := len(order)
		cols := int(math.Ceil(math.Sqrt(float64(n))))
		rows := (n + cols - 1) / cols
		w, h := W/cols, H/rows
		for i, id := range order {
			place[id] = tile{(i % cols) * w, (i / cols) * h, w, h}
		}
	}
	return place
}

// layoutLocked places every video input per the layout: grid tiles all in join order; speaker puts
// the active speaker (else the first) large on the left and the others in a strip on the right;
// single-speaker shows the speaker alone.
func (c *Composer) layoutLocked() map[string]tile {
	place := layoutTiles(c.layout, c.order, c.speaker, c.plan.Width, c.plan.Height)
	for _, id := range c.order {
		in := c.inputs[id]
		t, shown := place[id]
		alpha := "1"
		if !shown || in.muted {
			alpha = "0"
		}
		// Pads are only touched when their place changes: a speaker change in the grid, or a
		// re-layout that leaves a tile where it was, does not reconfigure the compositor.
		if !in.drawn.set || in.drawn.alpha != alpha {
			in.pad.SetArg("alpha", alpha)
		}
		if shown && (!in.drawn.set || in.drawn.at != t) {
			in.pad.SetArg("xpos", strconv.Itoa(t.x))
			in.pad.SetArg("ypos", strconv.Itoa(t.y))
			in.pad.SetArg("width", strconv.Itoa(t.w))
			in.pad.SetArg("height", strconv.Itoa(t.h))
			in.drawn.at = t
		}
		in.drawn.set, in.drawn.alpha = true, alpha
	}
	return place
}

// Failed is closed when the pipeline reports an error while composing (Close returns it).
func (c *Composer) Failed() <-chan struct{} { return c.g.failed }

// Close ends the composite and finalises the file.
func (c *Composer) Close() error {
	if err := c.g.failedEarly(); err != nil {
		c.g.stop()
		return err
	}
	// The live background sources never end by themselves: EOS the whole pipeline.
	if err := endLive(c.g.pipeline.Element, 10*time.Second); err != nil {
		return err
	}
	return c.g.drain(30*time.Second, 0)
}
