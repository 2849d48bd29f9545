package container

import (
	"encoding/binary"
	"io"
	"time"
)

// oggWriter writes Ogg Opus (RFC 7845) over Ogg pages (RFC 3533). Packets are gathered into pages
// of at most flushEvery of audio; each page is written whole, so a truncated file ends at a page.
type oggWriter struct {
	w       io.Writer
	serial  uint32
	seq     uint32
	started bool
	err     error

	segs    []byte // lacing values of the open page
	body    []byte
	granule int64 // 48 kHz samples at the end of the last packet in the open page
	pageAt  time.Duration
	closed  bool
}

func newOgg(w io.Writer) *oggWriter { return &oggWriter{w: w, serial: 0x6d776b72} }

func (o *oggWriter) header() {
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1 // version
	head[9] = 2 // channels: WebRTC Opus is negotiated stereo
	// pre-skip 0: the packets come from a live encoder mid-stream, there is no priming to skip.
	binary.LittleEndian.PutUint32(head[12:], 48000)
	o.page([][]byte{head}, 0, 0x02)
	tags := append([]byte("OpusTags"), 11, 0, 0, 0)
	tags = append(tags, "mediaworker"...)
	tags = append(tags, 0, 0, 0, 0)
	o.page([][]byte{tags}, 0, 0)
}

func (o *oggWriter) WriteSample(s Sample) error {
	if o.err != nil {
		return o.err
	}
	if !o.started {
		o.started = true
		o.header()
		o.pageAt = s.PTS
	}
	if len(o.segs)+len(s.Data)/255+1 > 255 || s.PTS-o.pageAt >= flushEvery {
		o.flush(0)
		o.pageAt = s.PTS
	}
	for n := len(s.Data); ; n -= 255 {
		if n < 255 {
			o.segs = append(o.segs, byte(n))
			break
		}
		o.segs = append(o.segs, 255)
	}
	o.body = append(o.body, s.Data...)
	o.granule = int64(s.PTS)*48000/int64(time.Second) + int64(opusSamples(s.Data))
	return o.err
}

func (o *oggWriter) flush(flags byte) {
	if len(o.segs) == 0 && flags&0x04 == 0 {
		return
	}
	o.writePage(o.segs, o.body, o.granule, flags)
	o.segs, o.body = o.segs[:0], o.body[:0]
}

// page writes packets that each fit in one page (headers).
func (o *oggWriter) page(packets [][]byte, granule int64, flags byte) {
	var segs, body []byte
	for _, p := range packets {
		n := len(p)
		for ; n >= 255; n -= 255 {
			segs = append(segs, 255)
		}
		segs = append(segs, byte(n))
		body = append(body, p...)
	}
	o.writePage(segs, body, granule, flags)
}

func (o *oggWriter) writePage(segs, body []byte, granule int64, flags byte) {
	if o.err != nil {
		return
	}
	h := make([]byte, 27, 27+len(segs)+len(body))
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint64(h[6:], uint64(granule))
	binary.LittleEndian.PutUint32(h[14:], o.serial)
	binary.LittleEndian.PutUint32(h[18:], o.seq)
	h[26] = byte(len(segs))
	h = append(append(h, segs...), body...)
	binary.LittleEndian.PutUint32(h[22:], oggCRC(h))
	o.seq++
	_, o.err = o.w.Write(h)
}

func (o *oggWriter) Close() error {
	if o.closed {
		return o.err
	}
	o.closed = true
	if o.started {
		o.flush(0x04) // end of stream
	}
	return o.err
}

// opusSamples is the packet's duration at 48 kHz from its TOC byte (RFC 6716 §3.1).
func opusSamples(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	cfg := p[0] >> 3
	var size int // samples per frame at 48 kHz
	switch {
	case cfg < 12:
		size = []int{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16:
		size = []int{480, 960}[cfg&1]
	default:
		size = []int{120, 240, 480, 960}[cfg&3]
	}
	frames := 1
	switch p[0] & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0
		}
		frames = int(p[1] & 0x3f)
	}
	return size * frames
}

var oggTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for j := 0; j < 8; j++ {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return
}()

// oggCRC is the page checksum: CRC-32 polynomial 0x04c11db7, unreflected, initial 0 (RFC 3533 §6).
func oggCRC(b []byte) uint32 {
	var c uint32
	for _, v := range b {
		c = c<<8 ^ oggTable[byte(c>>24)^v]
	}
	return c
}
