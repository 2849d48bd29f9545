package egress

import (
	"net/url"
	"strings"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"
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
			if err := checkStreamURL(raw); err != nil {
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
	return ResolveEncoding(req.GetPreset(), req.GetAdvanced(), fileType, audioOnly)
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

// checkStreamURL accepts the schemes the official egress streams to.
func checkStreamURL(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err == nil {
		switch u.Scheme {
		case "rtmp", "rtmps", "srt":
			if u.Host != "" {
				return nil
			}
		case "mux", "twitch":
			return nil
		}
	}
	return psrpc.NewErrorf(psrpc.InvalidArgument, "stream_outputs.urls: %q is not an rtmp://, rtmps:// or srt:// URL", redactStreamURL(raw))
}

// redactStreamURL hides the stream key (the last path segment) of an RTMP URL in reports.
func redactStreamURL(raw string) string {
	if i := strings.LastIndex(raw, "/"); i > 0 && i < len(raw)-1 {
		return raw[:i+1] + "{stream_key}"
	}
	return raw
}
