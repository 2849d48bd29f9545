package pipeline

import (
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"
)

// IngestPlan says what an ingress session decodes and how it encodes it for the room.
type IngestPlan struct {
	// FD is a file descriptor carrying an FLV stream (RTMP push); used when URL is "".
	FD int
	// URL is pulled instead (http(s) files, HLS, srt://).
	URL string
	// Live outputs every frame as soon as it is encoded (push inputs: latency stays at the
	// processing time and a burst after a stall drains at once). Otherwise output is paced by the
	// media timestamps (files and VOD play in real time).
	Live bool

	VideoCodec    string  // "h264" (constrained baseline) or "vp8"
	FrameRate     float64 // output frame-rate cap
	KeyframeEvery time.Duration
	// Layers is called once the source size is known and returns the layers to encode, lowest first.
	Layers func(width, height int) []IngestLayer

	AudioBitrate  int // bps
	AudioChannels int
	AudioDTX      bool
}

// IngestLayer is one encoded video layer.
type IngestLayer struct {
	Width, Height int
	Bitrate       int // bps
}

// InputVideo and InputAudio describe what the source carries.
type InputVideo struct {
	Mime          string
	Width, Height int
	FrameRate     float64
}

type InputAudio struct {
	Mime       string
	Channels   int
	SampleRate int
}

// IngestHandler receives what the pipeline produces. Calls for one layer or for audio come from
// one streaming thread each; they must not block for long.
type IngestHandler interface {
	// VideoStarted is called once with the source and the layers being encoded.
	VideoStarted(in InputVideo, layers []IngestLayer)
	AudioStarted(in InputAudio)
	Video(layer int, data []byte, pts, dur time.Duration)
	Audio(data []byte, pts, dur time.Duration)
}

// Ingest decodes one input and encodes it as simulcast layers plus Opus.
//
//	fdsrc (FLV) | uridecodebin ─ decodebin ─┬─ video: queue (leaky when live) → videoconvert → videorate (cap)
//	                                        │    → tee ─┬─ queue → videoscale → WxH → x264enc zerolatency → appsink v0
//	                                        │           └─ … one branch per layer
//	                                        └─ audio: queue → audioconvert → audioresample → opusenc → appsink a
type Ingest struct {
	g    *graph
	plan IngestPlan
	h    IngestHandler

	mu       sync.Mutex
	video    bool // a video branch exists
	audio    bool
	encoders []*gst.Element

	inBytes [2]atomic.Int64 // encoded input bytes reaching the video [0] and audio [1] decoders
	started time.Time

	failc chan error // a branch that could not be built
	done  chan error
}

// NewIngest builds and starts the pipeline; branches appear as the input's streams are found.
func NewIngest(plan IngestPlan, h IngestHandler) (*Ingest, error) {
	initGst()
	p, err := inputPipeline(plan)
	if err != nil {
		return nil, fmt.Errorf("%w: build input: %v", ErrPipeline, err)
	}
	in := &Ingest{g: newGraph(p), plan: plan, h: h, started: time.Now(), failc: make(chan error, 1), done: make(chan error, 1)}
	dec, err := p.GetElementByName("dec")
	if err != nil {
		return nil, fmt.Errorf("%w: no decoder: %v", ErrPipeline, err)
	}
	if _, err := dec.Connect("pad-added", func(_ *gst.Element, pad *gst.Pad) {
		if err := in.padAdded(pad); err != nil {
			select {
			case in.failc <- err:
			default:
			}
		}
	}); err != nil {
		return nil, fmt.Errorf("%w: watch pads: %v", ErrPipeline, err)
	}
	if err := p.SetState(gst.StatePlaying); err != nil {
		return nil, fmt.Errorf("%w: play: %v", ErrPipeline, err)
	}
	go in.g.watch()
	go func() {
		select {
		case err := <-in.g.done:
			in.done <- err
		case err := <-in.failc:
			in.done <- err
		}
	}()
	return in, nil
}

// inputPipeline is the source part, ending in the element "dec" whose pads carry the streams.
// A URL goes through uridecodebin: HLS (hlsdemux2 exposes several parsed pads), ID3-tagged MP3
// and the rest all come out decoded, so the input's codec names are not known. An FLV stream
// goes through parsebin: its pads carry the codecs, sizes and rates.
func inputPipeline(plan IngestPlan) (*gst.Pipeline, error) {
	if plan.URL == "" {
		return gst.NewPipelineFromString(fmt.Sprintf(
			`fdsrc fd=%d blocksize=16384 ! queue max-size-bytes=4000000 max-size-time=0 max-size-buffers=0 ! parsebin name=dec`, plan.FD))
	}
	p, err := gst.NewPipeline("")
	if err != nil {
		return nil, err
	}
	dec, err := gst.NewElementWithName("uridecodebin", "dec")
	if err != nil {
		return nil, err
	}
	if err := dec.SetProperty("uri", plan.URL); err != nil {
		return nil, err
	}
	return p, p.Add(dec)
}

// Done receives nil at the end of the input or the first error.
func (in *Ingest) Done() <-chan error { return in.done }

// Stop tears the pipeline down without draining (the publisher is gone or the session is cancelled).
func (in *Ingest) Stop() { in.g.stop() }

// ForceKeyframe asks every video encoder for a keyframe (a subscriber lost one, or a layer was just published).
func (in *Ingest) ForceKeyframe() {
	in.mu.Lock()
	encs := append([]*gst.Element(nil), in.encoders...)
	in.mu.Unlock()
	for _, e := range encs {
		st := gst.NewStructureFromString("GstForceKeyUnit, running-time=(guint64)18446744073709551615, all-headers=(boolean)true, count=(uint)0")
		e.SendEvent(gst.NewCustomEvent(gst.EventTypeCustomUpstream, st))
	}
}

// InputBitrates is the average encoded bitrate of the input's video and audio so far, in bps.
func (in *Ingest) InputBitrates() (video, audio int) {
	secs := time.Since(in.started).Seconds()
	if secs < 1 {
		return 0, 0
	}
	return int(float64(in.inBytes[0].Load()*8) / secs), int(float64(in.inBytes[1].Load()*8) / secs)
}

var (
	reInt  = regexp.MustCompile(`(\w[\w-]*)=\(int\)(\d+)`)
	reFrac = regexp.MustCompile(`framerate=\(fraction\)(\d+)/(\d+)`)
)

// capsInfo reads the integer fields and the frame rate of caps.
func capsInfo(c *gst.Caps) (name string, ints map[string]int, fps float64) {
	ints = map[string]int{}
	if c == nil || c.GetSize() == 0 {
		return "", ints, 0
	}
	s := c.GetStructureAt(0)
	str := s.String()
	for _, m := range reInt.FindAllStringSubmatch(str, -1) {
		n, _ := strconv.Atoi(m[2])
		ints[m[1]] = n
	}
	if m := reFrac.FindStringSubmatch(str); m != nil {
		n, _ := strconv.Atoi(m[1])
		d, _ := strconv.Atoi(m[2])
		if d > 0 {
			fps = float64(n) / float64(d)
		}
	}
	name = s.Name()
	runtime.KeepAlive(c) // s points into c
	return name, ints, fps
}

// padAdded takes one parsed (still encoded) stream of the input: its caps name the codec and,
// after the parser, its size, frame rate, channels and rate.
func (in *Ingest) padAdded(pad *gst.Pad) error {
	caps := pad.GetCurrentCaps()
	name, ints, fps := capsInfo(caps)
	in.mu.Lock()
	switch {
	case strings.HasPrefix(name, "video/") && !in.video:
		in.video = true
		in.mu.Unlock()
		in.countBytes(pad, 0)
		return in.addVideo(pad, name, InputVideo{Mime: mimeOf(name, ints), Width: ints["width"], Height: ints["height"], FrameRate: fps})
	case strings.HasPrefix(name, "audio/") && !in.audio:
		in.audio = true
		in.mu.Unlock()
		in.countBytes(pad, 1)
		return in.addAudio(pad, name, InputAudio{Mime: mimeOf(name, ints), Channels: ints["channels"], SampleRate: ints["rate"]})
	}
	in.mu.Unlock()
	// A second stream of a kind (or subtitles, data): drained so it never blocks the demuxer.
	return in.link(pad, "queue name=in ! fakesink sync=false async=false")
}

// mimeOf names a parsed stream's codec the way LiveKit does ("video/h264", "audio/aac" …).
func mimeOf(capsName string, ints map[string]int) string {
	switch capsName {
	case "audio/mpeg":
		if ints["mpegversion"] == 1 {
			return "audio/mpeg"
		}
		return "audio/aac"
	case "video/x-raw", "audio/x-raw":
		return "" // decoded by uridecodebin: the codec is not known
	}
	return strings.Replace(capsName, "/x-", "/", 1)
}

// countBytes adds the encoded bytes crossing pad to the input's video (0) or audio (1) total.
func (in *Ingest) countBytes(pad *gst.Pad, idx int) {
	pad.AddProbe(gst.PadProbeTypeBuffer, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		if b := info.GetBuffer(); b != nil {
			in.inBytes[idx].Add(b.GetSize())
		}
		return gst.PadProbeOK
	})
}

func (in *Ingest) sinkProps() string {
	if in.plan.Live {
		return "sync=false async=false max-buffers=30 drop=true"
	}
	return "sync=true async=false"
}

// queueProps bounds a queue; when live it drops the oldest frames instead of falling behind.
func (in *Ingest) queueProps(buffers int) string {
	if in.plan.Live {
		return fmt.Sprintf("queue max-size-buffers=%d max-size-bytes=0 max-size-time=0 leaky=downstream", buffers)
	}
	return "queue max-size-buffers=0 max-size-bytes=0 max-size-time=1000000000"
}

// decoder is the decoding chain for a parsed stream: H.264 single-threaded (frame threads each
// add a frame of delay), anything else through decodebin.
func decoder(capsName string) string {
	switch capsName {
	case "video/x-h264":
		return "avdec_h264 max-threads=1"
	case "video/x-raw", "audio/x-raw":
		return "identity"
	}
	return "decodebin"
}

func (in *Ingest) addVideo(pad *gst.Pad, capsName string, src InputVideo) error {
	layers := in.plan.Layers(src.Width, src.Height)
	if len(layers) == 0 {
		return fmt.Errorf("%w: no video layer fits a %dx%d source", ErrPipeline, src.Width, src.Height)
	}
	fps := in.plan.FrameRate
	if fps <= 0 {
		fps = 30
	}
	keyint := int(in.plan.KeyframeEvery.Seconds() * fps)
	if keyint <= 0 {
		keyint = int(2 * fps)
	}
	var b stringsBuilder
	b.f(`%s name=in ! %s ! %s ! videoconvert ! videorate drop-only=true max-rate=%d ! video/x-raw,format=I420 ! tee name=t `,
		in.queueProps(8), decoder(capsName), in.queueProps(3), int(fps+0.5))
	for i, l := range layers {
		threads := 1
		if l.Width*l.Height > 640*360 {
			threads = 2
		}
		var enc string
		switch in.plan.VideoCodec {
		case "vp8":
			enc = fmt.Sprintf(`vp8enc name=enc%d target-bitrate=%d keyframe-max-dist=%d deadline=1 cpu-used=-6 end-usage=cbr
				buffer-size=1000 buffer-initial-size=500 buffer-optimal-size=600 threads=%d error-resilient=default lag-in-frames=0 ! video/x-vp8`,
				i, l.Bitrate, keyint, threads)
		default:
			enc = fmt.Sprintf(`x264enc name=enc%d tune=zerolatency speed-preset=veryfast bitrate=%d vbv-buf-capacity=1000
				key-int-max=%d bframes=0 threads=%d ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream,alignment=au`,
				i, l.Bitrate/1000, keyint, threads)
		}
		b.f(`t. ! %s ! videoscale ! video/x-raw,width=%d,height=%d,pixel-aspect-ratio=1/1 ! %s ! appsink name=v%d %s `,
			in.queueProps(2), l.Width, l.Height, enc, i, in.sinkProps())
	}
	bin, err := in.addBin(pad, b.String())
	if err != nil {
		return err
	}
	in.h.VideoStarted(src, layers)
	var encs []*gst.Element
	for i := range layers {
		i := i
		if e, err := bin.GetElementByName(fmt.Sprintf("enc%d", i)); err == nil {
			encs = append(encs, e)
		}
		el, err := bin.GetElementByName(fmt.Sprintf("v%d", i))
		if err != nil {
			return fmt.Errorf("%w: no sink for layer %d", ErrPipeline, i)
		}
		onSample(el, func(data []byte, pts, dur time.Duration) { in.h.Video(i, data, pts, dur) })
	}
	in.mu.Lock()
	in.encoders = encs
	in.mu.Unlock()
	bin.SyncStateWithParent()
	return nil
}

func (in *Ingest) addAudio(pad *gst.Pad, capsName string, src InputAudio) error {
	ch := in.plan.AudioChannels
	if ch <= 0 {
		ch = 2
	}
	desc := fmt.Sprintf(`queue name=in ! %s ! %s ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=%d
		! opusenc bitrate=%d dtx=%t frame-size=20 ! appsink name=a %s`,
		decoder(capsName), in.queueProps(50), ch, in.plan.AudioBitrate, in.plan.AudioDTX, in.sinkProps())
	bin, err := in.addBin(pad, desc)
	if err != nil {
		return err
	}
	in.h.AudioStarted(src)
	el, err := bin.GetElementByName("a")
	if err != nil {
		return fmt.Errorf("%w: no audio sink", ErrPipeline)
	}
	onSample(el, in.h.Audio)
	bin.SyncStateWithParent()
	return nil
}

// link drains pad into a throwaway branch.
func (in *Ingest) link(pad *gst.Pad, desc string) error {
	bin, err := in.addBin(pad, desc)
	if err != nil {
		return err
	}
	bin.SyncStateWithParent()
	return nil
}

// addBin adds desc as a bin to the pipeline and links pad to its first element (not yet playing).
// The sink is ghosted by hand: with a decodebin inside, the parser would ghost the element after
// decodebin's not-yet-existing pad instead of the first one.
func (in *Ingest) addBin(pad *gst.Pad, desc string) (*gst.Bin, error) {
	bin, err := gst.NewBinFromString(desc, false)
	if err != nil {
		return nil, fmt.Errorf("%w: branch: %v", ErrPipeline, err)
	}
	first, err := bin.GetElementByName("in")
	if err != nil {
		return nil, fmt.Errorf("%w: branch %q has no element named in", ErrPipeline, desc)
	}
	ghost := gst.NewGhostPad("sink", first.GetStaticPad("sink"))
	if ghost == nil || !bin.AddPad(ghost.Pad) {
		return nil, fmt.Errorf("%w: branch sink", ErrPipeline)
	}
	if err := in.g.pipeline.Add(bin.Element); err != nil {
		return nil, fmt.Errorf("%w: add branch: %v", ErrPipeline, err)
	}
	if ret := pad.Link(ghost.Pad); ret != gst.PadLinkOK {
		return nil, fmt.Errorf("%w: link %s (%s) to branch %q: %s", ErrPipeline, pad.GetName(), pad.GetCurrentCaps(), desc, ret.String())
	}
	return bin, nil
}

// onSample calls fn with every buffer reaching the appsink el, with its buffer timestamp.
func onSample(el *gst.Element, fn func(data []byte, pts, dur time.Duration)) {
	sampleCallbacks(el, false, fn)
}

// onSampleRunning is onSample with the timestamp as running time: what the pipeline clock says
// for the buffer, whatever offset its segment carries (x264enc's output starts 1000 hours in).
func onSampleRunning(el *gst.Element, fn func(data []byte, pts, dur time.Duration)) {
	sampleCallbacks(el, true, fn)
}

func sampleCallbacks(el *gst.Element, running bool, fn func(data []byte, pts, dur time.Duration)) {
	app.SinkFromElement(el).SetCallbacks(&app.SinkCallbacks{NewSampleFunc: func(s *app.Sink) gst.FlowReturn {
		sample := s.PullSample()
		if sample == nil {
			return gst.FlowEOS
		}
		buf := sample.GetBuffer()
		if buf == nil {
			return gst.FlowOK
		}
		var pts, dur time.Duration
		if p := buf.PresentationTimestamp(); p != gst.ClockTimeNone {
			pts = time.Duration(p)
			if seg := sample.GetSegment(); running && seg != nil {
				pts = time.Duration(seg.ToRunningTime(gst.FormatTime, uint64(p)))
			}
		}
		if d := buf.Duration(); d != gst.ClockTimeNone {
			dur = time.Duration(d)
		}
		// The buffer and segment point into the sample: it must not be finalized (see graph.stop).
		runtime.KeepAlive(sample)
		fn(buf.Bytes(), pts, dur)
		return gst.FlowOK
	}})
}
