package integration

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/mediaworker/mediaworker/test/mediatest"
	"github.com/mediaworker/mediaworker/test/stack"
)

// TestRoomCompositeGrid composes two participants (solid red and green video, two tones) in a grid,
// natively; one leaves mid-way and the survivor takes the canvas.
func TestRoomCompositeGrid(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "grid-room")
	s.Publish(t, "grid-room", "red", stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 30}, stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	green := s.Publish(t, "grid-room", "green", stack.Media{Name: "cam", Codec: "h264", Color: "green", Seconds: 30}, stack.Media{Name: "mic", Codec: "opus", Hz: 880, Seconds: 30})
	start := time.Now()
	info, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: "grid-room",
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "{room_name}"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	t.Logf("StartRoomCompositeEgress → ACTIVE in %s", time.Since(start))
	time.Sleep(5 * time.Second)
	green.Room.Disconnect()
	leftAt := time.Since(start).Seconds()
	time.Sleep(4 * time.Second)
	end := stop(t, s, info.EgressId)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)
	path := end.FileResults[0].Location
	p := stack.FFprobe(t, path)
	if len(p.Streams) != 2 || p.Streams[0].Width != 1280 || p.Streams[0].Height != 720 || p.Streams[0].CodecName != "h264" || p.Streams[1].CodecName != "aac" {
		t.Fatalf("streams %+v", p.Streams)
	}
	if !near(p.Duration(), time.Since(start).Seconds(), 2) {
		t.Fatalf("duration %.2f", p.Duration())
	}
	// Both tiles at 3 s, one on each side.
	px := mediatest.Pixels(t, path, 3)
	l, r := mediatest.ColorOf(px[4]), mediatest.ColorOf(px[7])
	if !(l == "red" && r == "green") && !(l == "green" && r == "red") {
		t.Fatalf("at 3 s want red and green side by side, got %v", px)
	}
	// After green left, red alone fills the canvas.
	px = mediatest.Pixels(t, path, leftAt+2)
	if mediatest.ColorOf(px[0]) != "red" || mediatest.ColorOf(px[3]) != "red" {
		t.Fatalf("at %.1f s want red alone, got %v", leftAt+2, px)
	}
	if e := stack.DecodeErrors(t, path); e != "" {
		t.Fatalf("decode: %s", e)
	}
}

// TestAutoEgress creates a room with RoomEgress as the seed shows: livekit-server starts a room
// composite when the room is created, a participant egress when a participant first publishes, and
// a track egress for each published track; all four record.
func TestAutoEgress(t *testing.T) {
	s := stack.New(t)
	// Two transcodes at once on 2 cores: reserve what they use here (one 640x360 input each).
	s.StartWorker(t, "worker", "capacity: {composite_cpu_cost: 0.6}\n")
	rooms := lksdk.NewRoomServiceClient(s.HTTPURL, stack.APIKey, stack.APISecret)
	if _, err := rooms.CreateRoom(ctx(t), &livekit.CreateRoomRequest{Name: "auto-room", Egress: &livekit.RoomEgress{
		Room:        &livekit.RoomCompositeEgressRequest{FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "auto/{room_name}-composite"}}},
		Participant: &livekit.AutoParticipantEgress{FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "auto/{participant_identity}"}}},
		Tracks:      &livekit.AutoTrackEgress{Filepath: "auto/{track_id}"},
	}}); err != nil {
		t.Fatal(err)
	}
	s.Publish(t, "auto-room", "quinn", stack.Media{Name: "mic", Codec: "opus", Seconds: 30}, stack.Media{Name: "cam", Codec: "h264", Seconds: 30})
	var started []*livekit.EgressInfo
	stack.Eventually(t, 20*time.Second, "room composite, participant and 2 track egresses started", func() bool {
		started = s.Webhooks.Started()
		return len(started) == 4
	})
	for _, e := range started {
		waitEvent(t, s, e.EgressId, "egress_updated", 15*time.Second)
	}
	time.Sleep(3 * time.Second)
	if _, err := rooms.DeleteRoom(ctx(t), &livekit.DeleteRoomRequest{Room: "auto-room"}); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range started {
		end := waitEvent(t, s, e.EgressId, "egress_ended", 30*time.Second)
		if end.Status != livekit.EgressStatus_EGRESS_COMPLETE || len(end.FileResults) != 1 {
			t.Fatalf("%s: %s %q", e.EgressId, end.Status, end.Error)
		}
		p := stack.FFprobe(t, end.FileResults[0].Location)
		if p.Duration() < 2 {
			t.Fatalf("%s: %.2f s", end.FileResults[0].Filename, p.Duration())
		}
		if _, ok := end.Request.(*livekit.EgressInfo_Participant); ok {
			if end.FileResults[0].Filename != "auto/quinn.mp4" || len(p.Streams) != 2 {
				t.Fatalf("participant egress: %s with %+v", end.FileResults[0].Filename, p.Streams)
			}
		}
		kinds[fmt.Sprintf("%T", end.Request)] = true
	}
	if !kinds["*livekit.EgressInfo_RoomComposite"] || !kinds["*livekit.EgressInfo_Track"] || !kinds["*livekit.EgressInfo_Participant"] {
		t.Fatalf("egress kinds %v", kinds)
	}
}

// TestRoomCompositeLayoutAndMute switches the layout with UpdateLayout while recording and shows a
// muted camera as an empty tile.
func TestRoomCompositeLayoutAndMute(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "layout-room")
	s.Publish(t, "layout-room", "red", stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 30})
	green := s.Publish(t, "layout-room", "green", stack.Media{Name: "cam", Codec: "h264", Color: "green", Seconds: 30})
	info, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: "layout-room", VideoOnly: true,
		FileOutputs: []*livekit.EncodedFileOutput{{}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	start := time.Now()
	time.Sleep(3 * time.Second)
	if _, err := s.Egress().UpdateLayout(ctx(t), &livekit.UpdateLayoutRequest{EgressId: info.EgressId, Layout: "single-speaker"}); err != nil {
		t.Fatalf("UpdateLayout: %v", err)
	}
	single := time.Since(start).Seconds()
	time.Sleep(3 * time.Second)
	if _, err := s.Egress().UpdateLayout(ctx(t), &livekit.UpdateLayoutRequest{EgressId: info.EgressId, Layout: "grid"}); err != nil {
		t.Fatal(err)
	}
	green.Pubs["cam"].SetMuted(true)
	muted := time.Since(start).Seconds()
	time.Sleep(3 * time.Second)
	end := stop(t, s, info.EgressId)
	path := end.FileResults[0].Location
	if px := mediatest.Pixels(t, path, 1.5); mediatest.ColorOf(px[4]) == mediatest.ColorOf(px[7]) {
		t.Fatalf("grid at 1.5 s should show two colours, got %v", px)
	}
	if px := mediatest.Pixels(t, path, single+1.5); mediatest.ColorOf(px[0]) == "other" || mediatest.ColorOf(px[0]) != mediatest.ColorOf(px[3]) {
		t.Fatalf("single-speaker at %.1f s should show one participant full frame, got %v", single+1.5, px)
	}
	px := mediatest.Pixels(t, path, muted+1.5)
	if !(mediatest.ColorOf(px[4]) == "red" && mediatest.Dark(px[7])) && !(mediatest.Dark(px[4]) && mediatest.ColorOf(px[7]) == "red") {
		t.Fatalf("with green muted at %.1f s want red beside an empty tile, got %v", muted+1.5, px)
	}
}

// TestRoomCompositeSimulcastLayers: with simulcast cameras (as browsers publish them), the
// composite asks livekit-server for the layer that fits each tile instead of decoding 1280x720 and
// scaling it down. Each layer of the test cameras is its own colour (1280x720 red, 640x360 green,
// 320x180 blue), so the recording shows which one was composed: the grid's 640x360 tiles come
// from the 640x360 layer; after UpdateLayout to "speaker", the 960x720 tile from 1280x720 and the
// 320x180 strip tile from 320x180.
func TestRoomCompositeSimulcastLayers(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "sim-room")
	layers := [3]string{"red", "green", "blue"}
	s.Publish(t, "sim-room", "a", stack.Media{Name: "cam", Codec: "h264720", Simulcast: true, LayerColors: layers, Seconds: 40})
	s.Publish(t, "sim-room", "b", stack.Media{Name: "cam", Codec: "h264720", Simulcast: true, LayerColors: layers, Seconds: 40})
	info, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: "sim-room", VideoOnly: true,
		FileOutputs: []*livekit.EncodedFileOutput{{}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	start := time.Now()
	// Long enough for the worker's layer check (4 s after a request) to have corrected a layer
	// livekit-server did not switch, and for that layer's next keyframe (2 s GOP).
	time.Sleep(9 * time.Second)
	if _, err := s.Egress().UpdateLayout(ctx(t), &livekit.UpdateLayoutRequest{EgressId: info.EgressId, Layout: "speaker"}); err != nil {
		t.Fatalf("UpdateLayout: %v", err)
	}
	speaker := time.Since(start).Seconds()
	time.Sleep(8 * time.Second)
	end := stop(t, s, info.EgressId)
	path := end.FileResults[0].Location
	for _, c := range []struct {
		what, crop string
		at         float64
		want       string
	}{
		{"grid, left tile", "640:360:0:180", speaker - 1, "green"},
		{"grid, right tile", "640:360:640:180", speaker - 1, "green"},
		{"speaker, large tile", speakerLarge, speaker + 7, "red"},
		{"speaker, strip tile", speakerStrip, speaker + 7, "blue"},
	} {
		if got := regionColor(t, path, c.at, c.crop); mediatest.ColorOf(got) != c.want {
			t.Errorf("%s at %.1f s: want the %s layer's colour, got %v", c.what, c.at, c.want, got)
		}
	}
}

// TestRoomCompositeSpeakerFollowsAudio: with the speaker layout, the participant livekit-server
// names the active speaker (from the audio level each publisher reports in its RTP header
// extension) fills the large tile; when the other one starts speaking and the first goes quiet,
// they swap.
func TestRoomCompositeSpeakerFollowsAudio(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "spk-room")
	red := s.Publish(t, "spk-room", "red", stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 40},
		stack.Media{Name: "mic", Codec: "opus", Seconds: 40, Silent: true})
	green := s.Publish(t, "spk-room", "green", stack.Media{Name: "cam", Codec: "h264", Color: "green", Seconds: 40},
		stack.Media{Name: "mic", Codec: "opus", Hz: 880, Seconds: 40, Silent: true})
	id, start := startSpeakerComposite(t, s, "spk-room")
	time.Sleep(2 * time.Second)
	red.SetAudioLevel(t, "mic", 10) // red starts speaking
	first := time.Since(start).Seconds()
	time.Sleep(6 * time.Second)
	red.SetAudioLevel(t, "mic", 127)
	green.SetAudioLevel(t, "mic", 10) // green takes over
	swap := time.Since(start).Seconds()
	time.Sleep(6 * time.Second)
	path := stop(t, s, id).FileResults[0].Location
	for _, c := range []struct {
		at             float64
		large, inStrip string
	}{{first + 4, "red", "green"}, {swap + 4, "green", "red"}} {
		large, strip := speakerTiles(t, path, c.at)
		if mediatest.ColorOf(large) != c.large || mediatest.ColorOf(strip) != c.inStrip {
			t.Fatalf("at %.1f s want %s large and %s in the strip, got %v large, %v in the strip", c.at, c.large, c.inStrip, large, strip)
		}
	}
}

// TestRoomCompositeSpeakerBeforeCamera: a participant who is already the active speaker when
// their camera is published gets the large tile as soon as the camera is composed, without waiting
// for the server's next speaker change (they keep speaking, so none comes).
func TestRoomCompositeSpeakerBeforeCamera(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "spk2-room")
	s.Publish(t, "spk2-room", "green", stack.Media{Name: "cam", Codec: "h264", Color: "green", Seconds: 40},
		stack.Media{Name: "mic", Codec: "opus", Hz: 880, Seconds: 40, Silent: true})
	red := s.Publish(t, "spk2-room", "red", stack.Media{Name: "mic", Codec: "opus", Seconds: 40}) // speaking
	id, start := startSpeakerComposite(t, s, "spk2-room")
	time.Sleep(3 * time.Second)
	red.Add(t, stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 40})
	camAt := time.Since(start).Seconds()
	time.Sleep(5 * time.Second)
	path := stop(t, s, id).FileResults[0].Location
	if large, _ := speakerTiles(t, path, camAt-1); mediatest.ColorOf(large) != "green" {
		t.Fatalf("before red's camera (%.1f s): want green large (the only camera), got %v", camAt-1, large)
	}
	at := camAt + 3.5
	large, strip := speakerTiles(t, path, at)
	if mediatest.ColorOf(large) != "red" || mediatest.ColorOf(strip) != "green" {
		t.Fatalf("at %.1f s want red (the speaker) large and green in the strip, got %v large, %v in the strip", at, large, strip)
	}
}

// startSpeakerComposite starts a speaker-layout room composite of room to a file and waits until it
// records; it returns the egress and when it became active.
func startSpeakerComposite(t *testing.T, s *stack.Stack, room string) (string, time.Time) {
	t.Helper()
	info, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: room, Layout: "speaker",
		FileOutputs: []*livekit.EncodedFileOutput{{}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	return info.EgressId, time.Now()
}

// Regions of a 1280x720 speaker layout: the large tile fills the left three quarters, the strip
// the right quarter, its first tile at the top.
const (
	speakerLarge = "960:540:0:90"
	speakerStrip = "320:180:960:0"
)

// speakerTiles is the mean RGB of the large tile and of the strip's first tile at sec.
func speakerTiles(t *testing.T, path string, sec float64) (large, strip [3]int) {
	t.Helper()
	return regionColor(t, path, sec, speakerLarge), regionColor(t, path, sec, speakerStrip)
}

// regionColor is the mean RGB of the crop "w:h:x:y" of the frame at sec (converted to RGB before
// averaging, so that 4:2:0 chroma does not bleed in from outside the region).
func regionColor(t *testing.T, path string, sec float64, crop string) [3]int {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", fmt.Sprint(sec), "-i", path, "-frames:v", "1",
		"-vf", "crop="+crop+",format=rgb24,scale=1:1:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) != 3 {
		t.Fatalf("frame at %.1f s: %v (%d bytes)", sec, err, len(out))
	}
	return [3]int{int(out[0]), int(out[1]), int(out[2])}
}

// TestRoomCompositeDualChannel records a composite with DUAL_CHANNEL_ALTERNATE, cameras composed
// too (the common case): the two participants' tones (440 and 880 Hz) land in different channels.
func TestRoomCompositeDualChannel(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "dual-room")
	s.Publish(t, "dual-room", "low", stack.Media{Name: "cam", Codec: "h264", Seconds: 30}, stack.Media{Name: "mic", Codec: "opus", Hz: 440, Seconds: 30})
	s.Publish(t, "dual-room", "high", stack.Media{Name: "cam", Codec: "h264", Seconds: 30}, stack.Media{Name: "mic", Codec: "opus", Hz: 880, Seconds: 30})
	info, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: "dual-room",
		AudioMixing: livekit.AudioMixing_DUAL_CHANNEL_ALTERNATE, FileOutputs: []*livekit.EncodedFileOutput{{}}})
	if err != nil {
		t.Fatal(err)
	}
	end := stopAfter(t, s, info.EgressId, 4*time.Second)
	path := end.FileResults[0].Location
	if p := stack.FFprobe(t, path); len(p.Streams) != 2 || p.Streams[1].CodecName != "aac" {
		t.Fatalf("want H.264 + AAC (MP4), got %+v", p.Streams)
	}
	pcm, err := exec.Command("ffmpeg", "-v", "error", "-ss", "2", "-t", "1", "-i", path, "-f", "s16le", "-ac", "2", "-ar", "48000", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	left, right := crossings(pcm, 0), crossings(pcm, 1)
	isTone := func(n, hz int) bool { return n > 2*hz*90/100 && n < 2*hz*110/100 }
	if !(isTone(left, 440) && isTone(right, 880)) && !(isTone(left, 880) && isTone(right, 440)) {
		t.Fatalf("zero crossings per second: left %d, right %d; want 880 and 1760 (440 and 880 Hz) in different channels", left, right)
	}
}

// crossings counts sign changes of one channel of S16LE stereo.
func crossings(pcm []byte, ch int) int {
	n, prev := 0, int16(0)
	for i := ch * 2; i+2 <= len(pcm); i += 4 {
		v := int16(uint16(pcm[i]) | uint16(pcm[i+1])<<8)
		if (v >= 0) != (prev >= 0) {
			n++
		}
		prev = v
	}
	return n
}
