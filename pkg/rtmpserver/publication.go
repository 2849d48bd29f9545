package rtmpserver

import (
	"bufio"
	"io"
	"sync"
)

// amf0String is the AMF0 type marker of the "onMetaData" name that opens script data.
const amf0String = 0x02

// publication is one accepted publish: the consumer's writer and the FLV state for it. Its
// write methods run on the connection goroutine only; close may also come from Server.Close.
type publication struct {
	key         string
	w           io.WriteCloser
	bw          *bufio.Writer // one Write per tag reaches w, not three
	headerDone  bool
	sawKeyframe bool

	closeOnce sync.Once
	closeErr  error
}

func newPublication(key string, w io.WriteCloser) *publication {
	return &publication{key: key, w: w, bw: bufio.NewWriterSize(w, 64<<10)}
}

// video writes a VIDEODATA body unless it comes before the first keyframe: a decoder cannot
// start on an inter frame. Sequence headers always pass; the decoder needs them first.
func (p *publication) video(ts uint32, body []byte) (bool, error) {
	v, err := ParseVideoTagHeader(body)
	if err != nil {
		return false, nil
	}
	if !p.sawKeyframe {
		switch {
		case v.IsSequenceHeader():
		case v.IsKeyframe():
			p.sawKeyframe = true
		default:
			return false, nil
		}
	}
	return true, p.write(TagTypeVideo, ts, body)
}

// audio writes an AUDIODATA body; audio needs no keyframe.
func (p *publication) audio(ts uint32, body []byte) (bool, error) {
	if _, err := ParseAudioTagHeader(body); err != nil {
		return false, nil
	}
	return true, p.write(TagTypeAudio, ts, body)
}

// script writes @setDataFrame's arguments, AMF0 "onMetaData" and its array, as the body of
// a SCRIPTDATA tag (E.4.4.1), which has exactly that layout.
func (p *publication) script(ts uint32, body []byte) (bool, error) {
	if len(body) == 0 || body[0] != amf0String {
		return false, nil
	}
	return true, p.write(TagTypeScript, ts, body)
}

// write sends one tag, preceded on the first call by the FLV header, so a consumer never sees
// a header without a tag or a tag without a header.
func (p *publication) write(typ byte, ts uint32, body []byte) error {
	if !p.headerDone {
		if err := WriteHeader(p.bw); err != nil {
			return err
		}
		p.headerDone = true
	}
	if err := WriteTag(p.bw, typ, ts, body); err != nil {
		return err
	}
	return p.bw.Flush()
}

// close closes the consumer's writer once, whoever calls it first.
func (p *publication) close() error {
	p.closeOnce.Do(func() { p.closeErr = p.w.Close() })
	return p.closeErr
}
