package integration

import (
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mediaworker/mediaworker/test/stack"
)

// TestStreamOutputs records a room composite to a file while streaming it over RTMP (the seed's
// "record and stream" example): a second destination is added live, the first removed live, and a
// destination that never answers is retried, then given up, without disturbing the others.
func TestStreamOutputs(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "st-room")
	s.Publish(t, "st-room", "red", stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 90}, stack.Media{Name: "mic", Codec: "opus", Seconds: 90})
	url1, flv1, rx1 := stack.ListenRTMP(t, "firstkey123")
	url2, flv2, rx2 := stack.ListenRTMP(t, "secondkey456")
	deadPort := stack.FreePort(t)
	dead := fmt.Sprintf("rtmp://127.0.0.1:%d/live/deadkey789", deadPort)
	info, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: "st-room",
		FileOutputs:   []*livekit.EncodedFileOutput{{Filepath: "{room_name}"}},
		StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_RTMP, Urls: []string{url1, dead}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 15*time.Second)
	activeAt := time.Now()
	time.Sleep(4 * time.Second)

	upd, err := s.Egress().UpdateStream(ctx(t), &livekit.UpdateStreamRequest{EgressId: info.EgressId, AddOutputUrls: []string{url2}})
	if err != nil {
		t.Fatalf("UpdateStream add: %v", err)
	}
	addedAt := time.Now()
	if len(upd.StreamResults) != 3 {
		t.Fatalf("after adding, stream_results %v", upd.StreamResults)
	}
	time.Sleep(5 * time.Second)
	if _, err := s.Egress().UpdateStream(ctx(t), &livekit.UpdateStreamRequest{EgressId: info.EgressId, RemoveOutputUrls: []string{url1}}); err != nil {
		t.Fatalf("UpdateStream remove: %v", err)
	}
	removedAt := time.Now()
	if !rx1.Wait(15 * time.Second) {
		t.Fatal("the first receiver is still connected after its URL was removed")
	}
	_, err = s.Egress().UpdateStream(ctx(t), &livekit.UpdateStreamRequest{EgressId: info.EgressId, RemoveOutputUrls: []string{"rtmp://127.0.0.1:1/live/nope"}})
	var te twirp.Error
	if !errors.As(err, &te) || te.Code() != twirp.NotFound {
		t.Fatalf("removing a URL that is not streamed: want not_found, got %v", err)
	}

	// The dead destination is retried, then given up; the egress goes on.
	deadHost := "127.0.0.1:" + strconv.Itoa(deadPort)
	stack.Eventually(t, 60*time.Second, "the dead destination reported FAILED", func() bool {
		evs, _ := s.Webhooks.ForEgress(info.EgressId)
		for _, e := range evs {
			for _, r := range e.EgressInfo.GetStreamResults() {
				if strings.Contains(r.Url, deadHost) && r.Status == livekit.StreamInfo_FAILED {
					return true
				}
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	end := waitEvent(t, s, info.EgressId, "egress_ended", 30*time.Second)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)

	results := map[string]*livekit.StreamInfo{}
	for _, r := range end.StreamResults {
		results[strings.Split(strings.TrimPrefix(r.Url, "rtmp://"), "/")[0]] = r
	}
	for _, u := range []string{url1, url2} {
		r := results[strings.Split(strings.TrimPrefix(u, "rtmp://"), "/")[0]]
		if r == nil || r.Status != livekit.StreamInfo_FINISHED || r.Error != "" || r.Duration <= 0 {
			t.Fatalf("stream %s: %v", u, r)
		}
	}
	if r := results[deadHost]; r == nil || r.Status != livekit.StreamInfo_FAILED || r.Retries < 2 || r.Error == "" || r.EndedAt == 0 {
		t.Fatalf("dead stream: %v", r)
	} else {
		t.Logf("dead destination: %d retries, %q", r.Retries, r.Error)
	}
	// Stream keys appear in no webhook.
	evs, _ := s.Webhooks.ForEgress(info.EgressId)
	for _, e := range evs {
		b, _ := protojson.Marshal(e)
		for _, key := range []string{"firstkey123", "secondkey456", "deadkey789"} {
			if strings.Contains(string(b), key) {
				t.Fatalf("stream key %s in a %s webhook: %s", key, e.Event, b)
			}
		}
	}

	// What each receiver got: H.264 720p + AAC from when it was added to when it was removed.
	if !rx2.Wait(15 * time.Second) {
		t.Fatal("the second receiver is still connected after the egress ended")
	}
	checkStream(t, flv1, removedAt.Sub(activeAt).Seconds())
	checkStream(t, flv2, stoppedAt.Sub(addedAt).Seconds())
	p := stack.FFprobe(t, end.FileResults[0].Location)
	if !near(p.Duration(), stoppedAt.Sub(activeAt).Seconds(), 2) {
		t.Fatalf("file duration %.2f s, recorded %.2f s", p.Duration(), stoppedAt.Sub(activeAt).Seconds())
	}
}

// checkStream asserts a received stream is 1280x720 H.264 with AAC all along, lasting about secs.
func checkStream(t *testing.T, path string, secs float64) {
	t.Helper()
	p := stack.FFprobe(t, path)
	var v, a bool
	for _, st := range p.Streams {
		v = v || (st.CodecName == "h264" && st.Width == 1280 && st.Height == 720)
		a = a || st.CodecName == "aac"
	}
	if !v || !a {
		t.Fatalf("%s: streams %+v", path, p.Streams)
	}
	if !near(p.Duration(), secs, 2.5) {
		t.Fatalf("%s: %.2f s received, %.2f s sent", path, p.Duration(), secs)
	}
	out, _ := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).Output()
	n, _ := strconv.Atoi(strings.Fields(string(out) + " 0")[0]) // MPEG-TS lists the stream twice (program, then streams)
	if want := (p.Duration() - 1) * 44100 / 1024; float64(n) < want {
		t.Fatalf("%s: %d audio packets in %.2f s", path, n, p.Duration())
	}
	if e := stack.DecodeErrors(t, path); e != "" {
		t.Fatalf("%s: decode: %s", path, e)
	}
	// The sound starts with the picture (the audio encoded before the first keyframe reached the
	// destination is kept for it).
	if a, v := firstPTS(t, path, "a"), firstPTS(t, path, "v"); a-v > 0.1 {
		t.Fatalf("%s: the audio starts %.3f s after the video", path, a-v)
	}
	t.Logf("%s: %.2f s, %d audio packets", path, p.Duration(), n)
}

// firstPTS is the first packet time (s) of path's stream of kind ("a" or "v").
func firstPTS(t *testing.T, path, kind string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", kind, "-read_intervals", "%+#5", "-show_entries", "packet=pts_time",
		"-of", "csv=p=0", path).Output()
	first := math.Inf(1)
	for _, l := range strings.Fields(string(out)) {
		if v, err := strconv.ParseFloat(strings.Trim(l, ","), 64); err == nil {
			first = math.Min(first, v)
		}
	}
	if err != nil || math.IsInf(first, 1) {
		t.Fatalf("%s: no %s packet time: %v %s", path, kind, err, out)
	}
	return first
}

// TestStreamSRT streams a participant over SRT only, through the loss of their microphone;
// removing its one destination ends the egress.
func TestStreamSRT(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "srt-room")
	nina := s.Publish(t, "srt-room", "nina", stack.Media{Name: "cam", Codec: "h264", Seconds: 60}, stack.Media{Name: "mic", Codec: "opus", Seconds: 60})
	url, ts, _ := stack.ListenSRT(t)
	url += "?streamid=mystreamid"
	info, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "srt-room", Identity: "nina",
		StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_SRT, Urls: []string{url}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 15*time.Second)
	activeAt := time.Now()
	time.Sleep(3 * time.Second)
	// The microphone goes: the stream keeps its video, with silence (no muxer waits for audio).
	nina.Unpublish(t, "mic")
	time.Sleep(5 * time.Second)
	if _, err := s.Egress().UpdateStream(ctx(t), &livekit.UpdateStreamRequest{EgressId: info.EgressId, RemoveOutputUrls: []string{url}}); err != nil {
		t.Fatal(err)
	}
	sent := time.Since(activeAt).Seconds()
	end := waitEvent(t, s, info.EgressId, "egress_ended", 30*time.Second)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)
	if !strings.Contains(end.Details, livekit.EndReasonStreamsStopped) || len(end.FileResults) != 0 {
		t.Fatalf("ended: %q, files %v", end.Details, end.FileResults)
	}
	if len(end.StreamResults) != 1 || end.StreamResults[0].Status != livekit.StreamInfo_FINISHED || strings.Contains(end.StreamResults[0].Url, "mystreamid") {
		t.Fatalf("stream_results %v", end.StreamResults)
	}
	evs, _ := s.Webhooks.ForEgress(info.EgressId)
	for _, e := range evs {
		if b, _ := protojson.Marshal(e); strings.Contains(string(b), "mystreamid") {
			t.Fatalf("the SRT streamid in a %s webhook: %s", e.Event, b)
		}
	}
	time.Sleep(time.Second) // the listener writes what arrives as it arrives
	checkStream(t, ts, sent)
}

// TestStreamAllDestinationsFail: an egress that only streams ends FAILED, naming each destination
// (keys redacted), once every destination has been given up.
func TestStreamAllDestinationsFail(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "dead-room")
	s.Publish(t, "dead-room", "nina", stack.Media{Name: "cam", Codec: "h264", Seconds: 90}, stack.Media{Name: "mic", Codec: "opus", Seconds: 90})
	dead := fmt.Sprintf("rtmp://127.0.0.1:%d/live/deadkey789", stack.FreePort(t))
	info, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "dead-room", Identity: "nina",
		StreamOutputs: []*livekit.StreamOutput{{Urls: []string{dead}}}})
	if err != nil {
		t.Fatal(err)
	}
	end := waitEvent(t, s, info.EgressId, "egress_ended", 60*time.Second)
	if end.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(end.Error, "every stream destination failed") ||
		!strings.Contains(end.Error, "Connection refused") || strings.Contains(end.Error, "deadkey789") {
		t.Fatalf("%s %q", end.Status, end.Error)
	}
	if len(end.StreamResults) != 1 || end.StreamResults[0].Status != livekit.StreamInfo_FAILED {
		t.Fatalf("stream_results %v", end.StreamResults)
	}
}
