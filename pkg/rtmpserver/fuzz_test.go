package rtmpserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yutopp/go-rtmp/message"
)

// maxHeaderLen is the longest tag header either parser reads; longer input never fails.
const maxHeaderLen = 8

func FuzzParseVideoTagHeader(f *testing.F) {
	for _, seed := range [][]byte{
		{}, {0x17}, {0x14}, {0x22, 9}, avcSeqHeader, avcKeyframe, avcInter, {0x27, 1, 0xFF, 0xFF, 0xFF},
		{0x1C, 1, 0, 0, 0}, {0x90, 'h', 'v', 'c', '1', 1}, {0x91, 'h', 'v', 'c', '1', 0, 0, 5},
		{0x91, 'h', 'v', 'c', '1', 0}, {0xA3, 'a', 'v', '0', '1'}, {0x95, 'h', 'v', 'c', '1'},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVideoTagHeader(b)
		if err != nil {
			if !errors.Is(err, ErrShortTag) || len(b) >= maxHeaderLen {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		if v.Enhanced != (b[0]&0x80 != 0) {
			t.Fatalf("Enhanced = %v for first byte %#x", v.Enhanced, b[0])
		}
		if !v.Enhanced && (v.FrameType != b[0]>>4 || v.CodecID != b[0]&0x0f) {
			t.Fatalf("%+v from first byte %#x", v, b[0])
		}
		if v.Enhanced && v.FourCC != string(b[1:5]) {
			t.Fatalf("FourCC %q from % x", v.FourCC, b)
		}
		if v.IsSequenceHeader() && v.IsKeyframe() {
			t.Fatalf("%+v is both a sequence header and a keyframe", v)
		}
		if v.CompositionTime < -(1<<23) || v.CompositionTime >= 1<<23 {
			t.Fatalf("CompositionTime %d out of SI24 range", v.CompositionTime)
		}
		roundTrip(t, TagTypeVideo, b, func(body []byte) (any, error) { return ParseVideoTagHeader(body) }, v)
	})
}

func FuzzParseAudioTagHeader(f *testing.F) {
	for _, seed := range [][]byte{
		{}, {0xAF}, aacSeqHeader, aacFrame, {0x28}, {0x2F, 0xFF}, {0x90, 'O', 'p', 'u', 's'}, {0x91, 'f', 'L'},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAudioTagHeader(b)
		if err != nil {
			if !errors.Is(err, ErrShortTag) || len(b) >= maxHeaderLen {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		if a.SoundFormat != b[0]>>4 {
			t.Fatalf("SoundFormat %d from %#x", a.SoundFormat, b[0])
		}
		if a.Enhanced != (a.SoundFormat == SoundFormatExHeader) {
			t.Fatalf("%+v from % x", a, b)
		}
		if !a.Enhanced && (a.Channels() < 1 || a.Channels() > 2 || a.SoundRate > 3 || a.SoundSize > 1) {
			t.Fatalf("%+v from %#x", a, b[0])
		}
		roundTrip(t, TagTypeAudio, b, func(body []byte) (any, error) { return ParseAudioTagHeader(body) }, a)
	})
}

// roundTrip writes body as an FLV tag, reads it back and checks it parses to the same header.
func roundTrip(t *testing.T, typ byte, body []byte, parse func([]byte) (any, error), want any) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHeader(&b); err != nil {
		t.Fatal(err)
	}
	if err := WriteTag(&b, typ, 1234, body); err != nil {
		t.Fatal(err)
	}
	tags, err := readFLV(b.Bytes())
	if err != nil || len(tags) != 1 || tags[0].typ != typ || tags[0].ts != 1234 || !bytes.Equal(tags[0].body, body) {
		t.Fatalf("FLV round trip: %+v, %v", tags, err)
	}
	got, err := parse(tags[0].body)
	if err != nil || got != want {
		t.Fatalf("parsed back %+v, %v; want %+v", got, err, want)
	}
}

// Fuzz modes: what precedes the fuzz bytes on the connection.
const (
	modeRaw       = iota // nothing: the bytes are the handshake
	modeHandshake        // a valid handshake: the bytes are chunks
	modePublished        // handshake, connect, createStream, publish: the bytes are chunks
	modeMedia            // published: the bytes are the body of a video, an audio and a data message
	numModes
)

// FuzzConn throws bytes at a live server and then checks that it still accepts a fresh
// publish and writes its FLV, that no handler panicked, and (at the end) that no goroutine leaked.
func FuzzConn(f *testing.F) {
	chunk := func(csid, typ byte, stream uint32, payload []byte) []byte {
		var b bytes.Buffer
		c := &testClient{nc: bufConn{&b}, chunkSize: 128}
		_ = c.writeMessage(int(csid), typ, stream, 0, payload)
		return b.Bytes()
	}
	f.Add(uint8(modeRaw), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(uint8(modeRaw), append([]byte{3}, make([]byte, 3072)...))
	f.Add(uint8(modeRaw), []byte{})
	f.Add(uint8(modeHandshake), []byte{0xFF, 0xFF, 0xFF, 0xFF})
	f.Add(uint8(modeHandshake), chunk(3, byte(message.TypeIDCommandMessageAMF0), 0, []byte{2, 0, 7, 'c', 'o', 'n', 'n', 'e', 'c', 't', 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 5}))
	f.Add(uint8(modeHandshake), chunk(2, byte(message.TypeIDSetChunkSize), 0, []byte{0, 0, 0, 0}))
	f.Add(uint8(modeHandshake), []byte{0x01, 0xFF, 0xFF, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0, 0})
	f.Add(uint8(modePublished), chunk(6, byte(message.TypeIDVideoMessage), 1, nil))         // zero-length message
	f.Add(uint8(modePublished), chunk(6, byte(message.TypeIDVideoMessage), 7, avcKeyframe)) // unknown stream
	f.Add(uint8(modePublished), chunk(4, byte(message.TypeIDAggregateMessage), 1, []byte{9, 0, 0, 1}))
	f.Add(uint8(modePublished), chunk(3, byte(message.TypeIDCommandMessageAMF0), 1, []byte{2, 0, 7, 'p', 'u', 'b', 'l', 'i', 's', 'h', 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 1}))
	f.Add(uint8(modeMedia), avcKeyframe)
	f.Add(uint8(modeMedia), []byte{0x17})
	f.Add(uint8(modeMedia), []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 8, 0, 0, 0, 1})
	f.Add(uint8(modeMedia), []byte{0x91, 'h', 'v', 'c'})

	ss := newSinks()
	s, logs := newTestServer(f, ss.accept)
	s.publishTimeout = 2 * time.Second
	addr := startServer(f, s)
	var n atomic.Int64

	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		id := n.Add(1)
		if err := sendFuzz(addr, mode%numModes, fmt.Sprintf("fuzz%d", id), data); err != nil {
			t.Fatal(err)
		}
		checkPublish(t, addr, ss, fmt.Sprintf("check%d", id))
		if p := logs.find("rtmp handler panic"); len(p) > 0 {
			t.Fatalf("handler panicked: %q", p)
		}
	})
}

// sendFuzz writes data after the mode's prefix, half-closes, and waits for the server to
// close the connection. Errors writing are expected (the server may hang up first).
func sendFuzz(addr string, mode uint8, key string, data []byte) error {
	var c *testClient
	var err error
	if mode == modeRaw {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		c = &testClient{nc: nc}
	} else if c, err = dialClient(addr, nil); err != nil {
		return err
	}
	defer c.Close()
	switch mode {
	case modeRaw, modeHandshake:
		_, _ = c.nc.Write(data)
	case modePublished, modeMedia:
		if st, err := c.publish("live", key); err != nil || st.Code != "NetStream.Publish.Start" {
			return fmt.Errorf("fuzz publish: %+v %v", st, err)
		}
		if mode == modePublished {
			_, _ = c.nc.Write(data)
			break
		}
		_ = c.video(0, data)
		_ = c.audio(0, data)
		body := append([]byte{2, 0, 13}, "@setDataFrame"...)
		_ = c.writeMessage(csidAudio, byte(message.TypeIDDataMessageAMF0), c.streamID, 0, append(body, data...))
	}
	_ = c.nc.(*net.TCPConn).CloseWrite()
	return c.waitClosed(5 * time.Second)
}

// checkPublish publishes key with a fresh connection and waits for its keyframe to come out.
func checkPublish(t *testing.T, addr string, ss *sinks, key string) {
	t.Helper()
	c, err := dialClient(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.publish("live", key); err != nil || st.Code != "NetStream.Publish.Start" {
		t.Fatalf("publish after fuzz input: %+v %v", st, err)
	}
	if err := c.video(0, avcKeyframe); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "keyframe after fuzz input", func() bool {
		sk := ss.get(key)
		if len(sk) == 0 {
			return false
		}
		tags, err := readFLV(sk[0].Bytes())
		return err == nil && len(tags) == 1 && bytes.Equal(tags[0].body, avcKeyframe)
	})
	ss.forget(key)
}

// bufConn lets testClient.writeMessage build chunks into a buffer for seeds.
type bufConn struct{ *bytes.Buffer }

func (bufConn) Close() error                     { return nil }
func (bufConn) LocalAddr() net.Addr              { return nil }
func (bufConn) RemoteAddr() net.Addr             { return nil }
func (bufConn) SetDeadline(time.Time) error      { return nil }
func (bufConn) SetReadDeadline(time.Time) error  { return nil }
func (bufConn) SetWriteDeadline(time.Time) error { return nil }
