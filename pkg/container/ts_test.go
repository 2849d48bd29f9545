package container

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestTSCRC(t *testing.T) {
	if got := mpegCRC([]byte("123456789")); got != 0x0376e6e7 { // the CRC-32/MPEG-2 check value
		t.Errorf("crc %#08x, want 0x0376e6e7", got)
	}
	m := NewTSMuxer(nil, true, true, AACConfig{48000, 2})
	for _, s := range [][]byte{m.pat(), m.pmt()} {
		if c := mpegCRC(s); c != 0 {
			t.Errorf("section % x: crc over section and CRC is %#x, want 0", s, c)
		}
	}
	// PAT of program 1 on PID 0x1000, as ffmpeg writes it (its transport_stream_id is 1 too).
	want := []byte{0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2}
	if got := m.pat(); !bytes.Equal(got, want) {
		t.Errorf("PAT % x, want % x", got, want)
	}
}

func TestTSADTSHeader(t *testing.T) {
	tests := []struct {
		cfg  AACConfig
		n    int
		want []byte
	}{
		{AACConfig{48000, 2}, 100, []byte{0xff, 0xf1, 0x4c, 0x80, 0x0d, 0x7f, 0xfc}},
		{AACConfig{44100, 1}, 8184, []byte{0xff, 0xf1, 0x50, 0x43, 0xff, 0xff, 0xfc}},
		{AACConfig{8000, 8}, 1, []byte{0xff, 0xf1, 0x6d, 0xc0, 0x01, 0x1f, 0xfc}},
	}
	for _, tc := range tests {
		got, err := tc.cfg.adtsHeader(tc.n)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%+v %d bytes: % x %v, want % x", tc.cfg, tc.n, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		cfg AACConfig
		n   int
	}{{AACConfig{48000, 2}, 0}, {AACConfig{48000, 2}, 8185}, {AACConfig{47000, 2}, 10}, {AACConfig{48000, 7}, 10}, {AACConfig{48000, 0}, 10}} {
		if _, err := tc.cfg.adtsHeader(tc.n); err == nil {
			t.Errorf("%+v %d bytes: no error", tc.cfg, tc.n)
		}
	}
	if err := (AACConfig{48000, 2}).Validate(); err != nil {
		t.Error(err)
	}
	if d := (AACConfig{48000, 2}).FrameDuration(); d != 21333333 {
		t.Errorf("frame duration %v", d)
	}
}

func TestTSH264Keyframe(t *testing.T) {
	for _, tc := range []struct {
		au   []byte
		want bool
	}{
		{[]byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 0x88}, true},
		{[]byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a}, false},
		{nil, false},
		{[]byte{0x65, 0x88}, false}, // no start code
	} {
		if got := H264Keyframe(tc.au); got != tc.want {
			t.Errorf("% x: %v, want %v", tc.au, got, tc.want)
		}
	}
}

// tsWrites records every Write so tests can check each is whole packets.
type tsWrites struct{ writes [][]byte }

func (w *tsWrites) Write(b []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(b))
	return len(b), nil
}

func (w *tsWrites) bytes() []byte { return bytes.Join(w.writes, nil) }

// tsPES is a PES packet read back from a transport stream.
type tsPES struct {
	pid      uint16
	streamID byte
	length   int   // PES_packet_length
	pts, dts int64 // dts == pts when the header has none
	data     []byte
	pcr      int64 // PCR base in the first packet, -1 for none
	rai      bool
	tables   bool // PAT and PMT came right before
}

// tsDemux is a strict reader of what TSMuxer writes: it fails the test on a bad sync byte,
// continuity counter, adaptation field or section CRC.
type tsDemux struct {
	t        *testing.T
	cc       map[uint16]int
	pes      []*tsPES
	open     map[uint16]*tsPES
	streams  map[uint16]byte // PMT: PID -> stream_type
	pcrPID   uint16
	pcrs     []int64 // every PCR base on the PCR PID, in order
	sections int
	tables   int // PAT+PMT pairs seen since the last PES start
}

func demuxTS(t *testing.T, b []byte) *tsDemux {
	t.Helper()
	d := &tsDemux{t: t, cc: map[uint16]int{}, open: map[uint16]*tsPES{}, streams: map[uint16]byte{}}
	if len(b)%tsPacketSize != 0 {
		t.Fatalf("%d bytes is not whole packets", len(b))
	}
	for i := 0; i < len(b); i += tsPacketSize {
		d.packet(b[i : i+tsPacketSize])
	}
	for _, p := range d.pes {
		d.parsePES(p)
	}
	return d
}

func (d *tsDemux) packet(p []byte) {
	t := d.t
	t.Helper()
	if p[0] != tsSync || p[1]&0x80 != 0 {
		t.Fatalf("bad packet header % x", p[:4])
	}
	pid, start, control, cc := uint16(p[1]&0x1f)<<8|uint16(p[2]), p[1]&0x40 != 0, p[3]>>4&3, int(p[3]&0x0f)
	payload, af := p[4:], []byte(nil)
	if control&2 != 0 {
		n := int(p[4])
		if n > 183 || (control == 2 && n != 183) {
			t.Fatalf("pid %#x: adaptation field length %d with control %d", pid, n, control)
		}
		af, payload = p[5:5+n], p[5+n:]
	}
	if control&1 == 0 {
		payload = nil
	} else {
		if last, ok := d.cc[pid]; ok && cc != (last+1)&15 {
			t.Fatalf("pid %#x: continuity counter %d after %d", pid, cc, last)
		}
		d.cc[pid] = cc
	}
	pcr, rai := int64(-1), false
	if len(af) > 0 {
		rai = af[0]&0x40 != 0
		if af[0]&0x10 != 0 {
			pcr = int64(binary.BigEndian.Uint32(af[1:]))<<1 | int64(af[5]>>7)
			if pid != d.pcrPID {
				t.Fatalf("PCR on pid %#x, PCR_PID is %#x", pid, d.pcrPID)
			}
			if n := len(d.pcrs); n > 0 && pcr < d.pcrs[n-1] {
				t.Fatalf("PCR %d after %d", pcr, d.pcrs[n-1])
			}
			d.pcrs = append(d.pcrs, pcr)
		}
		for _, b := range af[1+6*int(af[0]>>4&1):] {
			if b != 0xff {
				t.Fatalf("pid %#x: stuffing byte %#x", pid, b)
			}
		}
	}
	switch {
	case pid == tsPATPID || pid == tsPMTPID:
		d.section(pid, start, payload)
	case payload == nil:
	case start:
		pes := &tsPES{pid: pid, pcr: pcr, rai: rai, data: bytes.Clone(payload), tables: d.tables > 0}
		d.pes, d.open[pid], d.tables = append(d.pes, pes), pes, 0
	case d.open[pid] != nil:
		d.open[pid].data = append(d.open[pid].data, payload...)
	default:
		t.Fatalf("pid %#x: payload before a PES start", pid)
	}
}

func (d *tsDemux) section(pid uint16, start bool, payload []byte) {
	t := d.t
	if !start || payload[0] != 0 {
		t.Fatalf("pid %#x: section not at packet start", pid)
	}
	s := payload[1:]
	n := int(binary.BigEndian.Uint16(s[1:]) & 0x0fff)
	if mpegCRC(s[:3+n]) != 0 {
		t.Fatalf("pid %#x: bad CRC in % x", pid, s[:3+n])
	}
	for _, b := range s[3+n:] {
		if b != 0xff {
			t.Fatalf("pid %#x: section padding %#x", pid, b)
		}
	}
	d.sections++
	if pid == tsPATPID {
		return
	}
	d.tables++
	d.pcrPID = binary.BigEndian.Uint16(s[8:]) & 0x1fff
	for es := s[12 : 3+n-4]; len(es) >= 5; es = es[5:] {
		d.streams[binary.BigEndian.Uint16(es[1:])&0x1fff] = es[0]
	}
}

func (d *tsDemux) parsePES(p *tsPES) {
	t := d.t
	b := p.data
	if len(b) < 9 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		t.Fatalf("pid %#x: bad PES start % x", p.pid, b[:min(len(b), 9)])
	}
	p.streamID, p.length = b[3], int(binary.BigEndian.Uint16(b[4:]))
	flags, hdr := b[7]>>6, 9+int(b[8])
	p.pts = decodeTimestamp(b[9:])
	p.dts = p.pts
	if flags == 3 {
		p.dts = decodeTimestamp(b[14:])
	}
	if p.length != 0 && p.length != len(b)-6 {
		t.Fatalf("pid %#x: PES_packet_length %d, have %d bytes", p.pid, p.length, len(b)-6)
	}
	p.data = b[hdr:]
}

func decodeTimestamp(b []byte) int64 {
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

// fakeAU is an access unit of made-up NAL units, big enough to span several packets.
func fakeAU(key bool, size int) []byte {
	au := []byte{0, 0, 0, 1, 0x41}
	if key {
		au = []byte{0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65}
	}
	for i := range size {
		au = append(au, byte(i%200+1))
	}
	return au
}

func TestTSPackets(t *testing.T) {
	var w tsWrites
	m := NewTSMuxer(&w, true, true, AACConfig{48000, 2})
	var aus [][]byte
	for i := range 10 {
		au := fakeAU(i%5 == 0, []int{0, 178, 179, 180, 183, 184, 1000, 5000, 20, 7}[i])
		if i == 3 { // already has an AUD: none added
			au = append([]byte{0, 0, 0, 1, 9, 0x10}, au...)
		}
		aus = append(aus, au)
		pts := time.Duration(i) * time.Second / 30
		dts := pts
		if i%2 == 1 {
			dts -= 10 * time.Millisecond
		}
		if err := m.WriteVideo(au, pts, dts, false); err != nil {
			t.Fatal(err)
		}
		if err := m.WriteAudio(bytes.Repeat([]byte{byte(i)}, 150+i*30), pts); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range w.writes {
		if len(b) == 0 || len(b)%tsPacketSize != 0 {
			t.Fatalf("a Write of %d bytes", len(b))
		}
	}
	d := demuxTS(t, w.bytes())
	if d.pcrPID != tsVideoPID || d.streams[tsVideoPID] != 0x1b || d.streams[tsAudioPID] != 0x0f || len(d.streams) != 2 {
		t.Fatalf("PMT: PCR PID %#x, streams %v", d.pcrPID, d.streams)
	}
	if d.sections != 4 { // at the start (a key frame) and before the second key frame
		t.Errorf("%d PSI sections, want 4", d.sections)
	}
	var video, audio []*tsPES
	for _, p := range d.pes {
		if p.pid == tsVideoPID {
			video = append(video, p)
		} else {
			audio = append(audio, p)
		}
	}
	if len(video) != 10 || len(audio) != 10 {
		t.Fatalf("%d video and %d audio PES", len(video), len(audio))
	}
	for i, p := range video {
		key := i%5 == 0
		want := append(append([]byte{}, aud...), aus[i]...)
		if i == 3 {
			want = aus[i]
		}
		pts := 126000 + int64(i)*3000
		dts := pts
		if i%2 == 1 {
			dts -= 900
		}
		switch {
		case p.streamID != 0xe0 || p.length != 0:
			t.Errorf("video %d: stream id %#x, length %d", i, p.streamID, p.length)
		case !bytes.Equal(p.data, want):
			t.Errorf("video %d: payload differs (%d bytes, want %d)", i, len(p.data), len(want))
		case p.pts != pts || p.dts != dts:
			t.Errorf("video %d: pts %d dts %d, want %d %d", i, p.pts, p.dts, pts, dts)
		case p.pcr != dts-63000:
			t.Errorf("video %d: pcr %d, want %d", i, p.pcr, dts-63000)
		case p.rai != key || p.tables != key:
			t.Errorf("video %d: random access %v, tables before %v, want %v", i, p.rai, p.tables, key)
		}
	}
	for i, p := range audio {
		hdr, _ := AACConfig{48000, 2}.adtsHeader(150 + i*30)
		want := append(hdr, bytes.Repeat([]byte{byte(i)}, 150+i*30)...)
		if p.streamID != 0xc0 || p.length == 0 || !bytes.Equal(p.data, want) || p.pts != 126000+int64(i)*3000 || p.pcr != -1 || !p.rai {
			t.Errorf("audio %d: %+v", i, p)
		}
	}
}

func TestTSAudioOnly(t *testing.T) {
	var w tsWrites
	m := NewTSMuxer(&w, false, true, AACConfig{44100, 1})
	for i := range 5 {
		if err := m.WriteAudio(make([]byte, 200), time.Duration(i)*AACConfig{44100, 1}.FrameDuration()); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.WriteVideo(fakeAU(true, 10), 0, 0, true); err == nil {
		t.Error("video written to an audio-only muxer")
	}
	d := demuxTS(t, w.bytes())
	if d.pcrPID != tsAudioPID || len(d.streams) != 1 || d.sections != 2 || len(d.pes) != 5 || len(d.pcrs) != 5 {
		t.Fatalf("PCR PID %#x, streams %v, %d sections, %d PES, %d PCRs", d.pcrPID, d.streams, d.sections, len(d.pes), len(d.pcrs))
	}
	if err := m.WriteTables(); err != nil || len(w.writes) != 6 || len(w.writes[5]) != 2*tsPacketSize {
		t.Errorf("WriteTables: %v, %d writes", err, len(w.writes))
	}
}

// TestTSPCRDuringVideoPause: audio keeps the PCR going on the video PID.
func TestTSPCRDuringVideoPause(t *testing.T) {
	var w tsWrites
	m := NewTSMuxer(&w, true, true, AACConfig{48000, 2})
	frame := AACConfig{48000, 2}.FrameDuration()
	for i := range 50 {
		if err := m.WriteAudio(make([]byte, 100), time.Duration(i)*frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.WriteVideo(fakeAU(true, 100), 50*frame, 50*frame, true); err != nil {
		t.Fatal(err)
	}
	d := demuxTS(t, w.bytes())
	for i := 1; i < len(d.pcrs); i++ {
		if gap := d.pcrs[i] - d.pcrs[i-1]; gap > 9000 {
			t.Errorf("PCR gap of %d ticks", gap)
		}
	}
	if len(d.pcrs) < 10 {
		t.Errorf("%d PCRs over %v", len(d.pcrs), 50*frame)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(b), nil
}

func TestTSErrors(t *testing.T) {
	m := NewTSMuxer(&failWriter{n: 1}, true, false, AACConfig{})
	if err := m.WriteVideo(fakeAU(true, 10), 0, 0, true); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"empty access unit", m.WriteVideo(nil, 0, 0, false)},
		{"no start code", m.WriteVideo([]byte{0x41, 1}, 0, 0, false)},
		{"dts after pts", m.WriteVideo(fakeAU(false, 10), 0, time.Millisecond, false)},
		{"pts too negative", m.WriteVideo(fakeAU(false, 10), -2*time.Second, -2*time.Second, false)},
		{"audio without audio", m.WriteAudio([]byte{1}, 0)},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	err := m.WriteVideo(fakeAU(false, 10), time.Second, time.Second, false)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Fatalf("write error: %v", err)
	}
	if err2 := m.WriteVideo(fakeAU(false, 10), 2*time.Second, 2*time.Second, false); err2 != err {
		t.Errorf("error not sticky: %v", err2)
	}
	a := NewTSMuxer(&tsWrites{}, false, true, AACConfig{SampleRate: 47999, Channels: 2})
	if err := a.WriteAudio([]byte{1, 2}, 0); err == nil {
		t.Error("bad sample rate accepted")
	}
}

// adtsFrames reads an ADTS file (ISO/IEC 14496-3 §1.A.2) into raw AAC frames.
func adtsFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(b) >= 7 {
		if b[0] != 0xff || b[1]&0xf0 != 0xf0 {
			t.Fatalf("lost ADTS sync")
		}
		hdr := 7
		if b[1]&1 == 0 {
			hdr = 9 // with CRC
		}
		n := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5)
		if n < hdr || n > len(b) {
			t.Fatalf("ADTS frame length %d", n)
		}
		out = append(out, b[hdr:n])
		b = b[n:]
	}
	return out
}

type tsProbe struct {
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
		Frames     string `json:"nb_read_frames"`
	} `json:"streams"`
	Format struct {
		Format    string `json:"format_name"`
		Duration  string `json:"duration"`
		StartTime string `json:"start_time"`
	} `json:"format"`
}

func TestTSFFprobe(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	v, a := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.aac")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "3", "-c:v", "libx264", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p", "-bsf:v", "h264_mp4toannexb", "-f", "h264", v)
	ffmpeg(t, "-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", "3", "-ac", "2", "-c:a", "aac", "-f", "adts", a)
	video, audio := accessUnits(t, v, 0, false), adtsFrames(t, a)
	cfg := AACConfig{48000, 2}

	// The ADTS headers the muxer builds are ffmpeg's own.
	raw, _ := os.ReadFile(a)
	if hdr, err := cfg.adtsHeader(len(audio[0])); err != nil || !bytes.Equal(hdr, raw[:7]) {
		t.Errorf("ADTS header % x, ffmpeg's % x (%v)", hdr, raw[:7], err)
	}

	out := filepath.Join(dir, "out.ts")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	m := NewTSMuxer(f, true, true, cfg)
	vi, ai := 0, 0
	for vi < len(video) || ai < len(audio) {
		apts := time.Duration(ai) * cfg.FrameDuration()
		if vi < len(video) && (ai == len(audio) || video[vi].PTS <= apts) {
			err = m.WriteVideo(video[vi].Data, video[vi].PTS, video[vi].PTS, video[vi].Keyframe)
			vi++
		} else {
			err = m.WriteAudio(audio[ai], apts)
			ai++
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", out)
	js, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p tsProbe
	if err := json.Unmarshal(js, &p); err != nil || len(p.Streams) != 2 {
		t.Fatalf("ffprobe: %v %s", err, js)
	}
	for _, s := range p.Streams {
		switch s.CodecType {
		case "video":
			if s.CodecName != "h264" || s.Width != 320 || s.Height != 240 || s.Frames != "90" {
				t.Errorf("video %+v, want h264 320x240 90 frames", s)
			}
		case "audio":
			if s.CodecName != "aac" || s.SampleRate != "48000" || s.Channels != 2 {
				t.Errorf("audio %+v, want aac 48000 Hz 2 channels", s)
			}
		}
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	start, _ := strconv.ParseFloat(p.Format.StartTime, 64)
	if p.Format.Format != "mpegts" || math.Abs(d-3) > 0.2 || math.Abs(start-1.4) > 0.01 {
		t.Errorf("format %s, duration %.3f s from %.3f s, want mpegts 3 s from 1.4 s", p.Format.Format, d, start)
	}
	if e := decodeErrors(t, out); e != "" {
		t.Errorf("ffmpeg decoding: %s", e)
	}
	ts, _ := os.ReadFile(out)
	dm := demuxTS(t, ts)
	if n := len(dm.pes); n != len(video)+len(audio) {
		t.Errorf("%d PES, want %d", n, len(video)+len(audio))
	}
}
