package egress

import (
	"net/url"
	"strings"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
)

// encodedRequest is what the transcoding request kinds share.
type encodedRequest interface {
	GetPreset() livekit.EncodingOptionsPreset
	GetAdvanced() *livekit.EncodingOptions
	GetFileOutputs() []*livekit.EncodedFileOutput
	GetStreamOutputs() []*livekit.StreamOutput
	GetSegmentOutputs() []*livekit.SegmentedFileOutput
	GetImageOutputs() []*livekit.ImageOutput
}

// singleOutputs are the deprecated one-output fields of room and track composite requests.
type singleOutputs interface {
	GetFile() *livekit.EncodedFileOutput
	GetStream() *livekit.StreamOutput
	GetSegments() *livekit.SegmentedFileOutput
}

// inspectEncoded validates a transcoding request's outputs and encoding, so that a request that can
// never work is refused with InvalidArgument naming the field, whatever kind serves it.
func inspectEncoded(req encodedRequest, audioOnly bool) (*Encoding, error) {
	files := encodedFiles(req)
	streams := req.GetStreamOutputs()
	segments := req.GetSegmentOutputs()
	if s, ok := req.(singleOutputs); ok {
		if st := s.GetStream(); st != nil {
			streams = append(streams, st)
		}
		if sg := s.GetSegments(); sg != nil {
			segments = append(segments, sg)
		}
	}
	if len(files)+len(streams)+len(segments)+len(req.GetImageOutputs()) == 0 {
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "no output: set file_outputs, stream_outputs, segment_outputs or image_outputs")
	}
	if len(files) > 1 {
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "file_outputs: at most one file output per egress")
	}
	for _, s := range streams {
		if len(s.GetUrls()) == 0 {
			return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "stream_outputs: urls is empty")
		}
		for _, raw := range s.GetUrls() {
			if err := checkStreamURL(s.GetProtocol(), raw); err != nil {
				return nil, err
			}
		}
	}
	for _, sg := range segments {
		if sg.GetSegmentDuration() < 0 {
			return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "segment_outputs.segment_duration must be ≥ 0 seconds")
		}
	}
	fileType := livekit.EncodedFileType_DEFAULT_FILETYPE
	if len(files) == 1 {
		fileType = resolvedFileType(files[0], audioOnly)
	}
	enc, err := ResolveEncoding(req.GetPreset(), req.GetAdvanced(), fileType, audioOnly)
	if err == nil && len(streams)+len(segments) > 0 && enc.AudioCodec != livekit.AudioCodec_AAC {
		return nil, invalid("audio_codec", "%v cannot go to stream or segment outputs, which carry AAC; use AAC (with an MP4 file if there is one)", enc.AudioCodec)
	}
	return enc, err
}

// streamOutputs is the request's stream outputs, the deprecated single `stream` included.
func streamOutputs(req encodedRequest) []*livekit.StreamOutput {
	out := req.GetStreamOutputs()
	if s, ok := req.(singleOutputs); ok && s.GetStream() != nil {
		out = append(append([]*livekit.StreamOutput{}, out...), s.GetStream())
	}
	return out
}

// encodedFiles is the request's file outputs, the deprecated single `file` included.
func encodedFiles(req encodedRequest) []*livekit.EncodedFileOutput {
	files := req.GetFileOutputs()
	if s, ok := req.(singleOutputs); ok && s.GetFile() != nil {
		files = append(append([]*livekit.EncodedFileOutput{}, files...), s.GetFile())
	}
	return files
}

// resolvedFileType is the container a file output gets: as asked, else OGG for audio only
// (the official default) and MP4 otherwise.
func resolvedFileType(f *livekit.EncodedFileOutput, audioOnly bool) livekit.EncodedFileType {
	switch t := f.GetFileType(); {
	case t != livekit.EncodedFileType_DEFAULT_FILETYPE:
		return t
	case audioOnly:
		return livekit.EncodedFileType_OGG
	}
	return livekit.EncodedFileType_MP4
}

// webSocketNeedsAudio refuses WebSocket destinations (which receive the egress's audio as PCM)
// on an egress without audio; noAudio says why it has none ("" when it has audio).
func webSocketNeedsAudio(outs []*livekit.StreamOutput, noAudio string) error {
	if noAudio == "" {
		return nil
	}
	for _, o := range outs {
		for _, raw := range o.GetUrls() {
			if err := webSocketAudio(raw, noAudio); err != nil {
				return err
			}
		}
	}
	return nil
}

func webSocketAudio(raw, noAudio string) error {
	if noAudio == "" || !pipeline.IsWebSocketURL(raw) {
		return nil
	}
	return psrpc.NewErrorf(psrpc.InvalidArgument, "stream_outputs.urls: %s receives the egress's audio, and this egress has none (%s); stream its video to an rtmp:// or srt:// URL",
		redactStreamURL(raw), noAudio)
}

// checkStreamURL accepts the schemes the official egress streams to, matching the output's protocol
// (DEFAULT_PROTOCOL takes either).
func checkStreamURL(protocol livekit.StreamProtocol, raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	ok := false
	if err == nil {
		switch u.Scheme {
		case "rtmp", "rtmps":
			ok = u.Host != "" && strings.Trim(u.Path, "/") != "" && protocol != livekit.StreamProtocol_SRT
		case "mux", "twitch":
			ok = u.Opaque != "" || u.Host != ""
			ok = ok && protocol != livekit.StreamProtocol_SRT
		case "srt":
			ok = u.Host != "" && u.Port() != "" && protocol != livekit.StreamProtocol_RTMP
		case "ws", "wss":
			ok = u.Host != "" && (protocol == livekit.StreamProtocol_DEFAULT_PROTOCOL || protocol == livekit.StreamProtocol_WEBSOCKET)
		}
		if protocol == livekit.StreamProtocol_WEBSOCKET && u.Scheme != "ws" && u.Scheme != "wss" {
			ok = false
		}
	}
	if ok {
		return nil
	}
	want := "an rtmp://host/app/key, rtmps://, mux://key, twitch://key, srt://host:port or ws(s)://host/path URL"
	switch protocol {
	case livekit.StreamProtocol_RTMP:
		want = "an rtmp://host/app/key, rtmps://, mux://key or twitch://key URL (protocol RTMP)"
	case livekit.StreamProtocol_SRT:
		want = "an srt://host:port URL (protocol SRT)"
	case livekit.StreamProtocol_WEBSOCKET:
		want = "a ws://host/path or wss://host/path URL (protocol WEBSOCKET)"
	}
	return psrpc.NewErrorf(psrpc.InvalidArgument, "stream_outputs.urls: %q is not %s", redactStreamURL(raw), want)
}
