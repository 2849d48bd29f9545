package stack

import (
	"encoding/binary"
	"strings"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/pion/rtp/codecs"
)

// payloadInfo is what one RTP payload tells about the video: the picture size if it carries a
// complete H.264 SPS or the start of a VP8 keyframe (else 0), and its media bytes — the payload
// minus H.264 filler data, which a CBR encoder adds and which would blur frame sizes.
type payloadInfo struct {
	width, height int
	media         int
}

// payloadParser reads the video payloads of one track, in order.
type payloadParser interface {
	parse(payload []byte) payloadInfo
}

// H.264 NAL unit types (ITU-T H.264 Table 7-1) and RTP packetization types (RFC 6184 §5.2).
const (
	naluSPS    = 7
	naluFiller = 12
	naluSTAPA  = 24
	naluFUA    = 28
)

// h264Parser finds SPSs in H.264 RTP payloads (RFC 6184): single NAL units, STAP-A aggregates
// (where encoders usually put SPS+PPS) and FU-A fragments, which it reassembles for SPSs only.
type h264Parser struct {
	sps   []byte // SPS being reassembled from FU-A fragments
	inSPS bool
}

func (p *h264Parser) parse(b []byte) payloadInfo {
	info := payloadInfo{media: len(b)}
	if len(b) == 0 {
		return info
	}
	switch typ := b[0] & 0x1f; {
	case typ == naluSTAPA:
		// RFC 6184 §5.7.1: after the STAP-A header, 16-bit size + NAL unit, repeated.
		for rest := b[1:]; len(rest) >= 2; {
			n := int(binary.BigEndian.Uint16(rest))
			if n == 0 || 2+n > len(rest) {
				break
			}
			p.nalu(rest[2:2+n], &info)
			rest = rest[2+n:]
		}
	case typ == naluFUA:
		p.fragment(b, &info)
	case typ >= 1 && typ <= 23:
		p.nalu(b, &info)
	}
	return info
}

// nalu handles one complete NAL unit.
func (p *h264Parser) nalu(n []byte, info *payloadInfo) {
	switch n[0] & 0x1f {
	case naluSPS:
		info.width, info.height = spsDims(n)
	case naluFiller:
		info.media -= len(n)
	}
}

// fragment handles an FU-A (RFC 6184 §5.8): indicator, header (S, E, type), then a piece of the
// NAL unit, whose header is indicator's NRI + header's type.
func (p *h264Parser) fragment(b []byte, info *payloadInfo) {
	if len(b) < 2 {
		return
	}
	start, end, typ := b[1]&0x80 != 0, b[1]&0x40 != 0, b[1]&0x1f
	switch {
	case typ == naluFiller:
		info.media -= len(b)
	case typ == naluSPS && start:
		p.sps, p.inSPS = append(p.sps[:0], b[0]&0xe0|naluSPS), true
		fallthrough
	case typ == naluSPS && p.inSPS:
		p.sps = append(p.sps, b[2:]...)
		if end {
			info.width, info.height = spsDims(p.sps)
			p.inSPS = false
		}
	default:
		p.inSPS = false
	}
}

// spsDims is the cropped picture size an SPS declares (0, 0 if it does not parse).
func spsDims(nalu []byte) (w, h int) {
	defer func() {
		if recover() != nil { // a truncated SPS must not take the test down
			w, h = 0, 0
		}
	}()
	sps, err := avc.ParseSPSNALUnit(nalu, false)
	if err != nil {
		return 0, 0
	}
	return int(sps.Width), int(sps.Height)
}

// vp8Parser reads picture sizes from VP8 keyframe headers.
type vp8Parser struct{}

func (vp8Parser) parse(b []byte) payloadInfo {
	info := payloadInfo{media: len(b)}
	var d codecs.VP8Packet
	f, err := d.Unmarshal(b)
	// Only the first packet of a frame (S=1, partition 0) holds the frame header.
	if err != nil || d.S != 1 || d.PID != 0 || len(f) < 10 {
		return info
	}
	// RFC 6386 §9.1: 3-byte frame tag whose bit 0 is 0 on keyframes, start code 9d 01 2a, then
	// 14-bit width and height (2 bits of scaling each), little-endian.
	if f[0]&1 != 0 || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return info
	}
	info.width = int(binary.LittleEndian.Uint16(f[6:8]) & 0x3fff)
	info.height = int(binary.LittleEndian.Uint16(f[8:10]) & 0x3fff)
	return info
}

// parserFor returns the payload parser for a codec MIME type, or nil if none is needed.
func parserFor(mime string) payloadParser {
	switch strings.ToLower(mime) {
	case "video/h264":
		return &h264Parser{}
	case "video/vp8":
		return vp8Parser{}
	}
	return nil
}
