package container

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
)

const mp4Timescale = 90000

// mp4Writer writes H.264 as fragmented MP4 (ISO/IEC 14496-12 §8.8): an init segment, then one
// moof+mdat per GOP or per flushEvery, whichever comes first. A truncated file plays up to its last
// whole fragment. Input is Annex-B access units; samples become AVCC (ISO/IEC 14496-15 §5.3).
// The first SPS/PPS are used for the whole file; a later resolution change is not signalled.
type mp4Writer struct {
	w      *countingWriter
	err    error
	inited bool
	closed bool

	seq     uint32
	pending *mp4.FullSample // waits for the next sample's PTS to know its duration
	frag    []mp4.FullSample
	fragAt  uint64
	lastDur uint32
	index   []fragEntry
}

func newMP4(w io.Writer) *mp4Writer { return &mp4Writer{w: &countingWriter{w: w}} }

func (m *mp4Writer) WriteSample(s Sample) error {
	if m.err != nil {
		return m.err
	}
	if !m.inited {
		if !s.Keyframe {
			return nil // a file must start at a keyframe
		}
		sps := avc.ExtractNalusOfTypeFromByteStream(avc.NALU_SPS, s.Data, true)
		pps := avc.ExtractNalusOfTypeFromByteStream(avc.NALU_PPS, s.Data, true)
		if len(sps) == 0 || len(pps) == 0 {
			return nil // wait for a keyframe that carries its parameter sets
		}
		if m.err = m.writeInit(sps, pps); m.err != nil {
			return m.err
		}
		m.inited = true
	}
	data := avcSample(s.Data)
	if len(data) == 0 {
		return nil
	}
	dts := uint64(s.PTS * mp4Timescale / time.Second)
	flags := mp4.NonSyncSampleFlags
	if s.Keyframe {
		flags = mp4.SyncSampleFlags
	}
	if p := m.pending; p != nil {
		if dts > p.DecodeTime {
			p.Dur = uint32(dts - p.DecodeTime)
		} else {
			p.Dur = 1
			dts = p.DecodeTime + 1
		}
		m.lastDur = p.Dur
		m.add(*p, s.Keyframe, dts)
	}
	m.pending = &mp4.FullSample{Sample: mp4.Sample{Flags: flags, Size: uint32(len(data))}, DecodeTime: dts, Data: data}
	return m.err
}

// add queues a finished sample; a fragment is written before the next keyframe or when it is long.
func (m *mp4Writer) add(fs mp4.FullSample, nextIsKey bool, nextDTS uint64) {
	m.frag = append(m.frag, fs)
	if nextIsKey || nextDTS-m.frag[0].DecodeTime >= uint64(flushEvery*mp4Timescale/time.Second) {
		m.flush()
	}
}

func (m *mp4Writer) writeInit(sps, pps [][]byte) error {
	init := mp4.CreateEmptyInit()
	init.AddEmptyTrack(mp4Timescale, "video", "und")
	if err := init.Moov.Trak.SetAVCDescriptor("avc1", sps, pps, true); err != nil {
		return err
	}
	// mp4ff sizes the avcC with the High-profile trailer for every profile outside 66/77/88 but
	// writes it only for 100/110/122/144; for other profiles (e.g. 244) leave it out of both.
	if e := init.Moov.Trak.Mdia.Minf.Stbl.Stsd.AvcX; e != nil && e.AvcC != nil {
		switch e.AvcC.AVCProfileIndication {
		case 66, 77, 88, 100, 110, 122, 144:
		default:
			e.AvcC.NoTrailingInfo = true
		}
	}
	return init.Encode(m.w)
}

func (m *mp4Writer) flush() {
	if len(m.frag) == 0 || m.err != nil {
		return
	}
	m.seq++
	m.index = append(m.index, fragEntry{time: m.frag[0].DecodeTime, offset: m.w.n})
	f, err := mp4.CreateFragment(m.seq, 1)
	if err != nil {
		m.err = err
		return
	}
	for _, s := range m.frag {
		f.AddFullSample(s)
	}
	m.err = f.Encode(m.w)
	m.frag = m.frag[:0]
}

func (m *mp4Writer) Close() error {
	if m.closed {
		return m.err
	}
	m.closed = true
	if p := m.pending; p != nil && m.err == nil {
		p.Dur = m.lastDur
		if p.Dur == 0 {
			p.Dur = mp4Timescale / 30
		}
		m.frag = append(m.frag, *p)
		m.pending = nil
		m.flush()
	}
	if m.err == nil && len(m.index) > 0 {
		_, m.err = m.w.Write(mfra(m.index))
	}
	return m.err
}

// fragEntry locates one fragment for the random access index.
type fragEntry struct {
	time   uint64 // decode time of its first sample (a keyframe or a fragment start)
	offset int64  // byte offset of its moof
}

// mfra is the movie fragment random access box (ISO/IEC 14496-12 §8.8.9–11): with it players know
// the duration and can seek without reading every fragment. A crashed file lacks it and still plays.
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
		tfra = append(tfra, 1, 1, 1)
	}
	size := uint32(8 + len(tfra) + 16)
	out := binary.BigEndian.AppendUint32(nil, size)
	out = append(append(out, "mfra"...), tfra...)
	out = binary.BigEndian.AppendUint32(out, 16)
	out = append(append(out, "mfro"...), 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(out, size)
}

// countingWriter knows how many bytes went through it, for fragment offsets.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// avcSample converts an Annex-B access unit to length-prefixed NAL units, dropping the parameter
// sets (they live in the avcC box) and access unit delimiters.
func avcSample(annexB []byte) []byte {
	var out []byte
	for _, n := range avc.ExtractNalusFromByteStream(annexB) {
		if len(n) == 0 {
			continue
		}
		switch avc.GetNaluType(n[0]) {
		case avc.NALU_SPS, avc.NALU_PPS, avc.NALU_AUD:
			continue
		}
		out = append(out, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		out = append(out, n...)
	}
	return out
}
