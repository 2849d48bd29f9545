package storagetest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// tool finds a pinned emulator under the cache scripts/install.sh fills (or envVar).
func tool(t testing.TB, envVar, rel string) string {
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "mediaworker", "tools", rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("MEDIAWORKER_REQUIRE_SERVERS") != "" {
			t.Fatalf("%s not found at %s: run `make deps`", filepath.Base(rel), p)
		}
		t.Skipf("%s not found at %s: run `make deps` to run this test", filepath.Base(rel), p)
	}
	return p
}

func run(t testing.TB, bin string, env []string, args ...string) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
}

func waitHTTP(t testing.TB, url string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing answers at %s", url)
}

// GCS is a running fake-gcs-server; Host is what STORAGE_EMULATOR_HOST must be set to.
type GCS struct{ Host string }

// StartGCS runs fake-gcs-server (in memory) until the test ends.
func StartGCS(t testing.TB) *GCS {
	bin := tool(t, "FAKE_GCS_BIN", "fake-gcs-server-v1.56.1/fake-gcs-server")
	port := freePort(t)
	g := &GCS{Host: fmt.Sprintf("127.0.0.1:%d", port)}
	run(t, bin, nil, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port), "-backend", "memory",
		"-public-host", g.Host, "-log-level", "warn")
	waitHTTP(t, "http://"+g.Host+"/storage/v1/b")
	return g
}

// Client is a storage client for the emulator; STORAGE_EMULATOR_HOST must be set (t.Setenv).
func (g *GCS) Client(t testing.TB) *storage.Client {
	c, err := storage.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CreateBucket makes a bucket (needs STORAGE_EMULATOR_HOST set).
func (g *GCS) CreateBucket(t testing.TB, name string) {
	if err := g.Client(t).Bucket(name).Create(context.Background(), "test-project", nil); err != nil {
		t.Fatalf("create gcs bucket: %v", err)
	}
}

// Azurite's well-known development account (public, documented by Microsoft).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running Azure Blob emulator; Endpoint has the "{account}" placeholder.
type Azurite struct{ Endpoint string }

// StartAzurite runs Azurite's blob service in memory until the test ends.
func StartAzurite(t testing.TB) *Azurite {
	bin := tool(t, "AZURITE_BLOB_BIN", "azurite-3.37.0/node_modules/.bin/azurite-blob")
	port := freePort(t)
	run(t, bin, nil, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port), "--inMemoryPersistence",
		"--skipApiVersionCheck", "--loose", "--silent")
	a := &Azurite{Endpoint: fmt.Sprintf("http://127.0.0.1:%d/{account}/", port)}
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	return a
}

// Client is a blob client for the emulator's development account.
func (a *Azurite) Client(t testing.TB) *azblob.Client {
	cred, _ := azblob.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	c, err := azblob.NewClientWithSharedKeyCredential(strings.ReplaceAll(a.Endpoint, "{account}", AzuriteAccount), cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CreateContainer makes a container.
func (a *Azurite) CreateContainer(t testing.TB, name string) {
	if _, err := a.Client(t).CreateContainer(context.Background(), name, nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
}
