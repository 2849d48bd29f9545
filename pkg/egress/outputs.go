package egress

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/container"
	"github.com/mediaworker/mediaworker/pkg/pipeline"
)

// outputsSupported says what participant, track composite and room composite egress can write
// today: at most one file, one HLS output, and stream outputs.
func outputsSupported(req encodedRequest, audioOnly bool) error {
	for _, im := range req.GetImageOutputs() {
		if im.GetAliOSS() != nil {
			return errAliOSS("")
		}
		if audioOnly {
			return psrpc.NewErrorf(psrpc.InvalidArgument, "image_outputs need video: the request is audio only")
		}
	}
	segs := segmentOutputs(req)
	if len(segs) > 1 {
		return psrpc.NewErrorf(psrpc.InvalidArgument, "segment_outputs: at most one segment output per egress")
	}
	if len(segs) == 1 {
		if segs[0].GetAliOSS() != nil {
			return errAliOSS("")
		}
		if _, err := segmentNamesFor(segs[0], FileVars{}); err != nil {
			return psrpc.NewErrorf(psrpc.InvalidArgument, "segment_outputs: %v", err)
		}
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
		return errAliOSS("")
	}
	return nil
}

// imagesOnly says whether a request asks for stills and nothing else (its audio is not needed).
func imagesOnly(req encodedRequest) bool {
	return len(req.GetImageOutputs()) > 0 && len(encodedFiles(req))+len(streamOutputs(req))+len(segmentOutputs(req)) == 0
}

// segmentOutputs is the request's segment outputs, the deprecated single `segments` included.
func segmentOutputs(req encodedRequest) []*livekit.SegmentedFileOutput {
	out := req.GetSegmentOutputs()
	if s, ok := req.(singleOutputs); ok && s.GetSegments() != nil {
		out = append(append([]*livekit.SegmentedFileOutput{}, out...), s.GetSegments())
	}
	return out
}

// encodedOutputs are what a transcoding egress writes outside its pipeline, from the encoder taps.
type encodedOutputs struct {
	video, audio bool
	audioRate    int
	audioKbps    int
	framerate    int
}

// startTapped starts the request's stream destinations and HLS output. It returns the taps that
// feed them (nil when there are none) and, with an HLS output, the keyframe interval (frames) that
// puts keyframes on segment boundaries.
func (rec *recording) startTapped(ctx context.Context, req encodedRequest, o encodedOutputs, vars FileVars) (*pipeline.Taps, int, error) {
	keyint := 0
	if segs := segmentOutputs(req); len(segs) == 1 {
		seg, err := rec.startSegments(ctx, segs[0], o, vars)
		if err != nil {
			return nil, 0, err
		}
		rec.segments = seg
		keyint = segmentKeyint(seg.segmentDuration(), o.framerate)
	}
	if outs := streamOutputs(req); len(outs) > 0 {
		rec.streams = newStreams(rec.log, o.video, o.audio, o.audioRate, o.audioKbps)
		for _, out := range outs {
			for _, u := range out.GetUrls() {
				rec.streams.add(u)
			}
		}
		rec.info.StreamResults = rec.streams.results()
	}
	if rec.streams == nil && rec.segments == nil {
		return nil, keyint, nil
	}
	push := func(smp encodedSample) {
		if rec.streams != nil {
			rec.streams.push(smp)
		}
		if rec.segments != nil {
			rec.segments.push(smp)
		}
	}
	return &pipeline.Taps{
		Video: func(au []byte, pts time.Duration) {
			push(encodedSample{video: true, key: container.H264Keyframe(au), data: au, pts: pts})
		},
		Audio: func(frame []byte, pts time.Duration) { push(encodedSample{data: frame, pts: pts}) },
	}, keyint, nil
}

// segmentKeyint is the keyframe interval (frames) dividing segments of d evenly, at most 2 s.
func segmentKeyint(d time.Duration, fps int) int {
	n := int(math.Ceil(d.Seconds() / 2))
	return max(1, int(math.Round(d.Seconds()*float64(fps)/float64(n))))
}

// startSegments resolves the HLS output's storage and starts it.
func (rec *recording) startSegments(ctx context.Context, sg *livekit.SegmentedFileOutput, o encodedOutputs, vars FileVars) (*segmentOutput, error) {
	dest, err := resolveStorage(ctx, rec.env.Conf, storageOf(sg.GetS3(), sg.GetGcp(), sg.GetAzure(), nil))
	if err != nil {
		return nil, psrpc.NewError(psrpc.InvalidArgument, err)
	}
	warning, err := dest.check(ctx)
	if err != nil {
		return nil, err
	}
	if warning != nil {
		rec.log.Warn("segment storage not usable now; recording anyway, each upload is retried (then the backup storage, if any)", "error", warning)
	}
	names, err := segmentNamesFor(sg, vars)
	if err != nil {
		return nil, psrpc.NewError(psrpc.InvalidArgument, err)
	}
	dir := filepath.Join(rec.env.Conf.TmpDir, rec.info.EgressId, "segments")
	if dest.primary == nil {
		dir = filepath.Join(rec.env.Conf.LocalOutputDir, filepath.FromSlash(names.dir))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the segment directory (check local_output_dir / tmp_dir permissions): %w", err)
	}
	seg, err := newSegmentOutput(segmentParams{Out: sg, Vars: vars, WorkDir: dir, Dest: dest, Video: o.video, Audio: o.audio,
		AudioRate: o.audioRate, Start: time.Now(), Log: rec.log})
	if err != nil {
		return nil, err
	}
	rec.segDest = dest
	rec.log.Info("writing HLS", "playlist", names.key(names.playlist), "segment_seconds", seg.segmentDuration().Seconds(), "dir", dir)
	return seg, nil
}

// closeSegments finishes the HLS output after the pipeline has drained: last segment, final
// playlists, every upload.
func (rec *recording) closeSegments(ctx context.Context) error {
	if rec.segments == nil {
		return nil
	}
	info, err := rec.segments.close(ctx)
	if info != nil && rec.segDest.primary != nil && !rec.segments.usedBackup() {
		info.PlaylistLocation = presigned(ctx, rec.env.Conf, rec.log, rec.segDest.primary, info.PlaylistName, info.PlaylistLocation)
		if info.LivePlaylistName != "" {
			info.LivePlaylistLocation = presigned(ctx, rec.env.Conf, rec.log, rec.segDest.primary, info.LivePlaylistName, info.LivePlaylistLocation)
		}
	}
	if info != nil {
		rec.info.SegmentResults = []*livekit.SegmentsInfo{info}
		if rec.file == nil {
			rec.info.Result = &livekit.EgressInfo_Segments{Segments: info}
		}
		rec.log.Info("HLS stored", "playlist", info.PlaylistLocation, "segments", info.SegmentCount, "bytes", info.Size,
			"duration", time.Duration(info.Duration).String())
	}
	if rec.segments.usedBackup() {
		rec.info.SetBackupUsed()
	}
	return err
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
	if rec.streams.live() > 0 || rec.recordsMore() {
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
	if rec.streams.live() == 0 && !rec.recordsMore() {
		return livekit.EndReasonStreamsStopped
	}
	return ""
}

// recordsMore says whether the egress writes something besides its streams (a file, HLS, images).
func (rec *recording) recordsMore() bool {
	return rec.file != nil || rec.segments != nil || len(rec.images) > 0
}

// closeTapped ends the stream destinations and the HLS output after the pipeline has drained,
// and records their results.
func (rec *recording) closeTapped(ctx context.Context) error {
	if rec.streams != nil {
		rec.streams.close()
		rec.info.StreamResults = rec.streams.results()
	}
	return errors.Join(rec.closeSegments(ctx), rec.closeImages(ctx))
}

// StreamURLs is the worker's view of an egress's live stream destinations, to validate
// UpdateStream before it reaches the job process.
type StreamURLs struct {
	protocol livekit.StreamProtocol
	noAudio  string // why the egress has no audio, for WebSocket destinations ("" when it has)
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
	s := &StreamURLs{protocol: outs[0].GetProtocol(), noAudio: r.NoAudio, live: map[string]bool{}}
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
		if err := webSocketAudio(raw, s.noAudio); err != nil {
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

// Forget drops the destinations a job reports FAILED (given up), so that they can be added again.
func (s *StreamURLs) Forget(results []*livekit.StreamInfo) {
	if s == nil {
		return
	}
	latest := map[string]livekit.StreamInfo_Status{} // results are in the order destinations were added
	for _, r := range results {
		latest[r.Url] = r.Status
	}
	for raw := range s.live {
		if latest[redactStreamURL(raw)] == livekit.StreamInfo_FAILED {
			delete(s.live, raw)
		}
	}
}

// encodedOf is the transcoding request inside a job, nil for track egress (and v2 requests,
// which run as the v1 request they map onto).
func encodedOf(job *rpc.StartEgressRequest) encodedRequest {
	switch q := job.Request.(type) {
	case *rpc.StartEgressRequest_Web:
		return q.Web
	case *rpc.StartEgressRequest_Participant:
		return q.Participant
	case *rpc.StartEgressRequest_TrackComposite:
		return q.TrackComposite
	case *rpc.StartEgressRequest_RoomComposite:
		return q.RoomComposite
	}
	return nil
}
