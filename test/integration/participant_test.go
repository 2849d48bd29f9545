package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/mediatest"
	"github.com/mediaworker/mediaworker/test/stack"
	"github.com/mediaworker/mediaworker/test/storagetest"
)

// TestParticipantEgress transcodes a participant's camera (640x360 H.264) and microphone (Opus) to
// a 720p30 H.264 + AAC MP4 with the default preset.
func TestParticipantEgress(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "p-room")
	s.Publish(t, "p-room", "nina", stack.Media{Name: "cam", Codec: "h264", Seconds: 30}, stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	info, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "p-room", Identity: "nina",
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "{room_name}/{publisher_identity}"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 15*time.Second)
	activeAt := time.Now()
	time.Sleep(5 * time.Second)
	if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
		t.Fatal(err)
	}
	recorded := time.Since(activeAt).Seconds()
	end := waitEvent(t, s, info.EgressId, "egress_ended", 30*time.Second)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)
	fr := end.FileResults[0]
	if fr.Filename != "p-room/nina.mp4" {
		t.Fatalf("filename %q", fr.Filename)
	}
	p := stack.FFprobe(t, fr.Location)
	if len(p.Streams) != 2 {
		t.Fatalf("streams %+v", p.Streams)
	}
	v, a := p.Streams[0], p.Streams[1]
	if v.CodecType != "video" {
		v, a = a, v
	}
	if v.CodecName != "h264" || v.Width != 1280 || v.Height != 720 || a.CodecName != "aac" {
		t.Fatalf("video %+v audio %+v", v, a)
	}
	if !near(p.Duration(), recorded, 1.2) {
		t.Fatalf("duration %.2f s, recorded %.2f s", p.Duration(), recorded)
	}
	out, _ := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", fr.Location).Output()
	t.Logf("%s: %.2f s, %s frames, %d bytes", fr.Filename, p.Duration(), strings.TrimSpace(string(out)), fr.Size)
	if e := stack.DecodeErrors(t, fr.Location); e != "" {
		t.Fatalf("decode: %s", e)
	}
}

// TestTrackCompositeEgress records a given audio and video track (of two participants) to MP4,
// and an audio track alone to OGG/Opus.
func TestTrackCompositeEgress(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "tc-room")
	cam := s.Publish(t, "tc-room", "oscar", stack.Media{Name: "cam", Codec: "vp8", Seconds: 30})
	mic := s.Publish(t, "tc-room", "pia", stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	cases := []struct {
		name, video, codec string
		streams            int
	}{{"video and audio to mp4", cam.Tracks["cam"], "h264", 2}, {"audio only to ogg", "", "opus", 1}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := s.Egress().StartTrackCompositeEgress(ctx(t), &livekit.TrackCompositeEgressRequest{RoomName: "tc-room",
				AudioTrackId: mic.Tracks["mic"], VideoTrackId: c.video, FileOutputs: []*livekit.EncodedFileOutput{{}}})
			if err != nil {
				t.Fatal(err)
			}
			end := stopAfter(t, s, info.EgressId, 3*time.Second)
			if end.Status != livekit.EgressStatus_EGRESS_COMPLETE {
				t.Fatalf("%s %q", end.Status, end.Error)
			}
			p := stack.FFprobe(t, end.FileResults[0].Location)
			if len(p.Streams) != c.streams || !near(p.Duration(), 3, 1.2) {
				t.Fatalf("streams %+v, %.2f s", p.Streams, p.Duration())
			}
			names := map[string]bool{}
			for _, st := range p.Streams {
				names[st.CodecName] = true
			}
			if !names[c.codec] {
				t.Fatalf("no %s stream: %+v", c.codec, p.Streams)
			}
			if e := stack.DecodeErrors(t, end.FileResults[0].Location); e != "" {
				t.Fatalf("decode: %s", e)
			}
		})
	}
}

// TestStartEgressV2 uses the unified StartEgress with a MediaSource (a participant's video and
// their audio) and request-level S3 storage (MinIO): it runs as a participant egress. The filepath
// is written as a storage URL, as the seed does: the object lands at its key.
func TestStartEgressV2(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	minio := storagetest.StartMinIO(t)
	minio.CreateBucket(t, "v2-bucket")
	s.CreateRoom(t, "v2-room")
	s.Publish(t, "v2-room", "rita", stack.Media{Name: "cam", Codec: "h264", Seconds: 30}, stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	info, err := s.StartEgressV2(ctx(t), &livekit.StartEgressRequest{RoomName: "v2-room",
		Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{Identity: "rita"}},
			Audio: &livekit.AudioConfig{Routes: []*livekit.AudioRoute{{Match: &livekit.AudioRoute_ParticipantIdentity{ParticipantIdentity: "rita"}}}}}},
		Encoding: &livekit.StartEgressRequest_Preset{Preset: livekit.EncodingOptionsPreset_H264_720P_30},
		Outputs:  []*livekit.Output{{Config: &livekit.Output_File{File: &livekit.FileOutput{Filepath: "s3://v2-bucket/v2/{publisher_identity}"}}}}, // as the seed writes it
		Storage: &livekit.StorageConfig{Provider: &livekit.StorageConfig_S3{S3: &livekit.S3Upload{AccessKey: minio.AccessKey, Secret: minio.Secret,
			Endpoint: minio.Endpoint, Bucket: "v2-bucket", ForcePathStyle: true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	end := stopAfter(t, s, info.EgressId, 3*time.Second)
	if end.Status != livekit.EgressStatus_EGRESS_COMPLETE || end.GetEgress() == nil {
		t.Fatalf("%s %q, request %T", end.Status, end.Error, end.Request)
	}
	if strings.Contains(end.String(), minio.Secret) {
		t.Fatal("storage secret reported back")
	}
	p := stack.FFprobe(t, minio.Get(t, "v2-bucket", "v2/rita.mp4", t.TempDir()))
	if len(p.Streams) != 2 || !near(p.Duration(), 3, 1.2) {
		t.Fatalf("%+v %.2f", p.Streams, p.Duration())
	}
}

// TestParticipantLateMicrophone: a participant who turns their microphone on after the recording
// started is heard from then on; before, the file holds silence (one AAC track throughout).
func TestParticipantLateMicrophone(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "late-room")
	p := s.Publish(t, "late-room", "lee", stack.Media{Name: "cam", Codec: "h264", Seconds: 40})
	info, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "late-room", Identity: "lee",
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "late.mp4"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 15*time.Second)
	activeAt := time.Now()
	time.Sleep(4 * time.Second)
	p.Add(t, stack.Media{Name: "mic", Codec: "opus", Seconds: 40})
	micAt := time.Since(activeAt).Seconds()
	time.Sleep(5 * time.Second)
	end := stop(t, s, info.EgressId)
	path := end.FileResults[0].Location
	probe := stack.FFprobe(t, path)
	if len(probe.Streams) != 2 {
		t.Fatalf("streams %+v", probe.Streams)
	}
	before, after := meanVolume(t, path, 0.5, micAt-1.5), meanVolume(t, path, micAt+1.5, 2)
	t.Logf("mic published at %.1f s: mean volume %.1f dB before, %.1f dB after", micAt, before, after)
	if before > -60 || after < -40 {
		t.Fatalf("want silence before the microphone and a tone after: %.1f dB / %.1f dB", before, after)
	}
	if e := stack.DecodeErrors(t, path); e != "" {
		t.Fatalf("decode: %s", e)
	}
}

// TestParticipantLateCamera: a participant who joins with only a microphone and turns their camera
// on later is recorded as one MP4 with video throughout: black until the camera, then the camera
// (640x360, scaled to fill 1280x720); the microphone is heard all along.
func TestParticipantLateCamera(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "latecam-room")
	p := s.Publish(t, "latecam-room", "cam-late", stack.Media{Name: "mic", Codec: "opus", Seconds: 40})
	info, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "latecam-room", Identity: "cam-late",
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "latecam.mp4"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 15*time.Second)
	activeAt := time.Now()
	time.Sleep(4 * time.Second)
	p.Add(t, stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 40})
	camAt := time.Since(activeAt).Seconds()
	time.Sleep(5 * time.Second)
	end := stop(t, s, info.EgressId)
	if end.Status != livekit.EgressStatus_EGRESS_COMPLETE {
		t.Fatalf("status %s: %s", end.Status, end.Error)
	}
	path := end.FileResults[0].Location
	probe := stack.FFprobe(t, path)
	if len(probe.Streams) != 2 || probe.Streams[0].CodecName != "h264" || probe.Streams[0].Width != 1280 || probe.Streams[0].Height != 720 ||
		probe.Streams[1].CodecName != "aac" {
		t.Fatalf("want H.264 1280x720 + AAC, got %+v", probe.Streams)
	}
	if px := mediatest.Pixels(t, path, camAt-2); !mediatest.Dark(px[0]) || !mediatest.Dark(px[5]) {
		t.Fatalf("before the camera (%.1f s): want black, got %v", camAt-2, px)
	}
	if px := mediatest.Pixels(t, path, camAt+3); !mediatest.AllColor(px, "red") {
		t.Fatalf("after the camera (%.1f s): want the red camera filling the picture, got %v", camAt+3, px)
	}
	before, after := meanVolume(t, path, 0.5, camAt-1.5), meanVolume(t, path, camAt+1, 2)
	if before < -40 || after < -40 {
		t.Fatalf("want the tone before and after the camera: %.1f dB / %.1f dB", before, after)
	}
	if e := stack.DecodeErrors(t, path); e != "" {
		t.Fatalf("decode: %s", e)
	}
}

// TestParticipantSimulcastLayer: a participant egress at 640x360 receives the simulcast camera's
// 640x360 layer (green here) rather than decoding and scaling down the 1280x720 one (red).
func TestParticipantSimulcastLayer(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "simp-room")
	s.Publish(t, "simp-room", "sim", stack.Media{Name: "cam", Codec: "h264720", Simulcast: true, LayerColors: [3]string{"red", "green", "blue"}, Seconds: 40})
	info, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "simp-room", Identity: "sim",
		Options:     &livekit.ParticipantEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{Width: 640, Height: 360, Framerate: 30, VideoBitrate: 800}},
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "simp.mp4"}}})
	if err != nil {
		t.Fatal(err)
	}
	end := stopAfter(t, s, info.EgressId, 6*time.Second)
	path := end.FileResults[0].Location
	if p := stack.FFprobe(t, path); len(p.Streams) < 1 || p.Streams[0].Width != 640 || p.Streams[0].Height != 360 {
		t.Fatalf("want 640x360 video, got %+v", p.Streams)
	}
	if px := mediatest.Pixels(t, path, 4); !mediatest.AllColor(px, "green") {
		t.Fatalf("at 4 s want the 640x360 layer (green) everywhere, got %v", px)
	}
}

// meanVolume is the mean audio volume (dB) of path from start for secs (ffmpeg volumedetect).
func meanVolume(t *testing.T, path string, start, secs float64) float64 {
	t.Helper()
	out, _ := exec.Command("ffmpeg", "-v", "info", "-ss", fmt.Sprint(start), "-t", fmt.Sprint(secs), "-i", path, "-vn", "-af", "volumedetect", "-f", "null", "-").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "mean_volume: "); i >= 0 {
			var v float64
			fmt.Sscanf(l[i+len("mean_volume: "):], "%f", &v)
			return v
		}
	}
	t.Fatalf("no volume for %s: %s", path, out)
	return 0
}

// TestParticipantScreenShare: StartParticipantEgress with screen_share records the participant's
// screen share (published here 3 s after the request), not their camera; a v2 media source that
// prefers the screen share shows the camera until the screen share is published, then the screen
// share, with the participant's microphone.
func TestParticipantScreenShare(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "screen-room")
	sam := s.Publish(t, "screen-room", "sam", stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 40}, stack.Media{Name: "mic", Codec: "opus", Seconds: 40})
	v1, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "screen-room", Identity: "sam", ScreenShare: true,
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "screen/v1"}}})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.StartEgressV2(ctx(t), &livekit.StartEgressRequest{RoomName: "screen-room",
		Source: &livekit.StartEgressRequest_Media{Media: &livekit.MediaSource{
			Video: &livekit.MediaSource_ParticipantVideo{ParticipantVideo: &livekit.ParticipantVideo{Identity: "sam", PreferScreenShare: true}}}},
		Outputs: []*livekit.Output{{Config: &livekit.Output_File{File: &livekit.FileOutput{Filepath: "screen/v2"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, v2.EgressId, "egress_updated", 15*time.Second)
	time.Sleep(3 * time.Second)
	sam.Add(t, stack.Media{Name: "screen", Codec: "h264", Color: "green", Source: livekit.TrackSource_SCREEN_SHARE, Seconds: 40})
	waitEvent(t, s, v1.EgressId, "egress_updated", 15*time.Second)
	time.Sleep(4 * time.Second)
	e1, e2 := stop(t, s, v1.EgressId), stop(t, s, v2.EgressId)

	allOf := func(path string, sec float64, want string) {
		t.Helper()
		for i, px := range mediatest.Pixels(t, path, sec) {
			if mediatest.ColorOf(px) != want {
				t.Fatalf("%s at %.1f s: want %s everywhere, got %v at %d", filepath.Base(path), sec, want, px, i)
			}
		}
	}
	path := e1.FileResults[0].Location
	p := stack.FFprobe(t, path)
	if e1.Status != livekit.EgressStatus_EGRESS_COMPLETE || len(p.Streams) == 0 || p.Streams[0].CodecName != "h264" {
		t.Fatalf("screen_share egress: %s %q, streams %+v", e1.Status, e1.Error, p.Streams)
	}
	allOf(path, 0.5, "green")
	allOf(path, p.Duration()-1, "green")

	path = e2.FileResults[0].Location
	p = stack.FFprobe(t, path)
	if len(p.Streams) != 2 || p.Streams[1].CodecName != "aac" {
		t.Fatalf("preferred screen share media source: streams %+v", p.Streams)
	}
	allOf(path, 1.5, "red")
	allOf(path, p.Duration()-1, "green")
}
