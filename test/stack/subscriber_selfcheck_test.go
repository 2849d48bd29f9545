//go:build livekit

// Self-check of Subscriber against livekit-server and lksdk publishers (no worker):
//
//	go test -tags livekit -run Subscriber ./test/stack   (as root: it makes a network namespace)
package stack

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

func TestMain(m *testing.M) { Main(m) }

func TestSubscriberSeesPublishers(t *testing.T) {
	s := New(t)
	s.CreateRoom(t, "sub-room")
	// Subscribed first, so that each publisher's file (played once) is recorded whole however
	// slowly ffmpeg makes the next one.
	sub := s.Subscribe(t, "sub-room")
	s.Publish(t, "sub-room", "alice", Media{Name: "cam", Codec: "h264", Seconds: 10}, Media{Name: "mic", Codec: "opus", Seconds: 10})
	s.Publish(t, "sub-room", "bob", Media{Name: "vp8", Codec: "vp8", Seconds: 10})
	tracks := sub.WaitTracks(t, 3, 20*time.Second)
	t.Logf("tracks: %s", describe(tracks))
	want := []struct {
		identity, mime string
		kind           lksdk.TrackKind
		source         livekit.TrackSource
		w, h           int
	}{
		{"alice", "audio/opus", lksdk.TrackKindAudio, livekit.TrackSource_MICROPHONE, 0, 0},
		{"alice", "video/h264", lksdk.TrackKindVideo, livekit.TrackSource_CAMERA, 640, 360},
		{"bob", "video/vp8", lksdk.TrackKindVideo, livekit.TrackSource_CAMERA, 640, 360},
	}
	if len(tracks) != len(want) {
		t.Fatalf("%d tracks, want %d", len(tracks), len(want))
	}
	for i, w := range want {
		tr := tracks[i]
		if tr.Identity != w.identity || tr.Kind != w.kind || !strings.EqualFold(tr.MimeType, w.mime) || tr.Info.GetSource() != w.source ||
			tr.ParticipantKind != livekit.ParticipantInfo_STANDARD || tr.FirstPacket.IsZero() || tr.Bytes == 0 {
			t.Errorf("track %d: %+v", i, tr)
		}
		if tr.Width != w.w || tr.Height != w.h || tr.LastWidth != w.w || tr.LastHeight != w.h {
			t.Errorf("%s/%s: first %dx%d last %dx%d, want %dx%d", tr.Identity, tr.Kind, tr.Width, tr.Height, tr.LastWidth, tr.LastHeight, w.w, w.h)
		}
	}
	sub.SetQuality(t, "alice", livekit.VideoQuality_LOW) // not simulcast: the SFU keeps the one layer
	for _, id := range []string{"alice", "bob"} {
		Eventually(t, 10*time.Second, id+" frames", func() bool { return len(sub.FrameSizes(id)) >= 90 })
		fs := sub.FrameSizes(id)
		// 30 fps files: consecutive frames ≈3000 ticks apart, each some hundreds of bytes at least,
		// and no stream-start padding counted as frames.
		for i := 1; i < len(fs); i++ {
			if d := fs[i].RTPTime - fs[i-1].RTPTime; d < 2990 || d > 3010 || fs[i].Bytes < 50 || fs[i].At.Before(fs[i].First) {
				t.Fatalf("%s frame %d: %+v after %+v", id, i, fs[i], fs[i-1])
			}
		}
		t.Logf("%s: %d frames, big-frame threshold %d B", id, len(fs), bigFrameBytes(fs))
	}
	if sub.FrameSizes("alice-not-here") != nil {
		t.Error("frames for nobody")
	}
}

// TestSubscriberSetQuality publishes three H.264 simulcast layers and switches between them:
// the SPS size follows the layer, and TrackInfo lists the layers.
func TestSubscriberSetQuality(t *testing.T) {
	s := New(t)
	s.CreateRoom(t, "sim-room")
	r, err := lksdk.ConnectToRoom(s.WsURL, lksdk.ConnectInfo{APIKey: APIKey, APISecret: APISecret, RoomName: "sim-room", ParticipantIdentity: "carol"}, lksdk.NewRoomCallback())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Disconnect)
	dir := t.TempDir()
	layers := []*livekit.VideoLayer{
		{Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180},
		{Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360},
		{Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720},
	}
	var tracks []*lksdk.LocalTrack
	for _, l := range layers {
		path := filepath.Join(dir, l.Quality.String()+".h264")
		runFFmpeg(t, path, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30", l.Width, l.Height), "-t", "20",
			"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "30", "-b:v", fmt.Sprint(l.Width*2000),
			"-bsf:v", "h264_mp4toannexb", "-f", "h264", path)
		tr, err := lksdk.NewLocalFileTrack(path, lksdk.ReaderTrackWithFrameDuration(time.Second/30),
			lksdk.ReaderTrackWithSampleOptions(lksdk.WithSimulcast("cam", l)))
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	if _, err := r.LocalParticipant.PublishSimulcastTrack(tracks, &lksdk.TrackPublicationOptions{Name: "cam", Source: livekit.TrackSource_CAMERA}); err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe(t, "sim-room")
	tr := sub.WaitTracks(t, 1, 20*time.Second)[0]
	t.Logf("track: %s; info layers %v simulcast %v", describe([]SubTrack{tr}), tr.Info.GetLayers(), tr.Info.GetSimulcast())
	// The SFU starts new subscribers on a low layer and climbs as its bandwidth estimate allows.
	if tr.Width == 0 || !tr.Info.GetSimulcast() || len(tr.Info.GetLayers()) != 3 {
		t.Errorf("want a size and 3 simulcast layers: %+v", tr)
	}
	for _, want := range []*livekit.VideoLayer{layers[0], layers[1], layers[2]} {
		sub.SetQuality(t, "carol", want.Quality)
		Eventually(t, 10*time.Second, "layer "+want.Quality.String(), func() bool {
			got := sub.Tracks()[0]
			return got.LastWidth == int(want.Width) && got.LastHeight == int(want.Height)
		})
	}
	if got := sub.Tracks()[0]; got.Width != tr.Width || got.Height != tr.Height {
		t.Errorf("first size changed from %dx%d to %dx%d", tr.Width, tr.Height, got.Width, got.Height)
	}
}
