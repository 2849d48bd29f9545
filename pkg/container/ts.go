package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// MPEG transport stream layout (ISO/IEC 13818-1). One program: PAT on PID 0, PMT on tsPMTPID.
const (
	tsPacketSize = 188
	tsSync       = 0x47
	tsPATPID     = 0x0000
	tsPMTPID     = 0x1000
	tsVideoPID   = 0x0100
	tsAudioPID   = 0x0101

	tsStreamH264 = 0x1b // stream_type H.264 (Table 2-34)
	tsStreamAAC  = 0x0f // stream_type ISO/IEC 13818-7 audio with ADTS transport syntax

	pesVideoID = 0xe0
	pesAudioID = 0xc0

	tsClock = 90000 // PTS, DTS and the PCR base count 90 kHz ticks (§2.4.3.7)
	// tsOffset is added to every PTS and DTS so media time 0 is well clear of zero; tsPCRDelay is
	// how far the PCR runs behind the DTS, the time a PES has to arrive before it is decoded
	// (ffmpeg's defaults: PTS from 1.4 s, PCR 0.7 s behind).
	tsOffset   = 1400 * time.Millisecond
	tsPCRDelay = 700 * time.Millisecond
	// tsPCREvery is the longest gap between PCRs (§2.7.2 allows 100 ms). Audio adds a PCR to the
	// video PID once half of it has passed without one, so that one more audio frame is still in.
	tsPCREvery = 100 * time.Millisecond
	tsMask33   = 1<<33 - 1

	adtsHeaderSize = 7
	aacFrameLen    = 1024 // PCM samples per AAC-LC frame
)

// aud is the Access Unit Delimiter put before access units that lack one (ITU-T H.264 §7.3.2.4:
// primary_pic_type 7, any slice type). Apple's HLS guidelines ask for it in transport streams.
var aud = []byte{0, 0, 0, 1, naluAUD, 0xf0}

// adtsRates are the sampling frequencies an ADTS header can name, by sampling_frequency_index
// (ISO/IEC 14496-3 Table 1.18).
var adtsRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// AACConfig describes the AAC-LC stream given to TSMuxer.WriteAudio.
type AACConfig struct {
	SampleRate int // one of the ADTS rates, 7350 to 96000 Hz
	Channels   int // 1 to 6, or 8 (7.1)
}

// Validate reports whether an ADTS header can describe the stream.
func (c AACConfig) Validate() error {
	if _, err := c.rateIndex(); err != nil {
		return err
	}
	_, err := c.channelConfig()
	return err
}

func (c AACConfig) rateIndex() (int, error) {
	for i, r := range adtsRates {
		if r == c.SampleRate {
			return i, nil
		}
	}
	return 0, fmt.Errorf("aac: sample rate %d Hz has no ADTS index", c.SampleRate)
}

// channelConfig is the channel_configuration for the channel count (ISO/IEC 14496-3 Table 1.19).
func (c AACConfig) channelConfig() (int, error) {
	switch {
	case c.Channels >= 1 && c.Channels <= 6:
		return c.Channels, nil
	case c.Channels == 8:
		return 7, nil
	}
	return 0, fmt.Errorf("aac: %d channels have no ADTS channel configuration", c.Channels)
}

// FrameDuration is how long one AAC-LC frame (1024 samples) plays; 0 for an invalid sample rate.
func (c AACConfig) FrameDuration() time.Duration {
	if c.SampleRate <= 0 {
		return 0
	}
	return time.Duration(aacFrameLen) * time.Second / time.Duration(c.SampleRate)
}

// adtsHeader builds the 7-byte ADTS header (ISO/IEC 14496-3 §1.A.2.2) of an AAC-LC frame with
// payloadLen bytes of raw data: MPEG-4, no CRC, one raw data block, buffer fullness 0x7ff (VBR).
func (c AACConfig) adtsHeader(payloadLen int) ([]byte, error) {
	rate, err := c.rateIndex()
	if err != nil {
		return nil, err
	}
	ch, err := c.channelConfig()
	if err != nil {
		return nil, err
	}
	n := payloadLen + adtsHeaderSize
	if payloadLen <= 0 || n > 1<<13-1 {
		return nil, fmt.Errorf("aac: frame of %d bytes does not fit an ADTS frame", payloadLen)
	}
	const profileLC = 1 // audio object type 2 (AAC LC) minus one
	return []byte{
		0xff, 0xf1, // syncword, ID 0 (MPEG-4), layer 0, protection_absent
		profileLC<<6 | byte(rate)<<2 | byte(ch>>2),
		byte(ch&3)<<6 | byte(n>>11),
		byte(n >> 3),
		byte(n&7)<<5 | 0x1f,
		0xfc, // buffer fullness low bits, number_of_raw_data_blocks_in_frame 0
	}, nil
}

// H264Keyframe reports whether an Annex-B access unit holds an IDR slice (ITU-T H.264 §7.4.1.2).
func H264Keyframe(au []byte) bool { return hasIDR(splitAnnexB(au)) }

func hasIDR(nalus [][]byte) bool {
	for _, n := range nalus {
		if naluType(n) == naluIDR {
			return true
		}
	}
	return false
}

// TSMuxer writes an MPEG transport stream: one H.264 video PID (0x100) and/or one AAC audio PID (0x101).
//
// Every access unit or audio frame becomes one PES packet, video with PES_packet_length 0. The
// PCR is carried on the video PID (the audio PID without video) in the first packet of each PES
// and, before the first video or when video pauses, in payload-less packets sent with audio, so
// PCRs are never more than 100 ms apart while either track flows. PAT and PMT are repeated before
// every video key frame, so a stream cut there (an HLS segment) starts decodable. PTS and DTS run
// 1.4 s ahead of media time and the PCR 0.7 s behind the DTS.
//
// Each Write* call hands w whole 188-byte packets in one Write. After a failed Write the muxer
// writes nothing more and returns that error. TSMuxer is not safe for concurrent use.
type TSMuxer struct {
	w            io.Writer
	video, audio bool
	aac          AACConfig
	pcrPID       uint16

	cc      map[uint16]byte // continuity_counter per PID, of the last packet with payload
	tables  bool            // PAT and PMT written at least once
	pcr     int64           // last PCR base written, in 90 kHz ticks; -1 before the first
	pcrTime time.Duration   // media time of that PCR
	buf     []byte          // packets of the current Write
	err     error
}

// NewTSMuxer returns a muxer writing to w. video and audio choose the elementary streams; aac
// describes the audio frames (ignored without audio).
func NewTSMuxer(w io.Writer, video, audio bool, aac AACConfig) *TSMuxer {
	m := &TSMuxer{w: w, video: video, audio: audio, aac: aac, pcrPID: tsVideoPID, cc: map[uint16]byte{}, pcr: -1}
	if !video {
		m.pcrPID = tsAudioPID
	}
	return m
}

// WriteTables writes the PAT and PMT. The muxer writes them by itself before the first packet
// and before every video key frame.
func (m *TSMuxer) WriteTables() error {
	if m.err != nil {
		return m.err
	}
	m.appendTables()
	return m.flush("tables")
}

// WriteVideo writes one H.264 access unit in Annex-B format. pts and dts are media times (dts
// may be up to 1.4 s below zero for B-frame streams, never after pts). An access unit is a key
// frame when key is set or it holds an IDR slice; key frames must carry SPS and PPS in-band. An
// AUD is put in front when the access unit does not start with one.
func (m *TSMuxer) WriteVideo(au []byte, pts, dts time.Duration, key bool) error {
	if m.err != nil {
		return m.err
	}
	if !m.video {
		return errors.New("ts: video written to a muxer without video")
	}
	nalus := splitAnnexB(au)
	if len(nalus) == 0 {
		return errors.New("ts: video access unit holds no NAL unit")
	}
	if dts > pts {
		return fmt.Errorf("ts: video dts %v after pts %v", dts, pts)
	}
	p, err := tsTime(pts)
	if err != nil {
		return err
	}
	d, err := tsTime(dts)
	if err != nil {
		return err
	}
	key = key || hasIDR(nalus)
	if key || !m.tables {
		m.appendTables()
	}
	es := au
	if naluType(nalus[0]) != naluAUD {
		es = append(append(make([]byte, 0, len(aud)+len(au)), aud...), au...)
	}
	pes := pesPacket(pesVideoID, p, d, es, false)
	m.appendPES(tsVideoPID, pes, d, dts, key)
	return m.flush("video")
}

// WriteAudio writes one raw AAC-LC frame (no ADTS header) with its media time; the muxer puts the
// ADTS header built from the AACConfig in front.
func (m *TSMuxer) WriteAudio(frame []byte, pts time.Duration) error {
	if m.err != nil {
		return m.err
	}
	if !m.audio {
		return errors.New("ts: audio written to a muxer without audio")
	}
	hdr, err := m.aac.adtsHeader(len(frame))
	if err != nil {
		return fmt.Errorf("ts: %w", err)
	}
	p, err := tsTime(pts)
	if err != nil {
		return err
	}
	if !m.tables {
		m.appendTables()
	}
	if m.pcrPID != tsAudioPID && (m.pcr < 0 || pts-m.pcrTime >= tsPCREvery/2) {
		m.appendPCROnly(p, pts) // no video yet or video paused: keep the clock going on its PID
	}
	pes := pesPacket(pesAudioID, p, p, append(hdr, frame...), true)
	m.appendPES(tsAudioPID, pes, p, pts, true)
	return m.flush("audio")
}

// tsTime turns a media time into 90 kHz ticks with the stream offset added.
func tsTime(d time.Duration) (int64, error) {
	if d < -tsOffset {
		return 0, fmt.Errorf("ts: timestamp %v before -%v", d, tsOffset)
	}
	return int64(ticks(d+tsOffset, tsClock)), nil
}

// flush writes the packets collected for one Write* call.
func (m *TSMuxer) flush(what string) error {
	if len(m.buf) == 0 {
		return nil
	}
	n, err := m.w.Write(m.buf)
	if err == nil && n < len(m.buf) {
		err = io.ErrShortWrite
	}
	m.buf = m.buf[:0]
	if err != nil {
		m.err = fmt.Errorf("ts: write %s: %w", what, err)
	}
	return m.err
}

// appendTables appends a PAT and a PMT packet.
func (m *TSMuxer) appendTables() {
	m.appendSection(tsPATPID, m.pat())
	m.appendSection(tsPMTPID, m.pmt())
	m.tables = true
}

// pat is the program association section: program 1 on tsPMTPID (§2.4.4.3).
func (m *TSMuxer) pat() []byte {
	return psiSection(0x00, 1, []byte{0, 1, 0xe0 | tsPMTPID>>8, tsPMTPID & 0xff})
}

// pmt is the program map section of program 1 (§2.4.4.8).
func (m *TSMuxer) pmt() []byte {
	body := []byte{0xe0 | byte(m.pcrPID>>8), byte(m.pcrPID), 0xf0, 0} // PCR_PID, no program descriptors
	if m.video {
		body = append(body, tsStreamH264, 0xe0|tsVideoPID>>8, tsVideoPID&0xff, 0xf0, 0)
	}
	if m.audio {
		body = append(body, tsStreamAAC, 0xe0|tsAudioPID>>8, tsAudioPID&0xff, 0xf0, 0)
	}
	return psiSection(0x02, 1, body)
}

// psiSection wraps a table body in a long-form section, version 0, current, section 0 of 0, with
// its CRC (§2.4.4.10). ext is transport_stream_id or program_number.
func psiSection(tableID byte, ext uint16, body []byte) []byte {
	n := 5 + len(body) + 4 // section_length counts from after itself through the CRC
	s := []byte{tableID, 0xb0 | byte(n>>8), byte(n), byte(ext >> 8), byte(ext), 0xc1, 0, 0}
	s = append(s, body...)
	return binary.BigEndian.AppendUint32(s, mpegCRC(s))
}

// mpegCRC is the CRC-32 of PSI sections (ISO/IEC 13818-1 Annex A): polynomial 0x04c11db7,
// unreflected, initial value 0xffffffff, no final xor. A section with its CRC appended sums to 0.
func mpegCRC(b []byte) uint32 {
	c := uint32(0xffffffff)
	for _, v := range b {
		c = c<<8 ^ oggTable[byte(c>>24)^v]
	}
	return c
}

// appendSection appends a section in one packet with pointer_field 0, padded with 0xff.
func (m *TSMuxer) appendSection(pid uint16, section []byte) {
	p := m.packetHeader(pid, true, true)
	p = append(p, 0) // pointer_field
	p = append(p, section...)
	for len(p) < tsPacketSize {
		p = append(p, 0xff)
	}
	m.buf = append(m.buf, p...)
}

// packetHeader starts a packet; with payload the PID's continuity counter advances (§2.4.3.3).
// The adaptation_field_control bits are set later by appendPES when it adds a field.
func (m *TSMuxer) packetHeader(pid uint16, start, payload bool) []byte {
	b1 := byte(pid>>8) & 0x1f
	if start {
		b1 |= 0x40
	}
	cc := m.cc[pid]
	control := byte(0x20) // adaptation field only
	if payload {
		cc = (cc + 1) & 0x0f
		m.cc[pid] = cc
		control = 0x10
	}
	return []byte{tsSync, b1, byte(pid), control | cc}
}

// pesPacket builds a PES packet header plus data (§2.4.3.6). DTS is written only when it differs
// from PTS. bounded sets PES_packet_length; unbounded (0) is allowed for video only.
func pesPacket(streamID byte, pts, dts int64, data []byte, bounded bool) []byte {
	flags, hdrLen := byte(0x80), 5
	if dts != pts {
		flags, hdrLen = 0xc0, 10
	}
	pes := make([]byte, 0, 9+hdrLen+len(data))
	pes = append(pes, 0, 0, 1, streamID, 0, 0, 0x84, flags, byte(hdrLen)) // '10', data_alignment_indicator
	if n := 3 + hdrLen + len(data); bounded && n <= 0xffff {
		binary.BigEndian.PutUint16(pes[4:], uint16(n))
	}
	pes = appendTimestamp(pes, flags>>6, pts)
	if dts != pts {
		pes = appendTimestamp(pes, 0x1, dts)
	}
	return append(pes, data...)
}

// appendTimestamp appends a 33-bit PTS or DTS with its 4-bit prefix and marker bits.
func appendTimestamp(b []byte, prefix byte, t int64) []byte {
	t &= tsMask33
	return append(b,
		prefix<<4|byte(t>>29)&0x0e|1,
		byte(t>>22), byte(t>>14)|1,
		byte(t>>7), byte(t<<1)|1)
}

// appendPES splits a PES packet into transport packets. The first carries a PCR when pid is the
// PCR PID, and the random_access_indicator for key frames; the last is filled up with adaptation
// field stuffing. dts is in offset 90 kHz ticks, media the same time as a time.Duration.
func (m *TSMuxer) appendPES(pid uint16, pes []byte, dts int64, media time.Duration, key bool) {
	for first := true; len(pes) > 0; first = false {
		var af []byte
		if first {
			af = m.startField(pid, dts, media, key)
		}
		room := tsPacketSize - 4 - len(af)
		if len(pes) < room {
			af = stuff(af, room-len(pes))
			room = len(pes)
		}
		p := m.packetHeader(pid, first, true)
		if len(af) > 0 {
			p[3] |= 0x20
		}
		m.buf = append(append(append(m.buf, p...), af...), pes[:room]...)
		pes = pes[room:]
	}
}

// startField is the adaptation field of a PES's first packet, nil when it needs none.
func (m *TSMuxer) startField(pid uint16, dts int64, media time.Duration, key bool) []byte {
	var flags byte
	if key {
		flags |= 0x40 // random_access_indicator
	}
	var pcr []byte
	if pid == m.pcrPID {
		flags |= 0x10
		pcr = m.nextPCR(dts, media)
	}
	if flags == 0 {
		return nil
	}
	return append([]byte{byte(1 + len(pcr)), flags}, pcr...)
}

// nextPCR is the encoded PCR for data decoded at dts: tsPCRDelay earlier, never going back.
func (m *TSMuxer) nextPCR(dts int64, media time.Duration) []byte {
	base := max(dts-int64(ticks(tsPCRDelay, tsClock)), m.pcr, 0)
	m.pcr, m.pcrTime = base, media
	base &= tsMask33
	// program_clock_reference_base (33 bits), 6 reserved bits, extension (9 bits) 0 (§2.4.3.5).
	return []byte{byte(base >> 25), byte(base >> 17), byte(base >> 9), byte(base >> 1), byte(base<<7) | 0x7e, 0}
}

// appendPCROnly appends a packet on the PCR PID carrying only a PCR (§2.4.3.4: no payload, so
// the continuity counter stays).
func (m *TSMuxer) appendPCROnly(dts int64, media time.Duration) {
	af := append([]byte{7, 0x10}, m.nextPCR(dts, media)...)
	af = stuff(af, tsPacketSize-4-len(af))
	m.buf = append(append(m.buf, m.packetHeader(m.pcrPID, false, false)...), af...)
}

// stuff grows an adaptation field (nil for none) by n bytes of stuffing (§2.4.3.5): a missing
// field becomes a bare length byte, then gains a flags byte, then 0xff bytes.
func stuff(af []byte, n int) []byte {
	if n <= 0 {
		return af
	}
	if len(af) == 0 {
		af = append(af, 0)
		n--
		if n > 0 {
			af = append(af, 0)
			n--
		}
	}
	for range n {
		af = append(af, 0xff)
	}
	af[0] = byte(len(af) - 1)
	return af
}
