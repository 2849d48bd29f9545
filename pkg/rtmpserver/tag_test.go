package rtmpserver

import (
	"errors"
	"testing"
)

func TestParseVideoTagHeader(t *testing.T) {
	cases := []struct {
		name      string
		in        []byte
		want      VideoTag
		err       bool
		seqHeader bool
		keyframe  bool
	}{
		{name: "empty", in: nil, err: true},
		{name: "avc truncated", in: []byte{0x17, 0, 0, 0}, err: true},
		{name: "avc sequence header", in: []byte{0x17, 0, 0, 0, 0, 1},
			want: VideoTag{FrameType: 1, CodecID: 7}, seqHeader: true},
		{name: "avc keyframe", in: []byte{0x17, 1, 0, 0, 0x21},
			want: VideoTag{FrameType: 1, CodecID: 7, AVCPacketType: 1, CompositionTime: 33}, keyframe: true},
		{name: "avc inter negative cts", in: []byte{0x27, 1, 0xFF, 0xFF, 0xFF},
			want: VideoTag{FrameType: 2, CodecID: 7, AVCPacketType: 1, CompositionTime: -1}},
		{name: "avc end of sequence on keyframe", in: []byte{0x17, 2, 0, 0, 0},
			want: VideoTag{FrameType: 1, CodecID: 7, AVCPacketType: 2}},
		{name: "legacy hevc keyframe", in: []byte{0x1C, 1, 0, 0, 0},
			want: VideoTag{FrameType: 1, CodecID: 12, AVCPacketType: 1}, keyframe: true},
		{name: "vp6 keyframe has no packet type", in: []byte{0x14},
			want: VideoTag{FrameType: 1, CodecID: 4}, keyframe: true},
		{name: "sorenson inter", in: []byte{0x22, 9},
			want: VideoTag{FrameType: 2, CodecID: 2}},
		{name: "enhanced hevc sequence start", in: []byte{0x90, 'h', 'v', 'c', '1', 1, 2},
			want: VideoTag{Enhanced: true, FrameType: 1, FourCC: "hvc1"}, seqHeader: true},
		{name: "enhanced hevc coded frames with cts", in: []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 5},
			want: VideoTag{Enhanced: true, FrameType: 1, AVCPacketType: 1, FourCC: "hvc1", CompositionTime: 5}, keyframe: true},
		{name: "enhanced hevc coded frames truncated cts", in: []byte{0x91, 'h', 'v', 'c', '1', 0, 0}, err: true},
		{name: "enhanced av1 coded frames x", in: []byte{0xA3, 'a', 'v', '0', '1'},
			want: VideoTag{Enhanced: true, FrameType: 2, AVCPacketType: 3, FourCC: "av01"}},
		{name: "enhanced av1 keyframe no cts", in: []byte{0x91, 'a', 'v', '0', '1'},
			want: VideoTag{Enhanced: true, FrameType: 1, AVCPacketType: 1, FourCC: "av01"}, keyframe: true},
		{name: "enhanced truncated fourcc", in: []byte{0x90, 'h', 'v'}, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVideoTagHeader(tc.in)
			if tc.err {
				if !errors.Is(err, ErrShortTag) {
					t.Fatalf("err = %v, want ErrShortTag", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.IsSequenceHeader() != tc.seqHeader || got.IsKeyframe() != tc.keyframe {
				t.Fatalf("sequence header %v keyframe %v, want %v %v",
					got.IsSequenceHeader(), got.IsKeyframe(), tc.seqHeader, tc.keyframe)
			}
		})
	}
}

func TestParseAudioTagHeader(t *testing.T) {
	cases := []struct {
		name      string
		in        []byte
		want      AudioTag
		err       bool
		seqHeader bool
	}{
		{name: "empty", in: []byte{}, err: true},
		{name: "aac truncated", in: []byte{0xAF}, err: true},
		{name: "aac sequence header", in: []byte{0xAF, 0, 0x11, 0x90},
			want: AudioTag{SoundFormat: 10, SoundRate: 3, SoundSize: 1, SoundType: 1}, seqHeader: true},
		{name: "aac raw mono", in: []byte{0xAE, 1, 0x21},
			want: AudioTag{SoundFormat: 10, SoundRate: 3, SoundSize: 1, SoundType: 0, AACPacketType: 1}},
		{name: "mp3 22k 8-bit", in: []byte{0x28},
			want: AudioTag{SoundFormat: 2, SoundRate: 2, SoundSize: 0, SoundType: 0}},
		{name: "enhanced opus sequence start", in: []byte{0x90, 'O', 'p', 'u', 's', 1},
			want: AudioTag{SoundFormat: 9, Enhanced: true, FourCC: "Opus"}, seqHeader: true},
		{name: "enhanced opus coded frames", in: []byte{0x91, 'O', 'p', 'u', 's'},
			want: AudioTag{SoundFormat: 9, Enhanced: true, FourCC: "Opus", AACPacketType: 1}},
		{name: "enhanced truncated", in: []byte{0x90, 'O'}, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAudioTagHeader(tc.in)
			if tc.err {
				if !errors.Is(err, ErrShortTag) {
					t.Fatalf("err = %v, want ErrShortTag", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.IsSequenceHeader() != tc.seqHeader {
				t.Fatalf("IsSequenceHeader = %v, want %v", got.IsSequenceHeader(), tc.seqHeader)
			}
		})
	}
}

func TestStreamKey(t *testing.T) {
	cases := map[string]string{
		"abc":               "abc",
		"live/abc":          "abc",
		"abc?token=1&x=/y":  "abc",
		"a/b/c?":            "c",
		"":                  "",
		"abc/":              "",
		"?only=query":       "",
		"/abs/key?q":        "key",
		"ключ/секрет?token": "секрет",
	}
	for in, want := range cases {
		if got := streamKey(in); got != want {
			t.Errorf("streamKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"live_1234567890abcdef": "live…",
		"abcdefgh":              "abcd…",
		"abcdef":                "abc…",
		"ab":                    "a…",
		"a":                     "…",
		"":                      "…",
		"секретныйключ":         "секр…",
	}
	for in, want := range cases {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorSummary(t *testing.T) {
	dump := "Server closed by error: Err = Random echo is not matched\n" +
		"github.com/yutopp/go-rtmp/handshake.HandshakeWithClient\n" +
		"\t/mod/handshake.go:104\n" +
		"runtime.goexit\n" +
		"\t/go/src/runtime/asm_amd64.s:1700\n" +
		"Failed to handshake\n" +
		"github.com/yutopp/go-rtmp.(*serverConn).Serve\n" +
		"\t/mod/server_conn.go:32"
	if got, want := errorSummary(dump), "Failed to handshake: Random echo is not matched"; got != want {
		t.Fatalf("errorSummary = %q, want %q", got, want)
	}
	if got := errorSummary("Server closed by error: Err = EOF"); got != "EOF" {
		t.Fatalf("errorSummary(EOF) = %q", got)
	}
}
