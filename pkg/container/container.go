// Package container writes encoded media samples into playable files without transcoding.
//
// Every writer is crash-safe: it never holds back more than about a second of media, and each
// page, fragment or block goes to the io.Writer in one Write, so whatever a killed process left
// behind is a playable file up to the last completed page (Ogg), fragment (MP4) or block (WebM).
//
// Samples are complete codec frames as a depacketizer hands them over. Video samples that share a
// PTS are parts of one picture (RFC 6184 §5.1, RFC 7741 §4.1: one RTP timestamp per frame) and are
// joined. Video key frames are read from the bitstream; Sample.Keyframe is advisory.
package container

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Sample is one encoded frame. PTS is relative to the track's first sample (starts at 0, monotonic
// non-decreasing for audio; video may have equal PTS, never going back).
type Sample struct {
	Data     []byte
	PTS      time.Duration
	Keyframe bool
}

// Writer takes samples in PTS order. Close finalises the file; it is safe to call once after any
// number of writes, including zero (the output is then empty). Writers are not safe for
// concurrent use and do not keep Sample.Data after WriteSample returns.
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

var (
	// ErrUnknownCodec marks a codec with no writer.
	ErrUnknownCodec = errors.New("no container for codec")
	// ErrClosed is returned by WriteSample after Close.
	ErrClosed = errors.New("container writer closed")
)

// flushEvery bounds what a crash can lose: Ogg pages and MP4 fragments are written at least this
// often and WebM clusters start at least this often.
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

// New returns a writer for codec c writing to w, which must be at the start of the output (the
// MP4 index holds absolute offsets). Width and height come from the bitstream.
//
// If w is also an io.Seeker whose Seek works (an *os.File), the WebM writer keeps the Duration in
// its header current at every cluster and adds a seek index (Cues) on Close; on a plain io.Writer
// the WebM file plays but players show no duration and cannot seek quickly. A file opened with
// O_APPEND must not be passed as a Seeker: its patches would land at the end.
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

// countingWriter knows how many bytes went through it, for offsets in indexes.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error // sticky: after a failed write the file is not extended further
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	c.err = err
	return n, err
}

// ticks converts d to the nearest count of 1/rate s (PTS in ns were rounded down from the RTP
// clock) without overflowing for long recordings.
func ticks(d time.Duration, rate int64) uint64 {
	if d < 0 {
		return 0
	}
	s := int64(d / time.Second)
	return uint64(s*rate + (int64(d%time.Second)*rate+int64(time.Second)/2)/int64(time.Second))
}
