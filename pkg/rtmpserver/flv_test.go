package rtmpserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
)

// flvTag is one tag read back from an FLV stream by readFLV.
type flvTag struct {
	typ  byte
	ts   uint32
	body []byte
}

// readFLV is an independent FLV reader for tests: it checks the header, every
// PreviousTagSize and StreamID, and returns the tags.
func readFLV(b []byte) ([]flvTag, error) {
	if len(b) < 13 || string(b[:3]) != "FLV" || b[3] != 1 {
		return nil, errors.New("no FLV header")
	}
	if b[4] != 0x05 || binary.BigEndian.Uint32(b[5:9]) != 9 || binary.BigEndian.Uint32(b[9:13]) != 0 {
		return nil, fmt.Errorf("bad FLV header % x", b[:13])
	}
	var tags []flvTag
	for p := b[13:]; len(p) > 0; {
		if len(p) < 11 {
			return tags, fmt.Errorf("truncated tag header after %d tags", len(tags))
		}
		size := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
		ts := uint32(p[7])<<24 | uint32(p[4])<<16 | uint32(p[5])<<8 | uint32(p[6])
		if p[8] != 0 || p[9] != 0 || p[10] != 0 {
			return tags, errors.New("nonzero stream id")
		}
		if len(p) < 11+size+4 {
			return tags, fmt.Errorf("truncated tag %d", len(tags))
		}
		if prev := binary.BigEndian.Uint32(p[11+size:]); prev != uint32(11+size) {
			return tags, fmt.Errorf("tag %d: PreviousTagSize %d, want %d", len(tags), prev, 11+size)
		}
		tags = append(tags, flvTag{typ: p[0], ts: ts, body: p[11 : 11+size]})
		p = p[11+size+4:]
	}
	return tags, nil
}

func TestWriteHeader(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHeader(&b); err != nil {
		t.Fatal(err)
	}
	want := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("header % x, want % x", b.Bytes(), want)
	}
}

func TestWriteTagBytes(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTag(&b, TagTypeVideo, 0x12345678, []byte{0xAA, 0xBB}); err != nil {
		t.Fatal(err)
	}
	want := []byte{
		9,       // type
		0, 0, 2, // size
		0x34, 0x56, 0x78, // timestamp low 24 bits
		0x12,    // timestamp extended
		0, 0, 0, // stream id
		0xAA, 0xBB,
		0, 0, 0, 13, // previous tag size = 11 + 2
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("tag % x, want % x", b.Bytes(), want)
	}
}

func TestWriteTagTooLarge(t *testing.T) {
	if err := WriteTag(io.Discard, TagTypeVideo, 0, make([]byte, MaxTagSize+1)); !errors.Is(err, ErrTagTooLarge) {
		t.Fatalf("err = %v, want ErrTagTooLarge", err)
	}
	if err := WriteTag(io.Discard, TagTypeVideo, 0, make([]byte, MaxTagSize)); err != nil {
		t.Fatalf("max size tag: %v", err)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, io.ErrClosedPipe
	}
	w.n--
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	if err := WriteHeader(&failWriter{}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("WriteHeader err = %v", err)
	}
	for n := range 3 { // fail the header, the body, the trailer
		if err := WriteTag(&failWriter{n: n}, TagTypeAudio, 0, []byte{1}); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("WriteTag failing at write %d: err = %v", n, err)
		}
	}
}

// TestRoundTrip writes tags and parses them back with readFLV and the tag header parsers.
func TestRoundTrip(t *testing.T) {
	in := []flvTag{
		{TagTypeScript, 0, []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 8, 0, 0, 0, 0, 0, 0, 9}},
		{TagTypeVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}},
		{TagTypeAudio, 0, []byte{0xAF, 0, 0x11, 0x90}},
		{TagTypeVideo, 33, []byte{0x17, 1, 0, 0, 0x42, 0, 0, 0, 1, 0x65}},
		{TagTypeVideo, 66, []byte{0x27, 1, 0xFF, 0xFF, 0xDE, 0, 0, 0, 1, 0x41}},
		{TagTypeAudio, 0xFFFFFF + 1, []byte{0xAF, 1, 0x21}},
		{TagTypeVideo, 0xFFFFFFFF, []byte{0x27, 2, 0, 0, 0}},
		{TagTypeVideo, 100, nil},
	}
	var b bytes.Buffer
	if err := WriteHeader(&b); err != nil {
		t.Fatal(err)
	}
	for _, tag := range in {
		if err := WriteTag(&b, tag.typ, tag.ts, tag.body); err != nil {
			t.Fatal(err)
		}
	}
	out, err := readFLV(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d tags back, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].typ != in[i].typ || out[i].ts != in[i].ts || !bytes.Equal(out[i].body, in[i].body) {
			t.Fatalf("tag %d: got %+v, want %+v", i, out[i], in[i])
		}
	}
	v, err := ParseVideoTagHeader(out[4].body)
	if err != nil || v.FrameType != 2 || v.CodecID != CodecIDAVC || v.AVCPacketType != 1 || v.CompositionTime != -34 {
		t.Fatalf("inter frame parsed back as %+v, %v", v, err)
	}
	a, err := ParseAudioTagHeader(out[2].body)
	if err != nil || !a.IsSequenceHeader() || a.SoundFormat != SoundFormatAAC || a.Channels() != 2 {
		t.Fatalf("aac sequence header parsed back as %+v, %v", a, err)
	}
}
