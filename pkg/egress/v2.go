package egress

import (
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/proto"
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
		if a := q.GetAdvanced(); a != nil {
			r.Options = &livekit.RoomCompositeEgressRequest_Advanced{Advanced: a}
		} else {
			r.Options = &livekit.RoomCompositeEgressRequest_Preset{Preset: q.GetPreset()}
		}
		out.Request = &rpc.StartEgressRequest_RoomComposite{RoomComposite: r}
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

// fromMedia maps a MediaSource: a video track id (with audio tracks by id) becomes a track
// composite, a participant's video (with their audio) a participant egress.
func fromMedia(out *rpc.StartEgressRequest, q *livekit.StartEgressRequest, m *livekit.MediaSource, files []*livekit.EncodedFileOutput,
	streams []*livekit.StreamOutput, segments []*livekit.SegmentedFileOutput, images []*livekit.ImageOutput) error {
	var audioTrack string
	pv := m.GetParticipantVideo()
	for _, route := range m.GetAudio().GetRoutes() {
		switch {
		case route.GetChannel() != livekit.AudioChannel_AUDIO_CHANNEL_BOTH:
			return psrpc.NewErrorf(psrpc.Unimplemented, "StartEgress: audio routes to one channel are %v; route to both channels", ErrUnimplemented)
		case route.GetTrackId() != "" && audioTrack == "" && pv == nil:
			audioTrack = route.GetTrackId()
		case pv != nil && route.GetParticipantIdentity() == pv.GetIdentity():
		default:
			return psrpc.NewErrorf(psrpc.Unimplemented, "StartEgress: this audio routing is %v; route one audio track id, or the video participant's own audio", ErrUnimplemented)
		}
	}
	if m.GetAudio().GetCaptureAll() {
		return psrpc.NewErrorf(psrpc.Unimplemented, "StartEgress: audio capture_all is %v; use a room composite (template) to mix every track", ErrUnimplemented)
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
