package ingress

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

const (
	low    = livekit.VideoQuality_LOW
	medium = livekit.VideoQuality_MEDIUM
	high   = livekit.VideoQuality_HIGH
)

func near(got, want int) bool {
	return math.Abs(float64(got-want)) <= 0.01*float64(want)
}

// checkLayerList compares dimensions and qualities exactly and bitrates within 1%.
func checkLayerList(t *testing.T, got, want []Layer) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d layers %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Quality != w.Quality || g.Width != w.Width || g.Height != w.Height || !near(g.Bitrate, w.Bitrate) {
			t.Errorf("layer %d = %+v, want %+v (bitrate ±1%%)", i, g, w)
		}
	}
}

func presetInfo(p livekit.IngressVideoEncodingPreset) *livekit.IngressInfo {
	return &livekit.IngressInfo{Video: &livekit.IngressVideoOptions{
		EncodingOptions: &livekit.IngressVideoOptions_Preset{Preset: p},
	}}
}

func TestResolveVideoPresets(t *testing.T) {
	type P = livekit.IngressVideoEncodingPreset
	three := func(w, h, b2, b1, b0 int) []Layer {
		return []Layer{{low, w / 4, h / 4, b0}, {medium, w / 2, h / 2, b1}, {high, w, h, b2}}
	}
	cases := []struct {
		name   string
		preset P
		fps    float64
		layers []Layer
	}{
		{"720p 3 layers", livekit.IngressVideoEncodingPreset_H264_720P_30FPS_3_LAYERS, 30, three(1280, 720, 1_900_000, 671_000, 237_000)},
		{"1080p 3 layers", livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_3_LAYERS, 30, three(1920, 1080, 3_500_000, 1_237_000, 437_000)},
		{"540p 2 layers", livekit.IngressVideoEncodingPreset_H264_540P_25FPS_2_LAYERS, 25, []Layer{{low, 480, 270, 353_000}, {high, 960, 540, 1_000_000}}},
		{"720p 1 layer", livekit.IngressVideoEncodingPreset_H264_720P_30FPS_1_LAYER, 30, []Layer{{high, 1280, 720, 1_900_000}}},
		{"1080p 1 layer", livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_1_LAYER, 30, []Layer{{high, 1920, 1080, 3_500_000}}},
		{"720p 3 layers high motion", livekit.IngressVideoEncodingPreset_H264_720P_30FPS_3_LAYERS_HIGH_MOTION, 30, three(1280, 720, 2_500_000, 883_000, 312_000)},
		{"1080p 3 layers high motion", livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_3_LAYERS_HIGH_MOTION, 30, three(1920, 1080, 4_500_000, 1_590_000, 562_000)},
		{"540p 2 layers high motion", livekit.IngressVideoEncodingPreset_H264_540P_25FPS_2_LAYERS_HIGH_MOTION, 25, []Layer{{low, 480, 270, 459_000}, {high, 960, 540, 1_300_000}}},
		{"720p 1 layer high motion", livekit.IngressVideoEncodingPreset_H264_720P_30FPS_1_LAYER_HIGH_MOTION, 30, []Layer{{high, 1280, 720, 2_500_000}}},
		{"1080p 1 layer high motion", livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_1_LAYER_HIGH_MOTION, 30, []Layer{{high, 1920, 1080, 4_500_000}}},
	}
	if len(cases) != len(livekit.IngressVideoEncodingPreset_name) {
		t.Fatalf("%d cases for %d preset values", len(cases), len(livekit.IngressVideoEncodingPreset_name))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Resolve(presetInfo(tc.preset))
			if err != nil {
				t.Fatal(err)
			}
			v := plan.Video
			if v.Codec != livekit.VideoCodec_H264_BASELINE || v.FrameRate != tc.fps || v.KeyFrameInterval != 2*time.Second {
				t.Errorf("codec %v fps %v gop %v", v.Codec, v.FrameRate, v.KeyFrameInterval)
			}
			checkLayerList(t, v.Layers, tc.layers)
		})
	}
}

func TestResolveDefaults(t *testing.T) {
	for name, info := range map[string]*livekit.IngressInfo{
		"nil info":    nil,
		"nil options": {},
		"empty options": {
			Video: &livekit.IngressVideoOptions{},
			Audio: &livekit.IngressAudioOptions{},
		},
	} {
		t.Run(name, func(t *testing.T) {
			plan, err := Resolve(info)
			if err != nil {
				t.Fatal(err)
			}
			checkLayerList(t, plan.Video.Layers, []Layer{{low, 320, 180, 237_500}, {medium, 640, 360, 671_751}, {high, 1280, 720, 1_900_000}})
			if plan.Video.Source != livekit.TrackSource_CAMERA || plan.Video.Name != "" {
				t.Errorf("video name %q source %v", plan.Video.Name, plan.Video.Source)
			}
			want := AudioPlan{Bitrate: 96_000, Channels: 2, DTX: true, Source: livekit.TrackSource_MICROPHONE}
			if plan.Audio != want {
				t.Errorf("audio %+v, want %+v", plan.Audio, want)
			}
		})
	}
}

func TestResolveAudio(t *testing.T) {
	opts := func(o *livekit.IngressAudioEncodingOptions) *livekit.IngressAudioOptions {
		return &livekit.IngressAudioOptions{EncodingOptions: &livekit.IngressAudioOptions_Options{Options: o}}
	}
	preset := func(p livekit.IngressAudioEncodingPreset) *livekit.IngressAudioOptions {
		return &livekit.IngressAudioOptions{EncodingOptions: &livekit.IngressAudioOptions_Preset{Preset: p}}
	}
	cases := []struct {
		name string
		in   *livekit.IngressAudioOptions
		want AudioPlan
	}{
		{"stereo preset", preset(livekit.IngressAudioEncodingPreset_OPUS_STEREO_96KBPS), AudioPlan{96_000, 2, true, "", livekit.TrackSource_MICROPHONE}},
		{"mono preset", preset(livekit.IngressAudioEncodingPreset_OPUS_MONO_64KBS), AudioPlan{64_000, 1, true, "", livekit.TrackSource_MICROPHONE}},
		{"custom empty", opts(&livekit.IngressAudioEncodingOptions{}), AudioPlan{96_000, 2, true, "", livekit.TrackSource_MICROPHONE}},
		{"custom mono default bitrate", opts(&livekit.IngressAudioEncodingOptions{Channels: 1}), AudioPlan{64_000, 1, true, "", livekit.TrackSource_MICROPHONE}},
		{"custom bitrate, dtx off", opts(&livekit.IngressAudioEncodingOptions{AudioCodec: livekit.AudioCodec_OPUS, Bitrate: 128_000, DisableDtx: true}), AudioPlan{128_000, 2, false, "", livekit.TrackSource_MICROPHONE}},
		{"name and source kept", &livekit.IngressAudioOptions{Name: "mix", Source: livekit.TrackSource_SCREEN_SHARE_AUDIO}, AudioPlan{96_000, 2, true, "mix", livekit.TrackSource_SCREEN_SHARE_AUDIO}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Resolve(&livekit.IngressInfo{Audio: tc.in})
			if err != nil {
				t.Fatal(err)
			}
			if plan.Audio != tc.want {
				t.Errorf("got %+v, want %+v", plan.Audio, tc.want)
			}
		})
	}
}

func customVideo(o *livekit.IngressVideoEncodingOptions) *livekit.IngressInfo {
	return &livekit.IngressInfo{Video: &livekit.IngressVideoOptions{
		Name: "cam", Source: livekit.TrackSource_SCREEN_SHARE,
		EncodingOptions: &livekit.IngressVideoOptions_Options{Options: o},
	}}
}

func TestResolveCustomVideo(t *testing.T) {
	cases := []struct {
		name   string
		in     *livekit.IngressVideoEncodingOptions
		codec  livekit.VideoCodec
		fps    float64
		layers []Layer
	}{
		{
			name: "no layers", in: &livekit.IngressVideoEncodingOptions{},
			codec: livekit.VideoCodec_H264_BASELINE, fps: 30,
			// exact numbers of the official presets_test.go
			layers: []Layer{{low, 320, 180, 212_500}, {medium, 640, 360, 601_040}, {high, 1280, 720, 1_700_000}},
		},
		{
			name: "bitrate 0 from the reference model, sorted by quality",
			in: &livekit.IngressVideoEncodingOptions{VideoCodec: livekit.VideoCodec_VP8, FrameRate: 15, Layers: []*livekit.VideoLayer{
				{Quality: high, Width: 1920, Height: 1080},
				{Quality: low, Width: 640, Height: 360, Bitrate: 400_000},
			}},
			codec: livekit.VideoCodec_VP8, fps: 15,
			// 3.5M × 0.5^0.75 = 2,081,112
			layers: []Layer{{low, 640, 360, 400_000}, {high, 1920, 1080, 2_081_112}},
		},
		{
			name: "bitrate 0 at 30 fps, 720p",
			in: &livekit.IngressVideoEncodingOptions{Layers: []*livekit.VideoLayer{
				{Quality: high, Width: 1280, Height: 720},
			}},
			codec: livekit.VideoCodec_H264_BASELINE, fps: 30,
			// 3.5M × (4/9)^0.75 = 1,907,601
			layers: []Layer{{high, 1280, 720, 1_907_601}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Resolve(customVideo(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			v := plan.Video
			if v.Codec != tc.codec || v.FrameRate != tc.fps || v.KeyFrameInterval != KeyFrameInterval {
				t.Errorf("codec %v fps %v gop %v", v.Codec, v.FrameRate, v.KeyFrameInterval)
			}
			if v.Name != "cam" || v.Source != livekit.TrackSource_SCREEN_SHARE {
				t.Errorf("name %q source %v", v.Name, v.Source)
			}
			checkLayerList(t, v.Layers, tc.layers)
		})
	}
}

func TestResolveExactOfficialNumbers(t *testing.T) {
	plan, err := Resolve(customVideo(&livekit.IngressVideoEncodingOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	got := []int{plan.Video.Layers[0].Bitrate, plan.Video.Layers[1].Bitrate}
	if got[0] != 212_500 || got[1] != 601_040 {
		t.Errorf("lower layers %v, want exactly [212500 601040]", got)
	}
}

func validInfo() *livekit.IngressInfo {
	return &livekit.IngressInfo{
		InputType:           livekit.IngressInput_RTMP_INPUT,
		StreamKey:           "key",
		RoomName:            "room",
		ParticipantIdentity: "cam1",
	}
}

func TestValidateAndResolveErrors(t *testing.T) {
	layers := func(l ...*livekit.VideoLayer) func(*livekit.IngressInfo) {
		return func(i *livekit.IngressInfo) {
			*i = *customVideo(&livekit.IngressVideoEncodingOptions{Layers: l})
			i.InputType, i.StreamKey, i.RoomName, i.ParticipantIdentity = livekit.IngressInput_RTMP_INPUT, "k", "r", "p"
		}
	}
	audio := func(o *livekit.IngressAudioEncodingOptions) func(*livekit.IngressInfo) {
		return func(i *livekit.IngressInfo) {
			i.Audio = &livekit.IngressAudioOptions{EncodingOptions: &livekit.IngressAudioOptions_Options{Options: o}}
		}
	}
	codec := func(c livekit.VideoCodec) func(*livekit.IngressInfo) {
		return func(i *livekit.IngressInfo) {
			i.Video = customVideo(&livekit.IngressVideoEncodingOptions{VideoCodec: c}).Video
		}
	}
	f, tr := false, true
	cases := []struct {
		name     string
		mutate   func(*livekit.IngressInfo)
		field    string
		sentinel error
		options  bool // Resolve must refuse it too
	}{
		{"odd width", layers(&livekit.VideoLayer{Quality: high, Width: 1279, Height: 720}), "video.options.layers[0].width", ErrInvalidOptions, true},
		{"odd height", layers(&livekit.VideoLayer{Quality: low, Width: 640, Height: 361}), "video.options.layers[0].height", ErrInvalidOptions, true},
		{"zero width", layers(&livekit.VideoLayer{Quality: low, Height: 360}), "video.options.layers[0].width", ErrInvalidOptions, true},
		{"same quality twice", layers(
			&livekit.VideoLayer{Quality: high, Width: 1280, Height: 720},
			&livekit.VideoLayer{Quality: high, Width: 640, Height: 360}), "video.options.layers[1].quality", ErrInvalidOptions, true},
		{"quality OFF", layers(&livekit.VideoLayer{Quality: livekit.VideoQuality_OFF, Width: 640, Height: 360}), "video.options.layers[0].quality", ErrInvalidOptions, true},
		{"decreasing with quality", layers(
			&livekit.VideoLayer{Quality: high, Width: 640, Height: 360},
			&livekit.VideoLayer{Quality: low, Width: 1280, Height: 720}), "video.options.layers", ErrInvalidOptions, true},
		{"H264 main codec", codec(livekit.VideoCodec_H264_MAIN), "video.options.video_codec", ErrInvalidOptions, true},
		{"unknown codec value (no VP9 in the enum)", codec(livekit.VideoCodec(42)), "video.options.video_codec", ErrInvalidOptions, true},
		{"negative frame rate", func(i *livekit.IngressInfo) {
			i.Video = customVideo(&livekit.IngressVideoEncodingOptions{FrameRate: -1}).Video
		}, "video.options.frame_rate", ErrInvalidOptions, true},
		{"unknown video preset", func(i *livekit.IngressInfo) {
			i.Video = presetInfo(livekit.IngressVideoEncodingPreset(99)).Video
		}, "video.preset", ErrInvalidOptions, true},
		{"video source microphone", func(i *livekit.IngressInfo) {
			i.Video = &livekit.IngressVideoOptions{Source: livekit.TrackSource_MICROPHONE}
		}, "video.source", ErrInvalidOptions, true},
		{"audio source camera", func(i *livekit.IngressInfo) {
			i.Audio = &livekit.IngressAudioOptions{Source: livekit.TrackSource_CAMERA}
		}, "audio.source", ErrInvalidOptions, true},
		{"3 channels", audio(&livekit.IngressAudioEncodingOptions{Channels: 3}), "audio.options.channels", ErrInvalidOptions, true},
		{"AAC", audio(&livekit.IngressAudioEncodingOptions{AudioCodec: livekit.AudioCodec_AAC}), "audio.options.audio_codec", ErrInvalidOptions, true},
		{"nil audio options", audio(nil), "audio.options", ErrInvalidOptions, true},
		{"no room", func(i *livekit.IngressInfo) { i.RoomName = "" }, "room_name", ErrInvalidIngress, false},
		{"no identity", func(i *livekit.IngressInfo) { i.ParticipantIdentity = "" }, "participant_identity", ErrInvalidIngress, false},
		{"no stream key", func(i *livekit.IngressInfo) { i.StreamKey = "" }, "stream_key", ErrInvalidIngress, false},
		{"bad input type", func(i *livekit.IngressInfo) { i.InputType = livekit.IngressInput(7) }, "input_type", ErrInvalidIngress, false},
		{"URL without url", func(i *livekit.IngressInfo) { i.InputType = livekit.IngressInput_URL_INPUT }, "url", ErrInvalidIngress, false},
		{"URL disabled", func(i *livekit.IngressInfo) {
			i.InputType, i.Url, i.Enabled = livekit.IngressInput_URL_INPUT, "https://x/y.m3u8", &f
		}, "enabled", ErrInvalidIngress, false},
		{"enable_transcoding false on RTMP", func(i *livekit.IngressInfo) { i.EnableTranscoding = &f }, "enable_transcoding", ErrInvalidIngress, false},
		{"enable_transcoding false on URL", func(i *livekit.IngressInfo) {
			i.InputType, i.Url, i.EnableTranscoding = livekit.IngressInput_URL_INPUT, "srt://h:1", &f
		}, "enable_transcoding", ErrInvalidIngress, false},
		{"bypass on RTMP", func(i *livekit.IngressInfo) { i.BypassTranscoding = true }, "bypass_transcoding", ErrInvalidIngress, false},
		{"WHIP without transcoding but with options", func(i *livekit.IngressInfo) {
			i.InputType = livekit.IngressInput_WHIP_INPUT
			i.Video = presetInfo(livekit.IngressVideoEncodingPreset_H264_720P_30FPS_1_LAYER).Video
		}, "video", ErrInvalidOptions, false},
		{"WHIP bypass with audio options", func(i *livekit.IngressInfo) {
			i.InputType, i.EnableTranscoding, i.BypassTranscoding = livekit.IngressInput_WHIP_INPUT, &tr, true
			i.Audio = &livekit.IngressAudioOptions{EncodingOptions: &livekit.IngressAudioOptions_Preset{}}
		}, "audio", ErrInvalidOptions, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := validInfo()
			tc.mutate(info)
			assertFieldError(t, Validate(info), tc.field, tc.sentinel)
			if tc.options {
				_, err := Resolve(info)
				assertFieldError(t, err, tc.field, tc.sentinel)
			}
		})
	}
}

func assertFieldError(t *testing.T, err error, field string, sentinel error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FieldError", err)
	}
	if fe.Field != field || !errors.Is(err, sentinel) || !strings.Contains(err.Error(), field) {
		t.Errorf("error %q: field %q, want %q wrapping %v", err, fe.Field, field, sentinel)
	}
}

func TestValidateAccepts(t *testing.T) {
	f, tr := false, true
	cases := map[string]func(*livekit.IngressInfo){
		"RTMP defaults": func(*livekit.IngressInfo) {},
		"RTMP all presets": func(i *livekit.IngressInfo) {
			i.Video = presetInfo(livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_3_LAYERS_HIGH_MOTION).Video
			i.Audio = &livekit.IngressAudioOptions{EncodingOptions: &livekit.IngressAudioOptions_Preset{Preset: livekit.IngressAudioEncodingPreset_OPUS_MONO_64KBS}}
		},
		"WHIP without transcoding": func(i *livekit.IngressInfo) { i.InputType = livekit.IngressInput_WHIP_INPUT },
		"WHIP transcoding with options": func(i *livekit.IngressInfo) {
			i.InputType, i.EnableTranscoding = livekit.IngressInput_WHIP_INPUT, &tr
			i.Video = customVideo(&livekit.IngressVideoEncodingOptions{Layers: []*livekit.VideoLayer{
				{Quality: low, Width: 640, Height: 360}, {Quality: high, Width: 640, Height: 360},
			}}).Video
		},
		"URL enabled": func(i *livekit.IngressInfo) {
			i.InputType, i.StreamKey, i.Url, i.Enabled = livekit.IngressInput_URL_INPUT, "", "https://h/a.m3u8", &tr
		},
		"RTMP disabled (reusable)": func(i *livekit.IngressInfo) { i.Enabled = &f },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			info := validInfo()
			mutate(info)
			if err := Validate(info); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTranscodingEnabled(t *testing.T) {
	f, tr := false, true
	cases := []struct {
		name string
		info *livekit.IngressInfo
		want bool
	}{
		{"RTMP default", &livekit.IngressInfo{InputType: livekit.IngressInput_RTMP_INPUT}, true},
		{"URL default", &livekit.IngressInfo{InputType: livekit.IngressInput_URL_INPUT}, true},
		{"WHIP default", &livekit.IngressInfo{InputType: livekit.IngressInput_WHIP_INPUT}, false},
		{"WHIP on", &livekit.IngressInfo{InputType: livekit.IngressInput_WHIP_INPUT, EnableTranscoding: &tr}, true},
		{"WHIP bypass", &livekit.IngressInfo{InputType: livekit.IngressInput_WHIP_INPUT, EnableTranscoding: &tr, BypassTranscoding: true}, false},
		{"RTMP off", &livekit.IngressInfo{EnableTranscoding: &f}, false},
	}
	for _, tc := range cases {
		if got := TranscodingEnabled(tc.info); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFit(t *testing.T) {
	v720 := mustResolve(t, presetInfo(livekit.IngressVideoEncodingPreset_H264_720P_30FPS_3_LAYERS)).Video
	v1080 := mustResolve(t, presetInfo(livekit.IngressVideoEncodingPreset_H264_1080P_30FPS_3_LAYERS)).Video
	// bitrate of a fitted layer: box bitrate × (used area / box area)^0.75
	scaled := func(b, w, h, bw, bh int) int {
		return int(float64(b) * math.Pow(float64(w*h)/float64(bw*bh), 0.75))
	}
	cases := []struct {
		name       string
		plan       VideoPlan
		srcW, srcH int
		want       []Layer
	}{
		{"720p source, 720p preset", v720, 1280, 720, v720.Layers},
		{"1080p source, 720p preset (downscale only)", v720, 1920, 1080, v720.Layers},
		{"1080p source, 1080p preset", v1080, 1920, 1080, v1080.Layers},
		{"360p source: no upscale, stops at the covering layer", v720, 640, 360, []Layer{
			{low, 320, 180, 237_500}, {medium, 640, 360, 671_751},
		}},
		{"portrait 720x1280", v720, 720, 1280, []Layer{
			{low, 100, 180, scaled(237_500, 100, 180, 320, 180)},
			{medium, 202, 360, scaled(671_751, 202, 360, 640, 360)},
			{high, 404, 720, scaled(1_900_000, 404, 720, 1280, 720)},
		}},
		{"4:3 1024x768", v720, 1024, 768, []Layer{
			{low, 240, 180, scaled(237_500, 240, 180, 320, 180)},
			{medium, 480, 360, scaled(671_751, 480, 360, 640, 360)},
			{high, 960, 720, 1_900_000 * 806 / 1000}, // 0.75^0.75 = 0.806
		}},
		{"odd 853x480 rounds down to even", v720, 853, 480, []Layer{
			{low, 320, 180, 237_500},
			{medium, 640, 360, 671_751},
			{high, 852, 480, scaled(1_900_000, 852, 480, 1280, 720)},
		}},
		{"odd 427x241", v720, 427, 241, []Layer{
			{low, 320, 180, 237_500},
			{medium, 426, 240, scaled(671_751, 426, 240, 640, 360)},
		}},
		{"tiny source below the LOW box", v1080, 160, 90, []Layer{
			{low, 160, 90, scaled(437_500, 160, 90, 480, 270)},
		}},
		{"1x1 source keeps min 2", v720, 1, 1, []Layer{{low, 2, 2, scaled(237_500, 2, 2, 320, 180)}}},
		{"invalid source", v720, 0, 720, nil},
		{"duplicate fitted layers dropped", VideoPlan{Layers: []Layer{
			{low, 640, 360, 500_000}, {high, 640, 480, 800_000},
		}}, 1920, 1080, []Layer{{low, 640, 360, 500_000}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.plan.Fit(tc.srcW, tc.srcH)
			checkLayerList(t, got, tc.want)
			for _, l := range got {
				if l.Width%2 != 0 || l.Height%2 != 0 || l.Width < 2 || l.Height < 2 {
					t.Errorf("layer %+v: dimensions not even", l)
				}
				if tc.srcW > 1 && (l.Width > tc.srcW || l.Height > tc.srcH) {
					t.Errorf("layer %+v upscales a %dx%d source", l, tc.srcW, tc.srcH)
				}
			}
		})
	}
}

func TestFitKeepsAspect(t *testing.T) {
	v := mustResolve(t, nil).Video
	for _, src := range [][2]int{{1280, 720}, {720, 1280}, {1024, 768}, {853, 480}, {1920, 800}, {1080, 1920}} {
		srcAspect := float64(src[0]) / float64(src[1])
		for _, l := range v.Fit(src[0], src[1]) {
			// even rounding moves each side by < 2 px + 1 px of integer division
			aspect := float64(l.Width) / float64(l.Height)
			tol := srcAspect * (3/float64(l.Width) + 3/float64(l.Height))
			if math.Abs(aspect-srcAspect) > tol {
				t.Errorf("%v: layer %dx%d aspect %.3f, source %.3f", src, l.Width, l.Height, aspect, srcAspect)
			}
		}
	}
}

func mustResolve(t *testing.T, info *livekit.IngressInfo) Plan {
	t.Helper()
	p, err := Resolve(info)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResourceID(t *testing.T) {
	a, b := ResourceID(), ResourceID()
	if a == b {
		t.Errorf("two ids are equal: %s", a)
	}
	for _, id := range []string{a, b} {
		if !strings.HasPrefix(id, "RT_") || len(id) != 15 {
			t.Errorf("id %q: want RT_ + 12 chars", id)
		}
		for _, c := range id[3:] {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				t.Errorf("id %q: %q is not alphanumeric", id, c)
			}
		}
	}
	if id := ResourceIDFor(livekit.IngressInput_WHIP_INPUT); !strings.HasPrefix(id, "WH_") {
		t.Errorf("WHIP id %q", id)
	}
	if id := ResourceIDFor(livekit.IngressInput_URL_INPUT); !strings.HasPrefix(id, "UR_") {
		t.Errorf("URL id %q", id)
	}
}

func TestToken(t *testing.T) {
	info := validInfo()
	info.IngressId, info.ParticipantName, info.ParticipantMetadata = "IN_abc", "Camera 1", `{"a":1}`
	tok, err := Token("APIkey", "secret-secret-secret-secret-secret", info)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.ParseAPIToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	reg, claims, err := v.Verify("secret-secret-secret-secret-secret")
	if err != nil {
		t.Fatal(err)
	}
	g := claims.Video
	switch {
	case v.APIKey() != "APIkey", claims.Identity != "cam1", claims.Name != "Camera 1", claims.Metadata != `{"a":1}`:
		t.Errorf("claims %+v", claims)
	case claims.GetParticipantKind() != livekit.ParticipantInfo_INGRESS:
		t.Errorf("kind %v", claims.GetParticipantKind())
	case claims.Attributes[livekit.AttrIngressID] != "IN_abc":
		t.Errorf("attributes %v", claims.Attributes)
	case g == nil || !g.RoomJoin || g.Room != "room" || !g.GetCanPublish() || g.GetCanSubscribe() || !g.GetCanUpdateOwnMetadata():
		t.Errorf("grant %+v", g)
	}
	if life := time.Until(reg.ExpiresAt.Time); life < 24*time.Hour-time.Minute || life > 24*time.Hour+time.Minute {
		t.Errorf("token valid for %v, want 24 h", life)
	}
	if _, err := Token("k", "s", nil); !errors.Is(err, ErrInvalidIngress) {
		t.Errorf("nil info: %v", err)
	}
}
