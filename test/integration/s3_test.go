package integration

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
	"github.com/mediaworker/mediaworker/test/storagetest"
)

// TestTrackEgressToS3 uploads to MinIO, refuses bad credentials before recording, and keeps the
// local file when the storage disappears during the recording.
func TestTrackEgressToS3(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	minio := storagetest.StartMinIO(t)
	minio.CreateBucket(t, "recordings")
	s.CreateRoom(t, "s3-room")
	pub := s.Publish(t, "s3-room", "frank", stack.Media{Name: "cam", Codec: "h264", Seconds: 30})
	s3conf := func(secret string) *livekit.DirectFileOutput_S3 {
		return &livekit.DirectFileOutput_S3{S3: &livekit.S3Upload{AccessKey: minio.AccessKey, Secret: secret,
			Endpoint: minio.Endpoint, Bucket: "recordings", ForcePathStyle: true, Region: "us-east-1"}}
	}
	start := func(path, secret string) string {
		info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{RoomName: "s3-room", TrackId: pub.Tracks["cam"],
			Output: &livekit.TrackEgressRequest_File{File: &livekit.DirectFileOutput{Filepath: path, Output: s3conf(secret)}}})
		if err != nil {
			t.Fatal(err)
		}
		return info.EgressId
	}

	t.Run("upload", func(t *testing.T) {
		id := start("rec/{publisher_identity}/{track_id}", minio.Secret)
		end := stopAfter(t, s, id, 3*time.Second)
		checkWebhookOrder(t, s, id, livekit.EgressStatus_EGRESS_COMPLETE)
		fr := end.FileResults[0]
		key := "rec/frank/" + pub.Tracks["cam"] + ".mp4"
		if fr.Filename != key || fr.Location != minio.Endpoint+"/recordings/"+key {
			t.Fatalf("file result %v", fr)
		}
		// Credentials never reach the server's store or webhooks.
		if s3 := end.GetTrack().GetFile().GetS3(); s3 == nil || s3.Secret == minio.Secret || s3.AccessKey == minio.AccessKey {
			t.Fatalf("request in webhook not redacted: %v", s3)
		}
		if want := minio.Endpoint + "/recordings/rec/frank/" + id + ".json"; end.ManifestLocation != want {
			t.Fatalf("manifest_location %q, want %q", end.ManifestLocation, want)
		}
		manifest, _ := os.ReadFile(minio.Get(t, "recordings", "rec/frank/"+id+".json", t.TempDir()))
		if !strings.Contains(string(manifest), key) {
			t.Fatalf("manifest does not list %s: %s", key, manifest)
		}
		p := stack.FFprobe(t, minio.Get(t, "recordings", key, t.TempDir()))
		if p.Streams[0].CodecName != "h264" || !near(p.Duration(), 3, 1) {
			t.Fatalf("object: %+v %.2fs", p.Streams, p.Duration())
		}
	})

	t.Run("bad credentials fail before recording", func(t *testing.T) {
		id := start("bad", "not-the-secret")
		end := waitEvent(t, s, id, "egress_ended", 15*time.Second)
		if end.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(end.Error, "credentials") || strings.Contains(end.Error, "not-the-secret") {
			t.Fatalf("got %s %q", end.Status, end.Error)
		}
	})

	t.Run("storage lost mid-recording keeps the file", func(t *testing.T) {
		id := start("lost", minio.Secret)
		waitEvent(t, s, id, "egress_updated", 10*time.Second)
		time.Sleep(2 * time.Second)
		minio.Stop()
		if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: id}); err != nil {
			t.Fatal(err)
		}
		end := waitEvent(t, s, id, "egress_ended", 60*time.Second)
		if end.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(end.Error, "kept at "+w.TmpDir) {
			t.Fatalf("got %s %q", end.Status, end.Error)
		}
		kept := strings.Fields(end.Error[strings.Index(end.Error, "kept at ")+8:])[0]
		if _, err := os.Stat(kept); err != nil {
			t.Fatalf("local file %s: %v", kept, err)
		}
		if e := stack.DecodeErrors(t, kept); e != "" {
			t.Fatalf("kept file: %s", e)
		}
	})
}
