package integration

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
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
