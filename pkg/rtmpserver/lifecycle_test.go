package rtmpserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"
)

func TestTimeouts(t *testing.T) {
	ss := newSinks()
	s, logs := newTestServer(t, ss.accept)
	s.publishTimeout = 300 * time.Millisecond
	s.idleTimeout = 300 * time.Millisecond
	addr := startServer(t, s)

	t.Run("silent tcp", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c := &testClient{nc: nc}
		if err := c.waitClosed(3 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("connects but never publishes", func(t *testing.T) {
		c, err := dialClient(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.command(0, "connect", 1, map[string]any{"app": "live"}); err != nil {
			t.Fatal(err)
		}
		if err := c.waitClosed(3 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("active publisher outlives both timeouts", func(t *testing.T) {
		c := mustPublish(t, addr, "active")
		for i := range 12 { // 1.2 s, four times either timeout
			if err := c.video(uint32(i*100), avcKeyframe); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		sk := ss.get("active")
		waitFor(t, 3*time.Second, "all tags", func() bool {
			tags, err := readFLV(sk[0].Bytes())
			return err == nil && len(tags) == 12
		})
		if sk[0].Closes() != 0 {
			t.Fatal("active publisher was cut off")
		}
		c.Close()
	})
	t.Run("publisher goes quiet", func(t *testing.T) {
		c := mustPublish(t, addr, "quiet")
		if err := c.video(0, avcKeyframe); err != nil {
			t.Fatal(err)
		}
		if err := c.waitClosed(3 * time.Second); err != nil {
			t.Fatal(err)
		}
		sk := ss.get("quiet")
		waitFor(t, 3*time.Second, "writer closed", func() bool { return sk[0].Closes() == 1 })
	})
	waitFor(t, 3*time.Second, "timeouts logged", func() bool { return len(logs.find("reason=read timeout")) == 3 })
}

func TestCloseEndsEverything(t *testing.T) {
	ss := newSinks()
	s, _ := newTestServer(t, ss.accept)
	addr := startServer(t, s)
	c := mustPublish(t, addr, "k")
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	waitFor(t, 5*time.Second, "live", func() bool { return len(s.Live()) == 1 })

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.waitClosed(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := (&testClient{nc: idle}).waitClosed(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := ss.get("k")[0].Closes(); n != 1 {
		t.Fatalf("writer closed %d times", n)
	}
	if len(s.Live()) != 0 {
		t.Fatalf("live after close: %v", s.Live())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("Serve after Close left the listener open")
	}
}

// TestCloseUnblocksStuckConsumer: a consumer that never returns from Write must not hang Close.
func TestCloseUnblocksStuckConsumer(t *testing.T) {
	ss := newSinks()
	ss.prepare = func(s *sink) { s.block = true }
	s, _ := newTestServer(t, ss.accept)
	s.closeGrace = 200 * time.Millisecond
	addr := startServer(t, s)
	c := mustPublish(t, addr, "stuck")
	if err := c.video(0, avcKeyframe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "live", func() bool { return len(s.Live()) == 1 })
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if n := ss.get("stuck")[0].Closes(); n != 1 {
		t.Fatalf("writer closed %d times", n)
	}
}

func TestServeReturnsWhenListenerClosedElsewhere(t *testing.T) {
	s, _ := newTestServer(t, newSinks().accept)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	time.Sleep(50 * time.Millisecond)
	ln.Close()
	select {
	case err := <-served:
		if err == nil || errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve = %v, want the accept error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve kept running on a closed listener")
	}
	s.Close()
}

func TestRTMPS(t *testing.T) {
	ss := newSinks()
	s, _ := newTestServer(t, ss.accept)
	cert := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { s.Close() })

	c, err := dialClient(ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.publish("live", "tlskey"); err != nil || st.Code != "NetStream.Publish.Start" {
		t.Fatalf("publish over TLS: %+v %v", st, err)
	}
	if err := c.video(0, avcKeyframe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "tag over TLS", func() bool {
		sk := ss.get("tlskey")
		if len(sk) == 0 {
			return false
		}
		tags, err := readFLV(sk[0].Bytes())
		return err == nil && len(tags) == 1
	})

	// Plain RTMP to the TLS port fails the TLS handshake and costs nothing.
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(bytes.Repeat([]byte{3}, 1537))
	if err := (&testClient{nc: nc}).waitClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestGarbageDoesNotDisturbPublish sends junk on other connections while a publish runs.
func TestGarbageDoesNotDisturbPublish(t *testing.T) {
	ss := newSinks()
	s, _ := newTestServer(t, ss.accept)
	addr := startServer(t, s)
	c := mustPublish(t, addr, "k")
	junk := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		bytes.Repeat([]byte{0xFF}, 5000),
		append([]byte{3}, make([]byte, 3072)...), // handshake-sized zeros: C2 echo mismatch
	}
	for _, j := range junk {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(j)
		nc.(*net.TCPConn).CloseWrite()
		if err := (&testClient{nc: nc}).waitClosed(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		nc.Close()
		if err := c.video(0, avcKeyframe); err != nil {
			t.Fatal(err)
		}
	}
	// go-rtmp v0.0.7 panics (and recovers) on a zero-length message: that publisher is
	// dropped, the others carry on.
	other := mustPublish(t, addr, "other")
	if err := other.video(0, []byte{}); err != nil {
		t.Fatal(err)
	}
	if err := other.waitClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.video(0, avcKeyframe); err != nil {
		t.Fatal(err)
	}
	sk := ss.get("k")
	waitFor(t, 5*time.Second, "publisher's tags", func() bool {
		tags, err := readFLV(sk[0].Bytes())
		return err == nil && len(tags) == len(junk)+1
	})
	if sk[0].Closes() != 0 || !slices.Equal(s.Live(), []string{"k"}) {
		t.Fatal("publisher disturbed")
	}
}
