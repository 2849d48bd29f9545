package integration

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/mediatest"
	"github.com/mediaworker/mediaworker/test/stack"
)

// TestStartEgressV2AudioRoutes records two unified StartEgress MediaSources at once in a room of a
// host (red camera, 440 Hz), an agent (880 Hz) and a guest (green camera, 1320 Hz):
//   - the host's video with the host's audio routed left and every agent's right (by participant
//     kind): an MP4 of the red camera alone, 440 Hz left, 880 Hz right, no guest; it ends when
//     the host leaves;
//   - audio only, the guest's microphone (by track id) left and capture_all for the rest: an OGG
//     with the guest on the left only and the host and agent in both channels.
func TestStartEgressV2AudioRoutes(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "routes-room")
	host := s.Publish(t, "routes-room", "host", stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 30}, stack.Media{Name: "mic", Codec: "opus", Hz: 440, Seconds: 30})
	s.PublishAs(t, livekit.ParticipantInfo_AGENT, "routes-room", "bot", stack.Media{Name: "mic", Codec: "opus", Hz: 880, Seconds: 30})
	guest := s.Publish(t, "routes-room", "guest", stack.Media{Name: "cam", Codec: "h264", Color: "green", Seconds: 30}, stack.Media{Name: "mic", Codec: "opus", Hz: 1320, Seconds: 30})
	left, right := livekit.AudioChannel_AUDIO_CHANNEL_LEFT, livekit.AudioChannel_AUDIO_CHANNEL_RIGHT

	video, err := s.StartEgressV2(ctx(t), &livekit.StartEgressRequest{RoomName: "routes-room",
		Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{Identity: "host"}},
			Audio: &livekit.AudioConfig{Routes: []*livekit.AudioRoute{
				{Match: &livekit.AudioRoute_ParticipantIdentity{ParticipantIdentity: "host"}, Channel: left},
				{Match: &livekit.AudioRoute_ParticipantKind{ParticipantKind: livekit.ParticipantInfo_AGENT}, Channel: right}}}}},
		Outputs: []*livekit.Output{{Config: &livekit.Output_File{File: &livekit.FileOutput{Filepath: "routes/{publisher_identity}"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	audio, err := s.StartEgressV2(ctx(t), &livekit.StartEgressRequest{RoomName: "routes-room",
		Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Audio: &livekit.AudioConfig{CaptureAll: true, Routes: []*livekit.AudioRoute{
				{Match: &livekit.AudioRoute_TrackId{TrackId: guest.Tracks["mic"]}, Channel: left}}}}},
		Outputs: []*livekit.Output{{Config: &livekit.Output_File{File: &livekit.FileOutput{Filepath: "routes/all"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, video.EgressId, "egress_updated", 15*time.Second)
	waitEvent(t, s, audio.EgressId, "egress_updated", 15*time.Second)
	time.Sleep(6 * time.Second)
	// The host leaving ends their media source (as a participant egress would); the audio-only one
	// records the others until stopped.
	host.Room.Disconnect()
	vEnd := waitEvent(t, s, video.EgressId, "egress_ended", 20*time.Second)
	if vEnd.Status != livekit.EgressStatus_EGRESS_COMPLETE || !strings.Contains(vEnd.Details, "host left") {
		t.Fatalf("video media egress after the host left: %s %q %q", vEnd.Status, vEnd.Error, vEnd.Details)
	}
	if evs, _ := s.Webhooks.ForEgress(audio.EgressId); evs[len(evs)-1].Event == "egress_ended" {
		t.Fatalf("the audio-only media egress ended with the host: %v", evs[len(evs)-1].EgressInfo)
	}
	aEnd := stop(t, s, audio.EgressId)

	path := vEnd.FileResults[0].Location
	if filepath.Base(path) != "host.mp4" {
		t.Fatalf("file %s, want routes/host.mp4 ({publisher_identity})", path)
	}
	p := stack.FFprobe(t, path)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 1280 || p.Streams[1].CodecName != "aac" {
		t.Fatalf("streams %+v", p.Streams)
	}
	for i, px := range mediatest.Pixels(t, path, 4) {
		if mediatest.ColorOf(px) != "red" {
			t.Fatalf("at 4 s want the host's red camera alone, got %v at %d", px, i)
		}
	}
	tones := channelTones(t, path, 3, 440, 880, 1320)
	t.Logf("media egress tones (left, right) at 440/880/1320 Hz: %.4f", tones)
	wantTones(t, "host left", tones[0], 440)
	wantTones(t, "agent right", tones[1], 880)

	path = aEnd.FileResults[0].Location
	if p := stack.FFprobe(t, path); len(p.Streams) != 1 || p.Streams[0].CodecName != "opus" {
		t.Fatalf("audio-only media egress: want one opus stream (OGG), got %+v", p.Streams)
	}
	tones = channelTones(t, path, 3, 440, 880, 1320)
	t.Logf("capture_all tones (left, right) at 440/880/1320 Hz: %.4f", tones)
	wantTones(t, "left: everyone", tones[0], 440, 880, 1320)
	wantTones(t, "right: all but the guest", tones[1], 440, 880)
}

// channelTones is the amplitude (full scale 1) of each tone in the left and right channel of
// path over one second from sec.
func channelTones(t *testing.T, path string, sec float64, hz ...float64) [2][]float64 {
	t.Helper()
	pcm, err := exec.Command("ffmpeg", "-v", "error", "-ss", fmt.Sprint(sec), "-t", "1", "-i", path, "-f", "s16le", "-ac", "2", "-ar", "48000", "-").Output()
	if err != nil || len(pcm) < 4*40000 {
		t.Fatalf("decode %s: %v (%d bytes)", path, err, len(pcm))
	}
	var out [2][]float64
	for ch := range 2 {
		for _, f := range hz {
			out[ch] = append(out[ch], goertzel(pcm, ch, f))
		}
	}
	return out
}

// goertzel is the amplitude of frequency hz in channel ch of S16LE stereo at 48 kHz.
func goertzel(pcm []byte, ch int, hz float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*hz/48000)
	var s1, s2 float64
	n := 0
	for i := ch * 2; i+2 <= len(pcm); i += 4 {
		x := float64(int16(uint16(pcm[i])|uint16(pcm[i+1])<<8)) / 32768
		s1, s2 = x+coeff*s1-s2, s1
		n++
	}
	return 2 * math.Sqrt(s1*s1+s2*s2-coeff*s1*s2) / float64(n)
}

// wantTones fails unless exactly the tones want (of 440, 880, 1320 Hz, in that order) are heard:
// each above 0.01 of full scale, every other one below a tenth of the weakest wanted.
func wantTones(t *testing.T, what string, amps []float64, want ...float64) {
	t.Helper()
	all := []float64{440, 880, 1320}
	weakest := math.Inf(1)
	for i, hz := range all {
		for _, w := range want {
			if w == hz {
				weakest = min(weakest, amps[i])
			}
		}
	}
	if weakest < 0.01 {
		t.Fatalf("%s: want %v Hz, amplitudes %.4f (440/880/1320 Hz)", what, want, amps)
	}
	for i, hz := range all {
		wanted := false
		for _, w := range want {
			wanted = wanted || w == hz
		}
		if !wanted && amps[i] > weakest/10 {
			t.Fatalf("%s: %v Hz heard (%.4f) where only %v Hz belong (440/880/1320 Hz: %.4f)", what, hz, amps[i], want, amps)
		}
	}
}
