package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/twitchtv/twirp"
)

// Media is a test file made with ffmpeg at test time.
type Media struct {
	Name    string
	Codec   string // "h264" (640x360), "h264720", "vp8" or "opus"
	Seconds int
	// Color makes H.264 video one solid colour (an ffmpeg colour name); Hz sets the Opus tone (default 440).
	Color string
	Hz    int
	// Silent makes an Opus track report the audio level of silence (127 -dBov) in its RTP header
	// extension instead of the SDK's fixed 15, so livekit-server does not count it as speaking.
	Silent bool
	// Simulcast publishes an "h264720" camera as a browser does: three layers, 1280x720 (3 Mb/s),
	// 640x360 (800 kb/s) and 320x180 (250 kb/s). LayerColors, when set, makes each layer (high,
	// medium, low) one solid colour, so a recording shows which layer it was made from.
	Simulcast   bool
	LayerColors [3]string
	// Source is the track's source (default CAMERA for video, MICROPHONE for audio).
	Source livekit.TrackSource
}

// simulcastLayers are the layers of a Simulcast camera, high to low.
var simulcastLayers = []struct {
	quality       livekit.VideoQuality
	width, height int
	kbps          int
}{{livekit.VideoQuality_HIGH, 1280, 720, 3000}, {livekit.VideoQuality_MEDIUM, 640, 360, 800}, {livekit.VideoQuality_LOW, 320, 180, 250}}

// makeLayer encodes one simulcast layer of m (H.264 baseline, keyframe every 2 s).
func makeLayer(dir string, m Media, i int) (string, error) {
	l := simulcastLayers[i]
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.h264", m.Name, i))
	src := fmt.Sprintf("testsrc2=size=%dx%d:rate=30", l.width, l.height)
	if c := m.LayerColors[i]; c != "" {
		src = fmt.Sprintf("color=c=%s:size=%dx%d:rate=30", c, l.width, l.height)
	}
	args := h264Args(src, m.Seconds, 60, path, "-preset", "veryfast", "-b:v", fmt.Sprintf("%dk", l.kbps))
	out, err := exec.Command("ffmpeg", append([]string{"-y", "-v", "error"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ffmpeg %s layer %d: %v\n%s", m.Name, i, err, out)
	}
	return path, nil
}

// h264Args are ffmpeg arguments encoding the lavfi source src for seconds to Annex B H.264
// baseline at path: no B-frames, a keyframe every gop frames exactly; extra go before the output.
func h264Args(src string, seconds, gop int, path string, extra ...string) []string {
	args := []string{"-f", "lavfi", "-i", src, "-t", fmt.Sprint(seconds), "-c:v", "libx264", "-profile:v", "baseline",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", fmt.Sprint(gop), "-x264-params", "scenecut=0"}
	args = append(args, extra...)
	return append(args, "-bsf:v", "h264_mp4toannexb", "-f", "h264", path)
}

// MakeMedia encodes m into dir and returns its path and frame duration.
func MakeMedia(t testing.TB, dir string, m Media) (string, time.Duration) {
	t.Helper()
	dur := fmt.Sprint(m.Seconds)
	var path string
	var args []string
	frame := time.Second / 30
	switch m.Codec {
	case "h264":
		path = filepath.Join(dir, m.Name+".h264")
		src := "testsrc2=size=640x360:rate=30"
		if m.Color != "" {
			src = "color=c=" + m.Color + ":size=640x360:rate=30"
		}
		args = h264Args(src, m.Seconds, 30, path)
	case "h264720": // 1280x720 30 fps at ≈3 Mb/s, as the official benchmark's publishers
		path = filepath.Join(dir, m.Name+".h264")
		args = h264Args("testsrc2=size=1280x720:rate=30", m.Seconds, 60, path, "-b:v", "3M")
	case "vp8":
		path = filepath.Join(dir, m.Name+".ivf")
		args = []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", dur, "-c:v", "libvpx", "-b:v", "1M", "-g", "30", "-f", "ivf", path}
	case "opus":
		path = filepath.Join(dir, m.Name+".ogg")
		frame = 20 * time.Millisecond
		hz := m.Hz
		if hz == 0 {
			hz = 440
		}
		args = []string{"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000", hz), "-t", dur, "-c:a", "libopus", "-b:a", "64k",
			"-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", path}
	default:
		t.Fatalf("unknown test codec %q", m.Codec)
	}
	cmd := exec.Command("ffmpeg", append([]string{"-y", "-v", "error"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", m.Name, err, out)
	}
	return path, frame
}

// Publisher is a participant playing test media into a room.
type Publisher struct {
	Room     *lksdk.Room
	Identity string
	// Tracks maps media name to track sid; Finished to a channel closed when that file has been sent.
	Tracks   map[string]string
	Finished map[string]chan struct{}
	Pubs     map[string]*lksdk.LocalTrackPublication
	// providers are the audio tracks' sample providers, whose audio level SetAudioLevel changes.
	providers map[string]*lksdk.ReaderSampleProvider
	levelMu   sync.Mutex
}

// SetAudioLevel changes the audio level (0 loudest … 127 silence, -dBov) an audio track reports
// from its next packet on, which is what livekit-server picks active speakers by.
func (p *Publisher) SetAudioLevel(t testing.TB, name string, level uint8) {
	t.Helper()
	p.levelMu.Lock()
	defer p.levelMu.Unlock()
	pr := p.providers[name]
	if pr == nil {
		t.Fatalf("no audio track %q", name)
	}
	pr.AudioLevel = level
}

// Publish joins room as identity and publishes each medium once.
func (s *Stack) Publish(t testing.TB, room, identity string, media ...Media) *Publisher {
	t.Helper()
	return s.PublishAs(t, livekit.ParticipantInfo_STANDARD, room, identity, media...)
}

// PublishAs is Publish as a participant of the given kind (an AGENT, as an agents worker joins).
func (s *Stack) PublishAs(t testing.TB, kind livekit.ParticipantInfo_Kind, room, identity string, media ...Media) *Publisher {
	t.Helper()
	at := auth.NewAccessToken(APIKey, APISecret).SetIdentity(identity).SetKind(kind).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room})
	token, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	r, err := lksdk.ConnectToRoomWithToken(s.WsURL, token, lksdk.NewRoomCallback())
	if err != nil {
		t.Fatalf("publisher %s join: %v", identity, err)
	}
	t.Cleanup(r.Disconnect)
	p := &Publisher{Room: r, Identity: identity, Tracks: map[string]string{}, Finished: map[string]chan struct{}{},
		Pubs: map[string]*lksdk.LocalTrackPublication{}, providers: map[string]*lksdk.ReaderSampleProvider{}}
	p.Add(t, media...)
	return p
}

// Add publishes more media from an existing publisher (a microphone turned on late).
func (p *Publisher) Add(t testing.TB, media ...Media) {
	t.Helper()
	dir := t.TempDir()
	for _, m := range media {
		if m.Simulcast {
			p.addSimulcast(t, dir, m)
			continue
		}
		path, frame := MakeMedia(t, dir, m)
		done := make(chan struct{})
		opts := []lksdk.ReaderSampleProviderOption{lksdk.ReaderTrackWithFrameDuration(frame), lksdk.ReaderTrackWithOnWriteComplete(func() { close(done) })}
		if m.Codec == "opus" {
			name, silent := m.Name, m.Silent
			opts = append(opts, func(pr *lksdk.ReaderSampleProvider) {
				if silent {
					pr.AudioLevel = 127
				}
				p.levelMu.Lock()
				p.providers[name] = pr
				p.levelMu.Unlock()
			})
		}
		tr, err := lksdk.NewLocalFileTrack(path, opts...)
		if err != nil {
			t.Fatalf("file track %s: %v", path, err)
		}
		src := livekit.TrackSource_CAMERA
		if m.Codec == "opus" {
			src = livekit.TrackSource_MICROPHONE
		}
		if m.Source != livekit.TrackSource_UNKNOWN {
			src = m.Source
		}
		pub, err := p.Room.LocalParticipant.PublishTrack(tr, &lksdk.TrackPublicationOptions{Name: m.Name, Source: src})
		if err != nil {
			t.Fatalf("publish %s: %v", m.Name, err)
		}
		p.Tracks[m.Name], p.Finished[m.Name], p.Pubs[m.Name] = pub.SID(), done, pub
	}
}

// addSimulcast publishes m's three layers as one simulcast camera track.
func (p *Publisher) addSimulcast(t testing.TB, dir string, m Media) {
	t.Helper()
	done := make(chan struct{})
	var tracks []*lksdk.LocalTrack
	paths := make([]string, len(simulcastLayers))
	errs := make([]error, len(simulcastLayers))
	var wg sync.WaitGroup
	for i := range simulcastLayers {
		wg.Add(1)
		go func() { defer wg.Done(); paths[i], errs[i] = makeLayer(dir, m, i) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, l := range simulcastLayers {
		opts := []lksdk.ReaderSampleProviderOption{lksdk.ReaderTrackWithFrameDuration(time.Second / 30),
			lksdk.ReaderTrackWithSampleOptions(lksdk.WithSimulcast(m.Name, &livekit.VideoLayer{Quality: l.quality, Width: uint32(l.width), Height: uint32(l.height)}))}
		if i == 0 {
			opts = append(opts, lksdk.ReaderTrackWithOnWriteComplete(func() { close(done) }))
		}
		tr, err := lksdk.NewLocalFileTrack(paths[i], opts...)
		if err != nil {
			t.Fatalf("simulcast layer %d of %s: %v", i, m.Name, err)
		}
		tracks = append(tracks, tr)
	}
	pub, err := p.Room.LocalParticipant.PublishSimulcastTrack(tracks, &lksdk.TrackPublicationOptions{Name: m.Name, Source: livekit.TrackSource_CAMERA})
	if err != nil {
		t.Fatalf("publish simulcast %s: %v", m.Name, err)
	}
	p.Tracks[m.Name], p.Finished[m.Name], p.Pubs[m.Name] = pub.SID(), done, pub
}

// Unpublish removes a track from the room.
func (p *Publisher) Unpublish(t testing.TB, name string) {
	t.Helper()
	if err := p.Room.LocalParticipant.UnpublishTrack(p.Tracks[name]); err != nil {
		t.Fatalf("unpublish %s: %v", name, err)
	}
}

// CreateRoom makes the room first: StartEgress needs it to exist.
func (s *Stack) CreateRoom(t testing.TB, name string) *livekit.Room {
	t.Helper()
	room, err := lksdk.NewRoomServiceClient(s.HTTPURL, APIKey, APISecret).CreateRoom(context.Background(), &livekit.CreateRoomRequest{Name: name, EmptyTimeout: 60})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	return room
}

// Egress is the server's Egress API client, as an app would use it.
func (s *Stack) Egress() *lksdk.EgressClient {
	return lksdk.NewEgressClient(s.HTTPURL, APIKey, APISecret)
}

// StartEgressV2 calls the unified Egress.StartEgress (no server SDK helper wraps it yet) over
// Twirp with a roomRecord token, as any SDK would.
func (s *Stack) StartEgressV2(ctx context.Context, req *livekit.StartEgressRequest) (*livekit.EgressInfo, error) {
	at := auth.NewAccessToken(APIKey, APISecret)
	at.SetVideoGrant(&auth.VideoGrant{RoomRecord: true})
	token, err := at.ToJWT()
	if err != nil {
		return nil, err
	}
	h := make(http.Header)
	h.Set("Authorization", "Bearer "+token)
	ctx, err = twirp.WithHTTPRequestHeaders(ctx, h)
	if err != nil {
		return nil, err
	}
	return livekit.NewEgressProtobufClient(s.HTTPURL, http.DefaultClient).StartEgress(ctx, req)
}
