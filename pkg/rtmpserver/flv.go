package rtmpserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FLV tag types (FLV spec v10.1 E.4.1 TagType).
const (
	TagTypeAudio  byte = 8
	TagTypeVideo  byte = 9
	TagTypeScript byte = 18
)

// MaxTagSize is the largest tag body FLV can describe: DataSize is a UI24 (E.4.1).
const MaxTagSize = 1<<24 - 1

const (
	headerSize    = 9  // E.2: "FLV", version, flags, DataOffset
	tagHeaderSize = 11 // E.4.1: type, UI24 size, UI24 time, UI8 time ext, UI24 stream id
)

// ErrTagTooLarge is returned by WriteTag for a body FLV's 24-bit size field cannot hold.
var ErrTagTooLarge = errors.New("flv tag body larger than 16 MiB")

// flvHeader is the file header for a stream that carries audio and video (flags 0x05),
// followed by PreviousTagSize0, which is always 0 (E.3).
var flvHeader = [headerSize + 4]byte{'F', 'L', 'V', 1, 0x05, 0, 0, 0, headerSize, 0, 0, 0, 0}

// WriteHeader writes the FLV file header and PreviousTagSize0.
func WriteHeader(w io.Writer) error {
	if _, err := w.Write(flvHeader[:]); err != nil {
		return fmt.Errorf("write flv header: %w", err)
	}
	return nil
}

// WriteTag writes one FLV tag and the PreviousTagSize that follows it. ts is in
// milliseconds; its top byte goes to TimestampExtended (E.4.1). It issues three writes,
// so w should be buffered.
func WriteTag(w io.Writer, typ byte, ts uint32, body []byte) error {
	if len(body) > MaxTagSize {
		return ErrTagTooLarge
	}
	var hdr [tagHeaderSize]byte
	hdr[0] = typ
	putUint24(hdr[1:4], uint32(len(body)))
	putUint24(hdr[4:7], ts&0xffffff)
	hdr[7] = byte(ts >> 24)
	// hdr[8:11] StreamID stays 0.
	var trailer [4]byte
	binary.BigEndian.PutUint32(trailer[:], uint32(tagHeaderSize+len(body)))
	for _, b := range [][]byte{hdr[:], body, trailer[:]} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write flv tag: %w", err)
		}
	}
	return nil
}

func putUint24(b []byte, v uint32) {
	b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v)
}

func uint24(b []byte) uint32 {
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
}
