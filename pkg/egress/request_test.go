package egress

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/source"
)

func trackReq(t *livekit.TrackEgressRequest) *rpc.StartEgressRequest {
	return &rpc.StartEgressRequest{EgressId: "EG_1", RoomId: "RM_1", Request: &rpc.StartEgressRequest_Track{Track: t}}
}

func TestInspect(t *testing.T) {
	file := &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{}}
	tests := []struct {
		name string
		req  *rpc.StartEgressRequest
		code psrpc.ErrorCode
		want string
	}{
		{"track ok", trackReq(&livekit.TrackEgressRequest{RoomName: "r", TrackId: "TR_1", Output: file}), "", ""},
		{"no room", trackReq(&livekit.TrackEgressRequest{TrackId: "TR_1", Output: file}), psrpc.InvalidArgument, "room_name"},
		{"no track", trackReq(&livekit.TrackEgressRequest{RoomName: "r", Output: file}), psrpc.InvalidArgument, "track_id"},
		{"no output", trackReq(&livekit.TrackEgressRequest{RoomName: "r", TrackId: "TR_1"}), psrpc.InvalidArgument, "file output"},
		{"websocket", trackReq(&livekit.TrackEgressRequest{RoomName: "r", TrackId: "TR_1", Output: &livekit.TrackEgressRequest_WebsocketUrl{WebsocketUrl: "wss://x/a"}}), "", ""},
		{"bad websocket url", trackReq(&livekit.TrackEgressRequest{RoomName: "r", TrackId: "TR_1", Output: &livekit.TrackEgressRequest_WebsocketUrl{WebsocketUrl: "https://x/a"}}), psrpc.InvalidArgument, "websocket_url"},
		{"gcp without bucket", trackReq(&livekit.TrackEgressRequest{RoomName: "r", TrackId: "TR_1", Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Output: &livekit.DirectFileOutput_Gcp{Gcp: &livekit.GCPUpload{}}}}}), psrpc.InvalidArgument, "gcp.bucket"},
		{"alioss", trackReq(&livekit.TrackEgressRequest{RoomName: "r", TrackId: "TR_1", Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Output: &livekit.DirectFileOutput_AliOSS{AliOSS: &livekit.AliOSSUpload{Bucket: "b"}}}}}), psrpc.Unimplemented, "AliOSS"},
		{"s3 without bucket", trackReq(&livekit.TrackEgressRequest{RoomName: "r", TrackId: "TR_1", Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Output: &livekit.DirectFileOutput_S3{S3: &livekit.S3Upload{}}}}}), psrpc.InvalidArgument, "bucket"},
		{"room composite", &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_RoomComposite{RoomComposite: &livekit.RoomCompositeEgressRequest{RoomName: "r", Layout: "mosaic", FileOutputs: []*livekit.EncodedFileOutput{{}}}}}, psrpc.Unimplemented, "mosaic"},
		{"no source", &rpc.StartEgressRequest{EgressId: "EG_1"}, psrpc.InvalidArgument, "no source"},
		{"websocket on a video-only composite", &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_RoomComposite{RoomComposite: &livekit.RoomCompositeEgressRequest{
			RoomName: "r", VideoOnly: true, StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"wss://stt.example/in?key=secret"}}}}}}, psrpc.InvalidArgument, "video_only is set"},
		{"websocket on a video-only track composite", &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_TrackComposite{TrackComposite: &livekit.TrackCompositeEgressRequest{
			RoomName: "r", VideoTrackId: "TR_V", StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_WEBSOCKET, Urls: []string{"ws://stt.example/in"}}}}}}, psrpc.InvalidArgument, "audio_track_id is empty"},
		{"rtmp on a video-only composite", &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_RoomComposite{RoomComposite: &livekit.RoomCompositeEgressRequest{
			RoomName: "r", VideoOnly: true, StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"rtmp://h/app/key"}}}}}}, "", ""},
		{"no id", &rpc.StartEgressRequest{}, psrpc.InvalidArgument, "egress_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Inspect(tc.req)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe psrpc.Error
			if !errors.As(err, &pe) || pe.Code() != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s naming %q", err, tc.code, tc.want)
			}
		})
	}
}

func TestNewInfoRedacts(t *testing.T) {
	req := trackReq(&livekit.TrackEgressRequest{RoomName: "r", TrackId: "TR_1", Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{
		Output: &livekit.DirectFileOutput_S3{S3: &livekit.S3Upload{Bucket: "b", AccessKey: "AKIA", Secret: "shh", SessionToken: "tok"}}}}})
	r, err := Inspect(req)
	if err != nil {
		t.Fatal(err)
	}
	info := NewInfo(r, time.Unix(10, 0))
	s3 := info.GetTrack().GetFile().GetS3()
	if s3.AccessKey != "{access_key}" || s3.Secret != "{secret}" || s3.SessionToken != "{session_token}" || s3.Bucket != "b" {
		t.Fatalf("not redacted: %v", s3)
	}
	if req.GetTrack().GetFile().GetS3().Secret != "shh" {
		t.Fatal("redaction changed the job's own request")
	}
	if info.Status != livekit.EgressStatus_EGRESS_STARTING || info.RoomName != "r" || info.RoomId != "RM_1" || info.UpdatedAt == 0 {
		t.Fatalf("info %v", info)
	}
}

func TestInspectParticipant(t *testing.T) {
	req := func(p *livekit.ParticipantEgressRequest) *rpc.StartEgressRequest {
		return &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_Participant{Participant: p}}
	}
	if _, err := Inspect(req(&livekit.ParticipantEgressRequest{RoomName: "r", Identity: "a", FileOutputs: []*livekit.EncodedFileOutput{{}}})); err != nil {
		t.Fatalf("one MP4 file: %v", err)
	}
	if _, err := Inspect(req(&livekit.ParticipantEgressRequest{RoomName: "r", Identity: "a", StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"rtmp://x/app/k"}}}})); err != nil {
		t.Fatalf("stream output only: %v", err)
	}
	if _, err := Inspect(req(&livekit.ParticipantEgressRequest{RoomName: "r", Identity: "a", ImageOutputs: []*livekit.ImageOutput{{CaptureInterval: 5}}})); err != nil {
		t.Fatalf("image output only: %v", err)
	}
	_, err := Inspect(&rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_TrackComposite{TrackComposite: &livekit.TrackCompositeEgressRequest{
		RoomName: "r", AudioTrackId: "TR_a", ImageOutputs: []*livekit.ImageOutput{{CaptureInterval: 5}}}}})
	var pe psrpc.Error
	if !errors.As(err, &pe) || pe.Code() != psrpc.InvalidArgument {
		t.Fatalf("images of an audio-only track composite: %v", err)
	}
	_, err = Inspect(req(&livekit.ParticipantEgressRequest{RoomName: "r", Identity: "a", StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"rtmp://x/app/k"}}},
		Options: &livekit.ParticipantEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{AudioCodec: livekit.AudioCodec_OPUS}}}))
	if !errors.As(err, &pe) || pe.Code() != psrpc.InvalidArgument || !strings.Contains(err.Error(), "audio_codec") {
		t.Fatalf("opus to a stream: %v", err)
	}
}

func TestParseLayout(t *testing.T) {
	tests := []struct {
		in, layout string
		bg         uint32
		ok         bool
	}{
		{"", "grid", 0xFF000000, true}, {"grid-light", "grid", 0xFFF2F2F2, true}, {"speaker-dark", "speaker", 0xFF1A1A1A, true},
		{"single-speaker", "single-speaker", 0xFF000000, true}, {"carousel", "", 0, false},
	}
	for _, tc := range tests {
		l, bg, ok := parseLayout(tc.in)
		if l != tc.layout || bg != tc.bg || ok != tc.ok {
			t.Errorf("parseLayout(%q) = %q %x %v", tc.in, l, bg, ok)
		}
	}
}

func TestNewInfoRedactsEncodedOutputs(t *testing.T) {
	req := &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_Participant{Participant: &livekit.ParticipantEgressRequest{
		RoomName: "r", Identity: "a", FileOutputs: []*livekit.EncodedFileOutput{{Output: &livekit.EncodedFileOutput_S3{S3: &livekit.S3Upload{Bucket: "b", AccessKey: "AKIA", Secret: "shh"}}}}}}}
	r, err := Inspect(req)
	if err != nil {
		t.Fatal(err)
	}
	s3 := NewInfo(r, time.Now()).GetParticipant().GetFileOutputs()[0].GetS3()
	if s3.Secret == "shh" || s3.AccessKey == "AKIA" {
		t.Fatalf("not redacted: %v", s3)
	}
}

func TestV2Mapping(t *testing.T) {
	s3 := &livekit.StorageConfig{Provider: &livekit.StorageConfig_S3{S3: &livekit.S3Upload{Bucket: "b", AccessKey: "k", Secret: "s"}}}
	file := []*livekit.Output{{Config: &livekit.Output_File{File: &livekit.FileOutput{Filepath: "x"}}}}
	v2 := func(q *livekit.StartEgressRequest) *rpc.StartEgressRequest {
		q.RoomName, q.Outputs, q.Storage = "r", file, s3
		return &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_Egress{Egress: q}}
	}
	tests := []struct {
		name string
		req  *rpc.StartEgressRequest
		kind Kind
		code psrpc.ErrorCode
		// audioOnly: the job has no video (it reserves the audio cost)
		audioOnly bool
	}{
		{"template is a room composite", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Template{Template: &livekit.TemplateSource{Layout: "speaker"}}}), KindRoomComposite, "", false},
		{"participant video", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{Identity: "a"}}}}}), KindParticipant, "", false},
		{"video and audio track ids", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Video: &livekit.MediaSource_VideoTrackId{VideoTrackId: "TR_v"}, Audio: &livekit.AudioConfig{Routes: []*livekit.AudioRoute{{Match: &livekit.AudioRoute_TrackId{TrackId: "TR_a"}}}}}}}), KindTrackComposite, "", false},
		{"left channel route is a composite", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Audio: &livekit.AudioConfig{Routes: []*livekit.AudioRoute{{Match: &livekit.AudioRoute_TrackId{TrackId: "TR_a"}, Channel: livekit.AudioChannel_AUDIO_CHANNEL_LEFT}}}}}}), KindRoomComposite, "", true},
		{"participant video with an agent's audio is a composite", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{Identity: "a"}},
			Audio: &livekit.AudioConfig{Routes: []*livekit.AudioRoute{{Match: &livekit.AudioRoute_ParticipantIdentity{ParticipantIdentity: "a"}},
				{Match: &livekit.AudioRoute_ParticipantKind{ParticipantKind: livekit.ParticipantInfo_AGENT}}}}}}}), KindRoomComposite, "", false},
		{"preferred screen share is a composite", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{Identity: "a", PreferScreenShare: true}}}}}), KindRoomComposite, "", false},
		{"capture_all is a composite", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Audio: &livekit.AudioConfig{CaptureAll: true}}}}), KindRoomComposite, "", true},
		{"route without a match", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Audio: &livekit.AudioConfig{Routes: []*livekit.AudioRoute{{Channel: livekit.AudioChannel_AUDIO_CHANNEL_LEFT}}}}}}), KindV2, psrpc.InvalidArgument, false},
		{"participant video without identity", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{}}}}}), KindV2, psrpc.InvalidArgument, false},
		{"media source selecting nothing", v2(&livekit.StartEgressRequest{Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{}}}), KindV2, psrpc.InvalidArgument, false},
		{"no source", v2(&livekit.StartEgressRequest{}), KindV2, psrpc.InvalidArgument, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Inspect(tc.req)
			if tc.code != "" {
				var pe psrpc.Error
				if !errors.As(err, &pe) || pe.Code() != tc.code {
					t.Fatalf("want %s, got %v", tc.code, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != tc.kind || r.AudioOnly != tc.audioOnly || r.Raw != tc.req || fileOutput(r.Job).GetS3().GetBucket() != "b" {
				t.Fatalf("kind %s, audio only %v, job %v", r.Kind, r.AudioOnly, r.Job)
			}
			if NewInfo(r, time.Now()).GetEgress().GetStorage().GetS3().GetSecret() == "s" {
				t.Fatal("v2 storage secret not redacted")
			}
		})
	}
}

// TestMediaSelection: the most specific route places a track (track id, then identity, then
// participant kind); capture_all takes the rest to both channels; a participant's preferred video
// source is the one shown.
func TestMediaSelection(t *testing.T) {
	left, right := livekit.AudioChannel_AUDIO_CHANNEL_LEFT, livekit.AudioChannel_AUDIO_CHANNEL_RIGHT
	sel, err := newMediaSelection(&livekit.MediaSource{
		Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{Identity: "host", PreferScreenShare: true}},
		Audio: &livekit.AudioConfig{Routes: []*livekit.AudioRoute{
			{Match: &livekit.AudioRoute_ParticipantKind{ParticipantKind: livekit.ParticipantInfo_AGENT}, Channel: right},
			{Match: &livekit.AudioRoute_ParticipantIdentity{ParticipantIdentity: "host"}, Channel: left},
			{Match: &livekit.AudioRoute_TrackId{TrackId: "TR_agent_aside"}},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	agent := livekit.ParticipantInfo_AGENT
	for _, c := range []struct {
		name string
		tr   source.TrackMeta
		pan  float64
		ok   bool
	}{
		{"host", source.TrackMeta{ID: "TR_h", Kind: "audio", Identity: "host"}, -1, true},
		{"agent", source.TrackMeta{ID: "TR_a", Kind: "audio", Identity: "bot", ParticipantKind: agent}, 1, true},
		{"agent track named by id", source.TrackMeta{ID: "TR_agent_aside", Kind: "audio", Identity: "bot", ParticipantKind: agent}, 0, true},
		{"agent called host: identity beats kind", source.TrackMeta{ID: "TR_x", Kind: "audio", Identity: "host", ParticipantKind: agent}, -1, true},
		{"guest not routed", source.TrackMeta{ID: "TR_g", Kind: "audio", Identity: "guest"}, 0, false},
	} {
		if pan, ok := sel.audio(c.tr); pan != c.pan || ok != c.ok {
			t.Errorf("%s: pan %v ok %v, want %v %v", c.name, pan, ok, c.pan, c.ok)
		}
	}
	sel.captureAll = true
	if pan, ok := sel.audio(source.TrackMeta{ID: "TR_g", Kind: "audio", Identity: "guest"}); pan != 0 || !ok {
		t.Errorf("capture_all: guest pan %v ok %v, want both channels", pan, ok)
	}
	// No audio config: the video's participant is heard, in both channels, and no one else.
	own := &mediaSelection{videoIdentity: "host", screenShare: true}
	if pan, ok := own.audio(source.TrackMeta{ID: "TR_h", Kind: "audio", Identity: "host"}); pan != 0 || !ok {
		t.Errorf("own audio: pan %v ok %v, want both channels", pan, ok)
	}
	if _, ok := own.audio(source.TrackMeta{ID: "TR_g", Kind: "audio", Identity: "guest"}); ok {
		t.Error("without routes a guest's audio was taken")
	}
	for _, c := range []struct {
		tr              source.TrackMeta
		take, preferred bool
	}{
		{source.TrackMeta{ID: "TR_s", Identity: "host", Source: livekit.TrackSource_SCREEN_SHARE}, true, true},
		{source.TrackMeta{ID: "TR_c", Identity: "host", Source: livekit.TrackSource_CAMERA}, true, false},
		{source.TrackMeta{ID: "TR_o", Identity: "guest", Source: livekit.TrackSource_CAMERA}, false, false},
	} {
		if take, preferred := sel.video(c.tr); take != c.take || preferred != c.preferred {
			t.Errorf("video %s: take %v preferred %v, want %v %v", c.tr.ID, take, preferred, c.take, c.preferred)
		}
	}
}
