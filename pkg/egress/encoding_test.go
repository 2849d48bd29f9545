package egress

import (
	"errors"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
)

func TestPresets(t *testing.T) {
	for p, name := range livekit.EncodingOptionsPreset_name {
		e, err := ResolveEncoding(livekit.EncodingOptionsPreset(p), nil, livekit.EncodedFileType_MP4, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.Width%2 != 0 || e.Height < 720 || e.VideoKbps < 3000 || e.VideoCodec != livekit.VideoCodec_H264_MAIN || e.AudioCodec != livekit.AudioCodec_AAC {
			t.Fatalf("%s: %+v", name, e)
		}
		if strings.HasPrefix(name, "PORTRAIT") != (e.Height > e.Width) {
			t.Fatalf("%s is %dx%d", name, e.Width, e.Height)
		}
	}
}

func TestAdvancedEncoding(t *testing.T) {
	tests := []struct {
		name      string
		opts      *livekit.EncodingOptions
		file      livekit.EncodedFileType
		audioOnly bool
		want      Encoding // fields checked when wantErr == ""
		wantErr   string
	}{
		{name: "1080p60 high, seed's bits per second", opts: &livekit.EncodingOptions{Width: 1920, Height: 1080, VideoBitrate: 6_000_000, Framerate: 60,
			VideoCodec: livekit.VideoCodec_H264_HIGH, AudioCodec: livekit.AudioCodec_AAC, AudioBitrate: 192_000, AudioFrequency: 48000},
			want: Encoding{Width: 1920, Height: 1080, Framerate: 60, VideoKbps: 6000, VideoCodec: livekit.VideoCodec_H264_HIGH, AudioCodec: livekit.AudioCodec_AAC, AudioKbps: 192, AudioFrequency: 48000}},
		{name: "kb/s as the protocol says", opts: &livekit.EncodingOptions{VideoBitrate: 2500, AudioBitrate: 96},
			want: Encoding{Width: 1280, Height: 720, Framerate: 30, VideoKbps: 2500, VideoCodec: livekit.VideoCodec_H264_MAIN, AudioCodec: livekit.AudioCodec_AAC, AudioKbps: 96, AudioFrequency: 44100}},
		{name: "opus forces 48 kHz", opts: &livekit.EncodingOptions{AudioCodec: livekit.AudioCodec_OPUS, AudioFrequency: 44100},
			want: Encoding{Width: 1280, Height: 720, Framerate: 30, VideoKbps: 3000, VideoCodec: livekit.VideoCodec_H264_MAIN, AudioCodec: livekit.AudioCodec_OPUS, AudioKbps: 128, AudioFrequency: 48000}},
		{name: "audio-only ogg", file: livekit.EncodedFileType_OGG, audioOnly: true,
			want: Encoding{Width: 1280, Height: 720, Framerate: 30, VideoKbps: 3000, VideoCodec: livekit.VideoCodec_H264_MAIN, AudioCodec: livekit.AudioCodec_OPUS, AudioKbps: 128, AudioFrequency: 48000}},
		{name: "odd width", opts: &livekit.EncodingOptions{Width: 1281, Height: 720}, wantErr: "width"},
		{name: "tiny height", opts: &livekit.EncodingOptions{Width: 1280, Height: 8}, wantErr: "height"},
		{name: "only width", opts: &livekit.EncodingOptions{Width: 1280}, wantErr: "height"},
		{name: "depth", opts: &livekit.EncodingOptions{Depth: 12}, wantErr: "depth"},
		{name: "framerate", opts: &livekit.EncodingOptions{Framerate: 240}, wantErr: "framerate"},
		{name: "negative bitrate", opts: &livekit.EncodingOptions{VideoBitrate: -5}, wantErr: "video_bitrate"},
		{name: "vp8 encode", opts: &livekit.EncodingOptions{VideoCodec: livekit.VideoCodec_VP8}, wantErr: "video_codec"},
		{name: "mp3 in mp4", opts: &livekit.EncodingOptions{AudioCodec: livekit.AudioCodec_AC_MP3}, file: livekit.EncodedFileType_MP4, wantErr: "AC_MP3 cannot go in MP4"},
		{name: "aac in ogg", opts: &livekit.EncodingOptions{AudioCodec: livekit.AudioCodec_AAC}, file: livekit.EncodedFileType_OGG, audioOnly: true, wantErr: "audio_codec"},
		{name: "video in ogg", file: livekit.EncodedFileType_OGG, wantErr: "OGG holds audio only"},
		{name: "frequency", opts: &livekit.EncodingOptions{AudioFrequency: 12345}, wantErr: "audio_frequency"},
		{name: "keyframe interval", opts: &livekit.EncodingOptions{KeyFrameInterval: -1}, wantErr: "key_frame_interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ResolveEncoding(livekit.EncodingOptionsPreset_H264_720P_30, tc.opts, tc.file, tc.audioOnly)
			if tc.wantErr != "" {
				var pe psrpc.Error
				if !errors.As(err, &pe) || pe.Code() != psrpc.InvalidArgument || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want InvalidArgument naming %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Depth = 24
			if *e != tc.want {
				t.Fatalf("got %+v\\nwant %+v", *e, tc.want)
			}
		})
	}
}

func TestInspectTranscoded(t *testing.T) {
	file := []*livekit.EncodedFileOutput{{Filepath: "x.mp4"}}
	tests := []struct {
		name string
		req  *rpc.StartEgressRequest
		code psrpc.ErrorCode
		want string
	}{
		{"room composite unknown layout is unimplemented", rc(&livekit.RoomCompositeEgressRequest{RoomName: "r", Layout: "carousel", FileOutputs: file}), psrpc.Unimplemented, "carousel"},
		{"room composite custom template is unimplemented", rc(&livekit.RoomCompositeEgressRequest{RoomName: "r", CustomBaseUrl: "https://x", FileOutputs: file}), psrpc.Unimplemented, "custom_base_url"},
		{"room composite without output", rc(&livekit.RoomCompositeEgressRequest{RoomName: "r"}), psrpc.InvalidArgument, "no output"},
		{"room composite odd width", rc(&livekit.RoomCompositeEgressRequest{RoomName: "r", FileOutputs: file,
			Options: &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{Width: 641, Height: 480}}}), psrpc.InvalidArgument, "width"},
		{"room composite bad stream url", rc(&livekit.RoomCompositeEgressRequest{RoomName: "r",
			StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"http://x/live/secretkey"}}}}), psrpc.InvalidArgument, "stream_outputs"},
		{"audio and video only", rc(&livekit.RoomCompositeEgressRequest{RoomName: "r", FileOutputs: file, AudioOnly: true, VideoOnly: true}), psrpc.InvalidArgument, "audio_only"},
		{"participant without identity", &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_Participant{
			Participant: &livekit.ParticipantEgressRequest{RoomName: "r", FileOutputs: file}}}, psrpc.InvalidArgument, "identity"},
		{"track composite without tracks", &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_TrackComposite{
			TrackComposite: &livekit.TrackCompositeEgressRequest{RoomName: "r", FileOutputs: file}}}, psrpc.InvalidArgument, "audio_track_id"},
		{"web without url", &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_Web{Web: &livekit.WebEgressRequest{FileOutputs: file}}}, psrpc.InvalidArgument, "url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Inspect(tc.req)
			var pe psrpc.Error
			if !errors.As(err, &pe) || pe.Code() != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s naming %q", err, tc.code, tc.want)
			}
			if strings.Contains(err.Error(), "secretkey") {
				t.Fatalf("stream key in the error: %v", err)
			}
		})
	}
}

func rc(r *livekit.RoomCompositeEgressRequest) *rpc.StartEgressRequest {
	return &rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_RoomComposite{RoomComposite: r}}
}
