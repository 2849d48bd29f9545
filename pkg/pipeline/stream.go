package pipeline

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-gst/go-gst/gst"
)

// StreamPlan is one live stream destination fed with already-encoded media.
type StreamPlan struct {
	URL          string // rtmp://, rtmps://, srt://, or ws:// / wss:// (then PCM is required)
	Video, Audio bool   // H.264 access units (Annex-B) / raw AAC-LC frames
	AudioRate    int    // AAC sample rate (2 channels)
	// PCM receives the audio decoded to S16LE 48 kHz stereo, for a WebSocket destination (which
	// the caller connects and writes: audio only, as the official egress sends it).
	PCM func(pcm []byte)
}

// StreamSender sends one destination. Each destination is its own small pipeline so that one
// that fails (refused, dropped, stalled) never touches the recording or the other destinations.
//
//	appsrc (H.264) → h264parse ─┐
//	appsrc (AAC)   → aacparse  ─┴→ flvmux → rtmp2sink   (rtmp, rtmps)
//	                             └→ mpegtsmux → srtsink (srt, caller mode)
//	appsrc (AAC)   → aacparse → AAC decoder → S16LE 48 kHz stereo → appsink → PCM (ws, wss)
//
// The appsrcs drop the oldest media beyond 3 s when the destination does not keep up, rather than
// growing without bound.
type StreamSender struct {
	g      *graph
	linger time.Duration // after EOS, before the connection is closed
}

// NewStreamSender connects to p.URL and starts sending; a failure to connect is reported on Done.
func NewStreamSender(p StreamPlan) (*StreamSender, error) {
	desc, err := p.describe()
	if err != nil {
		return nil, err
	}
	var srcs []string
	if p.Video && !p.webSocket() {
		srcs = append(srcs, "vsrc")
	}
	if p.Audio {
		srcs = append(srcs, "asrc")
	}
	var sinks map[string]func([]byte, time.Duration, time.Duration)
	if p.webSocket() {
		sinks = map[string]func([]byte, time.Duration, time.Duration){"pcm": func(b []byte, _, _ time.Duration) { p.PCM(b) }}
	}
	g, err := start(desc, srcs, sinks)
	if err != nil {
		return nil, err
	}
	snd := &StreamSender{g: g}
	if strings.HasPrefix(strings.ToLower(p.URL), "srt:") {
		// SRT in live mode drops what is still in its send buffer when the socket closes (no
		// linger): give the last packets the receiver latency (125 ms) and more to arrive.
		snd.linger = 500 * time.Millisecond
	}
	return snd, nil
}

const senderQueue = `format=time is-live=false do-timestamp=false leaky-type=downstream max-bytes=0 max-buffers=0 max-time=3000000000`

// IsWebSocketURL says whether a stream destination is a WebSocket (ws:// or wss://): audio only,
// sent as PCM by the caller.
func IsWebSocketURL(raw string) bool {
	u, err := url.Parse(strings.TrimSpace(raw))
	return err == nil && (strings.EqualFold(u.Scheme, "ws") || strings.EqualFold(u.Scheme, "wss"))
}

func (p StreamPlan) webSocket() bool { return IsWebSocketURL(p.URL) }

// aacDecoder is the lightest AAC decoder installed: faad (gst-plugins-bad) spares a job that has
// not loaded libav its ≈ 35 MB of libraries.
func aacDecoder() string {
	if gst.Find("faad") != nil {
		return "faad"
	}
	return "avdec_aac"
}

func (p StreamPlan) describe() (string, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return "", fmt.Errorf("%w: stream url: %v", ErrPipeline, err)
	}
	if p.webSocket() {
		if !p.Audio || p.PCM == nil {
			return "", fmt.Errorf("%w: a WebSocket stream sends audio, and needs it and a PCM writer", ErrPipeline)
		}
		return fmt.Sprintf(`appsrc name=asrc %s caps="audio/mpeg,mpegversion=4,stream-format=raw,rate=%d,channels=2,codec_data=(buffer)%s,framed=true"
			! aacparse ! %s ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2
			! appsink name=pcm sync=false`, senderQueue, p.AudioRate, AudioSpecificConfig(p.AudioRate, 2), aacDecoder()), nil
	}
	var b stringsBuilder
	if p.Video {
		b.f(`appsrc name=vsrc %s caps="video/x-h264,stream-format=byte-stream,alignment=au" ! h264parse ! queue ! out. `, senderQueue)
	}
	if p.Audio {
		b.f(`appsrc name=asrc %s caps="audio/mpeg,mpegversion=4,stream-format=raw,rate=%d,channels=2,codec_data=(buffer)%s,framed=true" ! aacparse ! audio/mpeg,stream-format=raw ! queue ! out. `,
			senderQueue, p.AudioRate, AudioSpecificConfig(p.AudioRate, 2))
	}
	switch strings.ToLower(u.Scheme) {
	case "rtmp", "rtmps":
		// async-connect=false: rtmp2sink connects on the first buffer, in the streaming thread.
		// Its asynchronous connect (at READY, in its own loop) corrupted the heap when the pipeline
		// was stopped right after a refused connection, as a destination being retried is.
		b.f(`flvmux name=out streamable=true ! rtmp2sink location=%q sync=false async-connect=false timeout=10`, p.URL)
	case "srt":
		b.f(`mpegtsmux name=out alignment=7 ! srtsink uri=%q sync=false wait-for-connection=false`, p.URL)
	default:
		return "", fmt.Errorf("%w: stream url scheme %q (rtmp, rtmps or srt)", ErrPipeline, u.Scheme)
	}
	return b.String(), nil
}

// AudioSpecificConfig is the hex AAC-LC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) for a rate
// and channel count, as codec_data caps and FLV sequence headers carry it.
func AudioSpecificConfig(rate, channels int) string {
	idx := 15
	for i, r := range []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350} {
		if r == rate {
			idx = i
		}
	}
	v := 2<<11 | idx<<7 | channels<<3 // object type 2 (AAC LC), frequency index, channel configuration
	return fmt.Sprintf("%04x", v)
}

// PushVideo sends one access unit; pts counts from the destination's first keyframe.
func (s *StreamSender) PushVideo(au []byte, pts time.Duration) error {
	return s.g.push("vsrc", au, pts)
}

// PushAudio sends one raw AAC frame.
func (s *StreamSender) PushAudio(frame []byte, pts time.Duration) error {
	return s.g.push("asrc", frame, pts)
}

// Done receives the destination's error (or nil at the end), once.
func (s *StreamSender) Done() <-chan error { return s.g.done }

// Close ends the stream cleanly (bounded) and releases the pipeline.
func (s *StreamSender) Close() { _ = s.g.finishLinger(5*time.Second, s.linger) }

// SilentAAC encodes one frame of stereo silence as AAC-LC at rate, the way the encoder taps
// produce it: stream destinations fill a gap in the audio with it (a muted microphone sends
// nothing, and a muxer waiting for audio would hold the video back).
func SilentAAC(rate, kbps int) ([]byte, error) {
	frames := make(chan []byte, 64)
	g, err := start(fmt.Sprintf(`audiotestsrc wave=silence num-buffers=16 samplesperbuffer=1024
		! audio/x-raw,format=S16LE,layout=interleaved,rate=%d,channels=2 ! %s
		! audio/mpeg,stream-format=raw ! appsink name=sink sync=false`, rate, audioEncoder("aac", kbps)), nil,
		map[string]func([]byte, time.Duration, time.Duration){"sink": func(b []byte, _, _ time.Duration) {
			select {
			case frames <- b:
			default:
			}
		}})
	if err != nil {
		return nil, err
	}
	err = <-g.done
	g.stop()
	close(frames)
	var last []byte
	for f := range frames { // the last frames are past the encoder's start-up
		last = f
	}
	if err == nil && len(last) == 0 {
		err = fmt.Errorf("%w: the AAC encoder produced no frame", ErrPipeline)
	}
	return last, err
}
