package pipeline

import (
	"fmt"
	"time"
)

// Taps receive the encoded streams as they leave the encoders, for outputs written outside the
// pipeline (streams, HLS segments). Callbacks run on GStreamer's streaming threads: they must
// copy what they keep and must not block (a slow consumer would stall the file being recorded).
type Taps struct {
	// Video gets each H.264 access unit in Annex-B form; keyframes carry SPS and PPS in-band.
	Video func(au []byte, pts time.Duration)
	// Audio gets each raw AAC frame (no ADTS header).
	Audio func(frame []byte, pts time.Duration)
}

// ImagePlan captures a still of the video every Every, scaled to Width x Height, as JPEG.
type ImagePlan struct {
	Every         time.Duration
	Width, Height int
	// OnImage gets each JPEG (on a GStreamer thread; it must not block for long).
	OnImage func(jpeg []byte, pts time.Duration)
}

// rawTee names the tee of the raw video before the encoder, which image captures branch from.
const rawTee = "rawtee"

// imagesTail writes the image branches: each keeps one frame per interval (videorate drops the
// rest before anything is scaled or encoded), scales it and encodes it as JPEG into an appsink.
func imagesTail(b *stringsBuilder, images []ImagePlan) {
	for i, im := range images {
		b.f(`%s. ! queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! videorate drop-only=true
			! video/x-raw,framerate=1/%d ! videoscale add-borders=true ! video/x-raw,width=%d,height=%d,pixel-aspect-ratio=1/1
			! jpegenc quality=85 ! appsink name=img%d sync=false `, rawTee, max(1, int(im.Every.Seconds())), im.Width, im.Height, i)
	}
}

// imageSinks maps the image appsinks to their callbacks.
func imageSinks(images []ImagePlan, m map[string]func([]byte, time.Duration, time.Duration)) map[string]func([]byte, time.Duration, time.Duration) {
	if len(images) > 0 && m == nil {
		m = map[string]func([]byte, time.Duration, time.Duration){}
	}
	for i, im := range images {
		on := im.OnImage
		m[fmt.Sprintf("img%d", i)] = func(b []byte, pts, _ time.Duration) { on(b, pts) }
	}
	return m
}

// Names of the tap appsinks.
const (
	videoTap = "vtap"
	audioTap = "atap"
)

// encodedTail writes what follows the encoders, which end in tees named "vtee" and "atee": the
// file muxer when output is set, and the appsinks of the taps. Tap queues are leaky so that a
// stalled consumer never holds back the file.
func encodedTail(b *stringsBuilder, video, audio bool, container, output string, taps *Taps) error {
	if output != "" {
		if video {
			b.f("vtee. ! queue ! mux. ")
		}
		if audio {
			b.f("atee. ! queue ! mux. ")
		}
		m := muxer(container, output)
		if m == "" {
			return fmt.Errorf("%w: unknown container %q", ErrPipeline, container)
		}
		b.f("%s ", m)
	}
	if taps != nil && video {
		b.f(`vtee. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000 leaky=downstream
			! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=%s sync=false `, videoTap)
	}
	if taps != nil && audio {
		b.f(`atee. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000 leaky=downstream
			! audio/mpeg,stream-format=raw ! appsink name=%s sync=false `, audioTap)
	}
	return nil
}

// sinks maps the tap appsinks to their callbacks.
func (t *Taps) sinks(video, audio bool) map[string]func([]byte, time.Duration, time.Duration) {
	if t == nil {
		return nil
	}
	m := map[string]func([]byte, time.Duration, time.Duration){}
	if video && t.Video != nil {
		m[videoTap] = func(b []byte, pts, _ time.Duration) { t.Video(b, pts) }
	}
	if audio && t.Audio != nil {
		m[audioTap] = func(b []byte, pts, _ time.Duration) { t.Audio(b, pts) }
	}
	return m
}
