package container

import (
	"encoding/binary"
	"io"
	"math"
	"time"
)

// Matroska element IDs (RFC 9559 §5.1; WebM is its subset).
const (
	idEBML, idEBMLVersion, idEBMLReadVersion   = 0x1A45DFA3, 0x4286, 0x42F7
	idEBMLMaxIDLength, idEBMLMaxSizeLength     = 0x42F2, 0x42F3
	idDocType, idDocTypeVersion, idDocTypeRead = 0x4282, 0x4287, 0x4285
	idSegment, idSeekHead, idSeek              = 0x18538067, 0x114D9B74, 0x4DBB
	idSeekID, idSeekPosition, idVoid           = 0x53AB, 0x53AC, 0xEC
	idInfo, idTimestampScale, idDuration       = 0x1549A966, 0x2AD7B1, 0x4489
	idMuxingApp, idWritingApp                  = 0x4D80, 0x5741
	idTracks, idTrackEntry, idTrackNumber      = 0x1654AE6B, 0xAE, 0xD7
	idTrackUID, idTrackType, idFlagLacing      = 0x73C5, 0x83, 0x9C
	idCodecID, idVideo                         = 0x86, 0xE0
	idPixelWidth, idPixelHeight                = 0xB0, 0xBA
	idCluster, idTimestamp, idSimpleBlock      = 0x1F43B675, 0xE7, 0xA3
	idCues, idCuePoint, idCueTime              = 0x1C53BB6B, 0xBB, 0xB3
	idCueTrackPositions, idCueTrack            = 0xB7, 0xF7
	idCueClusterPosition                       = 0xF1
)

const (
	seekHeadRoom = 96                 // bytes of Void reserved for the SeekHead written on Close
	unknownSize  = 0x01FFFFFFFFFFFFFF // 8-byte vint with all value bits set (RFC 9559 §6.2)
	vp9Fallback  = 640                // width when no VP9 header codes one; height is 480
)

// webmWriter writes VP8/VP9 as WebM (RFC 9559, WebM subset). The Segment and every Cluster have
// unknown size, and each SimpleBlock is written as soon as its picture is complete (the next PTS
// arrives), so a killed process leaves a valid file holding all but the last frame. Clusters
// start at each key frame and at least every flushEvery. Timestamps are in ms (TimestampScale
// 1000000). When the output can seek, the Info Duration is updated at every cluster and Cues plus
// a SeekHead pointing at them are added on Close.
type webmWriter struct {
	w      *countingWriter
	ws     io.WriteSeeker // nil when the output cannot seek
	base   int64          // ws offset where our output starts
	codec  Codec
	closed bool

	pending []byte        // the picture being assembled from samples with equal PTS
	frames  [][]byte      // VP9: its frames, joined into a superframe when complete
	pendPTS time.Duration // PTS of pending
	have    bool

	started   bool
	segData   int64 // output offset of the Segment's data: Cues and SeekHead positions count from it
	durAt     int64 // output offset of the Void reserved for Duration
	infoAt    int64 // Segment-relative offsets for the SeekHead
	tracksAt  int64
	clusterMS int64 // timestamp of the open cluster, -1 before the first
	lastMS    int64 // timestamp of the last block
	frameMS   int64 // last frame's duration, for the final Duration
	cues      [][2]int64
}

func newWebM(w io.Writer, c Codec) *webmWriter {
	m := &webmWriter{w: &countingWriter{w: w}, codec: c, clusterMS: -1}
	if ws, ok := w.(io.WriteSeeker); ok {
		if at, err := ws.Seek(0, io.SeekCurrent); err == nil { // pipes fail here
			m.ws, m.base = ws, at
		}
	}
	return m
}

func (m *webmWriter) WriteSample(s Sample) error {
	if m.closed {
		return ErrClosed
	}
	if m.w.err != nil {
		return m.w.err
	}
	if len(s.Data) == 0 {
		return nil
	}
	if m.have && s.PTS == m.pendPTS { // another part or spatial layer of the same picture
		if m.codec == CodecVP9 {
			m.frames = append(m.frames, vp9Frames(append([]byte(nil), s.Data...))...)
		} else {
			m.pending = append(m.pending, s.Data...)
		}
		return nil
	}
	if m.have {
		m.picture()
	}
	m.have, m.pendPTS = true, s.PTS
	m.pending = append(m.pending[:0], s.Data...)
	if m.codec == CodecVP9 {
		m.frames = vp9Frames(m.pending)
	}
	return m.w.err
}

// picture writes the assembled picture, preceded by the file header at the first key frame.
func (m *webmWriter) picture() {
	data := m.pending
	var key bool
	var width, height int
	if m.codec == CodecVP8 {
		key, width, height = vp8Key(data)
	} else {
		if len(m.frames) > 8 {
			m.frames = m.frames[len(m.frames)-8:] // an index holds 8; keep the top layers
		}
		data = vp9Superframe(m.frames)
		for i, f := range m.frames {
			k, fw, fh := vp9Header(f)
			key = key || (i == 0 && k)
			if fw*fh > width*height { // the largest layer is the one shown
				width, height = fw, fh
			}
		}
		if width == 0 || height == 0 {
			width, height = vp9Fallback, vp9Fallback*3/4
		}
	}
	if !m.started {
		if !key {
			return // a file must start at a key frame
		}
		m.started = true
		m.header(width, height)
	}
	ms := max(int64(ticks(m.pendPTS, 1000)), m.lastMS)
	if m.clusterMS < 0 || key || ms-m.clusterMS >= flushEvery.Milliseconds() {
		m.cluster(ms, key)
	}
	if ms > m.lastMS {
		m.frameMS = ms - m.lastMS
	}
	m.lastMS = ms
	flags := byte(0)
	if key {
		flags = 0x80
	}
	rel := uint16(int16(ms - m.clusterMS)) // < flushEvery, fits
	// SimpleBlock (RFC 9559 §10.2): track number as a vint, int16 time relative to the cluster, flags.
	block := []byte{0x81, byte(rel >> 8), byte(rel), flags}
	_, _ = m.w.Write(element(idSimpleBlock, append(block, data...)))
}

func (m *webmWriter) header(width, height int) {
	h := element(idEBML, concat(
		uintElement(idEBMLVersion, 1), uintElement(idEBMLReadVersion, 1),
		uintElement(idEBMLMaxIDLength, 4), uintElement(idEBMLMaxSizeLength, 8),
		element(idDocType, []byte("webm")), uintElement(idDocTypeVersion, 4), uintElement(idDocTypeRead, 2)))
	h = binary.BigEndian.AppendUint64(append(h, idBytes(idSegment)...), unknownSize)
	m.segData = int64(len(h))
	if m.ws != nil {
		h = append(h, void(seekHeadRoom)...)
	}
	m.infoAt = int64(len(h)) - m.segData
	info := concat(uintElement(idTimestampScale, uint64(time.Millisecond)),
		element(idMuxingApp, []byte("mediaworker")), element(idWritingApp, []byte("mediaworker")))
	if m.ws != nil {
		// Duration (2-byte ID, size 0x88, float64) takes 11 bytes, like this Void, Info's last child.
		info = append(info, void(11)...)
	}
	info = element(idInfo, info)
	m.durAt = int64(len(h) + len(info) - 11)
	h = append(h, info...)
	m.tracksAt = int64(len(h)) - m.segData
	codecID := "V_VP8"
	if m.codec == CodecVP9 {
		codecID = "V_VP9"
	}
	h = append(h, element(idTracks, element(idTrackEntry, concat(
		uintElement(idTrackNumber, 1), uintElement(idTrackUID, 1), uintElement(idTrackType, 1),
		uintElement(idFlagLacing, 0), element(idCodecID, []byte(codecID)),
		element(idVideo, concat(uintElement(idPixelWidth, uint64(width)), uintElement(idPixelHeight, uint64(height)))))))...)
	_, _ = m.w.Write(h)
}

// cluster starts an unknown-size cluster; players end it at the next Cluster or Cues element.
func (m *webmWriter) cluster(ms int64, key bool) {
	if m.clusterMS >= 0 {
		m.patchDuration(ms) // everything before this cluster is on disk
	}
	if key {
		m.cues = append(m.cues, [2]int64{ms, m.w.n - m.segData})
	}
	m.clusterMS = ms
	c := binary.BigEndian.AppendUint64(idBytes(idCluster), unknownSize)
	_, _ = m.w.Write(append(c, uintElement(idTimestamp, uint64(ms))...))
}

func (m *webmWriter) patchDuration(ms int64) {
	m.patch(m.durAt, binary.BigEndian.AppendUint64(append(idBytes(idDuration), 0x88), math.Float64bits(float64(ms))))
}

// patch overwrites bytes already written, then returns to the end of the output.
func (m *webmWriter) patch(at int64, b []byte) {
	if m.ws == nil || m.w.err != nil {
		return
	}
	if _, err := m.ws.Seek(m.base+at, io.SeekStart); err != nil {
		m.ws = nil // cannot seek after all: stay a plain stream
		return
	}
	_, m.w.err = m.ws.Write(b)
	_, err := m.ws.Seek(m.base+m.w.n, io.SeekStart)
	if m.w.err == nil {
		m.w.err = err
	}
}

func (m *webmWriter) Close() error {
	if m.closed {
		return m.w.err
	}
	m.closed = true
	if m.have {
		m.picture()
	}
	if !m.started || m.ws == nil {
		return m.w.err
	}
	m.patchDuration(m.lastMS + max(m.frameMS, 1))
	cuesAt := m.w.n - m.segData
	var points []byte
	for _, c := range m.cues {
		pos := concat(uintElement(idCueTrack, 1), uintElement(idCueClusterPosition, uint64(c[1])))
		points = append(points, element(idCuePoint, concat(uintElement(idCueTime, uint64(c[0])), element(idCueTrackPositions, pos)))...)
	}
	_, _ = m.w.Write(element(idCues, points))
	var seeks []byte
	for _, s := range [][2]int64{{idInfo, m.infoAt}, {idTracks, m.tracksAt}, {idCues, cuesAt}} {
		seeks = append(seeks, element(idSeek, concat(element(idSeekID, idBytes(uint32(s[0]))),
			uintElement(idSeekPosition, uint64(s[1]))))...)
	}
	head := element(idSeekHead, seeks) // at most 68 bytes: the rest of the room stays Void
	m.patch(m.segData, append(head, void(seekHeadRoom-len(head))...))
	return m.w.err
}
