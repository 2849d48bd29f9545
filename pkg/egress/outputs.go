package egress

import (
	"errors"
	"strings"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
)

// outputsSupported says what participant, track composite and room composite egress can write
// today: at most one file, and stream outputs.
func outputsSupported(req encodedRequest, audioOnly bool) error {
	if len(req.GetSegmentOutputs())+len(req.GetImageOutputs()) > 0 {
		return psrpc.NewErrorf(psrpc.Unimplemented, "segment and image outputs are %v; file and stream outputs work", ErrUnimplemented)
	}
	if s, ok := req.(singleOutputs); ok && s.GetSegments() != nil {
		return psrpc.NewErrorf(psrpc.Unimplemented, "segment outputs are %v; file and stream outputs work", ErrUnimplemented)
	}
	files := encodedFiles(req)
	if len(files) == 0 {
		return nil
	}
	f := files[0]
	if t := f.GetFileType(); !audioOnly && t != livekit.EncodedFileType_DEFAULT_FILETYPE && t != livekit.EncodedFileType_MP4 {
		return psrpc.NewErrorf(psrpc.InvalidArgument, "a recording with video needs file_type MP4")
	}
	if f.GetAliOSS() != nil {
		return psrpc.NewErrorf(psrpc.Unimplemented, "AliOSS storage is %v; use S3, GCP, Azure or local storage", ErrUnimplemented)
	}
	return nil
}

// startStreams starts the request's stream destinations; the returned taps feed them (nil when the
// request has none).
func (rec *recording) startStreams(req encodedRequest, video, audio bool, audioRate, audioKbps int) *pipeline.Taps {
	outs := streamOutputs(req)
	if len(outs) == 0 {
		return nil
	}
	rec.streams = newStreams(rec.log, video, audio, audioRate, audioKbps)
	for _, o := range outs {
		for _, u := range o.GetUrls() {
			rec.streams.add(u)
		}
	}
	rec.info.StreamResults = rec.streams.results()
	return rec.streams.taps()
}

// streamsChanged fires when a destination's status changes; nil (never) without streams.
func (rec *recording) streamsChanged() <-chan struct{} {
	if rec.streams == nil {
		return nil
	}
	return rec.streams.changed
}

// onStreamsChanged reports the destinations' status; when every destination has failed and
// nothing else is recorded, the egress ends FAILED.
func (rec *recording) onStreamsChanged() (string, error) {
	rec.info.StreamResults = rec.streams.results()
	if rec.frames > 0 {
		rec.env.Status(rec.info)
	}
	if rec.streams.live() > 0 || rec.file != nil {
		return "", nil
	}
	var msgs []string
	for _, r := range rec.info.StreamResults {
		msgs = append(msgs, r.Url+": "+r.Error)
	}
	return livekit.EndReasonFailure, errors.New("every stream destination failed: " + strings.Join(msgs, "; "))
}

// updateStream applies an UpdateStream (validated by the worker). Removing the last destination
// of an egress that records nothing else ends it ("All streams stopped").
func (rec *recording) updateStream(u *livekit.UpdateStreamRequest) string {
	if rec.streams == nil {
		return ""
	}
	for _, url := range u.GetAddOutputUrls() {
		rec.streams.add(url)
	}
	for _, url := range u.GetRemoveOutputUrls() {
		if rec.streams.remove(url) {
			rec.log.Info("stream removed (UpdateStream)", "url", redactStreamURL(url))
		}
	}
	rec.info.StreamResults = rec.streams.results()
	if rec.frames > 0 {
		rec.env.Status(rec.info)
	}
	if rec.streams.live() == 0 && rec.file == nil {
		return livekit.EndReasonStreamsStopped
	}
	return ""
}

// closeStreams ends the destinations after the pipeline has drained and records their results.
func (rec *recording) closeStreams() {
	if rec.streams == nil {
		return
	}
	rec.streams.close()
	rec.info.StreamResults = rec.streams.results()
}

// StreamURLs is the worker's view of an egress's live stream destinations, to validate
// UpdateStream before it reaches the job process.
type StreamURLs struct {
	protocol livekit.StreamProtocol
	live     map[string]bool
}

// NewStreamURLs is the stream destinations r starts with; nil when r has no stream output.
func NewStreamURLs(r *Request) *StreamURLs {
	req := encodedOf(r.Job)
	if req == nil {
		return nil
	}
	outs := streamOutputs(req)
	if len(outs) == 0 {
		return nil
	}
	s := &StreamURLs{protocol: outs[0].GetProtocol(), live: map[string]bool{}}
	for _, o := range outs {
		for _, u := range o.GetUrls() {
			s.live[strings.TrimSpace(u)] = true
		}
	}
	return s
}

// Apply validates u (URLs well formed and of the egress's protocol, added ones new, removed ones
// live) and records it. Errors are psrpc errors for the API caller.
func (s *StreamURLs) Apply(u *livekit.UpdateStreamRequest) error {
	if s == nil {
		return psrpc.NewErrorf(psrpc.InvalidArgument, "egress %s has no stream output to update", u.GetEgressId())
	}
	if len(u.GetAddOutputUrls())+len(u.GetRemoveOutputUrls()) == 0 {
		return psrpc.NewErrorf(psrpc.InvalidArgument, "UpdateStream: set add_output_urls or remove_output_urls")
	}
	for _, raw := range u.GetAddOutputUrls() {
		if err := checkStreamURL(s.protocol, raw); err != nil {
			return err
		}
		if s.live[strings.TrimSpace(raw)] {
			return psrpc.NewErrorf(psrpc.AlreadyExists, "UpdateStream: already streaming to %s", redactStreamURL(raw))
		}
	}
	for _, raw := range u.GetRemoveOutputUrls() {
		if !s.live[strings.TrimSpace(raw)] {
			return psrpc.NewErrorf(psrpc.NotFound, "UpdateStream: not streaming to %s", redactStreamURL(raw))
		}
	}
	for _, raw := range u.GetAddOutputUrls() {
		s.live[strings.TrimSpace(raw)] = true
	}
	for _, raw := range u.GetRemoveOutputUrls() {
		delete(s.live, strings.TrimSpace(raw))
	}
	return nil
}

// encodedOf is the transcoding request inside a job, nil for track egress.
func encodedOf(job *rpc.StartEgressRequest) encodedRequest {
	switch q := job.Request.(type) {
	case *rpc.StartEgressRequest_Participant:
		return q.Participant
	case *rpc.StartEgressRequest_TrackComposite:
		return q.TrackComposite
	case *rpc.StartEgressRequest_RoomComposite:
		return q.RoomComposite
	}
	return nil
}
