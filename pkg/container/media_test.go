package container

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test media is made with ffmpeg at test time and read back into samples the way a depacketizer
// hands them over.

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

var (
	inputsMu sync.Mutex
	inputs   = map[string][]Sample{}
)

// input returns the named test stream, encoding it on first use.
func input(t *testing.T, name string) []Sample {
	t.Helper()
	inputsMu.Lock()
	defer inputsMu.Unlock()
	if s, ok := inputs[name]; ok {
		return s
	}
	video := []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "3", "-g", "30", "-pix_fmt", "yuv420p"}
	p := filepath.Join(t.TempDir(), name)
	var s []Sample
	switch name {
	case "opus":
		ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3", "-c:a", "libopus", "-frame_duration", "20", "-f", "ogg", p)
		s = oggPackets(t, p)
	case "h264": // constrained baseline, as WebRTC sends
		ffmpeg(t, append(video, "-c:v", "libx264", "-profile:v", "baseline", "-bsf:v", "h264_mp4toannexb", "-f", "h264", p)...)
		s = accessUnits(t, p, 0, false)
	case "h264 slices": // High profile, two slices a picture, with AUDs
		ffmpeg(t, append(video, "-c:v", "libx264", "-bf", "0", "-x264-params", "slices=2:aud=1", "-f", "h264", p)...)
		s = accessUnits(t, p, 0, true)
	case "h264 4:4:4": // High 4:4:4 Predictive (profile 244), whose avcC has no High-profile trailer
		ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-bf", "0", "-f", "h264", p)
		s = accessUnits(t, p, 0, false)
	case "h264 640x480":
		ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=640x480:rate=30", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "baseline", "-g", "30", "-f", "h264", p)
		s = accessUnits(t, p, 3*time.Second, false)
	case "vp8":
		ffmpeg(t, append(video, "-c:v", "libvpx", "-deadline", "realtime", "-f", "ivf", p)...)
		s = ivfFrames(t, p)
	case "vp9":
		ffmpeg(t, append(video, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-f", "ivf", p)...)
		s = ivfFrames(t, p)
	default:
		t.Fatalf("no input %q", name)
	}
	if len(s) < 25 {
		t.Fatalf("%s: only %d samples", name, len(s))
	}
	inputs[name] = s
	return s
}

func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-y", "-v", "error"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// accessUnits splits an Annex-B file into access units at 30 fps (ITU-T H.264 §7.4.1.2.3: after a
// picture, an AUD, SPS, PPS or SEI, or a slice with first_mb_in_slice 0, starts the next one).
// perNALU makes every NAL unit its own sample sharing its picture's PTS, as RTP single NAL unit
// packets would arrive.
func accessUnits(t *testing.T, path string, offset time.Duration, perNALU bool) []Sample {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Sample
	pic, vcl := -1, false
	for _, n := range splitAnnexB(b) {
		typ := naluType(n)
		isVCL := typ == naluSlice || typ == naluIDR
		first := isVCL && len(n) > 1 && n[1]&0x80 != 0 // ue(v) first_mb_in_slice 0 is a single 1 bit
		if pic < 0 || (vcl && (first || typ == naluAUD || typ == naluSPS || typ == naluPPS || typ == naluSEI)) {
			pic, vcl = pic+1, false
		}
		vcl = vcl || isVCL
		out = append(out, Sample{Data: append([]byte{0, 0, 0, 1}, n...), PTS: offset + time.Duration(pic)*time.Second/30, Keyframe: typ == naluIDR})
	}
	if perNALU {
		return out
	}
	var aus []Sample
	for _, s := range out {
		if n := len(aus); n > 0 && aus[n-1].PTS == s.PTS {
			aus[n-1].Data = append(aus[n-1].Data, s.Data...)
			aus[n-1].Keyframe = aus[n-1].Keyframe || s.Keyframe
			continue
		}
		aus = append(aus, s)
	}
	return aus
}

// ivfFrames reads IVF: a 32-byte file header, then frames of a 12-byte header (LE size, LE pts).
func ivfFrames(t *testing.T, path string) []Sample {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Sample
	for i := 32; i+12 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[i:]))
		pts := binary.LittleEndian.Uint64(b[i+4:])
		out = append(out, Sample{Data: b[i+12 : i+12+n], PTS: time.Duration(pts) * time.Second / 30})
		i += 12 + n
	}
	return out
}

// oggPackets reads the Opus packets of an Ogg file (RFC 3533 §6), skipping the two header packets.
func oggPackets(t *testing.T, path string) []Sample {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	var cur []byte
	for i := 0; i+27 <= len(b) && string(b[i:i+4]) == "OggS"; {
		n := int(b[i+26])
		segs, body := b[i+27:i+27+n], b[i+27+n:]
		off := 0
		for _, s := range segs {
			cur = append(cur, body[off:off+int(s)]...)
			off += int(s)
			if s < 255 {
				packets, cur = append(packets, cur), nil
			}
		}
		i += 27 + n + off
	}
	var out []Sample
	for i, p := range packets[2:] {
		out = append(out, Sample{Data: p, PTS: time.Duration(i) * 20 * time.Millisecond, Keyframe: true})
	}
	return out
}

type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		Frames    string `json:"nb_read_frames"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// ffprobe decodes every frame (-count_frames) and reports the stream, the container's duration
// (-1 when it has none) and how many frames decoded.
func ffprobe(t *testing.T, path string) (p probe, duration float64, frames int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) != 1 {
		t.Fatalf("ffprobe: %v %s", err, out)
	}
	duration, err = strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		duration = -1
	}
	frames, _ = strconv.Atoi(p.Streams[0].Frames)
	return p, duration, frames
}

// decodeErrors is what ffmpeg complains about while decoding the whole file.
func decodeErrors(t *testing.T, path string) string {
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return err.Error() + ": " + string(out)
	}
	return strings.TrimSpace(string(out))
}

// pcmSeconds decodes audio and measures it.
func pcmSeconds(t *testing.T, path string) float64 {
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return float64(len(out)) / 2 / 48000
}

// write feeds samples to a new writer on a file. Unless seekable the writer sees a plain
// io.Writer, as behind a byte-counting wrapper. Without finish the file is left as a killed
// process leaves it.
func write(t *testing.T, c Codec, samples []Sample, seekable, finish bool) string {
	t.Helper()
	ext, err := Extension(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out"+ext)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out io.Writer = f
	if !seekable {
		out = plain{f}
	}
	w, err := New(c, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if err := w.WriteSample(s); err != nil {
			t.Fatal(err)
		}
	}
	if finish {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// plain hides every method but Write.
type plain struct{ w io.Writer }

func (p plain) Write(b []byte) (int, error) { return p.w.Write(b) }
