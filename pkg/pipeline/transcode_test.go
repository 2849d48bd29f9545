package pipeline

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediaworker/mediaworker/test/mediatest"
)

func TestTranscoderToMP4(t *testing.T) {
	video := mediatest.H264(t, 640, 360, 30, 4)
	audio := mediatest.Opus(t, 440, 4)
	out := filepath.Join(t.TempDir(), "out.mp4")
	tr, err := NewTranscoder(TranscodePlan{VideoIn: "h264", AudioIn: true, Width: 1280, Height: 720, Framerate: 30,
		VideoKbps: 3000, Profile: "main", AudioCodec: "aac", AudioKbps: 128, AudioRate: 48000, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	// interleave by time, as a room delivers them
	vi, ai := 0, 0
	for vi < len(video) || ai < len(audio) {
		if ai >= len(audio) || (vi < len(video) && video[vi].PTS <= audio[ai].PTS) {
			if err := tr.PushVideo(video[vi].Data, video[vi].PTS); err != nil {
				t.Fatal(err)
			}
			vi++
		} else {
			if err := tr.PushAudio(audio[ai].Data, audio[ai].PTS); err != nil {
				t.Fatal(err)
			}
			ai++
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Streams []struct {
			CodecName     string `json:"codec_name"`
			Width, Height int
			AvgFrameRate  string `json:"avg_frame_rate"`
			SampleRate    string `json:"sample_rate"`
		}
		Format struct{ Duration string }
	}
	_ = json.Unmarshal(probe, &p)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 1280 || p.Streams[0].Height != 720 ||
		p.Streams[1].CodecName != "aac" || p.Streams[1].SampleRate != "48000" {
		t.Fatalf("streams %s", probe)
	}
	if d, _ := strconv.ParseFloat(p.Format.Duration, 64); d < 3.5 || d > 4.5 {
		t.Fatalf("duration %.2f, want ≈4", d)
	}
}

func TestTranscoderAudioOnly(t *testing.T) {
	audio := mediatest.Opus(t, 440, 3)
	for _, tc := range []struct{ container, codec, want string }{{"ogg", "opus", "opus"}, {"mp3", "mp3", "mp3"}, {"mp4", "aac", "aac"}} {
		t.Run(tc.container, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out."+tc.container)
			tr, err := NewTranscoder(TranscodePlan{AudioIn: true, AudioCodec: tc.codec, AudioKbps: 96, AudioRate: 48000, Container: tc.container, Output: out})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range audio {
				_ = tr.PushAudio(a.Data, a.PTS)
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			probe, _ := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "csv=p=0", out).Output()
			lines := strings.Fields(string(probe))
			if len(lines) < 2 || lines[0] != tc.want {
				t.Fatalf("ffprobe: %q", probe)
			}
			if d, _ := strconv.ParseFloat(lines[len(lines)-1], 64); d < 2.5 || d > 3.5 {
				t.Fatalf("duration %v", d)
			}
		})
	}
}

func TestEncoderThreads(t *testing.T) {
	for _, c := range []struct{ w, h, fps, want int }{
		{1280, 720, 30, 1}, {720, 1280, 30, 1}, {640, 360, 30, 1}, {1280, 720, 60, 2},
		{1920, 1080, 30, 3}, {1920, 1080, 60, 5}, {3840, 2160, 60, 6},
	} {
		if got := encoderThreads(c.w, c.h, c.fps); got != c.want {
			t.Errorf("encoderThreads(%dx%d@%d) = %d, want %d", c.w, c.h, c.fps, got, c.want)
		}
	}
}

// TestTranscoderLateVideo: a camera published after the recording started replaces the black
// picture from its first frame on, scaled to fit (a 640x360 camera fills the 1280x720 canvas).
func TestTranscoderLateVideo(t *testing.T) {
	audio := mediatest.Opus(t, 440, 3)
	video := mediatest.SolidH264(t, "red", 640, 360, 30, 2)
	out := filepath.Join(t.TempDir(), "late.mp4")
	tr, err := NewTranscoder(TranscodePlan{LateVideo: true, AudioIn: true, Width: 1280, Height: 720, Framerate: 30,
		VideoKbps: 3000, Profile: "main", AudioCodec: "aac", AudioKbps: 128, AudioRate: 48000, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	// In real time, as a room delivers them: audio from 0 s, the camera from 1 s.
	start := time.Now()
	vi, ai, added := 0, 0, false
	for vi < len(video) || ai < len(audio) {
		vpts := time.Second + time.Duration(vi)*time.Second/30
		if ai >= len(audio) || (vi < len(video) && vpts <= audio[ai].PTS) {
			time.Sleep(time.Until(start.Add(vpts)))
			if !added {
				if err := tr.AddVideo("h264"); err != nil {
					t.Fatal(err)
				}
				added = true
			}
			if err := tr.PushVideo(video[vi].Data, vpts); err != nil {
				t.Fatal(err)
			}
			vi++
		} else {
			time.Sleep(time.Until(start.Add(audio[ai].PTS)))
			if err := tr.PushAudio(audio[ai].Data, audio[ai].PTS); err != nil {
				t.Fatal(err)
			}
			ai++
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if px := mediatest.Pixels(t, out, 0.5); !mediatest.Dark(px[0]) || !mediatest.Dark(px[4]) {
		t.Fatalf("before the camera: want black, got %v", px)
	}
	if px := mediatest.Pixels(t, out, 2.2); !mediatest.AllColor(px, "red") {
		t.Fatalf("after the camera: want red everywhere (640x360 scaled to fill 1280x720), got %v", px)
	}
	if err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", out, "-f", "null", "-").Run(); err != nil {
		t.Fatalf("output does not decode cleanly: %v", err)
	}
}

// TestH264DecoderByProfile: a Constrained Baseline input is decoded by OpenH264 and a High one by
// libav (picked from the stream's SPS), and either is transcoded whole and intact.
func TestH264DecoderByProfile(t *testing.T) {
	for _, c := range []struct {
		profile, want, not string
		file               func(testing.TB, int, int, int, int) (string, []mediatest.Frame)
	}{
		{"baseline", "openh264dec", "avdec_h264", mediatest.BaselineH264File},
		{"high", "avdec_h264", "openh264dec", mediatest.H264File},
	} {
		t.Run(c.profile, func(t *testing.T) {
			src, frames := c.file(t, 640, 360, 30, 2)
			out := filepath.Join(t.TempDir(), "out.mp4")
			tr, err := NewTranscoder(TranscodePlan{VideoIn: "h264", Width: 640, Height: 360, Framerate: 30,
				VideoKbps: 3000, Profile: "main", Output: out})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				if err := tr.PushVideo(f.Data, f.PTS); err != nil {
					t.Fatal(err)
				}
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			var factories []string // the picked decoder stays in the stopped pipeline
			els, _ := tr.g.pipeline.GetElementsRecursive()
			for _, el := range els {
				factories = append(factories, el.GetFactory().GetName())
			}
			if got := strings.Join(factories, " "); !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
				t.Fatalf("elements %s: want %s, not %s", got, c.want, c.not)
			}
			if converting := convertingElements(t, tr.g); len(converting) > 0 { // same size and format
				t.Errorf("the decoded picture is converted pixel by pixel by %v", converting)
			}
			if v := mediatest.SSIM(t, "[0:v][1:v]ssim", "-i", out, "-i", src); v < 0.95 {
				t.Fatalf("SSIM %.4f of the transcode against its source, want ≥ 0.95", v)
			}
		})
	}
}
