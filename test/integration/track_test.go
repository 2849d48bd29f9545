package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/mediaworker/mediaworker/test/stack"
)

// TestTrackEgressToLocalFile records an Opus track and an H.264 track, ended by unpublishing,
// and checks webhooks, file_results and the files themselves.
func TestTrackEgressToLocalFile(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "local-room")
	pub := s.Publish(t, "local-room", "alice",
		stack.Media{Name: "mic", Codec: "opus", Seconds: 6}, stack.Media{Name: "cam", Codec: "h264", Seconds: 6})
	vp8 := s.Publish(t, "local-room", "bob", stack.Media{Name: "vp8", Codec: "vp8", Seconds: 6})
	pub.Tracks["vp8"], pub.Finished["vp8"] = vp8.Tracks["vp8"], vp8.Finished["vp8"]

	cases := []struct {
		media, path, codec, ext string
	}{
		{"mic", "{room_name}/{publisher_identity}-{track_type}-{track_source}", "opus", ".ogg"},
		{"cam", "{room_name}/{track_id}.webm", "h264", ".mp4"}, // wrong extension is corrected
		{"vp8", "{room_name}/{publisher_identity}-{utc}", "vp8", ".webm"},
	}
	ids := map[string]string{}
	for _, c := range cases {
		start := time.Now()
		info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{
			RoomName: "local-room", TrackId: pub.Tracks[c.media],
			Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: c.path}},
		})
		if err != nil {
			t.Fatalf("StartTrackEgress %s: %v", c.media, err)
		}
		if info.Status != livekit.EgressStatus_EGRESS_STARTING || info.RoomName != "local-room" || info.RoomId == "" {
			t.Fatalf("start answer: %v", info)
		}
		t.Logf("StartTrackEgress(%s) answered in %s", c.media, time.Since(start))
		ids[c.media] = info.EgressId
	}
	activeAt, unpublishedAt := map[string]time.Time{}, map[string]time.Time{}
	for _, c := range cases {
		waitEvent(t, s, ids[c.media], "egress_updated", 10*time.Second)
		activeAt[c.media] = time.Now()
	}
	// The recorder is in the room as a hidden participant whose identity is the egress id (what
	// UpdateLayout relies on): the server finds it by that identity.
	if _, err := lksdk.NewRoomServiceClient(s.HTTPURL, stack.APIKey, stack.APISecret).UpdateParticipant(ctx(t),
		&livekit.UpdateParticipantRequest{Room: "local-room", Identity: ids["mic"], Metadata: `{"layout":"grid"}`}); err != nil {
		t.Fatalf("no participant with the egress id as identity: %v", err)
	}
	for _, c := range cases {
		<-pub.Finished[c.media]
		unpublishedAt[c.media] = time.Now()
		if c.media == "vp8" {
			vp8.Unpublish(t, c.media)
		} else {
			pub.Unpublish(t, c.media)
		}
	}
	for _, c := range cases {
		info := waitEvent(t, s, ids[c.media], "egress_ended", 20*time.Second)
		checkWebhookOrder(t, s, ids[c.media], livekit.EgressStatus_EGRESS_COMPLETE)
		if len(info.FileResults) != 1 {
			t.Fatalf("%s: file_results %v (error %q)", c.media, info.FileResults, info.Error)
		}
		fr := info.FileResults[0]
		if !strings.HasSuffix(fr.Filename, c.ext) || !strings.HasPrefix(fr.Filename, "local-room/") || fr.Size == 0 ||
			fr.StartedAt == 0 || fr.EndedAt <= fr.StartedAt || fr.Duration <= 0 {
			t.Fatalf("%s: bad file result %v", c.media, fr)
		}
		if want := filepath.Join(w.LocalDir, fr.Filename); fr.Location != want {
			t.Fatalf("%s: location %q, want %q", c.media, fr.Location, want)
		}
		p := stack.FFprobe(t, fr.Location)
		if len(p.Streams) != 1 || p.Streams[0].CodecName != c.codec {
			t.Fatalf("%s: streams %+v, want one %s", c.media, p.Streams, c.codec)
		}
		if c.codec != "opus" && (p.Streams[0].Width != 640 || p.Streams[0].Height != 360) {
			t.Fatalf("video is %dx%d, want 640x360", p.Streams[0].Width, p.Streams[0].Height)
		}
		reported := time.Duration(fr.Duration).Seconds()
		published := unpublishedAt[c.media].Sub(activeAt[c.media]).Seconds() // media sent while recording
		if !near(p.Duration(), reported, 1) || !near(p.Duration(), published, 1) {
			t.Fatalf("%s: ffprobe duration %.2fs, reported %.2fs, published while recording %.2fs", c.media, p.Duration(), reported, published)
		}
		if e := stack.DecodeErrors(t, fr.Location); e != "" {
			t.Fatalf("%s: decode errors: %s", c.media, e)
		}
		checkManifest(t, info, fr)
		t.Logf("%s: %s %.2fs %d bytes", c.media, fr.Filename, p.Duration(), fr.Size)
	}
}

// TestTrackEgressStopMidStream stops a recording while media still flows: the file is finalised.
func TestTrackEgressStopMidStream(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "stop-room")
	pub := s.Publish(t, "stop-room", "bob", stack.Media{Name: "cam", Codec: "h264", Seconds: 30})
	info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{
		RoomName: "stop-room", TrackId: pub.Tracks["cam"],
		Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: "stopped/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	if _, m := w.Get(t, "/metrics"); !strings.Contains(m, `mediaworker_jobs_running{kind="track",status="EGRESS_ACTIVE"} 1`) {
		t.Fatalf("metrics lack the running job:\n%s", m)
	}
	time.Sleep(3 * time.Second)
	stopped, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: info.EgressId})
	if err != nil {
		t.Fatalf("StopEgress: %v", err)
	}
	if stopped.Status != livekit.EgressStatus_EGRESS_ENDING {
		t.Fatalf("StopEgress answered %s, want ENDING", stopped.Status)
	}
	end := waitEvent(t, s, info.EgressId, "egress_ended", 20*time.Second)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)
	if !strings.Contains(end.Details, "StopEgress") {
		t.Fatalf("details %q should name the end reason", end.Details)
	}
	fr := end.FileResults[0]
	if !strings.HasPrefix(fr.Filename, "stopped/"+pub.Tracks["cam"]+"-") {
		t.Fatalf("default name under a directory: %q", fr.Filename)
	}
	p := stack.FFprobe(t, fr.Location)
	if !near(p.Duration(), 3, 1) {
		t.Fatalf("duration %.2fs, want ≈3 s", p.Duration())
	}
	if e := stack.DecodeErrors(t, fr.Location); e != "" {
		t.Fatalf("decode errors: %s", e)
	}
	stack.Eventually(t, 5*time.Second, "ended job in metrics", func() bool {
		_, m := w.Get(t, "/metrics")
		return strings.Contains(m, `mediaworker_jobs_ended_total{kind="track",status="EGRESS_COMPLETE"} 1`) && !strings.Contains(m, "mediaworker_jobs_running{")
	})
	// A second stop of an ended egress is refused by the server.
	if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: info.EgressId}); err == nil {
		t.Fatal("StopEgress of a completed egress succeeded")
	}
}

// TestTrackEgressLimits ends a recording at limits.file_output_max_duration: LIMIT_REACHED with
// the file kept and reported.
func TestTrackEgressLimits(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "limits: {file_output_max_duration: 3s}\n")
	s.CreateRoom(t, "limit-room")
	pub := s.Publish(t, "limit-room", "lee", stack.Media{Name: "cam", Codec: "h264", Seconds: 30})
	info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{RoomName: "limit-room", TrackId: pub.Tracks["cam"],
		Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{}}})
	if err != nil {
		t.Fatal(err)
	}
	end := waitEvent(t, s, info.EgressId, "egress_ended", 20*time.Second)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_LIMIT_REACHED)
	if end.ErrorCode != 413 || len(end.FileResults) != 1 {
		t.Fatalf("got code %d, %v", end.ErrorCode, end.FileResults)
	}
	if p := stack.FFprobe(t, end.FileResults[0].Location); !near(p.Duration(), 3, 0.5) {
		t.Fatalf("duration %.2f, want 3 s", p.Duration())
	}
}

// checkManifest reads a local manifest and checks it lists the file result.
func checkManifest(t *testing.T, info *livekit.EgressInfo, fr *livekit.FileInfo) {
	t.Helper()
	if filepath.Dir(info.ManifestLocation) != filepath.Dir(fr.Location) || filepath.Base(info.ManifestLocation) != info.EgressId+".json" {
		t.Fatalf("manifest_location %q beside %q", info.ManifestLocation, fr.Location)
	}
	b, err := os.ReadFile(info.ManifestLocation)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		EgressID string `json:"egress_id"`
		Files    []struct {
			Filename string `json:"filename"`
			Location string `json:"location"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.EgressID != info.EgressId || len(m.Files) != 1 || m.Files[0].Location != fr.Location {
		t.Fatalf("manifest %s: %v", b, err)
	}
}

// TestTrackEgressSourceEnds ends a recording from the room side: the room is deleted, or the
// publisher leaves. Either way the egress completes with what was recorded.
func TestTrackEgressSourceEnds(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	cases := []struct {
		name string
		end  func(t *testing.T, room string, pub *stack.Publisher)
	}{
		{"room deleted", func(t *testing.T, room string, _ *stack.Publisher) {
			if _, err := lksdk.NewRoomServiceClient(s.HTTPURL, stack.APIKey, stack.APISecret).DeleteRoom(ctx(t), &livekit.DeleteRoomRequest{Room: room}); err != nil {
				t.Fatal(err)
			}
		}},
		{"publisher leaves", func(_ *testing.T, _ string, pub *stack.Publisher) { pub.Room.Disconnect() }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			room := fmt.Sprintf("end-room-%d", i)
			s.CreateRoom(t, room)
			pub := s.Publish(t, room, "sam", stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
			info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{RoomName: room, TrackId: pub.Tracks["mic"],
				Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{}}})
			if err != nil {
				t.Fatal(err)
			}
			waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
			time.Sleep(2 * time.Second)
			c.end(t, room, pub)
			end := waitEvent(t, s, info.EgressId, "egress_ended", 20*time.Second)
			checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)
			if !strings.Contains(end.Details, "Source closed") {
				t.Fatalf("details %q", end.Details)
			}
			if p := stack.FFprobe(t, end.FileResults[0].Location); !near(p.Duration(), 2, 1) {
				t.Fatalf("duration %.2f", p.Duration())
			}
		})
	}
}
