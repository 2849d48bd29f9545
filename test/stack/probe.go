package stack

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Probe is what ffprobe says about a media file.
type Probe struct {
	Streams []struct {
		CodecName  string `json:"codec_name"`
		CodecType  string `json:"codec_type"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

// Duration is the container duration in seconds.
func (p *Probe) Duration() float64 {
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return d
}

// FFprobe runs ffprobe on path.
func FFprobe(t testing.TB, path string) *Probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	p := &Probe{}
	if err := json.Unmarshal(out, p); err != nil {
		t.Fatalf("ffprobe json: %v", err)
	}
	return p
}

// DecodeErrors decodes the whole file and returns what ffmpeg complained about ("" = clean).
func DecodeErrors(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return err.Error() + ": " + string(out)
	}
	return strings.TrimSpace(string(out))
}
