package egress

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
	"github.com/mediaworker/mediaworker/pkg/source"
	"github.com/mediaworker/mediaworker/test/mediatest"
)

// TestEncodingsProduceWhatTheyPromise encodes 2 s through every preset and a custom 1080p60
// H264_HIGH with the real pipeline and checks the file with ffprobe: codec, profile, size, frame rate.
func TestEncodingsProduceWhatTheyPromise(t *testing.T) {
	video := mediatest.H264(t, 640, 360, 30, 2)
	audio := mediatest.Opus(t, 440, 2)
	type want struct {
		w, h    int
		fps     string
		profile string
	}
	cases := map[string]struct {
		preset livekit.EncodingOptionsPreset
		adv    *livekit.EncodingOptions
		want   want
	}{
		"custom 1080p60 high": {adv: &livekit.EncodingOptions{Width: 1920, Height: 1080, Framerate: 60, VideoBitrate: 6000,
			VideoCodec: livekit.VideoCodec_H264_HIGH, AudioCodec: livekit.AudioCodec_AAC, AudioFrequency: 48000}, want: want{1920, 1080, "60/1", "High"}},
		"custom baseline": {adv: &livekit.EncodingOptions{Width: 640, Height: 480, Framerate: 15, VideoCodec: livekit.VideoCodec_H264_BASELINE},
			want: want{640, 480, "15/1", "Constrained Baseline"}},
	}
	for v, name := range livekit.EncodingOptionsPreset_name {
		p := livekit.EncodingOptionsPreset(v)
		e := presets[p]
		cases[name] = struct {
			preset livekit.EncodingOptionsPreset
			adv    *livekit.EncodingOptions
			want   want
		}{preset: p, want: want{int(e.Width), int(e.Height), fmt.Sprintf("%d/1", e.Framerate), "Main"}}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			enc, err := ResolveEncoding(tc.preset, tc.adv, livekit.EncodedFileType_MP4, false)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out.mp4")
			plan, err := transcodePlan(enc, source.Media{VideoMime: "video/H264", Audio: true}, "mp4", out)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := pipeline.NewTranscoder(plan)
			if err != nil {
				t.Fatal(err)
			}
			ai := 0
			for _, f := range video {
				_ = tr.PushVideo(f.Data, f.PTS)
				for ; ai < len(audio) && audio[ai].PTS <= f.PTS; ai++ {
					_ = tr.PushAudio(audio[ai].Data, audio[ai].PTS)
				}
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=codec_name,profile,width,height,r_frame_rate", "-of", "json", out).Output()
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Streams []struct {
					Codec         string `json:"codec_name"`
					Prof          string `json:"profile"`
					Width, Height int
					Rate          string `json:"r_frame_rate"`
				}
			}
			_ = json.Unmarshal(b, &p)
			if len(p.Streams) != 1 {
				t.Fatalf("ffprobe: %s", b)
			}
			s := p.Streams[0]
			if s.Codec != "h264" || s.Width != tc.want.w || s.Height != tc.want.h || s.Rate != tc.want.fps || !strings.EqualFold(s.Prof, tc.want.profile) {
				t.Fatalf("got %s %s %dx%d @%s, want %+v", s.Codec, s.Prof, s.Width, s.Height, s.Rate, tc.want)
			}
		})
	}
}
