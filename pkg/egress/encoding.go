package egress

import (
	"fmt"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"
)

// Encoding is a resolved transcoding plan: a preset or advanced options with defaults filled in.
type Encoding struct {
	Width, Height    int32
	Depth            int32
	Framerate        int32
	VideoCodec       livekit.VideoCodec // H264_BASELINE, H264_MAIN or H264_HIGH
	VideoKbps        int32
	AudioCodec       livekit.AudioCodec // OPUS, AAC or AC_MP3
	AudioKbps        int32
	AudioFrequency   int32
	KeyFrameInterval float64 // seconds; 0 = the encoder's default
}

// presets is the official table (protocol's EncodingOptionsPreset): H.264 Main, audio 128 kb/s.
var presets = map[livekit.EncodingOptionsPreset]Encoding{
	livekit.EncodingOptionsPreset_H264_720P_30:           {Width: 1280, Height: 720, Framerate: 30, VideoKbps: 3000},
	livekit.EncodingOptionsPreset_H264_720P_60:           {Width: 1280, Height: 720, Framerate: 60, VideoKbps: 4500},
	livekit.EncodingOptionsPreset_H264_1080P_30:          {Width: 1920, Height: 1080, Framerate: 30, VideoKbps: 4500},
	livekit.EncodingOptionsPreset_H264_1080P_60:          {Width: 1920, Height: 1080, Framerate: 60, VideoKbps: 6000},
	livekit.EncodingOptionsPreset_PORTRAIT_H264_720P_30:  {Width: 720, Height: 1280, Framerate: 30, VideoKbps: 3000},
	livekit.EncodingOptionsPreset_PORTRAIT_H264_720P_60:  {Width: 720, Height: 1280, Framerate: 60, VideoKbps: 4500},
	livekit.EncodingOptionsPreset_PORTRAIT_H264_1080P_30: {Width: 1080, Height: 1920, Framerate: 30, VideoKbps: 4500},
	livekit.EncodingOptionsPreset_PORTRAIT_H264_1080P_60: {Width: 1080, Height: 1920, Framerate: 60, VideoKbps: 6000},
}

// Bit rates this large are taken as bits per second (users and some docs write 6_000_000 for
// 6 Mb/s; the protocol's unit is kb/s). No real encode asks for 100 Gb/s video or 1 Gb/s audio.
const (
	videoBpsThreshold = 100_000
	audioBpsThreshold = 1_000
)

func invalid(field, format string, a ...any) error {
	return psrpc.NewErrorf(psrpc.InvalidArgument, "encoding: %s %s", field, fmt.Sprintf(format, a...))
}

// ResolveEncoding turns a preset or advanced options into a plan, refusing what cannot work with
// InvalidArgument naming the field. fileType is the file output's container (DEFAULT_FILETYPE when
// there is none); audioOnly drops video.
func ResolveEncoding(preset livekit.EncodingOptionsPreset, adv *livekit.EncodingOptions, fileType livekit.EncodedFileType, audioOnly bool) (*Encoding, error) {
	base, ok := presets[preset]
	if !ok {
		return nil, invalid("preset", "%v is not a known preset", preset)
	}
	e := base
	e.Depth, e.VideoCodec, e.AudioKbps, e.AudioFrequency = 24, livekit.VideoCodec_H264_MAIN, 128, 44100
	if adv != nil {
		if err := applyAdvanced(&e, adv); err != nil {
			return nil, err
		}
	}
	if err := fitContainer(&e, adv, fileType, audioOnly); err != nil {
		return nil, err
	}
	return &e, nil
}

func applyAdvanced(e *Encoding, o *livekit.EncodingOptions) error {
	if o.Width != 0 || o.Height != 0 {
		for field, v := range map[string]int32{"width": o.Width, "height": o.Height} {
			if v < 16 || v > 4096 || v%2 != 0 {
				return invalid(field, "must be an even number from 16 to 4096 (got %d); set both width and height", v)
			}
		}
		e.Width, e.Height = o.Width, o.Height
	}
	switch o.Depth {
	case 0:
	case 8, 16, 24:
		e.Depth = o.Depth
	default:
		return invalid("depth", "must be 8, 16 or 24 (got %d)", o.Depth)
	}
	if o.Framerate != 0 {
		if o.Framerate < 1 || o.Framerate > 60 {
			return invalid("framerate", "must be 1 to 60 (got %d)", o.Framerate)
		}
		e.Framerate = o.Framerate
	}
	if v := o.VideoBitrate; v != 0 {
		if v >= videoBpsThreshold {
			v /= 1000
		}
		if v < 100 || v > 50_000 {
			return invalid("video_bitrate", "must be 100 to 50000 kb/s (got %d)", o.VideoBitrate)
		}
		e.VideoKbps = v
	} else if o.Width != 0 {
		e.VideoKbps = scaleBitrate(e.VideoKbps, int64(e.Width)*int64(e.Height), 1280*720)
	}
	switch o.VideoCodec {
	case livekit.VideoCodec_DEFAULT_VC:
	case livekit.VideoCodec_H264_BASELINE, livekit.VideoCodec_H264_MAIN, livekit.VideoCodec_H264_HIGH:
		e.VideoCodec = o.VideoCodec
	default:
		return invalid("video_codec", "%v is not supported for encoding; use H264_BASELINE, H264_MAIN or H264_HIGH", o.VideoCodec)
	}
	if v := o.AudioBitrate; v != 0 {
		if v >= audioBpsThreshold {
			v /= 1000
		}
		if v < 8 || v > 512 {
			return invalid("audio_bitrate", "must be 8 to 512 kb/s (got %d)", o.AudioBitrate)
		}
		e.AudioKbps = v
	}
	e.AudioCodec = o.AudioCodec
	if o.AudioFrequency != 0 {
		switch o.AudioFrequency {
		case 8000, 16000, 22050, 24000, 32000, 44100, 48000:
			e.AudioFrequency = o.AudioFrequency
		default:
			return invalid("audio_frequency", "must be 8000, 16000, 22050, 24000, 32000, 44100 or 48000 (got %d)", o.AudioFrequency)
		}
	}
	if o.KeyFrameInterval < 0 || o.KeyFrameInterval > 60 {
		return invalid("key_frame_interval", "must be 0 (encoder default) to 60 seconds (got %v)", o.KeyFrameInterval)
	}
	e.KeyFrameInterval = o.KeyFrameInterval
	return nil
}

// scaleBitrate keeps bits per pixel when only the size changes.
func scaleBitrate(kbps int32, pixels, basePixels int64) int32 {
	return int32(max(300, int64(kbps)*pixels/basePixels))
}

// fitContainer picks the audio codec the container needs and refuses combinations it cannot hold.
func fitContainer(e *Encoding, adv *livekit.EncodingOptions, fileType livekit.EncodedFileType, audioOnly bool) error {
	requested := adv.GetAudioCodec()
	switch fileType {
	case livekit.EncodedFileType_OGG:
		if !audioOnly {
			return invalid("file_type", "OGG holds audio only: set audio_only or use MP4")
		}
		if requested != livekit.AudioCodec_DEFAULT_AC && requested != livekit.AudioCodec_OPUS {
			return invalid("audio_codec", "%v cannot go in OGG; use OPUS", requested)
		}
		e.AudioCodec = livekit.AudioCodec_OPUS
	case livekit.EncodedFileType_MP3:
		if !audioOnly {
			return invalid("file_type", "MP3 holds audio only: set audio_only or use MP4")
		}
		if requested != livekit.AudioCodec_DEFAULT_AC && requested != livekit.AudioCodec_AC_MP3 {
			return invalid("audio_codec", "%v cannot go in an MP3 file; use AC_MP3", requested)
		}
		e.AudioCodec = livekit.AudioCodec_AC_MP3
	default: // MP4, or no file output
		if requested == livekit.AudioCodec_AC_MP3 {
			return invalid("audio_codec", "AC_MP3 cannot go in MP4; use AAC or OPUS, or an MP3 file")
		}
		if requested == livekit.AudioCodec_DEFAULT_AC {
			e.AudioCodec = livekit.AudioCodec_AAC
		}
	}
	if e.AudioCodec == livekit.AudioCodec_OPUS {
		e.AudioFrequency = 48000 // Opus runs at 48 kHz whatever is asked
	}
	return nil
}
