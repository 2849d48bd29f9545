package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
	"github.com/mediaworker/mediaworker/test/storagetest"
)

// TestSegmentOutputs records a room composite as HLS to MinIO with 2 s segments and a live
// playlist: segments reach the bucket while recording, the playlists parse, every segment plays,
// durations are within 10 % of the target, and nothing is left on the worker's disk.
func TestSegmentOutputs(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	minio := storagetest.StartMinIO(t)
	minio.CreateBucket(t, "hls")
	s.CreateRoom(t, "hls-room")
	s.Publish(t, "hls-room", "red", stack.Media{Name: "cam", Codec: "h264", Color: "red", Seconds: 60}, stack.Media{Name: "mic", Codec: "opus", Seconds: 60})
	info, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: "hls-room",
		SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "{room_name}/hls/seg", PlaylistName: "index.m3u8",
			LivePlaylistName: "live.m3u8", SegmentDuration: 2,
			Output: &livekit.SegmentedFileOutput_S3{S3: &livekit.S3Upload{AccessKey: minio.AccessKey, Secret: minio.Secret,
				Endpoint: minio.Endpoint, Bucket: "hls", ForcePathStyle: true, Region: "us-east-1"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 15*time.Second)
	activeAt := time.Now()
	// Uploaded while recording, not only at the end.
	stack.Eventually(t, 15*time.Second, "3 segments and the playlist in the bucket while recording", func() bool {
		keys := strings.Join(minio.Keys(t, "hls", "hls-room/hls/"), " ")
		return strings.Count(keys, ".ts") >= 3 && strings.Contains(keys, "hls-room/hls/index.m3u8")
	})
	during := minio.Keys(t, "hls", "hls-room/hls/")
	t.Logf("after %.1f s: %v", time.Since(activeAt).Seconds(), during)
	time.Sleep(4 * time.Second)
	if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
		t.Fatal(err)
	}
	recorded := time.Since(activeAt).Seconds()
	end := waitEvent(t, s, info.EgressId, "egress_ended", 30*time.Second)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)
	if len(end.SegmentResults) != 1 {
		t.Fatalf("segment_results %v", end.SegmentResults)
	}
	sr := end.SegmentResults[0]
	if sr.PlaylistName != "hls-room/hls/index.m3u8" || sr.LivePlaylistName != "hls-room/hls/live.m3u8" ||
		sr.PlaylistLocation != minio.Endpoint+"/hls/hls-room/hls/index.m3u8" || sr.SegmentCount < 5 || sr.Size == 0 {
		t.Fatalf("segment_results %v", sr)
	}
	if s3 := end.GetRoomComposite().GetSegmentOutputs()[0].GetS3(); s3.Secret == minio.Secret {
		t.Fatal("the secret reached the webhook")
	}

	// Download everything and play it as a player would.
	dir := t.TempDir()
	keys := minio.Keys(t, "hls", "hls-room/hls/")
	for _, k := range keys {
		minio.Get(t, "hls", k, dir)
	}
	durations := playlistDurations(t, filepath.Join(dir, "index.m3u8"))
	if int64(len(durations)) != sr.SegmentCount {
		t.Fatalf("playlist lists %d segments, segment_count %d", len(durations), sr.SegmentCount)
	}
	for i, d := range durations[:len(durations)-1] { // the last one ends when the recording does
		if !near(d, 2, 0.2) {
			t.Fatalf("segment %d lasts %.3f s, target 2 s (%v)", i, d, durations)
		}
	}
	for i := range durations {
		seg := filepath.Join(dir, "seg_"+pad5(i)+".ts")
		p := stack.FFprobe(t, seg)
		if len(p.Streams) < 2 {
			t.Fatalf("%s: streams %+v", seg, p.Streams)
		}
		if e := stack.DecodeErrors(t, seg); e != "" {
			t.Fatalf("%s: %s", seg, e)
		}
	}
	p := stack.FFprobe(t, filepath.Join(dir, "index.m3u8"))
	if !near(p.Duration(), recorded, 2) {
		t.Fatalf("playlist plays %.2f s, recorded %.2f s", p.Duration(), recorded)
	}
	live, _ := os.ReadFile(filepath.Join(dir, "live.m3u8"))
	if strings.Count(string(live), "#EXTINF") != 5 || !strings.Contains(string(live), "#EXT-X-ENDLIST") {
		t.Fatalf("live playlist:\n%s", live)
	}
	// Uploaded segments are not kept on the worker.
	left, _ := filepath.Glob(filepath.Join(w.TmpDir, info.EgressId, "segments", "*.ts"))
	if len(left) > 0 {
		t.Fatalf("segments left on the worker: %v", left)
	}
	t.Logf("%d segments %v, %d bytes, playlist %.2f s", sr.SegmentCount, durations, sr.Size, p.Duration())
}

// playlistDurations reads the EXTINF durations of an HLS playlist, checking its header.
func playlistDurations(t *testing.T, path string) []float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ds []float64
	var header, ended bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "#EXTM3U":
			header = true
		case l == "#EXT-X-ENDLIST":
			ended = true
		case strings.HasPrefix(l, "#EXTINF:"):
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, l, err)
			}
			ds = append(ds, d)
		}
	}
	if !header || !ended || len(ds) == 0 {
		t.Fatalf("%s is not a finished playlist (header %v, end %v, %d segments)", path, header, ended, len(ds))
	}
	return ds
}

func pad5(i int) string { s := strconv.Itoa(i); return strings.Repeat("0", 5-len(s)) + s }

// TestOutputLimits: an HLS output on local disk stops at limits.segment_output_max_duration and a
// transcoded MP4 at limits.file_output_max_size, both LIMIT_REACHED with what was made kept.
func TestOutputLimits(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "limits: {segment_output_max_duration: 5s, file_output_max_size: 1000000}\n")
	s.CreateRoom(t, "lim-room")
	s.Publish(t, "lim-room", "bo", stack.Media{Name: "cam", Codec: "h264", Seconds: 60}, stack.Media{Name: "mic", Codec: "opus", Seconds: 60})
	hls, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: "lim-room",
		SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "lim/seg", SegmentDuration: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	file, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "lim-room", Identity: "bo",
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "lim/bo.mp4"}}})
	if err != nil {
		t.Fatal(err)
	}
	end := waitEvent(t, s, hls.EgressId, "egress_ended", 30*time.Second)
	if end.Status != livekit.EgressStatus_EGRESS_LIMIT_REACHED || len(end.SegmentResults) != 1 {
		t.Fatalf("HLS: %s %q %v", end.Status, end.Error, end.SegmentResults)
	}
	sr := end.SegmentResults[0]
	durations := playlistDurations(t, sr.PlaylistLocation)
	if sum := time.Duration(sr.Duration).Seconds(); sum < 4.5 || sum > 7 || sr.PlaylistLocation != filepath.Join(w.LocalDir, "lim", "seg.m3u8") {
		t.Fatalf("HLS kept %.2f s (%v) at %s", sum, durations, sr.PlaylistLocation)
	}
	for i := range durations {
		if _, err := os.Stat(filepath.Join(w.LocalDir, "lim", "seg_"+pad5(i)+".ts")); err != nil {
			t.Fatal(err)
		}
	}
	end = waitEvent(t, s, file.EgressId, "egress_ended", 30*time.Second)
	if end.Status != livekit.EgressStatus_EGRESS_LIMIT_REACHED || len(end.FileResults) != 1 || end.FileResults[0].Size < 1000000 {
		t.Fatalf("file: %s %q %v", end.Status, end.Error, end.FileResults)
	}
	if e := stack.DecodeErrors(t, end.FileResults[0].Location); e != "" {
		t.Fatalf("limited file: %s", e)
	}
}
