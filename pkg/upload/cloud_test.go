package upload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

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
	missing, _ := NewGCS(ctx, &livekit.GCPUpload{Bucket: "nope"})
	if err := missing.Check(ctx); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing bucket: %v", err)
	}
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
