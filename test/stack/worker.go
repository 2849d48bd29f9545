package stack

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// WorkerBinary builds cmd/mediaworker once per test binary (or uses MEDIAWORKER_BIN).
func WorkerBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MEDIAWORKER_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "mediaworker-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mediaworker")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/mediaworker")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Worker is a running mediaworker.
type Worker struct {
	*Proc
	HTTPAddr string
	LocalDir string // local_output_dir
	TmpDir   string
	// RTMPURL is where to push RTMP, without the stream key: "rtmp://127.0.0.1:PORT/x". Empty when
	// the test's extra config has its own ingress section whose rtmp_addr cannot be read.
	RTMPURL string
}

// StartWorker runs `mediaworker worker` against the stack; extra is appended to its YAML config
// and env to its environment. Unless extra has an ingress section of its own, the worker's RTMP
// listener gets a free loopback port (see Worker.RTMPURL), so that workers do not fight over :1935.
func (s *Stack) StartWorker(t testing.TB, name, extra string, env ...string) *Worker {
	t.Helper()
	return s.startWorker(t, name, t.TempDir(), t.TempDir(), extra, env)
}

// RestartWorker starts a new worker on the directories of old (which must have exited).
func (s *Stack) RestartWorker(t testing.TB, name string, old *Worker, extra string, env ...string) *Worker {
	t.Helper()
	return s.startWorker(t, name, old.TmpDir, old.LocalDir, extra, env)
}

func (s *Stack) startWorker(t testing.TB, name, tmpDir, localDir, extra string, env []string) *Worker {
	w := &Worker{HTTPAddr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), LocalDir: localDir, TmpDir: tmpDir}
	ingress := ""
	if addr, own := ingressAddr(extra); own {
		w.RTMPURL = rtmpURL(addr)
	} else {
		// The default :1935 would make two workers of one test collide: each gets its own port.
		addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		ingress = fmt.Sprintf("ingress: {rtmp_addr: %q}\n", addr)
		w.RTMPURL = rtmpURL(addr)
	}
	conf := fmt.Sprintf(`api_key: %s
api_secret: %s
ws_url: %s
redis: {address: %s}
http_addr: %s
log_level: debug
tmp_dir: %s
local_output_dir: %s
%s%s`, APIKey, APISecret, s.WsURL, s.RedisAddr, w.HTTPAddr, w.TmpDir, w.LocalDir, ingress, extra)
	w.Proc = Start(t, name, append([]string{"MEDIAWORKER_CONFIG_BODY=" + conf}, env...), WorkerBinary(t), "worker")
	Eventually(t, 20*time.Second, name+" ready", func() bool {
		resp, err := http.Get("http://" + w.HTTPAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return w
}

var (
	ingressLine  = regexp.MustCompile(`(?m)^ingress:`)
	rtmpAddrLine = regexp.MustCompile(`rtmp_addr:\s*["']?([^"'\s,}]*)`)
)

// ingressAddr reports whether extra has its own top-level ingress section and, if so, the
// rtmp_addr it sets ("" if none is found: then there is no RTMP URL to offer).
func ingressAddr(extra string) (addr string, own bool) {
	if !ingressLine.MatchString(extra) {
		return "", false
	}
	if m := rtmpAddrLine.FindStringSubmatch(extra); m != nil {
		return m[1], true
	}
	return "", true
}

// rtmpURL is the push URL (without stream key) for a listen address; a wildcard host
// (":1935", "0.0.0.0:1935") is reached on loopback. "" if addr is not host:port.
func rtmpURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "rtmp://" + net.JoinHostPort(host, port) + "/x"
}

// Job is one entry of the worker's /jobs.
type Job struct {
	EgressID  string `json:"egress_id"`
	IngressID string `json:"ingress_id"`
	PID       int    `json:"pid"`
	Status    string `json:"status"`
}

// Jobs lists the worker's running jobs.
func (w *Worker) Jobs(t testing.TB) []Job {
	t.Helper()
	resp, err := http.Get("http://" + w.HTTPAddr + "/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jobs []Job
	if err := json.NewDecoder(resp.Body).Decode(&jobs); err != nil {
		t.Fatal(err)
	}
	return jobs
}

// Get fetches a path of the worker's HTTP server and returns status and body.
func (w *Worker) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + w.HTTPAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
