package container

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func needFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg is required (make deps installs it)")
		}
		t.Skip("ffmpeg not installed")
	}
}

func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-y", "-v", "error"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// h264Samples makes 3 s of 320x240 30 fps H.264 with AUDs and splits it into access units.
func h264Samples(t *testing.T, dir string) []Sample {
	p := filepath.Join(dir, "in.h264")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "3", "-c:v", "libx264", "-bf", "0", "-g", "30",
		"-x264-params", "aud=1", "-bsf:v", "h264_mp4toannexb", "-f", "h264", p)
	b, _ := os.ReadFile(p)
	aud := []byte{0, 0, 0, 1, 9}
	var out []Sample
	for i, au := range bytes.Split(b, aud) {
		if len(au) == 0 {
			continue
		}
		au = append(append([]byte{}, aud...), au...)
		key := bytes.Contains(au, []byte{0, 0, 1, 0x65}) || bytes.Contains(au, []byte{0, 0, 1, 0x25})
		out = append(out, Sample{Data: au, PTS: time.Duration(i-1) * time.Second / 30, Keyframe: key})
	}
	return out
}

// ivfSamples makes 3 s of VP8/VP9 and reads the IVF frames.
func ivfSamples(t *testing.T, dir, codec string) []Sample {
	p := filepath.Join(dir, "in.ivf")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "3", "-c:v", codec, "-g", "30", "-deadline", "realtime", "-f", "ivf", p)
	b, _ := os.ReadFile(p)
	var out []Sample
	for i := 32; i+12 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[i:]))
		pts := binary.LittleEndian.Uint64(b[i+4:])
		data := b[i+12 : i+12+n]
		key := data[0]&1 == 0
		if codec != "libvpx" {
			key = len(data) > 0 && data[0]&0xC6 == 0x82 // VP9 profile 0 key frame, shown
		}
		out = append(out, Sample{Data: data, PTS: time.Duration(pts) * time.Second / 30, Keyframe: key})
		i += 12 + n
	}
	return out
}

// opusSamples makes 3 s of Opus in Ogg and reads its packets back.
func opusPackets(t *testing.T, dir string) []Sample {
	p := filepath.Join(dir, "in.ogg")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3", "-c:a", "libopus", "-frame_duration", "20", "-f", "ogg", p)
	b, _ := os.ReadFile(p)
	var packets [][]byte
	var cur []byte
	for i := 0; i+27 <= len(b); {
		n := int(b[i+26])
		segs := b[i+27 : i+27+n]
		body := b[i+27+n:]
		off := 0
		for _, s := range segs {
			cur = append(cur, body[off:off+int(s)]...)
			off += int(s)
			if s < 255 {
				packets = append(packets, cur)
				cur = nil
			}
		}
		i += 27 + n + off
	}
	var out []Sample
	for i, pk := range packets[2:] { // skip OpusHead, OpusTags
		out = append(out, Sample{Data: pk, PTS: time.Duration(i) * 20 * time.Millisecond, Keyframe: true})
	}
	return out
}

type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, path string) (probe, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p probe
	_ = json.Unmarshal(out, &p)
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return p, d
}

func decodeErrors(path string) string {
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return err.Error() + string(out)
	}
	return strings.TrimSpace(string(out))
}

func TestWriters(t *testing.T) {
	needFFmpeg(t)
	tests := []struct {
		name   string
		codec  Codec
		want   string
		w, h   int
		source func(*testing.T, string) []Sample
	}{
		{"opus to ogg", CodecOpus, "opus", 0, 0, opusPackets},
		{"h264 to fmp4", CodecH264, "h264", 320, 240, h264Samples},
		{"vp8 to webm", CodecVP8, "vp8", 320, 240, func(t *testing.T, d string) []Sample { return ivfSamples(t, d, "libvpx") }},
		{"vp9 to webm", CodecVP9, "vp9", 320, 240, func(t *testing.T, d string) []Sample { return ivfSamples(t, d, "libvpx-vp9") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			samples := tc.source(t, dir)
			if len(samples) < 50 {
				t.Fatalf("only %d input samples", len(samples))
			}
			ext, _ := Extension(tc.codec)
			path := filepath.Join(dir, "out"+ext)
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w, err := New(tc.codec, f)
			if err != nil {
				t.Fatal(err)
			}
			var crash []byte // the file as a SIGKILL after 2 s would leave it
			for _, s := range samples {
				if err := w.WriteSample(s); err != nil {
					t.Fatal(err)
				}
				if crash == nil && s.PTS >= 2*time.Second {
					crash, _ = os.ReadFile(path)
				}
			}
			if err := firstErr(w.Close(), f.Close()); err != nil {
				t.Fatal(err)
			}
			p, d := ffprobe(t, path)
			if len(p.Streams) != 1 || p.Streams[0].CodecName != tc.want || p.Streams[0].Width != tc.w || p.Streams[0].Height != tc.h {
				t.Fatalf("streams %+v", p.Streams)
			}
			if span := samples[len(samples)-1].PTS.Seconds(); d < span-0.1 || d > span+0.15 {
				t.Fatalf("duration %.3f s, samples span %.3f s", d, span)
			}
			if e := decodeErrors(path); e != "" {
				t.Fatalf("decode: %s", e)
			}
			cut := filepath.Join(dir, "crash"+ext)
			_ = os.WriteFile(cut, crash, 0o644)
			if e := decodeErrors(cut); e != "" {
				t.Fatalf("file cut at a crash does not decode: %s", e)
			}
			frames := countFrames(t, cut)
			if frames < int(1.0/(samples[1].PTS-samples[0].PTS).Seconds()) {
				t.Fatalf("file cut at 2 s holds only %d frames", frames)
			}
		})
	}
}

func countFrames(t *testing.T, path string) int {
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("count packets: %v", err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func TestUnknownCodec(t *testing.T) {
	if _, err := New("av1", &bytes.Buffer{}); err == nil {
		t.Fatal("av1 accepted")
	}
	if _, err := Extension("av1"); err == nil {
		t.Fatal("av1 extension")
	}
}

func TestOpusSamples(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want int
	}{
		{"celt 20ms", []byte{0xfc}, 960}, {"silk 60ms", []byte{0x18}, 2880}, {"two frames 10ms", []byte{0xf5}, 960},
		{"code 3 three 20ms", []byte{0xfb, 0x03}, 2880}, {"empty", nil, 0},
	}
	for _, tc := range tests {
		if got := opusSamples(tc.p); got != tc.want {
			t.Errorf("%s: %d want %d", tc.name, got, tc.want)
		}
	}
}

func FuzzParsers(f *testing.F) {
	f.Add([]byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x01, 0x3f, 0x00, 0xef})
	f.Fuzz(func(t *testing.T, b []byte) {
		vp8Size(b)
		vp9Size(b)
		opusSamples(b)
		avcSample(b)
	})
}
