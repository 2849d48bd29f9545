package container

import (
	"encoding/binary"
	"fmt"
	"io"
)

const (
	opusRate = 48000 // Ogg Opus granule positions count 48 kHz samples whatever the coded rate (RFC 7845 §4)
	fillMin  = 120   // shortest Opus frame, 2.5 ms: smaller PTS gaps are rounding
	maxPage  = 255   // lacing values per page (RFC 3533 §6)
)

// oggWriter writes Ogg Opus (RFC 7845) in Ogg pages (RFC 3533). The granule position of a page is
// the number of 48 kHz samples up to the end of its last packet, counted from the packets' own
// durations (RFC 6716 §3.1), so it always agrees with what a decoder produces.
//
// Ogg has no per-packet timestamps: a PTS jump (DTX, a muted or stalled publisher) would be played
// back compressed. Gaps are filled with TOC-only packets, which decoders treat as lost frames and
// conceal (RFC 6716 §3.2.1: a zero-length frame means DTX or loss), keeping audio on its timeline.
//
// Pages end at least every flushEvery of audio and are written whole, so a truncated file ends on
// a page boundary.
type oggWriter struct {
	w       io.Writer
	serial  uint32
	seq     uint32
	started bool
	closed  bool
	err     error

	segs    []byte // lacing values of the open page
	body    []byte
	pos     int64 // granule: 48 kHz samples up to the end of the last packet
	pageAt  int64 // granule at the start of the open page
	lastTOC byte  // stereo flag source for fill packets
}

func newOgg(w io.Writer) *oggWriter { return &oggWriter{w: w, serial: 0x6d776b72} }

// headers writes the identification and comment headers, each on its own page (RFC 7845 §3, §5).
func (o *oggWriter) headers() {
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1 // version
	head[9] = 2 // channels: WebRTC negotiates opus/48000/2; mono packets decode fine as stereo
	// pre-skip 0: packets come from a live encoder whose start was not recorded, nothing to trim.
	binary.LittleEndian.PutUint32(head[12:], opusRate)
	o.writePage([]byte{19}, head, 0, 0x02) // beginning of stream
	tags := binary.LittleEndian.AppendUint32([]byte("OpusTags"), 11)
	tags = append(tags, "mediaworker"...)
	tags = binary.LittleEndian.AppendUint32(tags, 0) // no user comments
	o.writePage([]byte{byte(len(tags))}, tags, 0, 0)
}

func (o *oggWriter) WriteSample(s Sample) error {
	if o.closed {
		return ErrClosed
	}
	if o.err != nil {
		return o.err
	}
	n := opusSamples(s.Data)
	if n == 0 {
		return nil // empty or malformed: no audio to place
	}
	if len(s.Data) >= maxPage*255 {
		return fmt.Errorf("opus packet of %d bytes does not fit an Ogg page", len(s.Data))
	}
	if !o.started {
		o.started = true
		o.headers()
	}
	o.fill(int64(ticks(s.PTS, opusRate)))
	o.lastTOC = s.Data[0]
	o.packet(s.Data, n)
	return o.err
}

// fill adds concealment packets until the stream reaches granule want. Time the stream is ahead
// of PTS (jitter, a clock drifting against the RTP clock) is kept: audio is never dropped.
func (o *oggWriter) fill(want int64) {
	stereo := o.lastTOC & 0x04
	for gap := want - o.pos; gap >= fillMin; gap = want - o.pos {
		// CELT-only configs 28..31 are 2.5, 5, 10 and 20 ms frames (RFC 6716 §3.1, Table 2).
		cfg, n := byte(31), int64(960)
		for n > gap {
			cfg, n = cfg-1, n/2
		}
		o.packet([]byte{cfg<<3 | stereo}, int(n))
	}
}

// packet appends one packet of n samples, starting a new page when the open one is full or long.
func (o *oggWriter) packet(p []byte, n int) {
	lacing := len(p)/255 + 1
	if len(o.segs)+lacing > maxPage || (len(o.segs) > 0 && o.pos-o.pageAt >= int64(ticks(flushEvery, opusRate))) {
		o.flush(0)
	}
	for k := len(p); k >= 255; k -= 255 {
		o.segs = append(o.segs, 255)
	}
	o.segs = append(o.segs, byte(len(p)%255))
	o.body = append(o.body, p...)
	o.pos += int64(n)
}

func (o *oggWriter) flush(flags byte) {
	if len(o.segs) == 0 && flags&0x04 == 0 {
		return
	}
	o.writePage(o.segs, o.body, o.pos, flags)
	o.segs, o.body = o.segs[:0], o.body[:0]
	o.pageAt = o.pos
}

// writePage writes one page in a single Write (RFC 3533 §6 header layout).
func (o *oggWriter) writePage(segs, body []byte, granule int64, flags byte) {
	if o.err != nil {
		return
	}
	h := make([]byte, 27, 27+len(segs)+len(body))
	copy(h, "OggS") // capture pattern; version 0
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

// opusSamples is the packet's duration in 48 kHz samples from its TOC byte (RFC 6716 §3.1) and,
// for code 3, the frame count byte (§3.2.5); 0 for an empty or malformed packet.
func opusSamples(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	cfg := p[0] >> 3
	var size int // samples per frame at 48 kHz
	switch {
	case cfg < 12: // SILK-only: 10, 20, 40, 60 ms
		size = []int{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		size = []int{480, 960}[cfg&1]
	default: // CELT-only: 2.5, 5, 10, 20 ms
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
	if size*frames > 5760 { // a packet holds at most 120 ms (§3.2.5)
		return 0
	}
	return size * frames
}

var oggTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
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

// oggCRC is the page checksum: CRC-32 polynomial 0x04c11db7, unreflected, initial 0, computed with
// the checksum field zero (RFC 3533 §6).
func oggCRC(b []byte) uint32 {
	var c uint32
	for _, v := range b {
		c = c<<8 ^ oggTable[byte(c>>24)^v]
	}
	return c
}
