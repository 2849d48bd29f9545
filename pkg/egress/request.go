// Package egress turns an egress request into a job: validation, output naming, and running it.
package egress

import (
	"errors"
	"net/url"
	"time"

	lkegress "github.com/livekit/protocol/egress"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/proto"

	"github.com/mediaworker/mediaworker/pkg/sink"
)

// Kind names a job kind; it labels metrics and picks the CPU cost.
type Kind string

const (
	KindTrack          Kind = "track"
	KindRoomComposite  Kind = "room_composite"
	KindWeb            Kind = "web"
	KindParticipant    Kind = "participant"
	KindTrackComposite Kind = "track_composite"
	KindV2             Kind = "egress"
	KindReplay         Kind = "replay"
)

// ErrUnimplemented marks a request this worker does not serve yet (see the README's table).
var ErrUnimplemented = errors.New("not implemented by mediaworker yet")

// Request is a validated StartEgressRequest.
type Request struct {
	Kind     Kind
	RoomName string
	// Raw is the request as the server sent it (reported back in every EgressInfo).
	Raw *rpc.StartEgressRequest
	// Job is what runs: Raw, or for the unified StartEgress the v1 request it maps onto.
	Job *rpc.StartEgressRequest
	// AudioOnly is a transcoding job without video (it costs a fraction of one with video).
	AudioOnly bool
	// NoAudio says why the job has no audio ("" when it has): a WebSocket stream needs audio.
	NoAudio string
}

// Inspect validates req and returns what it asks for. Errors are psrpc errors whose code reaches the API caller:
// InvalidArgument for a request that can never work, Unimplemented for one this worker cannot serve yet.
func Inspect(req *rpc.StartEgressRequest) (*Request, error) {
	if req.GetEgressId() == "" {
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "egress_id is empty")
	}
	if v2 := req.GetEgress(); v2 != nil {
		job, err := fromV2(req.EgressId, req.RoomId, v2)
		if err != nil {
			return &Request{Kind: KindV2, RoomName: v2.GetRoomName(), Raw: req}, err
		}
		r, err := Inspect(job)
		if r != nil {
			r.Raw = req
		}
		return r, err
	}
	r := &Request{Raw: req, Job: req}
	switch q := req.Request.(type) {
	case *rpc.StartEgressRequest_Track:
		r.Kind, r.RoomName = KindTrack, q.Track.GetRoomName()
		return r, inspectTrack(q.Track)
	case *rpc.StartEgressRequest_RoomComposite:
		q2 := q.RoomComposite
		r.Kind, r.RoomName, r.AudioOnly = KindRoomComposite, q2.GetRoomName(), q2.GetAudioOnly()
		if err := needRoom(r.RoomName); err != nil {
			return r, err
		}
		if q2.GetAudioOnly() && q2.GetVideoOnly() {
			return r, psrpc.NewErrorf(psrpc.InvalidArgument, "audio_only and video_only cannot both be set")
		}
		if q2.GetVideoOnly() {
			r.NoAudio = "video_only is set"
		}
		if _, err := inspectEncoded(q2, q2.GetAudioOnly()); err != nil {
			return r, err
		}
		if err := webSocketNeedsAudio(streamOutputs(q2), r.NoAudio); err != nil {
			return r, err
		}
		if q2.GetCustomBaseUrl() != "" {
			return r, psrpc.NewErrorf(psrpc.Unimplemented, "custom_base_url needs a browser: web templates are %v; the native layouts grid, speaker and single-speaker (each with -light or -dark) work", ErrUnimplemented)
		}
		if !compositeLayoutSupported(q2.GetLayout()) {
			return r, psrpc.NewErrorf(psrpc.Unimplemented, "layout %q is %v; grid, speaker and single-speaker (each with -light or -dark) work", q2.GetLayout(), ErrUnimplemented)
		}
		return r, outputsSupported(q2, q2.GetAudioOnly())
	case *rpc.StartEgressRequest_Web:
		r.Kind = KindWeb
		if u, err := url.Parse(q.Web.GetUrl()); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return r, psrpc.NewErrorf(psrpc.InvalidArgument, "web egress: url must be an http:// or https:// page")
		}
		if _, err := inspectEncoded(q.Web, q.Web.GetAudioOnly()); err != nil {
			return r, err
		}
	case *rpc.StartEgressRequest_Participant:
		r.Kind, r.RoomName = KindParticipant, q.Participant.GetRoomName()
		if err := needRoom(r.RoomName); err != nil {
			return r, err
		}
		if q.Participant.GetIdentity() == "" {
			return r, psrpc.NewErrorf(psrpc.InvalidArgument, "participant egress: identity is required")
		}
		if _, err := inspectEncoded(q.Participant, false); err != nil {
			return r, err
		}
		return r, outputsSupported(q.Participant, false)
	case *rpc.StartEgressRequest_TrackComposite:
		q2 := q.TrackComposite
		r.Kind, r.RoomName, r.AudioOnly = KindTrackComposite, q2.GetRoomName(), q2.GetVideoTrackId() == ""
		if err := needRoom(r.RoomName); err != nil {
			return r, err
		}
		if q2.GetAudioTrackId() == "" && q2.GetVideoTrackId() == "" {
			return r, psrpc.NewErrorf(psrpc.InvalidArgument, "track composite egress: set audio_track_id, video_track_id or both")
		}
		if q2.GetAudioTrackId() == "" {
			r.NoAudio = "audio_track_id is empty"
		}
		if _, err := inspectEncoded(q2, q2.GetVideoTrackId() == ""); err != nil {
			return r, err
		}
		if err := webSocketNeedsAudio(streamOutputs(q2), r.NoAudio); err != nil {
			return r, err
		}
		return r, outputsSupported(q2, q2.GetVideoTrackId() == "")
	case *rpc.StartEgressRequest_Replay:
		r.Kind = KindReplay
	default:
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "egress request has no source (room composite, web, participant, track composite or track)")
	}
	return r, psrpc.NewErrorf(psrpc.Unimplemented, "%s egress is %v; room composite, participant, track composite and track egress work (see the README's feature table)", r.Kind, ErrUnimplemented)
}

func needRoom(name string) error {
	if name == "" {
		return psrpc.NewErrorf(psrpc.InvalidArgument, "room_name is required")
	}
	return nil
}

func inspectTrack(t *livekit.TrackEgressRequest) error {
	switch {
	case t.GetRoomName() == "":
		return psrpc.NewErrorf(psrpc.InvalidArgument, "track egress: room_name is required")
	case t.GetTrackId() == "":
		return psrpc.NewErrorf(psrpc.InvalidArgument, "track egress: track_id is required")
	case t.GetWebsocketUrl() != "":
		if u, err := url.Parse(t.GetWebsocketUrl()); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return psrpc.NewErrorf(psrpc.InvalidArgument, "track egress: websocket_url must be ws://host/path or wss://host/path")
		}
		return nil
	case t.GetFile() == nil:
		return psrpc.NewErrorf(psrpc.InvalidArgument, "track egress: a file output (DirectFileOutput) or websocket_url is required")
	}
	f := t.GetFile()
	switch f.Output.(type) {
	case *livekit.DirectFileOutput_AliOSS:
		return errAliOSS("track egress: ")
	}
	switch {
	case f.GetS3() != nil && f.GetS3().GetBucket() == "":
		return psrpc.NewErrorf(psrpc.InvalidArgument, "track egress: s3.bucket is required")
	case f.GetGcp() != nil && f.GetGcp().GetBucket() == "":
		return psrpc.NewErrorf(psrpc.InvalidArgument, "track egress: gcp.bucket is required")
	case f.GetAzure() != nil && f.GetAzure().GetContainerName() == "":
		return psrpc.NewErrorf(psrpc.InvalidArgument, "track egress: azure.container_name is required")
	}
	return nil
}

// NewInfo is the STARTING EgressInfo the worker returns from StartEgress and sends to IOInfo.CreateEgress.
// Its request is a copy with credentials redacted: infos reach the server's store and webhooks.
func NewInfo(r *Request, now time.Time) *livekit.EgressInfo {
	info := &livekit.EgressInfo{
		EgressId:   r.Raw.EgressId,
		RoomId:     r.Raw.RoomId,
		RoomName:   r.RoomName,
		SourceType: livekit.EgressSourceType_EGRESS_SOURCE_TYPE_SDK,
		Status:     livekit.EgressStatus_EGRESS_STARTING,
		StartedAt:  now.UnixNano(),
		UpdatedAt:  now.UnixNano(),
	}
	req := proto.Clone(r.Raw).(*rpc.StartEgressRequest)
	switch q := req.Request.(type) {
	case *rpc.StartEgressRequest_Track:
		redactUpload(q.Track.GetFile())
		if u := q.Track.GetWebsocketUrl(); u != "" {
			q.Track.Output = &livekit.TrackEgressRequest_WebsocketUrl{WebsocketUrl: sink.Redact(u)}
		}
		info.Request = &livekit.EgressInfo_Track{Track: q.Track}
	case *rpc.StartEgressRequest_RoomComposite:
		lkegress.RedactEncodedOutputs(q.RoomComposite)
		info.Request = &livekit.EgressInfo_RoomComposite{RoomComposite: q.RoomComposite}
	case *rpc.StartEgressRequest_Web:
		lkegress.RedactEncodedOutputs(q.Web)
		info.SourceType = livekit.EgressSourceType_EGRESS_SOURCE_TYPE_WEB
		info.Request = &livekit.EgressInfo_Web{Web: q.Web}
	case *rpc.StartEgressRequest_Participant:
		lkegress.RedactEncodedOutputs(q.Participant)
		info.Request = &livekit.EgressInfo_Participant{Participant: q.Participant}
	case *rpc.StartEgressRequest_TrackComposite:
		lkegress.RedactEncodedOutputs(q.TrackComposite)
		info.Request = &livekit.EgressInfo_TrackComposite{TrackComposite: q.TrackComposite}
	case *rpc.StartEgressRequest_Egress:
		lkegress.RedactStartEgressRequest(q.Egress)
		if q.Egress.GetTemplate() == nil && q.Egress.GetWeb() == nil {
			info.SourceType = livekit.EgressSourceType_EGRESS_SOURCE_TYPE_SDK
		}
		info.Request = &livekit.EgressInfo_Egress{Egress: q.Egress}
	}
	redactStreamURLs(req) // after the protocol's redaction: info.Request shares req's messages
	return info
}

// redactStreamURLs hides every stream URL's secrets in a copy of a request that an info echoes:
// the protocol's redaction covers RTMP keys only, not SRT streamid / passphrase or user info.
func redactStreamURLs(req *rpc.StartEgressRequest) {
	var outs []*livekit.StreamOutput
	if enc := encodedOf(req); enc != nil {
		outs = streamOutputs(enc)
	}
	for _, o := range req.GetEgress().GetOutputs() {
		if st := o.GetStream(); st != nil {
			outs = append(outs, st)
		}
	}
	for _, o := range outs {
		for i, u := range o.Urls {
			o.Urls[i] = redactStreamURL(u)
		}
	}
}

// redactUpload hides storage credentials; the placeholders match the official service's.
func redactUpload(f *livekit.DirectFileOutput) {
	fields := map[*string]string{}
	if s3 := f.GetS3(); s3 != nil {
		fields = map[*string]string{&s3.AccessKey: "{access_key}", &s3.Secret: "{secret}", &s3.SessionToken: "{session_token}", &s3.AssumeRoleExternalId: "{external_id}"}
	}
	if g := f.GetGcp(); g != nil {
		fields = map[*string]string{&g.Credentials: "{credentials}"}
	}
	if a := f.GetAzure(); a != nil {
		fields = map[*string]string{&a.AccountName: "{account_name}", &a.AccountKey: "{account_key}"}
	}
	for p, name := range fields {
		if *p != "" {
			*p = name
		}
	}
}

// IsTerminal reports whether status ends an egress (each terminal update fires egress_ended).
func IsTerminal(s livekit.EgressStatus) bool {
	switch s {
	case livekit.EgressStatus_EGRESS_COMPLETE, livekit.EgressStatus_EGRESS_FAILED,
		livekit.EgressStatus_EGRESS_ABORTED, livekit.EgressStatus_EGRESS_LIMIT_REACHED:
		return true
	}
	return false
}
