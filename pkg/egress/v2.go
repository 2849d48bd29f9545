package egress

import (
	"fmt"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/proto"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
	"github.com/mediaworker/mediaworker/pkg/source"
)

// fromV2 maps the unified StartEgress request (TemplateSource, MediaSource, WebSource; outputs
// with per-output or request storage) onto the v1 request that runs it: room composite, track
// composite, participant or web egress.
func fromV2(egressID, roomID string, q *livekit.StartEgressRequest) (*rpc.StartEgressRequest, error) {
	out := &rpc.StartEgressRequest{EgressId: egressID, RoomId: roomID}
	var files []*livekit.EncodedFileOutput
	var streams []*livekit.StreamOutput
	var segments []*livekit.SegmentedFileOutput
	var images []*livekit.ImageOutput
	for _, o := range q.GetOutputs() {
		st := o.GetStorage()
		if st == nil {
			st = q.GetStorage()
		}
		switch c := o.Config.(type) {
		case *livekit.Output_File:
			f := &livekit.EncodedFileOutput{FileType: c.File.GetFileType(), Filepath: c.File.GetFilepath(), DisableManifest: c.File.GetDisableManifest()}
			switch p := st.GetProvider().(type) {
			case *livekit.StorageConfig_S3:
				f.Output = &livekit.EncodedFileOutput_S3{S3: p.S3}
			case *livekit.StorageConfig_Gcp:
				f.Output = &livekit.EncodedFileOutput_Gcp{Gcp: p.Gcp}
			case *livekit.StorageConfig_Azure:
				f.Output = &livekit.EncodedFileOutput_Azure{Azure: p.Azure}
			case *livekit.StorageConfig_AliOSS:
				f.Output = &livekit.EncodedFileOutput_AliOSS{AliOSS: p.AliOSS}
			}
			files = append(files, f)
		case *livekit.Output_Stream:
			streams = append(streams, c.Stream)
		case *livekit.Output_Segments:
			sg := proto.Clone(c.Segments).(*livekit.SegmentedFileOutput)
			if sg.Output == nil {
				switch p := st.GetProvider().(type) {
				case *livekit.StorageConfig_S3:
					sg.Output = &livekit.SegmentedFileOutput_S3{S3: p.S3}
				case *livekit.StorageConfig_Gcp:
					sg.Output = &livekit.SegmentedFileOutput_Gcp{Gcp: p.Gcp}
				case *livekit.StorageConfig_Azure:
					sg.Output = &livekit.SegmentedFileOutput_Azure{Azure: p.Azure}
				case *livekit.StorageConfig_AliOSS:
					sg.Output = &livekit.SegmentedFileOutput_AliOSS{AliOSS: p.AliOSS}
				}
			}
			segments = append(segments, sg)
		case *livekit.Output_Images:
			images = append(images, c.Images)
		}
	}
	switch src := q.Source.(type) {
	case *livekit.StartEgressRequest_Template:
		t := src.Template
		r := &livekit.RoomCompositeEgressRequest{RoomName: q.RoomName, Layout: t.GetLayout(), AudioOnly: t.GetAudioOnly(), VideoOnly: t.GetVideoOnly(),
			CustomBaseUrl: t.GetCustomBaseUrl(), FileOutputs: files, StreamOutputs: streams, SegmentOutputs: segments, ImageOutputs: images}
		out.Request = roomComposite(r, q)
	case *livekit.StartEgressRequest_Web:
		w := src.Web
		r := &livekit.WebEgressRequest{Url: w.GetUrl(), AudioOnly: w.GetAudioOnly(), VideoOnly: w.GetVideoOnly(), AwaitStartSignal: w.GetAwaitStartSignal(),
			FileOutputs: files, StreamOutputs: streams, SegmentOutputs: segments, ImageOutputs: images}
		out.Request = &rpc.StartEgressRequest_Web{Web: r}
	case *livekit.StartEgressRequest_Media:
		if err := fromMedia(out, q, src.Media, files, streams, segments, images); err != nil {
			return nil, err
		}
	default:
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartEgress: source is required (template, web or media)")
	}
	return out, nil
}

// roomComposite is the job for r with q's encoding.
func roomComposite(r *livekit.RoomCompositeEgressRequest, q *livekit.StartEgressRequest) *rpc.StartEgressRequest_RoomComposite {
	if a := q.GetAdvanced(); a != nil {
		r.Options = &livekit.RoomCompositeEgressRequest_Advanced{Advanced: a}
	} else {
		r.Options = &livekit.RoomCompositeEgressRequest_Preset{Preset: q.GetPreset()}
	}
	return &rpc.StartEgressRequest_RoomComposite{RoomComposite: r}
}

// fromMedia maps a MediaSource. A video track id with at most one audio track id becomes a track
// composite; a participant's camera with their own audio (or none routed) a participant egress.
// Any other audio routing (several tracks, by participant kind, to one channel, capture_all), and
// a preferred screen share (shown when there is one, the camera otherwise), run as a native
// composite of the selected video with the routed audio mixed (mediaSelection).
func fromMedia(out *rpc.StartEgressRequest, q *livekit.StartEgressRequest, m *livekit.MediaSource, files []*livekit.EncodedFileOutput,
	streams []*livekit.StreamOutput, segments []*livekit.SegmentedFileOutput, images []*livekit.ImageOutput) error {
	sel, err := newMediaSelection(m)
	if err != nil {
		return err
	}
	pv := m.GetParticipantVideo()
	if sel.routed() {
		r := &livekit.RoomCompositeEgressRequest{RoomName: q.RoomName, Layout: pipeline.LayoutSingleSpeaker, AudioOnly: !sel.hasVideo(),
			FileOutputs: files, StreamOutputs: streams, SegmentOutputs: segments, ImageOutputs: images}
		out.Request = roomComposite(r, q)
		return nil
	}
	audioTrack := ""
	if routes := m.GetAudio().GetRoutes(); len(routes) == 1 && pv == nil {
		audioTrack = routes[0].GetTrackId()
	}
	if pv != nil {
		r := &livekit.ParticipantEgressRequest{RoomName: q.RoomName, Identity: pv.GetIdentity(), ScreenShare: pv.GetPreferScreenShare(),
			FileOutputs: files, StreamOutputs: streams, SegmentOutputs: segments, ImageOutputs: images}
		if a := q.GetAdvanced(); a != nil {
			r.Options = &livekit.ParticipantEgressRequest_Advanced{Advanced: a}
		} else {
			r.Options = &livekit.ParticipantEgressRequest_Preset{Preset: q.GetPreset()}
		}
		out.Request = &rpc.StartEgressRequest_Participant{Participant: r}
		return nil
	}
	r := &livekit.TrackCompositeEgressRequest{RoomName: q.RoomName, VideoTrackId: m.GetVideoTrackId(), AudioTrackId: audioTrack,
		FileOutputs: files, StreamOutputs: streams, SegmentOutputs: segments, ImageOutputs: images}
	if a := q.GetAdvanced(); a != nil {
		r.Options = &livekit.TrackCompositeEgressRequest_Advanced{Advanced: a}
	} else {
		r.Options = &livekit.TrackCompositeEgressRequest_Preset{Preset: q.GetPreset()}
	}
	out.Request = &rpc.StartEgressRequest_TrackComposite{TrackComposite: r}
	return nil
}

// mediaSelection is what a MediaSource records: one video (a track id, or a participant's camera
// or screen share) and the audio its routes pick, each placed in the stereo field.
type mediaSelection struct {
	videoTrack    string // by track id
	videoIdentity string // or a participant's video, preferring screenShare or the camera
	screenShare   bool
	routes        []*livekit.AudioRoute
	captureAll    bool
}

// newMediaSelection checks m: every route names what it matches, a participant video names who.
func newMediaSelection(m *livekit.MediaSource) (*mediaSelection, error) {
	if m == nil {
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartEgress: media source is empty")
	}
	s := &mediaSelection{videoTrack: m.GetVideoTrackId(), routes: m.GetAudio().GetRoutes(), captureAll: m.GetAudio().GetCaptureAll()}
	if pv := m.GetParticipantVideo(); pv != nil {
		if pv.GetIdentity() == "" {
			return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartEgress: media.participant_video.identity is required")
		}
		s.videoIdentity, s.screenShare = pv.GetIdentity(), pv.GetPreferScreenShare()
	}
	for i, r := range s.routes {
		switch r.Match.(type) {
		case *livekit.AudioRoute_TrackId:
			if r.GetTrackId() == "" {
				return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartEgress: media.audio.routes[%d].track_id is empty", i)
			}
		case *livekit.AudioRoute_ParticipantIdentity:
			if r.GetParticipantIdentity() == "" {
				return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartEgress: media.audio.routes[%d].participant_identity is empty", i)
			}
		case *livekit.AudioRoute_ParticipantKind:
		default:
			return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartEgress: media.audio.routes[%d] matches nothing: set track_id, participant_identity or participant_kind", i)
		}
		if _, ok := livekit.AudioChannel_name[int32(r.GetChannel())]; !ok {
			return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartEgress: media.audio.routes[%d].channel %d is unknown", i, r.GetChannel())
		}
	}
	if !s.hasVideo() && len(s.routes) == 0 && !s.captureAll {
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartEgress: media source selects nothing: set a video, audio routes or audio.capture_all")
	}
	return s, nil
}

func (s *mediaSelection) hasVideo() bool { return s.videoTrack != "" || s.videoIdentity != "" }

// routed says whether the selection runs as a composite: anything but one audio track id beside a
// video track id, or a participant's own audio beside their camera, all to both channels (a
// preferred screen share needs the composite too: it switches between two videos).
func (s *mediaSelection) routed() bool {
	if s.captureAll || s.screenShare {
		return true
	}
	for _, r := range s.routes {
		if r.GetChannel() != livekit.AudioChannel_AUDIO_CHANNEL_BOTH {
			return true
		}
	}
	if s.videoIdentity != "" {
		for _, r := range s.routes {
			if r.GetParticipantIdentity() != s.videoIdentity {
				return true
			}
		}
		return false
	}
	return len(s.routes) > 1 || (len(s.routes) == 1 && s.routes[0].GetTrackId() == "")
}

// audio is where track t goes in the stereo field (-1 left, 0 both, 1 right), ok false when no
// route takes it. The most specific match wins: track id, then identity, then participant kind
// (the first route of each); capture_all takes the rest to both channels. Without any audio
// config a participant's video comes with their own audio, as in a participant egress.
func (s *mediaSelection) audio(t source.TrackMeta) (pan float64, ok bool) {
	if len(s.routes) == 0 && !s.captureAll {
		return 0, s.videoIdentity != "" && t.Identity == s.videoIdentity
	}
	best := 0
	var channel livekit.AudioChannel
	for _, r := range s.routes {
		rank := 0
		switch {
		case r.GetTrackId() != "" && r.GetTrackId() == t.ID:
			rank = 3
		case r.GetParticipantIdentity() != "" && r.GetParticipantIdentity() == t.Identity:
			rank = 2
		case r.GetTrackId() == "" && r.GetParticipantIdentity() == "" && r.GetParticipantKind() == t.ParticipantKind:
			rank = 1
		}
		if rank > best {
			best, channel = rank, r.GetChannel()
		}
	}
	switch {
	case best == 0 && !s.captureAll:
		return 0, false
	case channel == livekit.AudioChannel_AUDIO_CHANNEL_LEFT:
		return -1, true
	case channel == livekit.AudioChannel_AUDIO_CHANNEL_RIGHT:
		return 1, true
	}
	return 0, true
}

// video says whether video track t is recorded and whether it is the one to show: the named
// track, or the participant's preferred source (their other source shows while it is absent).
func (s *mediaSelection) video(t source.TrackMeta) (take, preferred bool) {
	if s.videoTrack != "" {
		return t.ID == s.videoTrack, true
	}
	if s.videoIdentity == "" || t.Identity != s.videoIdentity {
		return false, false
	}
	screen := t.Source == livekit.TrackSource_SCREEN_SHARE
	return screen || t.Source == livekit.TrackSource_CAMERA || t.Source == livekit.TrackSource_UNKNOWN, screen == s.screenShare
}

func (s *mediaSelection) String() string {
	return fmt.Sprintf("video track %q / participant %q (screen share %v), %d audio routes, capture_all %v",
		s.videoTrack, s.videoIdentity, s.screenShare, len(s.routes), s.captureAll)
}
