package rtmpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"
)

// statusChunkStreamID carries the onStatus the handler sends itself (RTMP allows any ID ≥ 3).
const statusChunkStreamID = 5

var errNoWriter = errors.New("accept returned no writer")

// handler receives one connection's RTMP messages. go-rtmp calls every method on the
// connection's goroutine, so its fields need no lock.
type handler struct {
	rtmp.DefaultHandler
	srv *Server
	c   *conn
	rc  *rtmp.Conn
	app string

	pub       *publication // nil until a publish is accepted
	pubStream uint32       // the message stream publishing
	buf       bytes.Buffer // reused for each media message
}

var _ rtmp.Handler = (*handler)(nil)

func (h *handler) OnServe(rc *rtmp.Conn) { h.rc = rc }

func (h *handler) OnConnect(_ uint32, cmd *message.NetConnectionConnect) error {
	h.app = cmd.Command.App
	h.c.log.Debug("rtmp connect", "app", h.app)
	return nil
}

func (h *handler) OnPublish(sc *rtmp.StreamContext, ts uint32, cmd *message.NetStreamPublish) (err error) {
	defer h.guard(&err)
	key := streamKey(cmd.PublishingName)
	if err := h.startPublish(key, sc.StreamID); err != nil {
		return h.refuse(sc.StreamID, ts, key, err)
	}
	return nil
}

func (h *handler) startPublish(key string, streamID uint32) error {
	switch {
	case h.pub != nil:
		return ErrAlreadyPublishing
	case key == "":
		return ErrNoKey
	}
	if err := h.srv.reserve(key); err != nil {
		return err
	}
	attached := false
	defer func() { // also when accept panics: the key must not stay reserved
		if !attached {
			h.srv.release(key, nil)
		}
	}()
	w, err := h.srv.accept(h.srv.ctx, key, h.c.remote)
	if err == nil && w == nil {
		err = errNoWriter
	}
	if err != nil {
		return err
	}
	p := newPublication(key, w)
	if err := h.srv.attach(key, p); err != nil {
		_ = p.close()
		return err
	}
	attached = true
	h.pub, h.pubStream = p, streamID
	h.c.published(key, h.app)
	h.c.log.Info("rtmp publish accepted", "app", h.app, "key", redact(key))
	return nil
}

// refuse sends the reason as the onStatus description. go-rtmp then sends its own generic
// "Publish failed." and, because OnPublish returns an error, closes the connection once
// both are written; v0.0.7 offers no way to set its description.
func (h *handler) refuse(streamID, ts uint32, key string, reason error) error {
	h.c.log.Info("rtmp publish refused", "app", h.app, "key", redact(key), "error", reason)
	h.c.setReason("publish refused: " + reason.Error())
	code := message.NetStreamOnStatusCodePublishFailed
	if errors.Is(reason, ErrKeyLive) || errors.Is(reason, ErrNoKey) {
		code = message.NetStreamOnStatusCodePublishBadName
	}
	if err := h.sendStatus(streamID, ts, code, reason.Error()); err != nil {
		h.c.log.Debug("cannot send onStatus", "error", err)
	}
	return reason
}

func (h *handler) sendStatus(streamID, ts uint32, code message.NetStreamOnStatusCode, desc string) error {
	if h.rc == nil {
		return errors.New("no rtmp connection")
	}
	var body bytes.Buffer
	status := &message.NetStreamOnStatus{InfoObject: message.NetStreamOnStatusInfoObject{
		Level: message.NetStreamOnStatusLevelError, Code: code, Description: desc,
	}}
	if err := message.EncodeBodyAnyValues(message.NewAMFEncoder(&body, message.EncodingTypeAMF0), status); err != nil {
		return fmt.Errorf("encode onStatus: %w", err)
	}
	ctx, cancel := context.WithTimeout(h.srv.ctx, h.srv.writeTimeout)
	defer cancel()
	return h.rc.Write(ctx, statusChunkStreamID, ts, &rtmp.ChunkMessage{
		StreamID: streamID,
		Message: &message.CommandMessage{
			CommandName: "onStatus",
			Encoding:    message.EncodingTypeAMF0,
			Body:        &body,
		},
	})
}

func (h *handler) OnSetDataFrame(ts uint32, data *message.NetStreamSetDataFrame) (err error) {
	defer h.guard(&err)
	// go-rtmp hands over the raw AMF0 after "@setDataFrame": "onMetaData" and the array.
	return h.media(TagTypeScript, ts, bytes.NewReader(data.Payload))
}

func (h *handler) OnAudio(ts uint32, payload io.Reader) (err error) {
	defer h.guard(&err)
	return h.media(TagTypeAudio, ts, payload)
}

func (h *handler) OnVideo(ts uint32, payload io.Reader) (err error) {
	defer h.guard(&err)
	return h.media(TagTypeVideo, ts, payload)
}

// media writes one message to the publication. Messages outside a publication are ignored.
func (h *handler) media(typ byte, ts uint32, payload io.Reader) error {
	if h.pub == nil {
		return nil
	}
	h.c.touch()
	h.buf.Reset()
	if _, err := h.buf.ReadFrom(payload); err != nil {
		return fmt.Errorf("read rtmp message: %w", err)
	}
	var wrote bool
	var err error
	switch typ {
	case TagTypeAudio:
		wrote, err = h.pub.audio(ts, h.buf.Bytes())
	case TagTypeVideo:
		wrote, err = h.pub.video(ts, h.buf.Bytes())
	default:
		wrote, err = h.pub.script(ts, h.buf.Bytes())
	}
	if err != nil {
		// The consumer is gone (ingress deleted, pipeline failed): drop the publisher too.
		h.c.setReason("consumer write failed: " + err.Error())
		h.c.log.Info("rtmp consumer write failed, closing connection", "key", redact(h.pub.key), "error", err)
		return err
	}
	if wrote {
		h.c.stats.tags++
	} else {
		h.c.stats.dropped++
	}
	return nil
}

func (h *handler) OnDeleteStream(_ uint32, cmd *message.NetStreamDeleteStream) error {
	if h.pub != nil && cmd.StreamID == h.pubStream {
		h.c.log.Info("rtmp unpublish", "key", redact(h.pub.key))
		h.endPublish()
		h.c.unpublished()
	}
	return nil
}

func (h *handler) OnClose() {
	defer h.guard(new(error))
	h.endPublish()
}

// endPublish closes the consumer's writer before freeing the key, so the consumer sees this
// stream end before another publish on the same key can be accepted.
func (h *handler) endPublish() {
	p := h.pub
	if p == nil {
		return
	}
	h.pub = nil
	if err := p.close(); err != nil {
		h.c.log.Debug("closing consumer writer", "key", redact(p.key), "error", err)
	}
	h.srv.release(p.key, p)
}

// guard turns a panic in a callback into an error that closes only this connection. go-rtmp
// recovers its message loop too, but without the stack of the panic.
func (h *handler) guard(err *error) {
	if r := recover(); r != nil {
		h.c.log.Error("rtmp handler panic", "panic", r, "stack", string(debug.Stack()))
		h.c.setReason(fmt.Sprintf("handler panic: %v", r))
		*err = fmt.Errorf("rtmp handler panic: %v", r)
	}
}
