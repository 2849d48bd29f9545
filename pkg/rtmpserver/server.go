// Package rtmpserver accepts RTMP and RTMPS pushes (OBS, ffmpeg) and passes each stream on as FLV.
package rtmpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/yutopp/go-rtmp"
)

// Accept is called on every publish. key is the last path segment of the publishing name
// (query string stripped). It returns where the stream's FLV bytes go, or an error that
// refuses the publish: the error text is logged and sent to the client as the onStatus
// description. ctx is cancelled when the Server closes. Accept runs on the connection's
// goroutine, with the key reserved: a second publish on the same key is refused meanwhile.
type Accept func(ctx context.Context, key string, remote net.Addr) (io.WriteCloser, error)

var (
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("rtmp server closed")
	// ErrKeyLive refuses a publish on a key another connection is publishing.
	ErrKeyLive = errors.New("stream key already live")
	// ErrNoKey refuses a publish with an empty stream key.
	ErrNoKey = errors.New("empty stream key")
	// ErrAlreadyPublishing refuses a second publish on one connection.
	ErrAlreadyPublishing = errors.New("connection is already publishing")
)

// Defaults for the per-instance timeouts.
const (
	defaultPublishTimeout = 10 * time.Second
	defaultIdleTimeout    = 30 * time.Second
	defaultWriteTimeout   = 10 * time.Second
	defaultCloseGrace     = 2 * time.Second
)

// Server is an RTMP(S) listener for push ingress. Each accepted publish is written as one FLV
// stream to the io.WriteCloser its Accept returned.
type Server struct {
	accept Accept
	log    *slog.Logger

	publishTimeout time.Duration // connect → publish, handshake included
	idleTimeout    time.Duration // longest gap between messages while publishing
	writeTimeout   time.Duration // per write to the client
	closeGrace     time.Duration // Close waits this long before closing writers under blocked connections

	ctx    context.Context // cancelled by Close; handed to Accept
	cancel context.CancelFunc

	// mu is a leaf lock: nothing is called with it held.
	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
	live      map[string]*publication // a nil value reserves the key while Accept runs
}

// New returns a Server that hands publishes to accept.
func New(accept Accept, log *slog.Logger) *Server {
	// The root context belongs to the Server, not to a caller: it lives until Close.
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		accept:         accept,
		log:            log,
		publishTimeout: defaultPublishTimeout,
		idleTimeout:    defaultIdleTimeout,
		writeTimeout:   defaultWriteTimeout,
		closeGrace:     defaultCloseGrace,
		ctx:            ctx,
		cancel:         cancel,
		listeners:      make(map[*listener]struct{}),
		conns:          make(map[*conn]struct{}),
		live:           make(map[string]*publication),
	}
}

// Serve accepts connections on ln until Close, then returns ErrServerClosed. Call it once per
// listener; for RTMPS pass a tls.NewListener.
func (s *Server) Serve(ln net.Listener) error {
	rs := rtmp.NewServer(&rtmp.ServerConfig{OnConnect: s.onConnect})
	l := &listener{Listener: ln, done: s.ctx.Done(), stop: func() { _ = rs.Close() }}
	if !s.addListener(l) {
		_ = ln.Close()
		return ErrServerClosed
	}
	defer s.removeListener(l)
	err := rs.Serve(l)
	switch {
	case s.ctx.Err() != nil:
		return ErrServerClosed
	case l.err != nil:
		return fmt.Errorf("accept rtmp connection: %w", l.err)
	}
	return fmt.Errorf("serve rtmp: %w", err)
}

// Close stops every listener and connection. Each live stream's writer is closed once: by
// its connection as it unwinds, or, if the connection is stuck in a Write for longer than
// the grace period, by Close itself, under that Write.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	ls := mapKeys(s.listeners)
	cs := mapKeys(s.conns)
	s.mu.Unlock()

	for _, l := range ls {
		l.stop()
		_ = l.Close()
	}
	for _, c := range cs {
		c.abort("server closed")
	}
	if waitDone(cs, s.closeGrace) {
		return nil
	}
	for _, p := range s.publications() {
		_ = p.close()
	}
	if !waitDone(cs, s.closeGrace) {
		s.log.Warn("rtmp connections still blocked in their consumer after close")
	}
	return nil
}

// Live reports the stream keys being published now, sorted.
func (s *Server) Live() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.live))
	for k, p := range s.live {
		if p != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// onConnect is go-rtmp's per-connection hook, run on the connection's goroutine.
func (s *Server) onConnect(nc net.Conn) (io.ReadWriteCloser, *rtmp.ConnConfig) {
	c := newConn(s, nc)
	if !s.track(c) {
		c.abort("server closed")
	}
	return c, &rtmp.ConnConfig{
		Handler: &handler{srv: s, c: c},
		ControlState: rtmp.StreamControlStateConfig{
			// go-rtmp's defaults are unbounded; a publisher uses a handful of each.
			MaxChunkStreams:   64,
			MaxMessageStreams: 16,
		},
		Logger: newRTMPLogger(c.setRTMPErr),
	}
}

func (s *Server) addListener(l *listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) removeListener(l *listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, l)
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// reserve claims key for one connection until release.
func (s *Server) reserve(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if _, ok := s.live[key]; ok {
		return ErrKeyLive
	}
	s.live[key] = nil
	return nil
}

// attach records the publication on a reserved key. It fails once the Server is closing,
// since Close may already have collected the publications to close.
func (s *Server) attach(key string, p *publication) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.live[key] = p
	return nil
}

// release frees key if p (nil for a bare reservation) still holds it.
func (s *Server) release(key string, p *publication) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.live[key]; ok && cur == p {
		delete(s.live, key)
	}
}

func (s *Server) publications() []*publication {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]*publication, 0, len(s.live))
	for _, p := range s.live {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// waitDone waits for every connection to finish, up to d in total.
func waitDone(cs []*conn, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, c := range cs {
		select {
		case <-c.done:
		case <-t.C:
			return false
		}
	}
	return true
}

func mapKeys[K comparable, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
