package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
	"github.com/mediaworker/mediaworker/test/storagetest"
)

// TestImageOutputs captures stills of a participant at two intervals: 320x180 every 2 s to local
// disk (INDEX names) and full size every 3 s to MinIO (TIMESTAMP names), with no other output.
func TestImageOutputs(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	minio := storagetest.StartMinIO(t)
	minio.CreateBucket(t, "stills")
	s.CreateRoom(t, "img-room")
	s.Publish(t, "img-room", "ada", stack.Media{Name: "cam", Codec: "h264", Color: "green", Seconds: 60}, stack.Media{Name: "mic", Codec: "opus", Seconds: 60})
	info, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "img-room", Identity: "ada",
		ImageOutputs: []*livekit.ImageOutput{
			{CaptureInterval: 2, Width: 320, Height: 180, FilenamePrefix: "{room_name}/thumbs/small"},
			{CaptureInterval: 3, FilenamePrefix: "big/{publisher_identity}", FilenameSuffix: livekit.ImageFileSuffix_IMAGE_SUFFIX_TIMESTAMP,
				Output: &livekit.ImageOutput_S3{S3: &livekit.S3Upload{AccessKey: minio.AccessKey, Secret: minio.Secret,
					Endpoint: minio.Endpoint, Bucket: "stills", ForcePathStyle: true, Region: "us-east-1"}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	end := stopAfter(t, s, info.EgressId, 9*time.Second)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)
	if len(end.ImageResults) != 2 {
		t.Fatalf("image_results %v", end.ImageResults)
	}
	small, _ := filepath.Glob(filepath.Join(w.LocalDir, "img-room", "thumbs", "small_*.jpeg"))
	if n := len(small); n < 4 || n > 6 || end.ImageResults[0].ImageCount != int64(n) {
		t.Fatalf("%d stills every 2 s in ≈ 9 s (reported %d): %v", n, end.ImageResults[0].ImageCount, small)
	}
	if filepath.Base(small[0]) != "small_00000.jpeg" {
		t.Fatalf("first still %s", small[0])
	}
	p := stack.FFprobe(t, small[0])
	if p.Streams[0].CodecName != "mjpeg" || p.Streams[0].Width != 320 || p.Streams[0].Height != 180 {
		t.Fatalf("small still: %+v", p.Streams[0])
	}
	big := minio.Keys(t, "stills", "big/")
	if n := len(big); n < 3 || n > 4 || end.ImageResults[1].ImageCount != int64(n) || !strings.HasPrefix(big[0], "big/ada_2") {
		t.Fatalf("%d stills every 3 s in MinIO (reported %d): %v", n, end.ImageResults[1].ImageCount, big)
	}
	p = stack.FFprobe(t, minio.Get(t, "stills", big[0], t.TempDir()))
	if p.Streams[0].Width != 1280 || p.Streams[0].Height != 720 {
		t.Fatalf("big still: %+v", p.Streams[0])
	}
	left, _ := os.ReadDir(filepath.Join(w.TmpDir, info.EgressId, "images1"))
	if len(left) > 0 {
		t.Fatalf("stored stills left on the worker: %v", left)
	}
}
