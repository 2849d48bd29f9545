package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/storagetest"
)

func TestNewS3Validation(t *testing.T) {
	tests := []struct {
		name string
		conf *livekit.S3Upload
		want string
	}{
		{"no bucket", &livekit.S3Upload{AccessKey: "a", Secret: "b"}, "s3.bucket"},
		{"no keys", &livekit.S3Upload{Bucket: "b"}, "s3.access_key"},
		{"bad endpoint", &livekit.S3Upload{Bucket: "b", AccessKey: "a", Secret: "s", Endpoint: "minio:9000"}, "s3.endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewS3(tc.conf)
			if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error naming %s", err, tc.want)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	tests := []struct {
		conf *livekit.S3Upload
		want string
	}{
		{&livekit.S3Upload{Bucket: "b", Region: "eu-west-1"}, "https://b.s3.eu-west-1.amazonaws.com/k/x.mp4"},
		{&livekit.S3Upload{Bucket: "b", Endpoint: "http://127.0.0.1:9000/", ForcePathStyle: true}, "http://127.0.0.1:9000/b/k/x.mp4"},
		{&livekit.S3Upload{Bucket: "b", Endpoint: "https://r2.example.com"}, "https://b.r2.example.com/k/x.mp4"},
	}
	for _, tc := range tests {
		if got := (&S3{conf: tc.conf}).location("k/x.mp4"); got != tc.want {
			t.Errorf("got %s want %s", got, tc.want)
		}
	}
}

func writeRandom(t *testing.T, n int) string {
	p := filepath.Join(t.TempDir(), "f.bin")
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestS3AgainstMinIO(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	srv.CreateBucket(t, "rec")
	good := &livekit.S3Upload{AccessKey: srv.AccessKey, Secret: srv.Secret, Endpoint: srv.Endpoint, Bucket: "rec", ForcePathStyle: true,
		Metadata: map[string]string{"room": "r1"}, Tagging: "k=v", ContentDisposition: "attachment"}
	ctx := context.Background()

	t.Run("small and multipart uploads round-trip", func(t *testing.T) {
		st, err := NewS3(good)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Check(ctx); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1000, 20 << 20} {
			src := writeRandom(t, n)
			start := time.Now()
			loc, size, err := st.Upload(ctx, src, "a/b.bin", "application/octet-stream")
			if err != nil {
				t.Fatal(err)
			}
			if n > 1<<20 {
				t.Logf("uploaded %d MiB in %s: %.0f MB/s", n>>20, time.Since(start).Round(time.Millisecond), float64(n)/1e6/time.Since(start).Seconds())
			}
			if size != int64(n) || loc != srv.Endpoint+"/rec/a/b.bin" {
				t.Fatalf("size %d loc %s", size, loc)
			}
			got, _ := os.ReadFile(srv.Get(t, "rec", "a/b.bin", t.TempDir()))
			want, _ := os.ReadFile(src)
			if !bytes.Equal(got, want) {
				t.Fatal("object differs from the file")
			}
			head, err := srv.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("rec"), Key: aws.String("a/b.bin")})
			if err != nil || head.Metadata["room"] != "r1" || aws.ToString(head.ContentDisposition) != "attachment" ||
				aws.ToString(head.ContentType) != "application/octet-stream" {
				t.Fatalf("object metadata %v, disposition %q, type %q (%v)", head.Metadata, aws.ToString(head.ContentDisposition), aws.ToString(head.ContentType), err)
			}
			tags, err := srv.Client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("rec"), Key: aws.String("a/b.bin")})
			if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Key) != "k" || aws.ToString(tags.TagSet[0].Value) != "v" {
				t.Fatalf("tagging %v (%v)", tags, err)
			}
		}
	})

	failures := []struct {
		name string
		conf *livekit.S3Upload
		want string
		kind error
	}{
		{"bad secret", &livekit.S3Upload{AccessKey: srv.AccessKey, Secret: "wrong", Endpoint: srv.Endpoint, Bucket: "rec", ForcePathStyle: true}, "credentials", ErrPermanent},
		{"missing bucket", &livekit.S3Upload{AccessKey: srv.AccessKey, Secret: srv.Secret, Endpoint: srv.Endpoint, Bucket: "nope", ForcePathStyle: true}, "does not exist", ErrPermanent},
		{"unreachable endpoint", &livekit.S3Upload{AccessKey: "a", Secret: "b", Endpoint: "http://127.0.0.1:1", Bucket: "rec", ForcePathStyle: true}, "unreachable", ErrUnavailable},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			st, err := NewS3(tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			st.Retry.FirstDelay = 10 * time.Millisecond
			start := time.Now()
			_, _, err = st.Upload(ctx, writeRandom(t, 100), "x.bin", "")
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %v naming %q", err, tc.kind, tc.want)
			}
			if strings.Contains(err.Error(), srv.Secret) || strings.Contains(err.Error(), "wrong") {
				t.Fatalf("error leaks a secret: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s", d)
			}
			if cerr := st.Check(ctx); !errors.Is(cerr, tc.kind) {
				t.Fatalf("check: %v", cerr)
			}
		})
	}
}
