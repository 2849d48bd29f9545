package container

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
)

const mp4Timescale = 90000 // the RTP clock of H.264 (RFC 6184 §8.2.1), so no rounding drift

// mp4Writer writes H.264 as fragmented MP4 (ISO/IEC 14496-12 §8.8): an init segment (ftyp+moov),
// then one moof+mdat per GOP, cut earlier so none spans more than flushEvery. Each fragment goes
// out in one Write, so a truncated file plays up to its last whole fragment. On Close an mfra
// index of the key frames is appended (§8.8.9), which a crashed file simply lacks.
//
// Input is Annex-B access units; samples are stored as 4-byte length-prefixed NAL units, the
// parameter sets in the avc1 sample entry's avcC (ISO/IEC 14496-15 §5.3.3, §5.4). AUDs are
// dropped (§5.3.2 leaves them optional). The file starts at the first IDR access unit that
// carries SPS and PPS. Parameter sets equal to the sample entry's are dropped from samples; when
// an access unit brings different ones (a resolution change mid-stream) they stay in-band, which
// ffmpeg and browsers decode, while the track header keeps the first size. Samples are in decode
// order with no composition offsets: WebRTC H.264 has no B-frames.
type mp4Writer struct {
	w       *countingWriter
	closed  bool
	initErr error // why a key frame could not start the file

	pending []byte // the access unit being assembled from samples with equal PTS
	pendPTS time.Duration
	have    bool

	inited   bool
	sps, pps [][]byte        // in the sample entry
	last     *mp4.FullSample // waits for the next sample's time to know its duration
	frag     []mp4.FullSample
	seq      uint32
	lastDur  uint32
	index    []fragEntry
}

func newMP4(w io.Writer) *mp4Writer { return &mp4Writer{w: &countingWriter{w: w}} }

func (m *mp4Writer) WriteSample(s Sample) error {
	if m.closed {
		return ErrClosed
	}
	if m.w.err != nil {
		return m.w.err
	}
	if len(s.Data) == 0 {
		return nil
	}
	if m.have && s.PTS == m.pendPTS { // RFC 6184 §5.1: NAL units of one access unit share a timestamp
		m.pending = append(m.pending, s.Data...)
		return nil
	}
	if m.have {
		m.accessUnit()
	}
	m.have, m.pendPTS = true, s.PTS
	m.pending = append(m.pending[:0], s.Data...)
	return m.w.err
}

// accessUnit turns the assembled access unit into a sample.
func (m *mp4Writer) accessUnit() {
	nalus := splitAnnexB(m.pending)
	key, vcl := false, false
	for _, n := range nalus {
		t := naluType(n)
		key = key || t == naluIDR
		vcl = vcl || (t >= naluSlice && t <= naluIDR)
	}
	if !m.inited {
		if !key {
			return // a file must start at an IDR picture
		}
		if m.initErr = m.writeInit(nalus); m.initErr != nil {
			return
		}
		m.inited = true
	}
	if !vcl {
		return // parameter sets or SEI alone make no picture
	}
	// Parameter sets go in-band only when some differ from the sample entry's, and then all of
	// them: a decoder drops the PPSs of an SPS that changes, so they must follow it.
	inBand := false
	for _, n := range nalus {
		switch naluType(n) {
		case naluSPS:
			inBand = inBand || !slices.ContainsFunc(m.sps, func(p []byte) bool { return bytes.Equal(p, n) })
		case naluPPS:
			inBand = inBand || !slices.ContainsFunc(m.pps, func(p []byte) bool { return bytes.Equal(p, n) })
		}
	}
	var data []byte
	for _, n := range nalus {
		if t := naluType(n); t == naluAUD || (!inBand && (t == naluSPS || t == naluPPS)) {
			continue
		}
		data = binary.BigEndian.AppendUint32(data, uint32(len(n)))
		data = append(data, n...)
	}
	dts := ticks(m.pendPTS, mp4Timescale)
	if l := m.last; l != nil {
		dts = max(dts, l.DecodeTime+1) // decode times must increase
		l.Dur = uint32(dts - l.DecodeTime)
		m.lastDur = l.Dur
		m.frag = append(m.frag, *l)
		if key || dts-m.frag[0].DecodeTime >= ticks(flushEvery, mp4Timescale) {
			m.flush()
		}
	}
	flags := mp4.NonSyncSampleFlags
	if key {
		flags = mp4.SyncSampleFlags
	}
	m.last = &mp4.FullSample{Sample: mp4.Sample{Flags: flags, Size: uint32(len(data))}, DecodeTime: dts, Data: data}
}

// writeInit writes ftyp+moov with the access unit's parameter sets.
func (m *mp4Writer) writeInit(nalus [][]byte) (err error) {
	defer func() { // the SPS parser sees network input; a malformed one must not take the process down
		if r := recover(); r != nil {
			err = fmt.Errorf("parse SPS: %v", r)
		}
	}()
	var sps, pps [][]byte
	for _, n := range nalus {
		switch t := naluType(n); {
		case t == naluSPS && !slices.ContainsFunc(sps, func(p []byte) bool { return bytes.Equal(p, n) }):
			sps = append(sps, slices.Clone(n))
		case t == naluPPS && !slices.ContainsFunc(pps, func(p []byte) bool { return bytes.Equal(p, n) }):
			pps = append(pps, slices.Clone(n))
		}
	}
	if len(sps) == 0 || len(pps) == 0 {
		return fmt.Errorf("IDR access unit without SPS and PPS")
	}
	init := mp4.CreateEmptyInit()
	init.AddEmptyTrack(mp4Timescale, "video", "und")
	if err := init.Moov.Trak.SetAVCDescriptor("avc1", sps, pps, true); err != nil {
		return err
	}
	e := init.Moov.Trak.Mdia.Minf.Stbl.Stsd.AvcX
	if e == nil || e.Width == 0 || e.Height == 0 {
		return fmt.Errorf("SPS codes no picture size")
	}
	// mp4ff sizes the avcC with the High-profile trailer for every profile outside 66/77/88 but
	// writes it only for 100/110/122/144; for other profiles (e.g. 244) leave it out of both.
	if e.AvcC != nil {
		switch e.AvcC.AVCProfileIndication {
		case 66, 77, 88, 100, 110, 122, 144:
		default:
			e.AvcC.NoTrailingInfo = true
		}
	}
	var b bytes.Buffer
	if err := init.Encode(&b); err != nil {
		return err
	}
	m.sps, m.pps = sps, pps
	_, err = m.w.Write(b.Bytes())
	return err
}

// flush writes the queued samples as one fragment.
func (m *mp4Writer) flush() {
	if len(m.frag) == 0 || m.w.err != nil {
		return
	}
	m.seq++
	f, err := mp4.CreateFragment(m.seq, 1)
	if err != nil {
		m.w.err = err
		return
	}
	for _, s := range m.frag {
		f.AddFullSample(s)
	}
	var b bytes.Buffer
	if err := f.Encode(&b); err != nil {
		m.w.err = err
		return
	}
	if m.frag[0].Flags == mp4.SyncSampleFlags {
		m.index = append(m.index, fragEntry{time: m.frag[0].DecodeTime, offset: m.w.n})
	}
	_, _ = m.w.Write(b.Bytes())
	m.frag = m.frag[:0]
}

func (m *mp4Writer) Close() error {
	if m.closed {
		return m.w.err
	}
	m.closed = true
	if m.have {
		m.accessUnit()
	}
	if l := m.last; l != nil {
		l.Dur = m.lastDur
		if l.Dur == 0 {
			l.Dur = mp4Timescale / 30 // a lone frame: assume 30 fps
		}
		m.frag = append(m.frag, *l)
		m.flush()
	}
	if len(m.index) > 0 {
		_, _ = m.w.Write(mfra(m.index))
	}
	if m.w.err == nil && !m.inited && m.initErr != nil {
		return fmt.Errorf("no H.264 key frame could start the file: %w", m.initErr)
	}
	return m.w.err
}

// fragEntry locates a fragment that starts with a key frame, for the random access index.
type fragEntry struct {
	time   uint64 // decode time of its first sample
	offset int64  // byte offset of its moof
}

// mfra is the movie fragment random access box (ISO/IEC 14496-12 §8.8.9–11): it lists the sync
// samples so players can seek without reading every fragment; mfro at the very end gives its size.
func mfra(index []fragEntry) []byte {
	tfra := make([]byte, 0, 24+19*len(index))
	tfra = binary.BigEndian.AppendUint32(tfra, uint32(24+19*len(index)))
	tfra = append(tfra, "tfra"...)
	tfra = append(tfra, 1, 0, 0, 0)               // version 1 (64-bit time and offset), flags
	tfra = binary.BigEndian.AppendUint32(tfra, 1) // track_ID
	tfra = binary.BigEndian.AppendUint32(tfra, 0) // 1-byte traf, trun and sample numbers
	tfra = binary.BigEndian.AppendUint32(tfra, uint32(len(index)))
	for _, e := range index {
		tfra = binary.BigEndian.AppendUint64(tfra, e.time)
		tfra = binary.BigEndian.AppendUint64(tfra, uint64(e.offset))
		tfra = append(tfra, 1, 1, 1) // first traf, first trun, first sample
	}
	size := uint32(8 + len(tfra) + 16)
	out := binary.BigEndian.AppendUint32(nil, size)
	out = append(append(out, "mfra"...), tfra...)
	out = binary.BigEndian.AppendUint32(out, 16)
	out = append(append(out, "mfro"...), 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(out, size)
}
