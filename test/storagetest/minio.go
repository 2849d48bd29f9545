// Package storagetest starts real object stores on loopback for tests: MinIO, fake-gcs-server, Azurite.
package storagetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Server is a running MinIO.
type Server struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	Secret    string
	Client    *s3.Client
	cmd       *exec.Cmd
}

// Stop kills the server now (to test storage going away).
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// Bin finds the pinned MinIO binary: MINIO_BIN, else the cache scripts/install.sh fills.
func Bin(t testing.TB) string {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "mediaworker", "tools", "minio-7aac2a2c5b7c", "minio")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("MEDIAWORKER_REQUIRE_SERVERS") != "" {
			t.Fatalf("MinIO not found at %s: run `make deps`", p)
		}
		t.Skipf("MinIO not found at %s: run `make deps` to run this test", p)
	}
	return p
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMinIO runs MinIO until the test ends.
func StartMinIO(t testing.TB) *Server {
	t.Helper()
	bin := Bin(t)
	port, console := freePort(t), freePort(t)
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), AccessKey: "minio-test", Secret: "minio-test-secret-123"}
	cmd := exec.Command(bin, "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console), t.TempDir())
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.Secret, "MINIO_BROWSER=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO did not become live at %s", s.Endpoint)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Client = s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.Secret, "")})
	return s
}

// CreateBucket makes a bucket.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if _, err := s.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// Get downloads an object into dir and returns the local path.
func (s *Server) Get(t testing.TB, bucket, key, dir string) string {
	t.Helper()
	out, err := s.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	p := filepath.Join(dir, filepath.Base(key))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadFrom(out.Body); err != nil {
		t.Fatal(err)
	}
	return p
}

// Keys lists the objects under prefix in bucket, in key order.
func (s *Server) Keys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	out, err := s.Client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
