package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/storagetest"
)

func TestGCSAgainstEmulator(t *testing.T) {
	g := storagetest.StartGCS(t)
	t.Setenv("STORAGE_EMULATOR_HOST", g.Host)
	g.CreateBucket(t, "rec")
	ctx := context.Background()
	st, err := NewGCS(ctx, &livekit.GCPUpload{Bucket: "rec"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatal(err)
	}
	src := writeRandom(t, 9<<20) // more than one 8 MiB chunk
	loc, n, err := st.Upload(ctx, src, "a/b.bin", "application/octet-stream")
	if err != nil || n != 9<<20 || loc != "https://storage.googleapis.com/rec/a/b.bin" {
		t.Fatalf("%s %d %v", loc, n, err)
	}
	r, err := g.Client(t).Bucket("rec").Object("a/b.bin").NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	want, _ := os.ReadFile(src)
	if !bytes.Equal(got, want) {
		t.Fatal("object differs")
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, nil, 0o644)
	if _, n, err := st.Upload(ctx, empty, "empty.txt", "text/plain"); err != nil || n != 0 {
		t.Fatalf("empty file: %d %v", n, err)
	}
	attrs, err := g.Client(t).Bucket("rec").Object("empty.txt").Attrs(ctx)
	if err != nil || attrs.Size != 0 || attrs.ContentType != "text/plain" {
		t.Fatalf("empty object: %+v %v", attrs, err)
	}
	missing, _ := NewGCS(ctx, &livekit.GCPUpload{Bucket: "nope"})
	if err := missing.Check(ctx); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing bucket: %v", err)
	}
}

// TestGCSPresign: our V4 signed URL is, byte for byte, the one Google's SDK signs for the same key,
// object and time; keys that cannot sign are refused.
func TestGCSPresign(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
	keyJSON, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": "rec@proj.iam.gserviceaccount.com",
		"private_key": string(pemKey), "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"})
	t.Setenv("STORAGE_EMULATOR_HOST", "") // no token is fetched to sign
	g, err := NewGCS(context.Background(), &livekit.GCPUpload{Bucket: "rec", Credentials: string(keyJSON)})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"room/2026-12-01 10:00 résumé+1.mp4", "a/b/c.m3u8"} {
		for attempt := 0; ; attempt++ {
			want, err := storage.SignedURL("rec", name, &storage.SignedURLOptions{GoogleAccessID: "rec@proj.iam.gserviceaccount.com",
				PrivateKey: pemKey, Method: "GET", Expires: time.Now().Add(time.Hour + 500*time.Millisecond), Scheme: storage.SigningSchemeV4})
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Presign(context.Background(), name, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if sameURL(got, want) {
				break
			}
			if attempt == 3 { // else the second changed between the two
				t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
			}
		}
	}
	if _, err := g.Presign(context.Background(), "x", 8*24*time.Hour); err == nil {
		t.Fatal("an 8-day URL was signed")
	}
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:1") // no Application Default Credentials here
	noKey, err := NewGCS(context.Background(), &livekit.GCPUpload{Bucket: "rec"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noKey.Presign(context.Background(), "x", time.Hour); err == nil || !strings.Contains(err.Error(), "service account key") {
		t.Fatalf("no key: %v", err)
	}
	if _, err := NewGCS(context.Background(), &livekit.GCPUpload{Bucket: "rec", Credentials: `{"type":"authorized_user"}`}); !errors.Is(err, ErrPermanent) {
		t.Fatalf("user credentials: %v", err)
	}
}

// sameURL: same scheme, host, escaped path and query parameters (in any order).
func sameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && ua.Host == ub.Host && ua.EscapedPath() == ub.EscapedPath() &&
		reflect.DeepEqual(ua.Query(), ub.Query())
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAzureAgainstAzurite(t *testing.T) {
	a := storagetest.StartAzurite(t)
	a.CreateContainer(t, "rec")
	ctx := context.Background()
	conf := &livekit.AzureBlobUpload{AccountName: storagetest.AzuriteAccount, AccountKey: storagetest.AzuriteKey, ContainerName: "rec"}
	st, err := NewAzure(conf, a.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatal(err)
	}
	src := writeRandom(t, 9<<20)
	loc, n, err := st.Upload(ctx, src, "a/b.bin", "application/octet-stream")
	if err != nil || n != 9<<20 || !strings.HasSuffix(loc, "/devstoreaccount1/rec/a/b.bin") {
		t.Fatalf("%s %d %v", loc, n, err)
	}
	resp, err := a.Client(t).DownloadStream(ctx, "rec", "a/b.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	want, _ := os.ReadFile(src)
	if !bytes.Equal(got, want) {
		t.Fatal("blob differs")
	}
	failures := []struct {
		name string
		conf *livekit.AzureBlobUpload
		want string
	}{
		{"missing container", &livekit.AzureBlobUpload{AccountName: conf.AccountName, AccountKey: conf.AccountKey, ContainerName: "nope"}, "does not exist"},
		{"wrong key", &livekit.AzureBlobUpload{AccountName: conf.AccountName, AccountKey: "d3Jvbmcta2V5", ContainerName: "rec"}, "credentials"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			st, err := NewAzure(tc.conf, a.Endpoint)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Check(ctx); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "d3Jvbmcta2V5") {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
