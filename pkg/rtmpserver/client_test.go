package rtmpserver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/yutopp/go-amf0"
	"github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/handshake"
	"github.com/yutopp/go-rtmp/message"
)

// testClient is a minimal RTMP publisher that writes its own chunks, so tests control every
// byte, and reads the server's replies with go-rtmp's chunk reader.
type testClient struct {
	nc        net.Conn
	cs        *rtmp.ChunkStreamer
	chunkSize int
	streamID  uint32
	closeOnce sync.Once
}

const (
	csidCommand = 3
	csidAudio   = 4
	csidVideo   = 6
)

func dialClient(addr string, tlsConf *tls.Config) (*testClient, error) {
	var nc net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tlsConf != nil {
		nc, err = tls.DialWithDialer(d, "tcp", addr, tlsConf)
	} else {
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if err := handshake.HandshakeWithServer(nc, nc, &handshake.Config{}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return &testClient{
		nc:        nc,
		cs:        rtmp.NewChunkStreamer(bufio.NewReader(nc), io.Discard, nil),
		chunkSize: 128,
	}, nil
}

// Close may be called more than once (go-rtmp's ChunkStreamer.Close may not).
func (c *testClient) Close() error {
	c.closeOnce.Do(func() {
		if c.cs != nil {
			_ = c.cs.Close()
		}
		_ = c.nc.Close()
	})
	return nil
}

// writeMessage splits one message into chunks of c.chunkSize (RTMP 5.3.1): a type 0 chunk,
// then type 3 continuations; timestamps ≥ 0xFFFFFF go in the extended timestamp field.
func (c *testClient) writeMessage(csid int, typeID byte, streamID, ts uint32, payload []byte) error {
	var b bytes.Buffer
	ext := ts >= 0xFFFFFF
	b.WriteByte(byte(csid))
	var h [11]byte
	putUint24(h[0:3], min(ts, 0xFFFFFF))
	putUint24(h[3:6], uint32(len(payload)))
	h[6] = typeID
	binary.LittleEndian.PutUint32(h[7:11], streamID)
	b.Write(h[:])
	if ext {
		b.Write(binary.BigEndian.AppendUint32(nil, ts))
	}
	for i := 0; ; {
		n := min(c.chunkSize, len(payload)-i)
		b.Write(payload[i : i+n])
		i += n
		if i >= len(payload) {
			break
		}
		b.WriteByte(0xC0 | byte(csid))
		if ext {
			b.Write(binary.BigEndian.AppendUint32(nil, ts))
		}
	}
	_, err := c.nc.Write(b.Bytes())
	return err
}

func (c *testClient) command(streamID uint32, name string, txn int64, args ...any) error {
	var body bytes.Buffer
	enc := amf0.NewEncoder(&body)
	for _, v := range append([]any{name, float64(txn)}, args...) {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return c.writeMessage(csidCommand, byte(message.TypeIDCommandMessageAMF0), streamID, 0, body.Bytes())
}

// readCommand reads messages until a command arrives and returns its name and arguments.
func (c *testClient) readCommand() (string, []any, error) {
	for {
		var cm rtmp.ChunkMessage
		if _, _, err := c.cs.Read(&cm); err != nil {
			return "", nil, err
		}
		cmd, ok := cm.Message.(*message.CommandMessage)
		if !ok {
			continue
		}
		var args []any
		dec := amf0.NewDecoder(cmd.Body)
		for {
			var v any
			if err := dec.Decode(&v); err != nil {
				break
			}
			args = append(args, v)
		}
		return cmd.CommandName, args, nil
	}
}

func (c *testClient) expect(name string) ([]any, error) {
	got, args, err := c.readCommand()
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", name, err)
	}
	if got != name {
		return nil, fmt.Errorf("got %s %v, want %s", got, args, name)
	}
	return args, nil
}

// status is the info object of an onStatus.
type status struct{ Level, Code, Description string }

// publish runs connect, createStream and publish like ffmpeg does and returns the onStatus.
func (c *testClient) publish(app, name string) (status, error) {
	if err := c.command(0, "connect", 1, map[string]any{"app": app, "type": "nonprivate", "tcUrl": "rtmp://127.0.0.1/" + app}); err != nil {
		return status{}, err
	}
	if _, err := c.expect("_result"); err != nil {
		return status{}, err
	}
	if err := c.command(0, "createStream", 2, nil); err != nil {
		return status{}, err
	}
	args, err := c.expect("_result")
	if err != nil {
		return status{}, err
	}
	id, ok := args[len(args)-1].(float64)
	if !ok {
		return status{}, fmt.Errorf("createStream result %v", args)
	}
	c.streamID = uint32(id)
	if err := c.command(c.streamID, "publish", 3, nil, name, "live"); err != nil {
		return status{}, err
	}
	args, err = c.expect("onStatus")
	if err != nil {
		return status{}, err
	}
	info, ok := args[len(args)-1].(map[string]any)
	if !ok {
		return status{}, fmt.Errorf("onStatus %v", args)
	}
	str := func(k string) string { s, _ := info[k].(string); return s }
	return status{str("level"), str("code"), str("description")}, nil
}

func (c *testClient) video(ts uint32, body []byte) error {
	return c.writeMessage(csidVideo, byte(message.TypeIDVideoMessage), c.streamID, ts, body)
}

func (c *testClient) audio(ts uint32, body []byte) error {
	return c.writeMessage(csidAudio, byte(message.TypeIDAudioMessage), c.streamID, ts, body)
}

// metadata sends @setDataFrame("onMetaData", meta) and returns the bytes that should come out
// as the script tag body.
func (c *testClient) metadata(meta map[string]any) ([]byte, error) {
	var body, script bytes.Buffer
	enc := amf0.NewEncoder(&script)
	if err := enc.Encode("onMetaData"); err != nil {
		return nil, err
	}
	if err := enc.Encode(meta); err != nil {
		return nil, err
	}
	if err := amf0.NewEncoder(&body).Encode("@setDataFrame"); err != nil {
		return nil, err
	}
	body.Write(script.Bytes())
	err := c.writeMessage(csidAudio, byte(message.TypeIDDataMessageAMF0), c.streamID, 0, body.Bytes())
	return script.Bytes(), err
}

func (c *testClient) deleteStream() error {
	return c.command(0, "deleteStream", 0, nil, float64(c.streamID))
}

// waitClosed reads until the server closes the connection; it fails if that takes longer
// than d.
func (c *testClient) waitClosed(d time.Duration) error {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("server kept the connection open")
	}
	return nil
}

// Sample tag bodies.
var (
	avcSeqHeader = []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1}
	avcKeyframe  = []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88}
	avcInter     = []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a}
	aacSeqHeader = []byte{0xAF, 0, 0x11, 0x90}
	aacFrame     = []byte{0xAF, 1, 0x21, 0x10, 0x04}
)
