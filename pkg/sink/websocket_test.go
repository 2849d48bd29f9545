package sink

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"wss://user:pw@x.example.com/s?token=abc", "wss://<redacted>@x.example.com/s?<redacted>"},
		{"ws://127.0.0.1:9/a", "ws://127.0.0.1:9/a"},
	}
	for _, tc := range tests {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWebSocketFrames(t *testing.T) {
	type frame struct {
		kind int
		data string
	}
	got := make(chan frame, 10)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			k, b, err := c.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			got <- frame{k, string(b)}
		}
	}))
	defer srv.Close()
	ws, err := DialWebSocket(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/audio")
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.WriteAudio([]byte{1, 2, 3, 4})
	_ = ws.WriteMuted(true)
	_ = ws.Close()
	want := []frame{{websocket.BinaryMessage, "\x01\x02\x03\x04"}, {websocket.TextMessage, `{"muted":true}`}}
	for _, w := range want {
		if f := <-got; f != w {
			t.Fatalf("got %v, want %v", f, w)
		}
	}
	if _, open := <-got; open {
		t.Fatal("connection not closed")
	}
}

func TestDialErrors(t *testing.T) {
	for _, u := range []string{"http://x/y", "ws://127.0.0.1:1/x?key=secret"} {
		_, err := DialWebSocket(context.Background(), u)
		if !errors.Is(err, ErrWebSocket) || strings.Contains(err.Error(), "secret") {
			t.Fatalf("%s: %v", u, err)
		}
	}
}
