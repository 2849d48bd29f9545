package container

import (
	"encoding/binary"
	"io"
	"math"
	"time"
)

// Matroska element IDs (Matroska spec, RFC 9559).
const (
	idEBML          = 0x1A45DFA3
	idEBMLVersion   = 0x4286
	idEBMLReadVer   = 0x42F7
	idEBMLMaxIDLen  = 0x42F2
	idEBMLMaxSzLen  = 0x42F3
	idDocType       = 0x4282
	idDocTypeVer    = 0x4287
	idDocTypeRead   = 0x4285
	idSegment       = 0x18538067
	idInfo          = 0x1549A966
	idTimecodeScale = 0x2AD7B1
	idDuration      = 0x4489
	idMuxingApp     = 0x4D80
	idWritingApp    = 0x5741
	idTracks        = 0x1654AE6B
	idTrackEntry    = 0xAE
	idTrackNumber   = 0xD7
	idTrackUID      = 0x73C5
	idTrackType     = 0x83
	idCodecID       = 0x86
	idVideo         = 0xE0
	idPixelWidth    = 0xB0
	idPixelHeight   = 0xBA
	idCluster       = 0x1F43B675
	idTimecode      = 0xE7
	idSimpleBlock   = 0xA3
)

// webmWriter writes VP8/VP9 as WebM: header and track from the first keyframe, then clusters of
// known size, each written whole when the next keyframe arrives or it holds flushEvery of video.
// The Segment has unknown size so the file is valid at every cluster boundary; on Close the
// duration is patched in when the output can seek.
type webmWriter struct {
	w      io.Writer
	codec  Codec
	err    error
	closed bool

	started   bool
	durAt     int64 // file offset of the Duration float, -1 if not seekable
	written   int64
	cluster   []byte
	clusterAt time.Duration
	lastPTS   time.Duration
	frameDur  time.Duration
}

func newWebM(w io.Writer, c Codec) *webmWriter { return &webmWriter{w: w, codec: c, durAt: -1} }

func (m *webmWriter) WriteSample(s Sample) error {
	if m.err != nil {
		return m.err
	}
	if !m.started {
		if !s.Keyframe {
			return nil
		}
		width, height := vp8Size(s.Data)
		if m.codec == CodecVP9 {
			width, height = vp9Size(s.Data)
		}
		if m.err = m.header(width, height); m.err != nil {
			return m.err
		}
		m.started = true
	}
	if m.cluster != nil && (s.Keyframe || s.PTS-m.clusterAt >= flushEvery || s.PTS-m.clusterAt > 30*time.Second) {
		m.flush()
	}
	if m.cluster == nil {
		m.clusterAt = s.PTS
		m.cluster = element(idTimecode, uintBytes(uint64(s.PTS/time.Millisecond)))
	}
	block := []byte{0x81, 0, 0, 0} // track 1 as a vint, int16 relative time, flags
	binary.BigEndian.PutUint16(block[1:], uint16(int16((s.PTS-m.clusterAt)/time.Millisecond)))
	if s.Keyframe {
		block[3] = 0x80
	}
	m.cluster = append(m.cluster, element(idSimpleBlock, append(block, s.Data...))...)
	if s.PTS > m.lastPTS {
		m.frameDur = s.PTS - m.lastPTS
	}
	m.lastPTS = s.PTS
	return m.err
}

func (m *webmWriter) header(width, height int) error {
	ebml := element(idEBML, concat(
		element(idEBMLVersion, uintBytes(1)), element(idEBMLReadVer, uintBytes(1)),
		element(idEBMLMaxIDLen, uintBytes(4)), element(idEBMLMaxSzLen, uintBytes(8)),
		element(idDocType, []byte("webm")), element(idDocTypeVer, uintBytes(4)), element(idDocTypeRead, uintBytes(2))))
	segHead := append(idBytes(idSegment), 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF) // unknown size
	infoBody := concat(element(idTimecodeScale, uintBytes(1000000)), element(idMuxingApp, []byte("mediaworker")),
		element(idWritingApp, []byte("mediaworker")))
	durOffsetInInfo := len(infoBody)
	infoBody = append(infoBody, element(idDuration, make([]byte, 8))...)
	info := element(idInfo, infoBody)
	codecID := "V_VP8"
	if m.codec == CodecVP9 {
		codecID = "V_VP9"
	}
	tracks := element(idTracks, element(idTrackEntry, concat(
		element(idTrackNumber, uintBytes(1)), element(idTrackUID, uintBytes(1)), element(idTrackType, uintBytes(1)),
		element(idCodecID, []byte(codecID)),
		element(idVideo, concat(element(idPixelWidth, uintBytes(uint64(width))), element(idPixelHeight, uintBytes(uint64(height))))))))
	if _, ok := m.w.(io.WriteSeeker); ok {
		// Info's header is its 4-byte ID and 8-byte size; Duration's payload follows its 2-byte ID and 8-byte size.
		m.durAt = int64(len(ebml)+len(segHead)) + 12 + int64(durOffsetInInfo) + 10
	}
	return m.write(concat(ebml, segHead, info, tracks))
}

func (m *webmWriter) flush() {
	if m.cluster == nil {
		return
	}
	_ = m.write(element(idCluster, m.cluster))
	m.cluster = nil
}

func (m *webmWriter) write(b []byte) error {
	if m.err != nil {
		return m.err
	}
	n, err := m.w.Write(b)
	m.written += int64(n)
	m.err = err
	return err
}

func (m *webmWriter) Close() error {
	if m.closed {
		return m.err
	}
	m.closed = true
	m.flush()
	if ws, ok := m.w.(io.WriteSeeker); ok && m.started && m.durAt >= 0 && m.err == nil {
		d := make([]byte, 8)
		binary.BigEndian.PutUint64(d, math.Float64bits(float64((m.lastPTS+m.frameDur)/time.Millisecond)))
		if _, err := ws.Seek(m.durAt, io.SeekStart); err == nil {
			_, m.err = ws.Write(d)
			_, _ = ws.Seek(0, io.SeekEnd)
		}
	}
	return m.err
}

// element encodes an EBML element with an 8-byte size (simple, and every size fits).
func element(id uint32, body []byte) []byte {
	out := idBytes(id)
	size := make([]byte, 8)
	binary.BigEndian.PutUint64(size, uint64(len(body)))
	size[0] = 0x01 // 8-byte vint marker
	return append(append(out, size...), body...)
}

func idBytes(id uint32) []byte {
	switch {
	case id > 0xFFFFFF:
		return []byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	case id > 0xFFFF:
		return []byte{byte(id >> 16), byte(id >> 8), byte(id)}
	case id > 0xFF:
		return []byte{byte(id >> 8), byte(id)}
	}
	return []byte{byte(id)}
}

func uintBytes(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	i := 0
	for i < 7 && b[i] == 0 {
		i++
	}
	return b[i:]
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
