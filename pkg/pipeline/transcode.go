package pipeline

import (
	"fmt"
	"strings"
	"time"
)

// TranscodePlan says what to build: which inputs arrive (encoded, from the room) and how to encode
// and mux them into one file.
type TranscodePlan struct {
	VideoIn string // "h264", "vp8", "vp9" or "" for no video
	AudioIn bool   // Opus audio arrives
	// LateVideo (with VideoIn "") records a black picture until AddVideo brings the camera in.
	LateVideo bool

	Width, Height, Framerate int
	VideoKbps                int
	Profile                  string // "baseline", "main" or "high"
	KeyframeEvery            int    // frames between keyframes; 0 = 2 s
	FixedGOP                 bool   // keyframes exactly every KeyframeEvery frames, none at scene cuts (HLS cuts there)
	AudioCodec               string // "aac", "opus" or "mp3"
	AudioKbps, AudioRate     int

	Container string // "mp4" (default; fragmented every second, so a crash leaves a playable file), "ogg" or "mp3"
	Output    string // file path; "" for no file (taps only)
	Taps      *Taps  // encoded streams for outputs outside the pipeline; AAC audio only
	Images    []ImagePlan
}

// Transcoder decodes room media and encodes it into one file.
//
// Memory is bounded on purpose (measured: docs/benchmarks.md): x264's lookahead is short (see
// lookahead) with no sync-lookahead, and decoders are single-threaded.
//
//	appsrc vsrc (H.264/VP8/VP9) → parse/decode → videoconvert → videoscale (letterbox) → videorate
//	  → I420 WxH@fps → x264enc (veryfast, short lookahead) → h264parse ─┐
//	appsrc asrc (Opus) → opusdec → audioconvert → audioresample → audiorate (fills gaps)
//	  → voaacenc | opusenc ─────────────────────────────────────┴→ mp4mux (fragmented) → filesink
//
// With LateVideo (a participant with only a microphone so far) the video starts as a live black
// videotestsrc into a compositor; AddVideo links the camera's decoder branch into it.
type Transcoder struct {
	g         *graph
	plan      TranscodePlan
	audioLead time.Duration // audio is fed this much early to cancel the encoder's delay
}

// NewTranscoder starts the pipeline for plan.
func NewTranscoder(plan TranscodePlan) (*Transcoder, error) {
	desc, err := plan.describe()
	if err != nil {
		return nil, err
	}
	var srcs []string
	if plan.VideoIn != "" {
		srcs = append(srcs, "vsrc")
	}
	if plan.AudioIn {
		srcs = append(srcs, "asrc")
	}
	g, err := build(desc, srcs, imageSinks(plan.Images, plan.Taps.sinks(plan.hasVideo(), plan.AudioIn)))
	if err != nil {
		return nil, err
	}
	if plan.LateVideo && plan.VideoIn == "" {
		g.monotonic("comp")
	}
	if err := g.play(); err != nil {
		return nil, err
	}
	t := &Transcoder{g: g, plan: plan}
	if plan.AudioIn && plan.hasVideo() && (plan.AudioCodec == "" || plan.AudioCodec == "aac") && plan.AudioRate > 0 {
		// voaacenc's 1024 priming samples come out first, at the input's timestamps, and mp4mux
		// writes no edit list for them: every sound would play that much after its picture.
		t.audioLead = time.Duration(aacPriming) * time.Second / time.Duration(plan.AudioRate)
	}
	return t, nil
}

// aacPriming is the AAC encoder delay in samples (one frame), for which no edit list is written.
const aacPriming = 1024

func (p TranscodePlan) hasVideo() bool { return p.VideoIn != "" || p.LateVideo }

func (p TranscodePlan) describe() (string, error) {
	var b stringsBuilder
	if !p.hasVideo() && !p.AudioIn {
		return "", fmt.Errorf("%w: nothing to record", ErrPipeline)
	}
	encoder := videoEncoder(p.Width, p.Height, p.VideoKbps, p.Framerate, p.KeyframeEvery, p.FixedGOP, p.Profile, len(p.Images) > 0, p.Output != "" || p.Taps != nil)
	if p.VideoIn == "" && p.LateVideo {
		// Black, live, until the camera is added to the compositor (AddVideo). The compositor waits
		// up to 500 ms for camera frames, which are timestamped by sender reports, not on arrival.
		b.f("%s ! queue ! %s ", canvas(lateBackground, 0xFF000000, p.Width, p.Height, p.Framerate, 500*time.Millisecond), encoder)
	}
	if p.VideoIn != "" {
		caps, dec, err := videoDecoder(p.VideoIn)
		if err != nil {
			return "", err
		}
		b.f(`appsrc name=vsrc format=time is-live=true do-timestamp=false caps="%s" ! queue max-size-time=2000000000
			! %s ! videoconvert ! videoscale add-borders=true ! videorate
			! video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1,pixel-aspect-ratio=1/1 ! %s `,
			caps, dec, p.Width, p.Height, p.Framerate, encoder)
	}
	if p.AudioIn {
		b.f(`appsrc name=asrc format=time is-live=true do-timestamp=false caps="audio/x-opus,channel-mapping-family=(int)0,rate=(int)48000,channels=(int)2"
			! queue max-size-time=2000000000 ! opusdec plc=true ! audioconvert ! audioresample ! audiorate
			! audio/x-raw,rate=%d,channels=2 ! %s ! tee name=atee `, p.AudioRate, audioEncoder(p.AudioCodec, p.AudioKbps))
	}
	if err := encodedTail(&b, p.hasVideo(), p.AudioIn, p.Container, p.Output, p.Taps); err != nil {
		return "", err
	}
	if p.hasVideo() {
		imagesTail(&b, p.Images)
	}
	return b.String(), nil
}

// lookahead is x264's rate-control lookahead in frames. Each frame of it holds ≈ 4.2 MB at 720p
// (the picture, its half-pel planes and lowres copies): 2 frames instead of veryfast's 10 (plus
// sync-lookahead) keep ≈ 45 MB fewer, and instead of 5 ≈ 13 MB, for an SSIM still above what
// x264 veryfast with its default lookahead makes of the same source at the same bit rate (0.0000x
// below 5 frames; 0 frames, which also turns mb-tree off, loses ten times that).
const lookahead = 2

// videoEncoder is the H.264 encoder chain ending in the tee "vtee". Memory is bounded on purpose
// (see Transcoder). With fixedGOP, scene cuts add no keyframes, so keyframes fall exactly every
// keyint frames (segment boundaries). With images, the raw video is teed first ("rawtee"); with
// images and nothing encoded, the chain is that tee alone.
func videoEncoder(width, height, kbps, framerate, keyint int, fixedGOP bool, profile string, images, encode bool) string {
	if keyint <= 0 {
		keyint = 2 * framerate
	}
	opts := "sync-lookahead=0"
	if fixedGOP {
		opts += ":scenecut=0"
	}
	enc := fmt.Sprintf(`x264enc speed-preset=veryfast bitrate=%d vbv-buf-capacity=2000 key-int-max=%d bframes=0 threads=%d rc-lookahead=%d option-string=%s
		! video/x-h264,profile=%s ! h264parse ! tee name=vtee`, kbps, keyint, encoderThreads(width, height, framerate), lookahead, opts, profile)
	switch {
	case images && !encode:
		return "tee name=" + rawTee
	case images:
		return "tee name=" + rawTee + " ! queue ! " + enc
	}
	return enc
}

// encoderThreads is x264's thread count: one per 720p30 worth of pixels. One thread at 720p30
// costs less CPU than two (frame threads wait on each other: 0.463 vs 0.51 core measured) at the
// same SSIM, and holds fewer frames; 1080p60 gets the 5 it needs to keep up.
func encoderThreads(width, height, framerate int) int {
	const unit = 1280 * 720 * 30
	return min(6, max(1, (width*height*framerate+unit-1)/unit))
}

// audioEncoder is the encoder chain for "aac" (default), "opus" or "mp3" at kbps.
func audioEncoder(codec string, kbps int) string {
	switch codec {
	case "opus":
		return fmt.Sprintf("opusenc bitrate=%d", kbps*1000)
	case "mp3":
		return fmt.Sprintf("lamemp3enc target=bitrate cbr=true bitrate=%d ! mpegaudioparse", kbps)
	}
	return fmt.Sprintf("voaacenc bitrate=%d ! aacparse", kbps*1000)
}

// muxer is the muxer named "mux" writing to path, or "" for an unknown container. MP4 is written
// in 1 s fragments so that a crash leaves a playable file.
func muxer(container, path string) string {
	switch container {
	case "", "mp4":
		return fmt.Sprintf(`mp4mux name=mux fragment-duration=1000 ! filesink location=%q sync=false`, path)
	case "ogg":
		return fmt.Sprintf(`oggmux name=mux ! filesink location=%q sync=false`, path)
	case "mp3":
		return fmt.Sprintf(`xingmux name=mux ! filesink location=%q sync=false`, path)
	}
	return ""
}

// stringsBuilder builds a pipeline description.
type stringsBuilder struct{ strings.Builder }

func (b *stringsBuilder) f(format string, a ...any) { fmt.Fprintf(&b.Builder, format, a...) }

// lateBackground names the black source of a LateVideo transcoder.
const lateBackground = "latebg"

// AddVideo brings a camera published after the recording started (codec "h264", "vp8" or "vp9")
// into a LateVideo transcoder: it replaces the black picture, scaled to fit with its aspect kept.
// PushVideo feeds it from then on.
func (t *Transcoder) AddVideo(codec string) error {
	if !t.plan.LateVideo || t.plan.VideoIn != "" {
		return fmt.Errorf("%w: the transcoder already has its video", ErrPipeline)
	}
	caps, dec, err := videoDecoder(codec)
	if err != nil {
		return err
	}
	comp, err := t.g.pipeline.GetElementByName("comp")
	if err != nil {
		return fmt.Errorf("%w: no compositor for the late video", ErrPipeline)
	}
	_, src, pad, err := t.g.addBranch(comp, videoInput(caps, dec, false))
	if err != nil {
		return err
	}
	pad.SetArg("sizing-policy", "keep-aspect-ratio")
	pad.SetArg("width", fmt.Sprint(t.plan.Width))
	pad.SetArg("height", fmt.Sprint(t.plan.Height))
	t.g.srcs["vsrc"] = src
	t.plan.VideoIn = codec
	return nil
}

// WaitsForVideo says whether a LateVideo transcoder still records black (AddVideo not called yet).
func (t *Transcoder) WaitsForVideo() bool { return t.plan.LateVideo && t.plan.VideoIn == "" }

// PushVideo feeds one encoded video frame at pts (pipeline time).
func (t *Transcoder) PushVideo(data []byte, pts time.Duration) error {
	return t.g.push("vsrc", data, pts)
}

// PushAudio feeds one Opus packet at pts (pipeline time).
func (t *Transcoder) PushAudio(data []byte, pts time.Duration) error {
	return t.g.push("asrc", data, max(0, pts-t.audioLead))
}

// Failed is closed when the pipeline reports an error while recording (Close returns it).
func (t *Transcoder) Failed() <-chan struct{} { return t.g.failed }

// Close ends the streams and waits for the file to be finalised.
func (t *Transcoder) Close() error {
	if t.plan.LateVideo {
		// The black source is live and never ends by itself.
		if bg, err := t.g.pipeline.GetElementByName(lateBackground); err == nil {
			if err := endLive(bg, 10*time.Second); err != nil {
				return err
			}
		}
	}
	return t.g.finish(30 * time.Second)
}
