package rtmpserver

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// conn is one TCP (or TLS) connection. go-rtmp reads and writes through it, so it counts
// bytes and owns the deadlines; go-rtmp calls Close exactly when it is done with the
// connection, after the handler's OnClose, which is what done marks.
//
// Apart from nc (safe for concurrent use) and the fields under mu, every field is used only
// by go-rtmp's connection goroutine, which runs the handshake, Read, the handler callbacks
// and Close.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote net.Addr
	log    *slog.Logger
	start  time.Time

	closeOnce sync.Once
	done      chan struct{} // closed when go-rtmp has finished with the connection

	mu      sync.Mutex // go-rtmp may log from its writer goroutine, Server.Close aborts
	rtmpErr string     // go-rtmp's reason for dropping the connection, if any
	reason  string     // why we ended the connection on purpose; the first one counts

	bytesIn   int64
	readErr   error
	stats     pubStats
	lastTouch time.Time
}

// pubStats are the counters of the publication on this connection, logged at close.
type pubStats struct {
	key     string
	app     string
	tags    int64
	dropped int64
}

func newConn(srv *Server, nc net.Conn) *conn {
	c := &conn{
		srv:    srv,
		nc:     nc,
		remote: nc.RemoteAddr(),
		start:  time.Now(),
		done:   make(chan struct{}),
	}
	c.log = srv.log.With("remote", c.remote.String())
	// Until it publishes, a client gets one fixed window: a handshake that stalls, or a
	// connection that only says connect/createStream, is dropped when it ends.
	_ = nc.SetReadDeadline(c.start.Add(srv.publishTimeout))
	return c
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.nc.Read(p)
	c.bytesIn += int64(n)
	if err != nil && c.readErr == nil {
		c.readErr = err
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	// go-rtmp writes from its own scheduler goroutine and gives up waiting after 5 s but
	// leaves the write blocked; a deadline frees it when the client stops reading.
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout))
	return c.nc.Write(p)
}

// Close is called by go-rtmp once, at the end of its connection goroutine.
func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.nc.Close()
		c.logClosed()
		c.srv.forget(c)
		close(c.done)
	})
	return err
}

// abort closes the socket under go-rtmp; its goroutine then unwinds and calls Close.
func (c *conn) abort(reason string) {
	c.setReason(reason)
	_ = c.nc.Close()
}

// touch extends the read deadline while a publisher is sending. It is called per media
// message and rate-limited (to once a second with the default 30 s timeout) so a 60 fps
// stream does not reset a timer 100 times a second.
func (c *conn) touch() {
	now := time.Now()
	if now.Sub(c.lastTouch) < min(time.Second, c.srv.idleTimeout/4) {
		return
	}
	c.lastTouch = now
	_ = c.nc.SetReadDeadline(now.Add(c.srv.idleTimeout))
}

// published switches the connection from the pre-publish window to the idle timeout.
func (c *conn) published(key, app string) {
	c.stats = pubStats{key: key, app: app}
	c.lastTouch = time.Time{}
	c.touch()
}

// unpublished gives a client that ended its publication but kept the connection the
// pre-publish window again.
func (c *conn) unpublished() {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.publishTimeout))
}

func (c *conn) setReason(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == "" {
		c.reason = msg
	}
}

func (c *conn) setRTMPErr(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rtmpErr == "" {
		c.rtmpErr = msg
	}
}

func (c *conn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.reason != "":
		return c.reason
	case errors.Is(c.readErr, os.ErrDeadlineExceeded):
		return "read timeout"
	case c.rtmpErr != "":
		return c.rtmpErr
	case errors.Is(c.readErr, io.EOF):
		return "client closed the connection"
	case c.readErr != nil:
		return c.readErr.Error()
	}
	return "closed"
}

// logClosed writes the one line per connection: Info if it ever published, Debug otherwise
// (port scanners and load balancer probes are not news).
func (c *conn) logClosed() {
	d := time.Since(c.start)
	attrs := []any{
		"reason", c.closeReason(),
		"duration", d.Round(time.Millisecond).String(),
		"bytes_in", c.bytesIn,
		"avg_kbps", kbps(c.bytesIn, d),
	}
	if c.stats.key == "" {
		c.log.Debug("rtmp connection closed", attrs...)
		return
	}
	attrs = append(attrs, "key", redact(c.stats.key), "app", c.stats.app,
		"tags", c.stats.tags, "dropped", c.stats.dropped)
	c.log.Info("rtmp connection closed", attrs...)
}

func kbps(bytes int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(bytes) * 8 / d.Seconds() / 1000)
}
