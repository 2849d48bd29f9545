package pipeline

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
