// Package sink delivers a job's media somewhere other than a file: here, a WebSocket.
package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrWebSocket marks a WebSocket destination that failed.
var ErrWebSocket = errors.New("websocket output failed")

// WebSocket sends raw audio as binary frames and mute changes as text frames {"muted":bool},
// the way the official egress does for track egress to websocket_url.
type WebSocket struct {
	mu   sync.Mutex // one writer at a time (gorilla/websocket allows a single concurrent writer)
	conn *websocket.Conn
	url  string
}

// DialWebSocket connects to rawURL (ws:// or wss://).
func DialWebSocket(ctx context.Context, rawURL string) (*WebSocket, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("%w: websocket_url %q must be ws://host/path or wss://host/path", ErrWebSocket, Redact(rawURL))
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, rawURL, nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = " (HTTP " + resp.Status + ")"
		}
		return nil, fmt.Errorf("%w: connect to %s%s: %v", ErrWebSocket, Redact(rawURL), status, err)
	}
	return &WebSocket{conn: conn, url: Redact(rawURL)}, nil
}

// WriteAudio sends one binary frame.
func (w *WebSocket) WriteAudio(b []byte) error {
	return w.write(websocket.BinaryMessage, b)
}

// WriteMuted tells the receiver the track was muted or unmuted.
func (w *WebSocket) WriteMuted(muted bool) error {
	b, _ := json.Marshal(struct {
		Muted bool `json:"muted"`
	}{muted})
	return w.write(websocket.TextMessage, b)
}

func (w *WebSocket) write(kind int, b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := w.conn.WriteMessage(kind, b); err != nil {
		return fmt.Errorf("%w: write to %s: %v", ErrWebSocket, w.url, err)
	}
	return nil
}

// Close says goodbye with a normal closure and closes the connection.
func (w *WebSocket) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "egress ended"), time.Now().Add(time.Second))
	return w.conn.Close()
}

// Redact hides credentials and query parameters (tokens often travel there) of a URL for reports.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	if u.User != nil {
		u.User = url.User("<redacted>")
	}
	if u.RawQuery != "" {
		u.RawQuery = "<redacted>"
	}
	return strings.Replace(u.String(), "%3Credacted%3E", "<redacted>", -1)
}
