package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
	"github.com/mediaworker/mediaworker/test/storagetest"
)

// TestTrackEgressToCloudStorage records to GCS (fake-gcs-server) and Azure Blob (Azurite), to the
// worker's default storage, and to the backup storage when the primary is unreachable.
func TestTrackEgressToCloudStorage(t *testing.T) {
	s := stack.New(t)
	gcs := storagetest.StartGCS(t)
	t.Setenv("STORAGE_EMULATOR_HOST", gcs.Host)
	gcs.CreateBucket(t, "rec")
	gcs.CreateBucket(t, "default")
	az := storagetest.StartAzurite(t)
	az.CreateContainer(t, "rec")
	minio := storagetest.StartMinIO(t)
	minio.CreateBucket(t, "backup")
	s.StartWorker(t, "worker", fmt.Sprintf(`azure_blob_endpoint: %q
storage: {gcp: {bucket: default}}
backup_storage: {s3: {access_key: %s, secret: %s, endpoint: %q, bucket: backup, force_path_style: true}}
`, az.Endpoint, minio.AccessKey, minio.Secret, minio.Endpoint), "STORAGE_EMULATOR_HOST="+gcs.Host)
	s.CreateRoom(t, "cloud-room")
	pub := s.Publish(t, "cloud-room", "jo", stack.Media{Name: "mic", Codec: "opus", Seconds: 60})

	record := func(t *testing.T, file *livekit.DirectFileOutput) *livekit.EgressInfo {
		info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{RoomName: "cloud-room", TrackId: pub.Tracks["mic"],
			Output: &livekit.TrackEgressRequest_File{File: file}})
		if err != nil {
			t.Fatal(err)
		}
		end := stopAfter(t, s, info.EgressId, 2*time.Second)
		if end.Status != livekit.EgressStatus_EGRESS_COMPLETE {
			t.Fatalf("%s %q", end.Status, end.Error)
		}
		return end
	}
	probe := func(t *testing.T, r io.Reader) {
		p := filepath.Join(t.TempDir(), "got.ogg")
		f, _ := os.Create(p)
		_, _ = io.Copy(f, r)
		f.Close()
		if pr := stack.FFprobe(t, p); pr.Streams[0].CodecName != "opus" || !near(pr.Duration(), 2, 1) {
			t.Fatalf("stored file: %+v %.2fs", pr.Streams, pr.Duration())
		}
	}

	t.Run("gcs", func(t *testing.T) {
		end := record(t, &livekit.DirectFileOutput{Filepath: "g/{track_id}", DisableManifest: true, Output: &livekit.DirectFileOutput_Gcp{Gcp: &livekit.GCPUpload{Bucket: "rec"}}})
		if end.ManifestLocation != "" {
			t.Fatalf("disable_manifest set, yet manifest_location %q", end.ManifestLocation)
		}
		key := "g/" + pub.Tracks["mic"] + ".ogg"
		if fr := end.FileResults[0]; fr.Location != "https://storage.googleapis.com/rec/"+key {
			t.Fatalf("location %q", fr.Location)
		}
		r, err := gcs.Client(t).Bucket("rec").Object(key).NewReader(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		probe(t, r)
	})

	t.Run("azure", func(t *testing.T) {
		end := record(t, &livekit.DirectFileOutput{Filepath: "a/{track_id}", Output: &livekit.DirectFileOutput_Azure{Azure: &livekit.AzureBlobUpload{
			AccountName: storagetest.AzuriteAccount, AccountKey: storagetest.AzuriteKey, ContainerName: "rec"}}})
		if strings.Contains(end.String(), storagetest.AzuriteKey) {
			t.Fatal("the account key is reported back")
		}
		key := "a/" + pub.Tracks["mic"] + ".ogg"
		if fr := end.FileResults[0]; !strings.HasSuffix(fr.Location, "/devstoreaccount1/rec/"+key) {
			t.Fatalf("location %q", fr.Location)
		}
		resp, err := az.Client(t).DownloadStream(context.Background(), "rec", key, nil)
		if err != nil {
			t.Fatal(err)
		}
		probe(t, resp.Body)
	})

	t.Run("worker default storage", func(t *testing.T) {
		end := record(t, &livekit.DirectFileOutput{Filepath: "d/{track_id}"})
		key := "d/" + pub.Tracks["mic"] + ".ogg"
		if fr := end.FileResults[0]; fr.Location != "https://storage.googleapis.com/default/"+key {
			t.Fatalf("location %q", fr.Location)
		}
		r, err := gcs.Client(t).Bucket("default").Object(key).NewReader(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		probe(t, r)
	})

	t.Run("backup storage when the primary is unreachable", func(t *testing.T) {
		end := record(t, &livekit.DirectFileOutput{Filepath: "b/{track_id}", Output: &livekit.DirectFileOutput_S3{S3: &livekit.S3Upload{
			AccessKey: "x", Secret: "y", Endpoint: "http://127.0.0.1:1", Bucket: "gone", ForcePathStyle: true}}})
		key := "b/" + pub.Tracks["mic"] + ".ogg"
		if fr := end.FileResults[0]; !end.BackupStorageUsed || fr.Location != minio.Endpoint+"/backup/"+key {
			t.Fatalf("backup used %v, location %q", end.BackupStorageUsed, fr.Location)
		}
		probe(t, openS3(t, minio, "backup", key))
	})
}

func openS3(t *testing.T, m *storagetest.Server, bucket, key string) io.Reader {
	f, err := os.Open(m.Get(t, bucket, key, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPresignedURLs: with presign_urls set, file results on S3 (MinIO) and Azure (Azurite) are
// download URLs that work without credentials.
func TestPresignedURLs(t *testing.T) {
	s := stack.New(t)
	az := storagetest.StartAzurite(t)
	az.CreateContainer(t, "rec")
	minio := storagetest.StartMinIO(t)
	minio.CreateBucket(t, "rec")
	s.StartWorker(t, "worker", fmt.Sprintf("azure_blob_endpoint: %q\npresign_urls: 1h\n", az.Endpoint))
	s.CreateRoom(t, "sign-room")
	pub := s.Publish(t, "sign-room", "jo", stack.Media{Name: "mic", Codec: "opus", Seconds: 60})
	for name, out := range map[string]*livekit.DirectFileOutput{
		"s3": {Filepath: "s/{track_id}", Output: &livekit.DirectFileOutput_S3{S3: &livekit.S3Upload{AccessKey: minio.AccessKey, Secret: minio.Secret,
			Endpoint: minio.Endpoint, Bucket: "rec", ForcePathStyle: true, Region: "us-east-1"}}},
		"azure": {Filepath: "a/{track_id}", Output: &livekit.DirectFileOutput_Azure{Azure: &livekit.AzureBlobUpload{
			AccountName: storagetest.AzuriteAccount, AccountKey: storagetest.AzuriteKey, ContainerName: "rec"}}},
	} {
		t.Run(name, func(t *testing.T) {
			info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{RoomName: "sign-room", TrackId: pub.Tracks["mic"],
				Output: &livekit.TrackEgressRequest_File{File: out}})
			if err != nil {
				t.Fatal(err)
			}
			end := stopAfter(t, s, info.EgressId, 2*time.Second)
			loc := end.FileResults[0].Location
			if !strings.Contains(loc, "?") || !(strings.Contains(loc, "X-Amz-Signature=") || strings.Contains(loc, "sig=")) {
				t.Fatalf("location is not presigned: %s", loc)
			}
			resp, err := http.Get(loc) // no credentials
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ContentLength != end.FileResults[0].Size {
				t.Fatalf("GET presigned URL: %s, %d bytes (file %d)", resp.Status, resp.ContentLength, end.FileResults[0].Size)
			}
		})
	}
}
