package pipeline

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
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
