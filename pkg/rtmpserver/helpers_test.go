package rtmpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// logRecorder is a slog.Handler that keeps every record as one line of text.
type logRecorder struct {
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
}

func newLogRecorder() *logRecorder {
	return &logRecorder{mu: new(sync.Mutex), lines: new([]string)}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	for _, a := range r.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.lines = append(*r.lines, b.String())
	return nil
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), as...)
	return &c
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

func (r *logRecorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), *r.lines...)
}

// find returns the lines containing every one of subs.
func (r *logRecorder) find(subs ...string) []string {
	var out []string
next:
	for _, l := range r.Lines() {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// sink is an io.WriteCloser consumer that keeps what it got. failAfter > 0 makes writes fail
// once that many bytes were taken; block makes Write wait until Close.
type sink struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	closes    int
	failAfter int
	block     bool
	closed    chan struct{}
}

func newSink() *sink { return &sink{closed: make(chan struct{})} }

func (s *sink) Write(p []byte) (int, error) {
	if s.block {
		<-s.closed
		return 0, io.ErrClosedPipe
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closes > 0 {
		return 0, io.ErrClosedPipe
	}
	if s.failAfter > 0 && s.buf.Len()+len(p) > s.failAfter {
		return 0, errors.New("consumer gone")
	}
	return s.buf.Write(p)
}

func (s *sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closes++
	if s.closes == 1 {
		close(s.closed)
	}
	return nil
}

func (s *sink) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

func (s *sink) Closes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closes
}

// sinks is an Accept that gives every allowed key a fresh sink and refuses the others.
type sinks struct {
	mu      sync.Mutex
	allow   func(key string) error
	byKey   map[string][]*sink
	prepare func(*sink)
}

func newSinks() *sinks { return &sinks{byKey: make(map[string][]*sink)} }

func (ss *sinks) accept(_ context.Context, key string, _ net.Addr) (io.WriteCloser, error) {
	if ss.allow != nil {
		if err := ss.allow(key); err != nil {
			return nil, err
		}
	}
	s := newSink()
	if ss.prepare != nil {
		ss.prepare(s)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.byKey[key] = append(ss.byKey[key], s)
	return s, nil
}

// forget drops key's sinks so a long fuzz run does not keep them all.
func (ss *sinks) forget(key string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byKey, key)
}

func (ss *sinks) get(key string) []*sink {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return append([]*sink(nil), ss.byKey[key]...)
}

// startServer serves s on a loopback port and closes it, checking for leaked goroutines,
// when the test ends.
func startServer(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
		checkGoroutines(t)
	})
	return ln.Addr().String()
}

// checkGoroutines waits until no goroutine runs code of go-rtmp or of this package's
// Server: connection loops, chunk writers, Serve. Counting only those keeps the check exact
// while the testing package (fuzzing in particular) starts goroutines of its own.
func checkGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaked := ourGoroutines()
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ourGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/yutopp/go-rtmp") ||
			strings.Contains(g, "rtmpserver.(*Server)") || strings.Contains(g, "rtmpserver.(*conn)") {
			ours = append(ours, g)
		}
	}
	return ours
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestServer(t testing.TB, accept Accept) (*Server, *logRecorder) {
	rec := newLogRecorder()
	s := New(accept, slog.New(rec))
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range rec.Lines() {
				t.Log(l)
			}
		}
	})
	return s, rec
}
