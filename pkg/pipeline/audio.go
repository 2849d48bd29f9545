package pipeline

import "time"

// PCMFormat is what OpusDecoder produces: what the official egress sends to websockets.
const (
	PCMRate     = 48000
	PCMChannels = 2
	PCMBytes    = 2 // S16LE
)

// SilentOpus is one 20 ms Opus packet of silence (CELT, fullband, a single frame coding nothing):
// what a recording is fed while a participant has no microphone yet.
var SilentOpus = []byte{0xF8, 0xFF, 0xFE}

// SilentOpusDuration is how much media SilentOpus holds.
const SilentOpusDuration = 20 * time.Millisecond

// OpusDecoder turns Opus packets into raw PCM.
//
//	appsrc (audio/x-opus) → opusdec (packet loss concealment) → audioconvert → audioresample
//	  → audio/x-raw S16LE 48 kHz stereo → appsink → onPCM
type OpusDecoder struct{ g *graph }

// NewOpusDecoder starts a decoder; onPCM is called from a GStreamer thread, in order.
func NewOpusDecoder(onPCM func(pcm []byte)) (*OpusDecoder, error) {
	g, err := start(`appsrc name=src format=time is-live=true do-timestamp=false
		caps="audio/x-opus,channel-mapping-family=(int)0,rate=(int)48000,channels=(int)2"
		! opusdec plc=true ! audioconvert ! audioresample
		! audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2
		! appsink name=sink sync=false emit-signals=false`, []string{"src"},
		map[string]func([]byte, time.Duration, time.Duration){"sink": func(pcm []byte, _, _ time.Duration) { onPCM(pcm) }})
	if err != nil {
		return nil, err
	}
	return &OpusDecoder{g: g}, nil
}

// Push decodes one Opus packet.
func (d *OpusDecoder) Push(packet []byte, pts time.Duration) error {
	return d.g.push("src", packet, pts)
}

// Close flushes what is buffered to onPCM and releases the pipeline.
func (d *OpusDecoder) Close() error { return d.g.finish(5 * time.Second) }
