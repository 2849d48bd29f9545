package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/proto"

	"github.com/mediaworker/mediaworker/test/stack"
)

// ingressEvents is the sequence of ingress webhooks for id, as "event:STATUS".
func ingressEvents(t *testing.T, s *stack.Stack, id string) []string {
	t.Helper()
	evs, bad := s.Webhooks.ForIngress(id)
	if len(bad) > 0 {
		t.Fatalf("webhooks with bad signatures: %v", bad)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Event+":"+e.IngressInfo.GetState().GetStatus().String())
	}
	return out
}

// waitIngressEvent waits until the ingress webhooks of id include n events named event.
func waitIngressEvent(t *testing.T, s *stack.Stack, id, event string, n int, d time.Duration) {
	t.Helper()
	stack.Eventually(t, d, fmt.Sprintf("%d× %s for %s", n, event, id), func() bool {
		c := 0
		for _, e := range ingressEvents(t, s, id) {
			if strings.HasPrefix(e, event+":") {
				c++
			}
		}
		return c >= n
	})
}

func ingressState(t *testing.T, s *stack.Stack, id string) *livekit.IngressState {
	t.Helper()
	resp, err := s.Ingress().ListIngress(ctx(t), &livekit.ListIngressRequest{IngressId: id})
	if err != nil || len(resp.Items) != 1 {
		t.Fatalf("ListIngress %s: %v %v", id, resp, err)
	}
	return resp.Items[0].State
}

func trackOf(tracks []stack.SubTrack, kind lksdk.TrackKind) *stack.SubTrack {
	for i := range tracks {
		if tracks[i].Kind == kind {
			return &tracks[i]
		}
	}
	return nil
}

// TestRTMPIngress pushes the way OBS does (FLV, H.264 High with B-frames, keyframe every 2 s,
// AAC 48 kHz stereo) and checks what a subscriber in the room gets, the states and webhooks, a
// wrong key and a second publisher refused while the stream goes on, the key reused after the
// publisher stops, and DeleteIngress ending a live session.
func TestRTMPIngress(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	info, err := s.Ingress().CreateIngress(ctx(t), &livekit.CreateIngressRequest{
		InputType: livekit.IngressInput_RTMP_INPUT, Name: "obs", RoomName: "live",
		ParticipantIdentity: "obs-studio", ParticipantName: "OBS Studio", ParticipantMetadata: `{"camera":"main"}`,
	})
	if err != nil {
		t.Fatalf("CreateIngress: %v", err)
	}
	url := w.RTMPURL + "/" + info.StreamKey
	sub := s.Subscribe(t, "live")
	obs := stack.PushRTMP(t, url, stack.RTMPSource{Width: 1280, Height: 720, FPS: 30})

	tracks := sub.WaitTracks(t, 2, 30*time.Second)
	video, audio := trackOf(tracks, lksdk.TrackKindVideo), trackOf(tracks, lksdk.TrackKindAudio)
	if video == nil || audio == nil {
		t.Fatalf("tracks: %+v", tracks)
	}
	if video.Identity != "obs-studio" || video.Name != "OBS Studio" || video.Metadata != `{"camera":"main"}` || video.ParticipantKind != livekit.ParticipantInfo_INGRESS {
		t.Fatalf("publisher: identity %q name %q metadata %q kind %s", video.Identity, video.Name, video.Metadata, video.ParticipantKind)
	}
	if video.Info.Source != livekit.TrackSource_CAMERA || audio.Info.Source != livekit.TrackSource_MICROPHONE {
		t.Fatalf("sources: video %s audio %s", video.Info.Source, audio.Info.Source)
	}
	if !strings.EqualFold(audio.MimeType, "audio/opus") || !strings.EqualFold(video.MimeType, "video/h264") {
		t.Fatalf("codecs: video %s audio %s", video.MimeType, audio.MimeType)
	}
	// The default preset: three layers of 1280x720, 640x360, 320x180.
	var dims []string
	for _, l := range video.Info.Layers {
		dims = append(dims, fmt.Sprintf("%s:%dx%d", l.Quality, l.Width, l.Height))
	}
	slices.Sort(dims)
	if got := strings.Join(dims, " "); got != "HIGH:1280x720 LOW:320x180 MEDIUM:640x360" {
		t.Fatalf("simulcast layers: %s", got)
	}
	// The layers are really there: the SFU forwards each one when asked, at its size.
	for _, q := range []struct {
		quality livekit.VideoQuality
		w, h    int
	}{{livekit.VideoQuality_LOW, 320, 180}, {livekit.VideoQuality_MEDIUM, 640, 360}, {livekit.VideoQuality_HIGH, 1280, 720}} {
		sub.SetQuality(t, "obs-studio", q.quality)
		stack.Eventually(t, 15*time.Second, fmt.Sprintf("%s layer at %dx%d", q.quality, q.w, q.h), func() bool {
			v := trackOf(sub.Tracks(), lksdk.TrackKindVideo)
			return v != nil && v.LastWidth == q.w && v.LastHeight == q.h
		})
	}

	st := ingressState(t, s, info.IngressId)
	if st.Status != livekit.IngressState_ENDPOINT_PUBLISHING || st.ResourceId == "" || st.RoomId == "" {
		t.Fatalf("state while publishing: %v", st)
	}
	if v := st.Video; v == nil || v.MimeType != "video/h264" || v.Width != 1280 || v.Height != 720 || !near(v.Framerate, 30, 1) {
		t.Fatalf("input video state: %v", st.Video)
	}
	if a := st.Audio; a == nil || a.MimeType != "audio/aac" || a.Channels != 2 || a.SampleRate != 48000 {
		t.Fatalf("input audio state: %v", st.Audio)
	}
	// The input's average bitrates follow a few seconds in (ffmpeg sends 2.5 Mb/s video, 128 kb/s AAC).
	stack.Eventually(t, 15*time.Second, "input bitrates in the state", func() bool {
		st := ingressState(t, s, info.IngressId)
		v, a := st.GetVideo().GetAverageBitrate(), st.GetAudio().GetAverageBitrate()
		return v > 1_000_000 && v < 5_000_000 && a > 60_000 && a < 250_000
	})

	// A wrong key and a second publisher on the live key are refused; the stream goes on.
	before := trackOf(sub.Tracks(), lksdk.TrackKindVideo).Packets
	for _, bad := range []string{w.RTMPURL + "/not-a-key", url} {
		p := stack.TryPushRTMP(t, bad, stack.RTMPSource{Width: 320, Height: 240, FPS: 15, Duration: 20 * time.Second})
		if !p.Wait(15 * time.Second) {
			t.Fatalf("publisher to %s was not refused", bad)
		}
	}
	// The stream key of a WHIP ingress is not an RTMP key.
	whip, err := s.Ingress().CreateIngress(ctx(t), &livekit.CreateIngressRequest{
		InputType: livekit.IngressInput_WHIP_INPUT, RoomName: "live", ParticipantIdentity: "whip-user",
	})
	if err != nil {
		t.Fatalf("CreateIngress WHIP: %v", err)
	}
	if p := stack.TryPushRTMP(t, w.RTMPURL+"/"+whip.StreamKey, stack.RTMPSource{Width: 320, Height: 240, FPS: 15, Duration: 20 * time.Second}); !p.Wait(15 * time.Second) {
		t.Fatal("an RTMP publisher with a WHIP ingress's key was not refused")
	}
	if !strings.Contains(w.Output(), "is for WHIP_INPUT, not RTMP") {
		t.Fatal("the refusal of a WHIP key is not logged with its reason")
	}
	stack.Eventually(t, 5*time.Second, "stream still flowing", func() bool {
		return trackOf(sub.Tracks(), lksdk.TrackKindVideo).Packets > before+100
	})

	// The publisher stops: the session ends INACTIVE and the key stays usable.
	obs.Interrupt(t, 10*time.Second)
	waitIngressEvent(t, s, info.IngressId, "ingress_ended", 1, 20*time.Second)
	if st := ingressState(t, s, info.IngressId); st.Status != livekit.IngressState_ENDPOINT_INACTIVE || st.EndedAt == 0 {
		t.Fatalf("state after the publisher stopped: %v", st)
	}
	sub.Close()

	sub2 := s.Subscribe(t, "live")
	again := stack.TryPushRTMP(t, url, stack.RTMPSource{Width: 640, Height: 360, FPS: 30}) // DeleteIngress disconnects it
	tracks = sub2.WaitTracks(t, 2, 30*time.Second)
	// A 360p source is never upscaled: only the layers up to its size.
	var top uint32
	for _, l := range trackOf(tracks, lksdk.TrackKindVideo).Info.Layers {
		top = max(top, l.Width)
	}
	if top != 640 {
		t.Fatalf("layers of a 640x360 source: %v", trackOf(tracks, lksdk.TrackKindVideo).Info.Layers)
	}
	waitIngressEvent(t, s, info.IngressId, "ingress_started", 2, 20*time.Second)

	// UpdateIngress on a live session ends it (new settings apply to the next one); a disabled
	// ingress refuses publishers with the reason.
	if _, err := s.Ingress().UpdateIngress(ctx(t), &livekit.UpdateIngressRequest{IngressId: info.IngressId, Enabled: proto.Bool(false)}); err != nil {
		t.Fatalf("UpdateIngress: %v", err)
	}
	if !again.Wait(20 * time.Second) {
		t.Fatal("the publisher is still connected after UpdateIngress")
	}
	waitIngressEvent(t, s, info.IngressId, "ingress_ended", 2, 20*time.Second)
	refused := stack.TryPushRTMP(t, url, stack.RTMPSource{Width: 320, Height: 240, FPS: 15, Duration: 20 * time.Second})
	if !refused.Wait(15 * time.Second) {
		t.Fatal("a disabled ingress accepted a publisher")
	}
	if !strings.Contains(w.Output(), "is disabled (UpdateIngress enabled=true to allow publishing)") {
		t.Fatal("the refusal of a disabled ingress is not logged with its reason")
	}
	if _, err := s.Ingress().UpdateIngress(ctx(t), &livekit.UpdateIngressRequest{IngressId: info.IngressId, Enabled: proto.Bool(true)}); err != nil {
		t.Fatalf("UpdateIngress: %v", err)
	}
	last := stack.TryPushRTMP(t, url, stack.RTMPSource{Width: 640, Height: 360, FPS: 30}) // DeleteIngress disconnects it
	waitIngressEvent(t, s, info.IngressId, "ingress_started", 3, 30*time.Second)

	// DeleteIngress ends the live session and the publisher is disconnected.
	if _, err := s.Ingress().DeleteIngress(ctx(t), &livekit.DeleteIngressRequest{IngressId: info.IngressId}); err != nil {
		t.Fatalf("DeleteIngress: %v", err)
	}
	if !last.Wait(20 * time.Second) {
		t.Fatal("the publisher of a deleted ingress is still connected")
	}
	stack.Eventually(t, 20*time.Second, "no ingress session left", func() bool { return len(w.Jobs(t)) == 0 })

	got := strings.Join(ingressEvents(t, s, info.IngressId), " ")
	if !strings.HasPrefix(got, "ingress_started:ENDPOINT_PUBLISHING ingress_ended:ENDPOINT_INACTIVE ingress_started:ENDPOINT_PUBLISHING ingress_ended:ENDPOINT_INACTIVE ingress_started:ENDPOINT_PUBLISHING") {
		t.Fatalf("ingress webhooks: %s", got)
	}
	for _, line := range []string{info.StreamKey} {
		if strings.Contains(w.Output(), line) {
			t.Fatal("the stream key appears in the worker's log")
		}
	}
}

// TestURLIngress pulls files over HTTP (MP4, an HLS playlist, MKV, WebM, audio-only MP3 / OGG / M4A),
// an SRT stream, and a URL that does not exist: each publishes what it has and ends COMPLETE, or
// ends ERROR with the reason.
func TestURLIngress(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	dir := t.TempDir()
	src := stack.RTMPSource{Width: 640, Height: 360, FPS: 30, Duration: 4 * time.Second}
	stack.MakeMediaFile(t, dir, "clip.mp4", src)
	stack.MakeMediaFile(t, dir, "tone.mp3", stack.RTMPSource{AudioOnly: true, Duration: 4 * time.Second})
	stack.MakeMediaFile(t, dir, "clip.webm", src)
	stack.MakeMediaFile(t, dir, "tone.ogg", stack.RTMPSource{AudioOnly: true, Duration: 4 * time.Second})
	stack.MakeMediaFile(t, dir, "tone.m4a", stack.RTMPSource{AudioOnly: true, Duration: 4 * time.Second})
	clip := stack.MakeMediaFile(t, dir, "clip.mkv", src)
	// srt:// pull: ffmpeg listens (SRT listener mode), the ingress calls it.
	srtPort := stack.FreePort(t)
	stack.Start(t, "ffmpeg-srt", nil, "ffmpeg", "-nostdin", "-loglevel", "warning", "-re", "-i", clip, "-c", "copy", "-f", "mpegts",
		fmt.Sprintf("srt://127.0.0.1:%d?mode=listener", srtPort))
	hls := stack.MakeHLS(t, dir, src)
	base := stack.ServeDir(t, dir)
	hlsURL := base + "/" + strings.TrimPrefix(hls[len(dir):], "/")

	cases := []struct {
		name, url  string
		kinds      []lksdk.TrackKind
		wantStatus livekit.IngressState_Status
	}{
		{"mp4", base + "/clip.mp4", []lksdk.TrackKind{lksdk.TrackKindAudio, lksdk.TrackKindVideo}, livekit.IngressState_ENDPOINT_COMPLETE},
		{"hls", hlsURL, []lksdk.TrackKind{lksdk.TrackKindAudio, lksdk.TrackKindVideo}, livekit.IngressState_ENDPOINT_COMPLETE},
		{"mp3", base + "/tone.mp3", []lksdk.TrackKind{lksdk.TrackKindAudio}, livekit.IngressState_ENDPOINT_COMPLETE},
		{"mkv", base + "/clip.mkv", []lksdk.TrackKind{lksdk.TrackKindAudio, lksdk.TrackKindVideo}, livekit.IngressState_ENDPOINT_COMPLETE},
		{"webm", base + "/clip.webm", []lksdk.TrackKind{lksdk.TrackKindAudio, lksdk.TrackKindVideo}, livekit.IngressState_ENDPOINT_COMPLETE},
		{"ogg", base + "/tone.ogg", []lksdk.TrackKind{lksdk.TrackKindAudio}, livekit.IngressState_ENDPOINT_COMPLETE},
		{"m4a", base + "/tone.m4a", []lksdk.TrackKind{lksdk.TrackKindAudio}, livekit.IngressState_ENDPOINT_COMPLETE},
		{"srt", fmt.Sprintf("srt://127.0.0.1:%d", srtPort), []lksdk.TrackKind{lksdk.TrackKindAudio, lksdk.TrackKindVideo}, livekit.IngressState_ENDPOINT_COMPLETE},
		{"missing", base + "/nothing-here.mp4", nil, livekit.IngressState_ENDPOINT_ERROR},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			room := "url-" + c.name
			sub := s.Subscribe(t, room)
			defer sub.Close()
			info, err := s.Ingress().CreateIngress(ctx(t), &livekit.CreateIngressRequest{
				InputType: livekit.IngressInput_URL_INPUT, Url: c.url, RoomName: room, ParticipantIdentity: "puller",
			})
			if err != nil {
				t.Fatalf("CreateIngress: %v", err)
			}
			if len(c.kinds) > 0 {
				tracks := sub.WaitTracks(t, len(c.kinds), 30*time.Second)
				for _, k := range c.kinds {
					if trackOf(tracks, k) == nil {
						t.Fatalf("no %s track: %+v", k, tracks)
					}
				}
				time.Sleep(time.Second)
				if got := len(sub.Tracks()); got != len(c.kinds) {
					t.Fatalf("%d tracks published, want %d", got, len(c.kinds))
				}
			}
			waitIngressEvent(t, s, info.IngressId, "ingress_ended", 1, 60*time.Second)
			st := ingressState(t, s, info.IngressId)
			if st.Status != c.wantStatus {
				t.Fatalf("final state %v, want %s", st, c.wantStatus)
			}
			if c.wantStatus == livekit.IngressState_ENDPOINT_ERROR && !strings.Contains(st.Error, "Not Found") {
				t.Fatalf("ERROR without the reason: %q", st.Error)
			}
			t.Logf("%s: %s %q", c.name, st.Status, st.Error)
		})
	}
}

// TestRTMPSIngress pushes over RTMPS (TLS on the worker, no proxy) with a certificate the test makes.
func TestRTMPSIngress(t *testing.T) {
	s := stack.New(t)
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	rtmps := fmt.Sprintf("127.0.0.1:%d", stack.FreePort(t))
	rtmp := fmt.Sprintf("127.0.0.1:%d", stack.FreePort(t))
	s.StartWorker(t, "worker", fmt.Sprintf("ingress: {rtmp_addr: %q, rtmps_addr: %q, tls_cert_file: %q, tls_key_file: %q}\n", rtmp, rtmps, cert, key))
	info, err := s.Ingress().CreateIngress(ctx(t), &livekit.CreateIngressRequest{
		InputType: livekit.IngressInput_RTMP_INPUT, RoomName: "secure", ParticipantIdentity: "tls-cam",
	})
	if err != nil {
		t.Fatalf("CreateIngress: %v", err)
	}
	sub := s.Subscribe(t, "secure")
	stack.PushRTMP(t, "rtmps://"+rtmps+"/x/"+info.StreamKey, stack.RTMPSource{Width: 640, Height: 360, FPS: 30})
	tracks := sub.WaitTracks(t, 2, 30*time.Second)
	if v := trackOf(tracks, lksdk.TrackKindVideo); v == nil || v.Identity != "tls-cam" {
		t.Fatalf("tracks over RTMPS: %+v", tracks)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 (PEM) and returns their paths.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// TestRTMPIngressOptions uses custom options: VP8 in two explicit layers, mono Opus, and the
// track names and sources given.
func TestRTMPIngressOptions(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	info, err := s.Ingress().CreateIngress(ctx(t), &livekit.CreateIngressRequest{
		InputType: livekit.IngressInput_RTMP_INPUT, RoomName: "custom", ParticipantIdentity: "deck",
		Video: &livekit.IngressVideoOptions{Name: "slides", Source: livekit.TrackSource_SCREEN_SHARE,
			EncodingOptions: &livekit.IngressVideoOptions_Options{Options: &livekit.IngressVideoEncodingOptions{
				VideoCodec: livekit.VideoCodec_VP8, FrameRate: 15, Layers: []*livekit.VideoLayer{
					{Quality: livekit.VideoQuality_LOW, Width: 480, Height: 270, Bitrate: 300_000},
					{Quality: livekit.VideoQuality_HIGH, Width: 960, Height: 540, Bitrate: 900_000}}}}},
		Audio: &livekit.IngressAudioOptions{Name: "voice", Source: livekit.TrackSource_SCREEN_SHARE_AUDIO,
			EncodingOptions: &livekit.IngressAudioOptions_Preset{Preset: livekit.IngressAudioEncodingPreset_OPUS_MONO_64KBS}},
	})
	if err != nil {
		t.Fatalf("CreateIngress: %v", err)
	}
	sub := s.Subscribe(t, "custom")
	stack.PushRTMP(t, w.RTMPURL+"/"+info.StreamKey, stack.RTMPSource{Width: 1280, Height: 720, FPS: 30})
	tracks := sub.WaitTracks(t, 2, 30*time.Second)
	video, audio := trackOf(tracks, lksdk.TrackKindVideo), trackOf(tracks, lksdk.TrackKindAudio)
	if video == nil || audio == nil {
		t.Fatalf("tracks: %+v", tracks)
	}
	if !strings.EqualFold(video.MimeType, "video/vp8") || video.Info.Name != "slides" || video.Info.Source != livekit.TrackSource_SCREEN_SHARE {
		t.Fatalf("video: mime %s name %q source %s", video.MimeType, video.Info.Name, video.Info.Source)
	}
	if audio.Info.Name != "voice" || audio.Info.Source != livekit.TrackSource_SCREEN_SHARE_AUDIO || audio.Info.Stereo {
		t.Fatalf("audio: name %q source %s stereo %v", audio.Info.Name, audio.Info.Source, audio.Info.Stereo)
	}
	var dims []string
	for _, l := range video.Info.Layers {
		dims = append(dims, fmt.Sprintf("%s:%dx%d", l.Quality, l.Width, l.Height))
	}
	slices.Sort(dims)
	if got := strings.Join(dims, " "); got != "HIGH:960x540 LOW:480x270" {
		t.Fatalf("layers: %s", got)
	}
	sub.SetQuality(t, "deck", livekit.VideoQuality_HIGH)
	stack.Eventually(t, 15*time.Second, "HIGH VP8 layer at 960x540", func() bool {
		v := trackOf(sub.Tracks(), lksdk.TrackKindVideo)
		return v != nil && v.LastWidth == 960 && v.LastHeight == 540
	})
	// 15 fps asked: the frame rate is capped.
	f0, t0 := len(sub.FrameSizes("deck")), time.Now()
	time.Sleep(4 * time.Second)
	if fps := float64(len(sub.FrameSizes("deck"))-f0) / time.Since(t0).Seconds(); fps < 12 || fps > 17 {
		t.Fatalf("%.1f fps at the subscriber, want 15", fps)
	}
}

// TestIngressCrashes kills an ingress session's process (ERROR with the reason, a second ingress on
// the same worker goes on), then the worker itself (the session reports ERROR to livekit-server on
// its own instead of staying PUBLISHING).
func TestIngressCrashes(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "ingress: {rtmp_addr: \"127.0.0.1:"+fmt.Sprint(stack.FreePort(t))+"\", cpu_cost: 0.2}\n")
	var ids []string
	var pushers []*stack.Proc
	sub := s.Subscribe(t, "crash")
	for _, who := range []string{"victim", "bystander"} {
		info, err := s.Ingress().CreateIngress(ctx(t), &livekit.CreateIngressRequest{
			InputType: livekit.IngressInput_RTMP_INPUT, RoomName: "crash", ParticipantIdentity: who,
		})
		if err != nil {
			t.Fatalf("CreateIngress: %v", err)
		}
		ids = append(ids, info.IngressId)
		pushers = append(pushers, stack.TryPushRTMP(t, w.RTMPURL+"/"+info.StreamKey, stack.RTMPSource{Width: 320, Height: 240, FPS: 15}))
		waitIngressEvent(t, s, info.IngressId, "ingress_started", 1, 30*time.Second)
	}
	var victim int
	for _, j := range w.Jobs(t) {
		if j.IngressID == ids[0] {
			victim = j.PID
		}
	}
	if victim == 0 {
		t.Fatalf("no session process for %s in %v", ids[0], w.Jobs(t))
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitIngressEvent(t, s, ids[0], "ingress_ended", 1, 20*time.Second)
	if st := ingressState(t, s, ids[0]); st.Status != livekit.IngressState_ENDPOINT_ERROR || !strings.Contains(st.Error, "ended unexpectedly") {
		t.Fatalf("killed session: %v", st)
	}
	if !pushers[0].Wait(20 * time.Second) {
		t.Fatal("the killed session's publisher is still connected")
	}
	before := 0
	for _, tr := range sub.Tracks() {
		if tr.Identity == "bystander" && tr.Kind == lksdk.TrackKindVideo {
			before = tr.Packets
		}
	}
	stack.Eventually(t, 10*time.Second, "the other ingress still flowing", func() bool {
		for _, tr := range sub.Tracks() {
			if tr.Identity == "bystander" && tr.Kind == lksdk.TrackKindVideo {
				return tr.Packets > before+50
			}
		}
		return false
	})

	w.Signal(syscall.SIGKILL)
	waitIngressEvent(t, s, ids[1], "ingress_ended", 1, 30*time.Second)
	if st := ingressState(t, s, ids[1]); st.Status != livekit.IngressState_ENDPOINT_ERROR || !strings.Contains(st.Error, "worker process died") || st.EndedAt == 0 {
		t.Fatalf("session of a killed worker: %v", st)
	}
}
