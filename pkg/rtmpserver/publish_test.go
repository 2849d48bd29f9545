package rtmpserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustPublish(t *testing.T, addr, name string) *testClient {
	t.Helper()
	c, err := dialClient(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	st, err := c.publish("live", name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != "NetStream.Publish.Start" {
		t.Fatalf("publish %q: %+v", name, st)
	}
	return c
}

func TestPublishWritesFLV(t *testing.T) {
	ss := newSinks()
	s, logs := newTestServer(t, ss.accept)
	addr := startServer(t, s)
	c := mustPublish(t, addr, "live/secretkey123?token=abc")

	script, err := c.metadata(map[string]any{"width": 320.0, "height": 240.0, "encoder": "test"})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		video bool
		ts    uint32
		body  []byte
		kept  bool
	}{
		{false, 0, aacSeqHeader, true},
		{true, 0, avcInter, false}, // before the first keyframe: dropped
		{true, 0, avcSeqHeader, true},
		{false, 10, aacFrame, true}, // audio is never held back
		{true, 33, avcInter, false},
		{true, 66, avcKeyframe, true},
		{true, 100, avcInter, true},
		{false, 0x01000005, aacFrame, true}, // needs the extended timestamp byte
	}
	for _, st := range steps {
		if st.video {
			err = c.video(st.ts, st.body)
		} else {
			err = c.audio(st.ts, st.body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "key live", func() bool { return slices.Equal(s.Live(), []string{"secretkey123"}) })
	sk := ss.get("secretkey123")
	if len(sk) != 1 {
		t.Fatalf("accept called %d times for the key", len(sk))
	}
	want := []flvTag{{TagTypeScript, 0, script}}
	for _, st := range steps {
		if st.kept {
			typ := TagTypeAudio
			if st.video {
				typ = TagTypeVideo
			}
			want = append(want, flvTag{typ, st.ts, st.body})
		}
	}
	var tags []flvTag
	waitFor(t, 5*time.Second, "all tags", func() bool {
		tags, err = readFLV(sk[0].Bytes())
		return err == nil && len(tags) == len(want)
	})
	for i := range want {
		if tags[i].typ != want[i].typ || tags[i].ts != want[i].ts || !bytes.Equal(tags[i].body, want[i].body) {
			t.Fatalf("tag %d = %+v, want %+v", i, tags[i], want[i])
		}
	}

	// Unpublish: the writer is closed once, the key is free again, the connection may stay.
	if err := c.deleteStream(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "writer closed", func() bool { return sk[0].Closes() == 1 })
	waitFor(t, 5*time.Second, "key released", func() bool { return len(s.Live()) == 0 })
	c.Close()
	waitFor(t, 5*time.Second, "close logged", func() bool { return len(logs.find("rtmp connection closed", "tags=7", "dropped=2")) == 1 })
	if n := sk[0].Closes(); n != 1 {
		t.Fatalf("writer closed %d times", n)
	}
	if got := logs.find("secretkey123"); len(got) > 0 {
		t.Fatalf("full key logged: %q", got)
	}
	if got := logs.find("INFO rtmp publish accepted", "key=secr…", "app=live", "remote=127.0.0.1:"); len(got) != 1 {
		t.Fatalf("no accepted log line with redacted key: %q", logs.Lines())
	}
	if got := logs.find("rtmp connection closed", "avg_kbps=", "duration=", "bytes_in="); len(got) != 1 {
		t.Fatalf("close line without stats: %q", logs.Lines())
	}
}

func TestSecondPublisherOnLiveKeyRefused(t *testing.T) {
	ss := newSinks()
	s, _ := newTestServer(t, ss.accept)
	addr := startServer(t, s)
	first := mustPublish(t, addr, "samekey")

	second, err := dialClient(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	st, err := second.publish("live", "samekey")
	if err != nil {
		t.Fatal(err)
	}
	if st.Level != "error" || st.Code != "NetStream.Publish.BadName" || st.Description != "stream key already live" {
		t.Fatalf("second publisher got %+v", st)
	}
	if err := second.waitClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The first publisher is unaffected.
	if err := first.video(0, avcSeqHeader); err != nil {
		t.Fatal(err)
	}
	if err := first.video(0, avcKeyframe); err != nil {
		t.Fatal(err)
	}
	sk := ss.get("samekey")
	if len(sk) != 1 {
		t.Fatalf("accept called %d times", len(sk))
	}
	waitFor(t, 5*time.Second, "first publisher's tags", func() bool {
		tags, err := readFLV(sk[0].Bytes())
		return err == nil && len(tags) == 2
	})
	if !slices.Equal(s.Live(), []string{"samekey"}) || sk[0].Closes() != 0 {
		t.Fatalf("live %v, closes %d", s.Live(), sk[0].Closes())
	}
}

func TestRefusedPublish(t *testing.T) {
	cases := []struct {
		name, key, code, desc string
	}{
		{"accept error", "wrongkey", "NetStream.Publish.Failed", "unknown stream key"},
		{"empty key", "live/", "NetStream.Publish.BadName", "empty stream key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ss := newSinks()
			ss.allow = func(key string) error {
				if key == "wrongkey" {
					return errors.New("unknown stream key")
				}
				return nil
			}
			s, logs := newTestServer(t, ss.accept)
			addr := startServer(t, s)
			c, err := dialClient(addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st, err := c.publish("live", tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if st.Level != "error" || st.Code != tc.code || st.Description != tc.desc {
				t.Fatalf("onStatus %+v", st)
			}
			if err := c.waitClosed(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if len(s.Live()) != 0 || len(ss.get(tc.key)) != 0 {
				t.Fatalf("live %v after refusal", s.Live())
			}
			waitFor(t, 5*time.Second, "refusal logged", func() bool {
				return len(logs.find("INFO rtmp publish refused", tc.desc)) == 1
			})
			// The key is free for a publisher that is allowed.
			if tc.key == "wrongkey" {
				ss.allow = nil
				mustPublish(t, addr, tc.key)
			}
		})
	}
}

func TestConsumerWriteErrorClosesConnection(t *testing.T) {
	ss := newSinks()
	ss.prepare = func(s *sink) { s.failAfter = 100 }
	s, logs := newTestServer(t, ss.accept)
	addr := startServer(t, s)
	c := mustPublish(t, addr, "k1")
	for i := range 10 {
		if err := c.video(uint32(i), avcKeyframe); err != nil {
			break // the server may already have closed the connection
		}
	}
	if err := c.waitClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	sk := ss.get("k1")
	waitFor(t, 5*time.Second, "writer closed", func() bool { return sk[0].Closes() == 1 })
	waitFor(t, 5*time.Second, "key released", func() bool { return len(s.Live()) == 0 })
	waitFor(t, 5*time.Second, "reason logged", func() bool {
		return len(logs.find("rtmp connection closed", "consumer write failed", "consumer gone")) == 1
	})
	if n := sk[0].Closes(); n != 1 {
		t.Fatalf("writer closed %d times", n)
	}
}

// TestAcceptSeesKeyAndRemote checks the arguments Accept gets.
func TestAcceptSeesKeyAndRemote(t *testing.T) {
	type call struct {
		key    string
		remote string
		ctxErr error
	}
	calls := make(chan call, 1)
	s, _ := newTestServer(t, func(ctx context.Context, key string, remote net.Addr) (io.WriteCloser, error) {
		calls <- call{key, remote.String(), ctx.Err()}
		return newSink(), nil
	})
	addr := startServer(t, s)
	c := mustPublish(t, addr, "app2/inst/thekey?secret=1")
	got := <-calls
	if got.key != "thekey" || got.ctxErr != nil || !strings.HasPrefix(got.remote, "127.0.0.1:") ||
		got.remote != c.nc.LocalAddr().String() {
		t.Fatalf("accept got %+v (client %s)", got, c.nc.LocalAddr())
	}
}

// TestAcceptPanic: a panicking Accept costs that connection only, and frees the key.
func TestAcceptPanic(t *testing.T) {
	ss := newSinks()
	ss.allow = func(key string) error {
		if key == "boom" {
			panic("accept exploded")
		}
		return nil
	}
	s, logs := newTestServer(t, ss.accept)
	addr := startServer(t, s)
	c, err := dialClient(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.publish("live", "boom")
	if err == nil && st.Code == "NetStream.Publish.Start" {
		t.Fatalf("publish with panicking accept: %+v", st)
	}
	if err := c.waitClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "panic logged", func() bool { return len(logs.find("ERROR rtmp handler panic", "accept exploded")) == 1 })
	ss.allow = nil
	mustPublish(t, addr, "boom") // the key was released
}
