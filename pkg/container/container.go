// Package container writes encoded media samples into playable files without transcoding.
//
// Every writer is crash-safe: what it has written is a playable file up to the last completed
// page, fragment or cluster (≤ 1 s of media), so a process killed mid-recording loses at most that.
package container

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Sample is one encoded frame. PTS is relative to the track's first sample and never goes back.
type Sample struct {
	Data     []byte
	PTS      time.Duration
	Keyframe bool
}

// Writer takes samples in order and finalises the file on Close.
type Writer interface {
	WriteSample(s Sample) error
	Close() error
}

// Codec names an input codec.
type Codec string

// Codecs written without transcoding.
const (
	CodecOpus Codec = "opus"
	CodecH264 Codec = "h264"
	CodecVP8  Codec = "vp8"
	CodecVP9  Codec = "vp9"
)

// ErrUnknownCodec marks a codec with no writer.
var ErrUnknownCodec = errors.New("no container for codec")

// flushEvery bounds what a crash can lose: pages, fragments and clusters are closed at least this often.
const flushEvery = time.Second

// Extension is the file extension for a codec's container.
func Extension(c Codec) (string, error) {
	switch c {
	case CodecOpus:
		return ".ogg", nil
	case CodecH264:
		return ".mp4", nil
	case CodecVP8, CodecVP9:
		return ".webm", nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownCodec, c)
}

// New returns a writer for codec c writing to w. If w is also an io.WriteSeeker, WebM gets its
// duration patched in on Close.
func New(c Codec, w io.Writer) (Writer, error) {
	switch c {
	case CodecOpus:
		return newOgg(w), nil
	case CodecH264:
		return newMP4(w), nil
	case CodecVP8, CodecVP9:
		return newWebM(w, c), nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCodec, c)
}
