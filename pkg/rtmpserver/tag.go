package rtmpserver

import (
	"errors"
	"fmt"
)

// ErrShortTag is returned by the tag header parsers when the body ends inside the header.
var ErrShortTag = errors.New("flv tag header truncated")

// Codec and packet numbers from FLV spec v10.1 E.4.2.1 / E.4.3.1 and Enhanced RTMP v2.
const (
	SoundFormatExHeader = 9  // Enhanced RTMP: FourCC follows
	SoundFormatAAC      = 10 // AACPacketType follows
	CodecIDAVC          = 7  // AVCPacketType and CompositionTime follow
	codecIDHEVCLegacy   = 12 // unofficial but common: same layout as AVC

	FrameTypeKey = 1

	PacketTypeSequenceStart = 0 // also AVC/AAC "sequence header"
	packetTypeCodedFrames   = 1
	packetTypeCodedFramesX  = 3 // Enhanced RTMP: coded frames, CompositionTime implied 0
	packetTypeMPEG2TSSeq    = 5
)

// VideoTag is the header of an FLV VIDEODATA body (E.4.3.1), legacy or Enhanced RTMP.
type VideoTag struct {
	FrameType uint8 // 1 keyframe, 2 inter, 3 disposable, 4 generated key, 5 command
	CodecID   uint8 // legacy header only: 7 AVC, 12 HEVC (unofficial)
	// AVCPacketType is 0 sequence header, 1 NALUs, 2 end of sequence (AVC/HEVC legacy);
	// for an Enhanced header it carries the PacketType (0 SequenceStart, 1 CodedFrames …).
	AVCPacketType   uint8
	CompositionTime int32  // ms, signed 24-bit
	Enhanced        bool   // Enhanced RTMP ExVideoTagHeader (IsExHeader bit set)
	FourCC          string // Enhanced only: "avc1", "hvc1", "av01", "vp09"
}

// IsSequenceHeader reports a decoder configuration record (AVCDecoderConfigurationRecord
// and the like). Such tags must reach the consumer even before the first keyframe.
func (v VideoTag) IsSequenceHeader() bool {
	if v.Enhanced {
		return v.AVCPacketType == PacketTypeSequenceStart || v.AVCPacketType == packetTypeMPEG2TSSeq
	}
	return v.hasPacketType() && v.AVCPacketType == PacketTypeSequenceStart
}

// IsKeyframe reports a coded keyframe (not a sequence header or end-of-sequence marker).
func (v VideoTag) IsKeyframe() bool {
	if v.FrameType != FrameTypeKey {
		return false
	}
	switch {
	case v.Enhanced:
		return v.AVCPacketType == packetTypeCodedFrames || v.AVCPacketType == packetTypeCodedFramesX
	case v.hasPacketType():
		return v.AVCPacketType == packetTypeCodedFrames
	}
	return true
}

func (v VideoTag) hasPacketType() bool {
	return v.CodecID == CodecIDAVC || v.CodecID == codecIDHEVCLegacy
}

// ParseVideoTagHeader parses the header at the start of a VIDEODATA body.
func ParseVideoTagHeader(b []byte) (VideoTag, error) {
	if len(b) < 1 {
		return VideoTag{}, fmt.Errorf("video: %w", ErrShortTag)
	}
	if b[0]&0x80 != 0 {
		return parseExVideoTagHeader(b)
	}
	v := VideoTag{FrameType: b[0] >> 4, CodecID: b[0] & 0x0f}
	if !v.hasPacketType() {
		return v, nil
	}
	if len(b) < 5 {
		return VideoTag{}, fmt.Errorf("avc video: %w", ErrShortTag)
	}
	v.AVCPacketType = b[1]
	v.CompositionTime = int24(b[2:5])
	return v, nil
}

// parseExVideoTagHeader follows Enhanced RTMP: IsExHeader UB[1], FrameType UB[3],
// PacketType UB[4], FourCC UI32, then SI24 CompositionTime for CodedFrames of avc1/hvc1.
func parseExVideoTagHeader(b []byte) (VideoTag, error) {
	if len(b) < 5 {
		return VideoTag{}, fmt.Errorf("enhanced video: %w", ErrShortTag)
	}
	v := VideoTag{
		Enhanced:      true,
		FrameType:     (b[0] >> 4) & 0x07,
		AVCPacketType: b[0] & 0x0f,
		FourCC:        string(b[1:5]),
	}
	if v.AVCPacketType == packetTypeCodedFrames && (v.FourCC == "avc1" || v.FourCC == "hvc1") {
		if len(b) < 8 {
			return VideoTag{}, fmt.Errorf("enhanced video: %w", ErrShortTag)
		}
		v.CompositionTime = int24(b[5:8])
	}
	return v, nil
}

// AudioTag is the header of an FLV AUDIODATA body (E.4.2.1).
type AudioTag struct {
	SoundFormat   uint8 // 2 MP3, 10 AAC, 9 Enhanced RTMP ExHeader …
	SoundRate     uint8 // 0 5.5 kHz, 1 11 kHz, 2 22 kHz, 3 44 kHz (AAC always 3)
	SoundSize     uint8 // 0 8-bit, 1 16-bit
	SoundType     uint8 // 0 mono, 1 stereo
	AACPacketType uint8 // AAC: 0 sequence header, 1 raw; Enhanced: AudioPacketType
	Enhanced      bool
	FourCC        string // Enhanced only: "Opus", "fLaC", "ac-3", "mp4a" …
}

// Channels is the channel count the legacy header claims (1 or 2).
func (a AudioTag) Channels() int { return int(a.SoundType) + 1 }

// IsSequenceHeader reports an AudioSpecificConfig (or Enhanced SequenceStart).
func (a AudioTag) IsSequenceHeader() bool {
	return (a.SoundFormat == SoundFormatAAC || a.Enhanced) && a.AACPacketType == PacketTypeSequenceStart
}

// ParseAudioTagHeader parses the header at the start of an AUDIODATA body.
func ParseAudioTagHeader(b []byte) (AudioTag, error) {
	if len(b) < 1 {
		return AudioTag{}, fmt.Errorf("audio: %w", ErrShortTag)
	}
	a := AudioTag{
		SoundFormat: b[0] >> 4,
		SoundRate:   (b[0] >> 2) & 0x03,
		SoundSize:   (b[0] >> 1) & 0x01,
		SoundType:   b[0] & 0x01,
	}
	switch a.SoundFormat {
	case SoundFormatAAC:
		if len(b) < 2 {
			return AudioTag{}, fmt.Errorf("aac audio: %w", ErrShortTag)
		}
		a.AACPacketType = b[1]
	case SoundFormatExHeader:
		// Enhanced RTMP v2: the low nibble is AudioPacketType, a FourCC follows.
		if len(b) < 5 {
			return AudioTag{}, fmt.Errorf("enhanced audio: %w", ErrShortTag)
		}
		a = AudioTag{SoundFormat: a.SoundFormat, AACPacketType: b[0] & 0x0f, Enhanced: true, FourCC: string(b[1:5])}
	}
	return a, nil
}

// int24 decodes a big-endian signed 24-bit integer (SI24).
func int24(b []byte) int32 {
	return int32(uint24(b)<<8) >> 8
}
