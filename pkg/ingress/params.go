// Package ingress turns LiveKit ingress requests into encoding plans (presets, simulcast layers,
// Opus settings) and validates them the way livekit/protocol's ingress package does.
package ingress

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	lkingress "github.com/livekit/protocol/ingress"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils"
)

var (
	// ErrInvalidOptions is wrapped by every error about audio or video options.
	ErrInvalidOptions = errors.New("invalid ingress options")
	// ErrInvalidIngress is wrapped by every error about the rest of an IngressInfo.
	ErrInvalidIngress = errors.New("invalid ingress")
)

// FieldError names the request field at fault, in proto field names
// ("video.options.layers[1].width"). It unwraps to ErrInvalidOptions or ErrInvalidIngress.
type FieldError struct {
	Field  string
	Reason string
	Err    error
}

func (e *FieldError) Error() string { return fmt.Sprintf("%v: %s: %s", e.Err, e.Field, e.Reason) }
func (e *FieldError) Unwrap() error { return e.Err }

func badOption(field, format string, a ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...), Err: ErrInvalidOptions}
}

func badIngress(field, format string, a ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...), Err: ErrInvalidIngress}
}

// KeyFrameInterval is explicit where the official worker leaves x264's GOP on auto: a 2 s GOP
// bounds the wait for a keyframe when a subscriber switches simulcast layer.
const KeyFrameInterval = 2 * time.Second

// Reference point of the official bitrate model (livekit/ingress pkg/params/presets.go):
// bitrate = 3.5 Mb/s × (fps/30)^0.75 × (area/1920·1080)^0.75.
const (
	refBitrate      = 3_500_000
	refWidth        = 1920
	refHeight       = 1080
	refFrameRate    = 30
	bitrateExponent = 0.75
)

// Layer is one simulcast encoding. Bitrate is in bits per second.
type Layer struct {
	Quality       livekit.VideoQuality
	Width, Height int
	Bitrate       int
}

// VideoPlan is what to encode for the video track.
type VideoPlan struct {
	Codec            livekit.VideoCodec // H264_BASELINE or VP8
	FrameRate        float64
	Layers           []Layer // sorted LOW..HIGH; boxes that Fit adapts to the source
	KeyFrameInterval time.Duration
	Name             string
	Source           livekit.TrackSource
}

// AudioPlan is what to encode for the audio track (always Opus).
type AudioPlan struct {
	Bitrate  int
	Channels int
	DTX      bool
	Name     string
	Source   livekit.TrackSource
}

// Plan is the resolved encoding of one ingress.
type Plan struct {
	Video VideoPlan
	Audio AudioPlan
}

type videoPreset struct {
	fps           float64
	width, height int
	bitrate       int
	layers        int
}

var videoPresets = map[livekit.IngressVideoEncodingPreset]videoPreset{
	livekit.IngressVideoEncodingPreset_H264_720P_30FPS_3_LAYERS:              {30, 1280, 720, 1_900_000, 3},
	livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_3_LAYERS:             {30, 1920, 1080, 3_500_000, 3},
	livekit.IngressVideoEncodingPreset_H264_540P_25FPS_2_LAYERS:              {25, 960, 540, 1_000_000, 2},
	livekit.IngressVideoEncodingPreset_H264_720P_30FPS_1_LAYER:               {30, 1280, 720, 1_900_000, 1},
	livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_1_LAYER:              {30, 1920, 1080, 3_500_000, 1},
	livekit.IngressVideoEncodingPreset_H264_720P_30FPS_3_LAYERS_HIGH_MOTION:  {30, 1280, 720, 2_500_000, 3},
	livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_3_LAYERS_HIGH_MOTION: {30, 1920, 1080, 4_500_000, 3},
	livekit.IngressVideoEncodingPreset_H264_540P_25FPS_2_LAYERS_HIGH_MOTION:  {25, 960, 540, 1_300_000, 2},
	livekit.IngressVideoEncodingPreset_H264_720P_30FPS_1_LAYER_HIGH_MOTION:   {30, 1280, 720, 2_500_000, 1},
	livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_1_LAYER_HIGH_MOTION:  {30, 1920, 1080, 4_500_000, 1},
}

// Custom video options without layers get this top layer (official populateVideoEncodingOptionsDefaults).
var defaultCustomTop = Layer{Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720, Bitrate: 1_700_000}

type audioPreset struct{ bitrate, channels int }

var audioPresets = map[livekit.IngressAudioEncodingPreset]audioPreset{
	livekit.IngressAudioEncodingPreset_OPUS_STEREO_96KBPS: {96_000, 2},
	livekit.IngressAudioEncodingPreset_OPUS_MONO_64KBS:    {64_000, 1},
}

// scaleBitrate applies the area^0.75 model. It truncates like the official uint32 conversion, so
// presets reproduce its numbers exactly (601,040 and 212,500 for a 1.7 Mb/s top layer).
func scaleBitrate(bitrate int, ratio float64) int {
	return int(float64(bitrate) * math.Pow(ratio, bitrateExponent))
}

// simulcastLayers halves the top layer's dimensions per step (official computeVideoLayers).
// Three layers are LOW/MEDIUM/HIGH, two are LOW/HIGH; the result is sorted LOW..HIGH.
func simulcastLayers(top Layer, count int) []Layer {
	layers := make([]Layer, 0, count)
	for i := count - 1; i >= 0; i-- {
		w, h := top.Width>>i, top.Height>>i
		l := Layer{Quality: livekit.VideoQuality(count - 1 - i), Width: w, Height: h}
		if i == 0 {
			l.Quality, l.Bitrate = livekit.VideoQuality_HIGH, top.Bitrate
		} else {
			l.Bitrate = scaleBitrate(top.Bitrate, float64(w*h)/float64(top.Width*top.Height))
		}
		layers = append(layers, l)
	}
	return layers
}

// Resolve turns an IngressInfo's audio and video options (nil, a preset or custom options) into a
// plan with the official defaults filled in. Invalid options give a *FieldError wrapping
// ErrInvalidOptions. It does not check the rest of the info: that is Validate's job.
func Resolve(info *livekit.IngressInfo) (Plan, error) {
	if err := checkVideo(info.GetVideo()); err != nil {
		return Plan{}, err
	}
	if err := checkAudio(info.GetAudio()); err != nil {
		return Plan{}, err
	}
	return Plan{Video: resolveVideo(info.GetVideo()), Audio: resolveAudio(info.GetAudio())}, nil
}

// defaultSource maps UNKNOWN to the kind's usual source. The official worker passes UNKNOWN
// through; clients and agents that filter on CAMERA/MICROPHONE then miss the ingress tracks.
func defaultSource(s, def livekit.TrackSource) livekit.TrackSource {
	if s == livekit.TrackSource_UNKNOWN {
		return def
	}
	return s
}

func resolveVideo(o *livekit.IngressVideoOptions) VideoPlan {
	v := VideoPlan{
		KeyFrameInterval: KeyFrameInterval,
		Name:             o.GetName(),
		Source:           defaultSource(o.GetSource(), livekit.TrackSource_CAMERA),
	}
	preset := livekit.IngressVideoEncodingPreset_H264_720P_30FPS_3_LAYERS
	switch e := o.GetEncodingOptions().(type) {
	case *livekit.IngressVideoOptions_Options:
		resolveCustomVideo(&v, e.Options)
		return v
	case *livekit.IngressVideoOptions_Preset:
		preset = e.Preset
	}
	p := videoPresets[preset]
	v.Codec, v.FrameRate = livekit.VideoCodec_H264_BASELINE, p.fps
	v.Layers = simulcastLayers(Layer{Width: p.width, Height: p.height, Bitrate: p.bitrate}, p.layers)
	return v
}

func resolveCustomVideo(v *VideoPlan, o *livekit.IngressVideoEncodingOptions) {
	v.Codec, v.FrameRate = o.GetVideoCodec(), o.GetFrameRate()
	if v.Codec == livekit.VideoCodec_DEFAULT_VC {
		v.Codec = livekit.VideoCodec_H264_BASELINE
	}
	if v.FrameRate <= 0 {
		v.FrameRate = refFrameRate
	}
	if len(o.GetLayers()) == 0 {
		v.Layers = simulcastLayers(defaultCustomTop, 3)
		return
	}
	for _, l := range o.GetLayers() {
		layer := Layer{Quality: l.Quality, Width: int(l.Width), Height: int(l.Height), Bitrate: int(l.Bitrate)}
		if layer.Bitrate == 0 {
			fpsRatio := math.Pow(v.FrameRate/refFrameRate, bitrateExponent)
			area := float64(layer.Width*layer.Height) / (refWidth * refHeight)
			layer.Bitrate = int(refBitrate * fpsRatio * math.Pow(area, bitrateExponent))
		}
		v.Layers = append(v.Layers, layer)
	}
	sort.Slice(v.Layers, func(i, j int) bool { return v.Layers[i].Quality < v.Layers[j].Quality })
}

func resolveAudio(o *livekit.IngressAudioOptions) AudioPlan {
	a := AudioPlan{
		DTX:    true, // opusenc dtx=!disable_dtx; presets never disable it
		Name:   o.GetName(),
		Source: defaultSource(o.GetSource(), livekit.TrackSource_MICROPHONE),
	}
	preset := livekit.IngressAudioEncodingPreset_OPUS_STEREO_96KBPS
	switch e := o.GetEncodingOptions().(type) {
	case *livekit.IngressAudioOptions_Options:
		a.Bitrate, a.Channels, a.DTX = int(e.Options.GetBitrate()), int(e.Options.GetChannels()), !e.Options.GetDisableDtx()
		if a.Channels == 0 {
			a.Channels = 2
		}
		if a.Bitrate == 0 {
			a.Bitrate = audioPresets[livekit.IngressAudioEncodingPreset_OPUS_STEREO_96KBPS].bitrate
			if a.Channels == 1 {
				a.Bitrate = audioPresets[livekit.IngressAudioEncodingPreset_OPUS_MONO_64KBS].bitrate
			}
		}
		return a
	case *livekit.IngressAudioOptions_Preset:
		preset = e.Preset
	}
	p := audioPresets[preset]
	a.Bitrate, a.Channels = p.bitrate, p.channels
	return a
}

// Fit returns the layers to encode for a srcW×srcH source, sorted LOW..HIGH, following the official
// filterAndSortLayersByQuality/applyResolutionToLayer:
//   - each layer box is fitted inside the layer's Width×Height preserving the source aspect ratio
//     (a portrait source in a landscape box is limited by the box height), never upscaling;
//   - dimensions are rounded DOWN to even (min 2), where the official rounds up: rounding down
//     never exceeds the box or the source (853×480 gives 852×480, not 854×480);
//   - once a box holds the whole source, that layer is the source size and no higher layer is added;
//   - a layer no larger than the one below it is dropped (the lower quality label is kept).
//
// The official keeps the box bitrate whatever the fitted size; here the bitrate scales by
// (used area / box area)^0.75, the same model the presets use between layers, so a 4:3 source in a
// 16:9 box, or a small source, is not given bits it cannot use.
func (v VideoPlan) Fit(srcW, srcH int) []Layer {
	if srcW <= 0 || srcH <= 0 {
		return nil
	}
	var out []Layer
	for _, box := range v.Layers {
		l := fitLayer(box, srcW, srcH)
		if n := len(out); n == 0 || l.Width > out[n-1].Width || l.Height > out[n-1].Height {
			out = append(out, l)
		}
		if box.Width >= srcW && box.Height >= srcH {
			break
		}
	}
	return out
}

func fitLayer(box Layer, srcW, srcH int) Layer {
	w, h := srcW, srcH
	if w > box.Width {
		w, h = box.Width, box.Width*srcH/srcW
	}
	if h > box.Height {
		w, h = box.Height*srcW/srcH, box.Height
	}
	w, h = evenFloor(w), evenFloor(h)
	l := Layer{Quality: box.Quality, Width: w, Height: h, Bitrate: box.Bitrate}
	if boxArea := box.Width * box.Height; boxArea > 0 && w*h < boxArea {
		l.Bitrate = scaleBitrate(box.Bitrate, float64(w*h)/float64(boxArea))
	}
	return l
}

func evenFloor(n int) int {
	return max(2, n&^1)
}

// ResourceID returns a new RTMP session id: "RT_" and 12 characters of protocol's guid alphabet
// (shortuuid's base57, which is alphanumeric).
func ResourceID() string {
	return ResourceIDFor(livekit.IngressInput_RTMP_INPUT)
}

// ResourceIDFor returns a new session id with the official prefix for the input type.
func ResourceIDFor(input livekit.IngressInput) string {
	switch input {
	case livekit.IngressInput_WHIP_INPUT:
		return utils.NewGuid(utils.WHIPResourcePrefix)
	case livekit.IngressInput_URL_INPUT:
		return utils.NewGuid(utils.URLResourcePrefix)
	default:
		return utils.NewGuid(utils.RTMPResourcePrefix)
	}
}

// Token mints the participant token the official worker mints when IOInfo returns none: identity,
// name and metadata from info, kind INGRESS, attribute ingress.ingressID, RoomJoin to room_name with
// CanPublish, no CanSubscribe, CanUpdateOwnMetadata, valid 24 h.
func Token(apiKey, secret string, info *livekit.IngressInfo) (string, error) {
	if info == nil {
		return "", badIngress("info", "missing")
	}
	tok, err := lkingress.BuildIngressToken(apiKey, secret, info.RoomName, info.ParticipantIdentity,
		info.ParticipantName, info.ParticipantMetadata, info.IngressId)
	if err != nil {
		return "", fmt.Errorf("build ingress token: %w", err)
	}
	return tok, nil
}

// Validate checks a CreateIngress-like info as protocol/ingress/validation.go does: room_name and
// participant_identity set, a stream_key for RTMP/WHIP, a url for URL (which cannot be created
// disabled), transcoding on for RTMP/URL and no encoding options with transcoding off, then the
// audio and video options. Errors are *FieldError wrapping ErrInvalidIngress or ErrInvalidOptions.
func Validate(info *livekit.IngressInfo) error {
	if info == nil {
		return badIngress("info", "missing")
	}
	if info.RoomName == "" {
		return badIngress("room_name", "required")
	}
	switch info.InputType {
	case livekit.IngressInput_RTMP_INPUT, livekit.IngressInput_WHIP_INPUT:
		if info.StreamKey == "" {
			return badIngress("stream_key", "required for %v", info.InputType)
		}
	case livekit.IngressInput_URL_INPUT:
		if info.Url == "" {
			return badIngress("url", "required for URL_INPUT")
		}
		if info.Enabled != nil && !*info.Enabled {
			return badIngress("enabled", "a URL ingress is not reusable and cannot be disabled")
		}
	default:
		return badIngress("input_type", "unsupported value %v", info.InputType)
	}
	if info.ParticipantIdentity == "" {
		return badIngress("participant_identity", "required")
	}
	if err := checkTranscoding(info); err != nil {
		return err
	}
	if err := checkVideo(info.Video); err != nil {
		return err
	}
	return checkAudio(info.Audio)
}

// TranscodingEnabled reports the effective enable_transcoding: it defaults to false for WHIP and
// true otherwise; the deprecated bypass_transcoding turns it off.
func TranscodingEnabled(info *livekit.IngressInfo) bool {
	if info.GetBypassTranscoding() {
		return false
	}
	if info.EnableTranscoding != nil {
		return *info.EnableTranscoding
	}
	return info.GetInputType() != livekit.IngressInput_WHIP_INPUT
}

func checkTranscoding(info *livekit.IngressInfo) error {
	if info.InputType != livekit.IngressInput_WHIP_INPUT {
		if info.BypassTranscoding {
			return badIngress("bypass_transcoding", "only WHIP can bypass transcoding")
		}
		if info.EnableTranscoding != nil && !*info.EnableTranscoding {
			return badIngress("enable_transcoding", "only WHIP can disable transcoding")
		}
	}
	if TranscodingEnabled(info) {
		return nil
	}
	if info.Video.GetEncodingOptions() != nil {
		return badOption("video", "encoding options must be empty when transcoding is disabled")
	}
	if info.Audio.GetEncodingOptions() != nil {
		return badOption("audio", "encoding options must be empty when transcoding is disabled")
	}
	return nil
}

func checkVideo(o *livekit.IngressVideoOptions) error {
	switch o.GetSource() {
	case livekit.TrackSource_UNKNOWN, livekit.TrackSource_CAMERA, livekit.TrackSource_SCREEN_SHARE:
	default:
		return badOption("video.source", "%v is not a video source", o.GetSource())
	}
	switch e := o.GetEncodingOptions().(type) {
	case *livekit.IngressVideoOptions_Preset:
		if _, ok := videoPresets[e.Preset]; !ok {
			return badOption("video.preset", "unknown preset %d", int32(e.Preset))
		}
	case *livekit.IngressVideoOptions_Options:
		return checkVideoEncoding(e.Options)
	}
	return nil
}

func checkVideoEncoding(o *livekit.IngressVideoEncodingOptions) error {
	if o == nil {
		return badOption("video.options", "empty")
	}
	if o.FrameRate < 0 || math.IsNaN(o.FrameRate) || math.IsInf(o.FrameRate, 0) {
		return badOption("video.options.frame_rate", "must be a finite value ≥ 0, got %v", o.FrameRate)
	}
	switch o.VideoCodec {
	case livekit.VideoCodec_DEFAULT_VC, livekit.VideoCodec_H264_BASELINE, livekit.VideoCodec_VP8:
	default:
		return badOption("video.options.video_codec", "%v is not supported (H264_BASELINE or VP8)", o.VideoCodec)
	}
	return checkLayers(o.Layers)
}

// checkLayers wants even non-zero dimensions, one layer per quality, and width and height that do
// not decrease with quality. Qualities other than LOW/MEDIUM/HIGH are refused: the official
// validation lets OFF through and the worker then silently never encodes that layer.
func checkLayers(layers []*livekit.VideoLayer) error {
	byQuality := make(map[livekit.VideoQuality]*livekit.VideoLayer, len(layers))
	for i, l := range layers {
		field := fmt.Sprintf("video.options.layers[%d]", i)
		switch {
		case l == nil:
			return badOption(field, "empty")
		case l.Quality > livekit.VideoQuality_HIGH:
			return badOption(field+".quality", "must be LOW, MEDIUM or HIGH, got %v", l.Quality)
		case l.Width == 0 || l.Width%2 == 1:
			return badOption(field+".width", "must be even and non-zero, got %d", l.Width)
		case l.Height == 0 || l.Height%2 == 1:
			return badOption(field+".height", "must be even and non-zero, got %d", l.Height)
		}
		if _, dup := byQuality[l.Quality]; dup {
			return badOption(field+".quality", "more than one layer with quality %v", l.Quality)
		}
		byQuality[l.Quality] = l
	}
	var prev *livekit.VideoLayer
	for q := livekit.VideoQuality_LOW; q <= livekit.VideoQuality_HIGH; q++ {
		l, ok := byQuality[q]
		if !ok {
			continue
		}
		if prev != nil && (l.Width < prev.Width || l.Height < prev.Height) {
			return badOption("video.options.layers", "%v layer %dx%d is smaller than %v layer %dx%d",
				q, l.Width, l.Height, prev.Quality, prev.Width, prev.Height)
		}
		prev = l
	}
	return nil
}

func checkAudio(o *livekit.IngressAudioOptions) error {
	switch o.GetSource() {
	case livekit.TrackSource_UNKNOWN, livekit.TrackSource_MICROPHONE, livekit.TrackSource_SCREEN_SHARE_AUDIO:
	default:
		return badOption("audio.source", "%v is not an audio source", o.GetSource())
	}
	switch e := o.GetEncodingOptions().(type) {
	case *livekit.IngressAudioOptions_Preset:
		if _, ok := audioPresets[e.Preset]; !ok {
			return badOption("audio.preset", "unknown preset %d", int32(e.Preset))
		}
	case *livekit.IngressAudioOptions_Options:
		if e.Options == nil {
			return badOption("audio.options", "empty")
		}
		switch e.Options.AudioCodec {
		case livekit.AudioCodec_DEFAULT_AC, livekit.AudioCodec_OPUS:
		default:
			return badOption("audio.options.audio_codec", "%v is not supported (OPUS)", e.Options.AudioCodec)
		}
		if e.Options.Channels > 2 {
			return badOption("audio.options.channels", "at most 2, got %d", e.Options.Channels)
		}
	}
	return nil
}
