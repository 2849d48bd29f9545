package stack

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/webhook"
)

// API credentials shared by livekit-server and the workers (secret ≥ 32 chars, as the server wants).
const (
	APIKey    = "devkey"
	APISecret = "mediaworker-test-secret-0123456789abcdef"
)

// Stack is Redis + livekit-server (with a webhook receiver) for one test.
type Stack struct {
	t         testing.TB
	RedisAddr string
	HTTPURL   string // livekit-server API, http://127.0.0.1:port
	WsURL     string
	Webhooks  *Webhooks
	Dir       string
}

// New starts Redis and livekit-server v1.13.5; both end with the test.
func New(t testing.TB) *Stack {
	t.Helper()
	if os.Getenv(envInNetns) != "1" {
		t.Fatal("integration tests must run inside the test network namespace: call stack.RunInNetns in TestMain")
	}
	s := &Stack{t: t, Dir: t.TempDir()}
	rp := FreePort(t)
	s.RedisAddr = fmt.Sprintf("127.0.0.1:%d", rp)
	Start(t, "redis", nil, "redis-server", "--port", itoa(rp), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	WaitTCP(t, s.RedisAddr, 10*time.Second)

	s.Webhooks = newWebhooks(t)
	lp := FreePort(t)
	conf := fmt.Sprintf(`port: %d
bind_addresses: ["127.0.0.1"]
rtc:
  tcp_port: %d
  udp_port: %d
  use_external_ip: false
  node_ip: %s
  interfaces: {includes: [mw0]}
redis: {address: %s}
keys: {%s: %s}
webhook: {api_key: %s, urls: ["%s"]}
ingress: {rtmp_base_url: "rtmp://127.0.0.1:1935/x"} # only echoed into IngressInfo.url
logging: {level: info}
`, lp, FreePort(t), FreePort(t), NodeIP, s.RedisAddr, APIKey, APISecret, APIKey, s.Webhooks.URL)
	confPath := filepath.Join(s.Dir, "livekit.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	Start(t, "livekit-server", nil, toolBin(t, "LIVEKIT_SERVER_BIN", "livekit-server-v1.13.5/livekit-server"), "--config", confPath)
	WaitTCP(t, fmt.Sprintf("127.0.0.1:%d", lp), 30*time.Second)
	s.HTTPURL = fmt.Sprintf("http://127.0.0.1:%d", lp)
	s.WsURL = fmt.Sprintf("ws://127.0.0.1:%d", lp)
	return s
}

// Webhooks receives livekit-server's webhooks and checks their signatures.
type Webhooks struct {
	URL    string
	mu     sync.Mutex
	events []*livekit.WebhookEvent
	bad    []error
}

func newWebhooks(t testing.TB) *Webhooks {
	w := &Webhooks{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kp := auth.NewSimpleKeyProvider(APIKey, APISecret)
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ev, err := webhook.ReceiveWebhookEvent(r, kp)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			w.bad = append(w.bad, err)
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		w.events = append(w.events, ev)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	w.URL = "http://" + ln.Addr().String() + "/hook"
	return w
}

// ForEgress returns the events about one egress, in arrival order, and any signature failures.
func (w *Webhooks) ForEgress(id string) ([]*livekit.WebhookEvent, []error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*livekit.WebhookEvent
	for _, e := range w.events {
		if e.EgressInfo != nil && e.EgressInfo.EgressId == id {
			out = append(out, e)
		}
	}
	return out, append([]error(nil), w.bad...)
}

// ForIngress returns the events about one ingress, in arrival order, and any signature failures.
func (w *Webhooks) ForIngress(id string) ([]*livekit.WebhookEvent, []error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*livekit.WebhookEvent
	for _, e := range w.events {
		if e.IngressInfo != nil && e.IngressInfo.IngressId == id {
			out = append(out, e)
		}
	}
	return out, append([]error(nil), w.bad...)
}

// Started returns the infos of every egress_started webhook so far (egresses the server started).
func (w *Webhooks) Started() []*livekit.EgressInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*livekit.EgressInfo
	for _, e := range w.events {
		if e.Event == "egress_started" && e.EgressInfo != nil {
			out = append(out, e.EgressInfo)
		}
	}
	return out
}
