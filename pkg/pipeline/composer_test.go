package pipeline

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/base"

	"github.com/mediaworker/mediaworker/test/mediatest"
)

func TestComposerGrid(t *testing.T) {
	red := mediatest.SolidH264(t, "red", 640, 360, 30, 4)
	green := mediatest.SolidH264(t, "green", 320, 180, 30, 4)
	tone := mediatest.Opus(t, 440, 4)
	out := filepath.Join(t.TempDir(), "grid.mp4")
	c, err := NewComposer(ComposePlan{Width: 1280, Height: 720, Framerate: 30, VideoKbps: 2000, Profile: "main",
		Background: 0xFF000000, AudioCodec: "aac", AudioKbps: 128, AudioRate: 48000, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	decoded := map[string][2]int{}
	c.OnDecodedSize(func(id string, w, h int) {
		mu.Lock()
		decoded[id] = [2]int{w, h}
		mu.Unlock()
	})
	for _, in := range []string{"red", "green"} {
		if err := c.AddVideo(in, "h264"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddAudio("tone", 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range red { // in real time: inputs are timestamped on arrival
		time.Sleep(time.Until(start.Add(red[i].PTS)))
		_ = c.Push("red", red[i].Data)
		if i < 60 {
			_ = c.Push("green", green[i].Data)
		} else if i == 60 {
			c.Remove("green") // leaves after 2 s: red takes the whole canvas
		}
		for j := i * 3 / 2; j < (i+1)*3/2 && j < len(tone); j++ {
			_ = c.Push("tone", tone[j].Data)
		}
	}
	// The decoded inputs are labelled as the canvas, not converted pixel by pixel.
	if converting := convertingElements(t, c.g); len(converting) > 0 {
		t.Errorf("inputs are converted pixel by pixel by %v", converting)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if decoded["red"] != [2]int{640, 360} || decoded["green"] != [2]int{320, 180} {
		t.Errorf("decoded sizes reported: %v, want red 640x360 and green 320x180", decoded)
	}
	mu.Unlock()
	probe, _ := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration", "-of", "csv=p=0", out).Output()
	if s := string(probe); !strings.Contains(s, "h264,1280,720") || !strings.Contains(s, "aac") {
		t.Fatalf("ffprobe: %s", probe)
	}
	// at 1 s: red left, green right (grid of two; letterboxed 16:9 tiles keep the middle rows)
	px := mediatest.Pixels(t, out, 1.0)
	if mediatest.ColorOf(px[4+0]) != "red" || mediatest.ColorOf(px[4+3]) != "green" {
		t.Fatalf("at 1 s want red left and green right, got %v", px)
	}
	// at 3.5 s: red alone, full frame
	px = mediatest.Pixels(t, out, 3.5)
	if mediatest.ColorOf(px[0]) != "red" || mediatest.ColorOf(px[3]) != "red" || mediatest.ColorOf(px[7]) != "red" {
		t.Fatalf("at 3.5 s want red everywhere, got %v", px)
	}
}

func TestLayoutTiles(t *testing.T) {
	order := []string{"a", "b", "c"}
	tests := []struct {
		name, layout, speaker string
		want                  map[string]tile
	}{
		{"grid of three is 2x2", LayoutGrid, "", map[string]tile{"a": {0, 0, 640, 360}, "b": {640, 0, 640, 360}, "c": {0, 360, 640, 360}}},
		{"speaker large, others in a strip", LayoutSpeaker, "b", map[string]tile{"b": {0, 0, 960, 720}, "a": {960, 0, 320, 180}, "c": {960, 180, 320, 180}}},
		{"single speaker alone", LayoutSingleSpeaker, "c", map[string]tile{"c": {0, 0, 1280, 720}}},
		{"no speaker yet: the first", LayoutSingleSpeaker, "", map[string]tile{"a": {0, 0, 1280, 720}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := layoutTiles(tc.layout, order, tc.speaker, 1280, 720)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v", got)
			}
			for id, w := range tc.want {
				if got[id] != w {
					t.Fatalf("%s: got %v want %v", id, got[id], w)
				}
			}
		})
	}
}

// TestComposerReportsFailure: a write error while composing (here a full disk: /dev/full) is
// reported at once on Failed, and Close returns it.
func TestComposerReportsFailure(t *testing.T) {
	c, err := NewComposer(ComposePlan{Width: 640, Height: 360, Framerate: 30, VideoKbps: 800, Profile: "main",
		Background: 0xFF000000, AudioCodec: "aac", AudioKbps: 64, AudioRate: 48000, Output: "/dev/full"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("no failure reported within 10 s of writing to a full disk")
	}
	if err := c.Close(); err == nil || !strings.Contains(err.Error(), "space") {
		t.Fatalf("Close: want the write error (no space left), got %v", err)
	}
}

// TestEndLiveGivesUp: a live source whose buffer is held downstream cannot take EOS; endLive
// reports it after its timeout instead of hanging, and delivers it when the source is free.
func TestEndLiveGivesUp(t *testing.T) {
	g, err := build("videotestsrc name=bg is-live=true ! fakesink", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bg, _ := g.pipeline.GetElementByName("bg")
	held := make(chan struct{})
	var once sync.Once
	probe := bg.GetStaticPad("src").AddProbe(gst.PadProbeTypeBlockDownstream|gst.PadProbeTypeBuffer, func(*gst.Pad, *gst.PadProbeInfo) gst.PadProbeReturn {
		once.Do(func() { close(held) })
		return gst.PadProbeOK
	})
	if err := g.play(); err != nil {
		t.Fatal(err)
	}
	<-held
	t0 := time.Now()
	if err := endLive(bg, time.Second); !errors.Is(err, ErrDrain) || time.Since(t0) > 2*time.Second {
		t.Fatalf("held source: %v after %s", err, time.Since(t0))
	}
	bg.GetStaticPad("src").RemoveProbe(probe)
	if err := g.drain(5*time.Second, 0); err != nil {
		t.Fatalf("the EOS sent while held did not arrive once the source was free: %v", err)
	}
}

// convertingElements names the videoconvert elements of g that touch pixels (not in passthrough).
func convertingElements(t *testing.T, g *graph) []string {
	t.Helper()
	els, err := g.pipeline.GetElementsRecursive()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, el := range els {
		if el.GetFactory().GetName() == "videoconvert" && !base.ToGstBaseTransform(el.Object).IsPassthrough() {
			names = append(names, el.GetName())
		}
	}
	return names
}
