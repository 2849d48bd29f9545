package integration

import (
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

// wsReceiver is a WebSocket server that keeps what it is sent.
type wsReceiver struct {
	URL    string
	mu     sync.Mutex
	pcm    []byte
	texts  []string
	frames int
	closed bool
}

func newWSReceiver(t *testing.T) *wsReceiver {
	r := &wsReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			kind, b, err := c.ReadMessage()
			r.mu.Lock()
			if err != nil {
				r.closed = true
				r.mu.Unlock()
				return
			}
			if kind == websocket.BinaryMessage {
				r.pcm = append(r.pcm, b...)
				r.frames++
			} else {
				r.texts = append(r.texts, string(b))
			}
			r.mu.Unlock()
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	r.URL = "ws://" + ln.Addr().String() + "/transcribe?token=secret-token"
	return r
}

// zeroCrossings counts sign changes of the left channel per second over one second of S16LE stereo.
func zeroCrossings(pcm []byte) int {
	n := 0
	prev := int16(0)
	for i := 0; i+4 <= len(pcm) && i < 48000*4; i += 4 {
		v := int16(binary.LittleEndian.Uint16(pcm[i:]))
		if (v >= 0) != (prev >= 0) {
			n++
		}
		prev = v
	}
	return n
}

// TestTrackEgressToWebSocket streams an Opus track as PCM to a WebSocket, with mute frames.
func TestTrackEgressToWebSocket(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "ws-room")
	pub := s.Publish(t, "ws-room", "ivy", stack.Media{Name: "mic", Codec: "opus", Seconds: 30})
	recv := newWSReceiver(t)
	info, err := s.Egress().StartTrackEgress(ctx(t), &livekit.TrackEgressRequest{RoomName: "ws-room", TrackId: pub.Tracks["mic"],
		Output: &livekit.TrackEgressRequest_WebsocketUrl{WebsocketUrl: recv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(info.String(), "secret-token") {
		t.Fatalf("the websocket_url's token is reported back: %v", info.GetTrack())
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 10*time.Second)
	activeAt := time.Now()
	time.Sleep(2 * time.Second)
	pub.Pubs["mic"].SetMuted(true)
	time.Sleep(time.Second)
	pub.Pubs["mic"].SetMuted(false)
	time.Sleep(2 * time.Second)
	if _, err := s.Egress().StopEgress(ctx(t), &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(activeAt).Seconds()
	end := waitEvent(t, s, info.EgressId, "egress_ended", 20*time.Second)
	checkWebhookOrder(t, s, info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE)
	if strings.Contains(end.String(), "secret-token") {
		t.Fatalf("token leaked in the final info: %v", end)
	}
	stack.Eventually(t, 5*time.Second, "socket closed", func() bool { recv.mu.Lock(); defer recv.mu.Unlock(); return recv.closed })
	recv.mu.Lock()
	defer recv.mu.Unlock()
	seconds := float64(len(recv.pcm)) / (48000 * 2 * 2)
	if len(recv.pcm)%4 != 0 || seconds < 3 || seconds > elapsed+0.5 {
		t.Fatalf("got %d bytes = %.2f s of 48 kHz stereo S16LE in %d frames; %.2f s passed", len(recv.pcm), seconds, recv.frames, elapsed)
	}
	if zc := zeroCrossings(recv.pcm[48000*4/2:]); zc < 836 || zc > 924 { // a 440 Hz tone crosses zero 880 times a second
		t.Fatalf("left channel crosses zero %d times in 1 s, want ≈880 (a 440 Hz tone)", zc)
	}
	if got := strings.Join(recv.texts, " "); got != `{"muted":true} {"muted":false}` {
		t.Fatalf("text frames %q", got)
	}
	t.Logf("received %.2f s of PCM in %d frames", seconds, recv.frames)
}

// TestRoomCompositeWebSocketStream streams an audio-only room composite over WebSocket (a
// stream output, as a transcription service takes it): the mix of two microphones (440 and
// 880 Hz) arrives as S16LE 48 kHz stereo; the URL's token never shows in the results.
func TestRoomCompositeWebSocketStream(t *testing.T) {
	s := stack.New(t)
	s.StartWorker(t, "worker", "")
	s.CreateRoom(t, "wsmix-room")
	s.Publish(t, "wsmix-room", "low", stack.Media{Name: "mic", Codec: "opus", Hz: 440, Seconds: 30})
	s.Publish(t, "wsmix-room", "high", stack.Media{Name: "mic", Codec: "opus", Hz: 880, Seconds: 30})
	recv := newWSReceiver(t)
	info, err := s.Egress().StartRoomCompositeEgress(ctx(t), &livekit.RoomCompositeEgressRequest{RoomName: "wsmix-room", AudioOnly: true,
		StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_WEBSOCKET, Urls: []string{recv.URL}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, info.EgressId, "egress_updated", 15*time.Second)
	activeAt := time.Now()
	time.Sleep(4 * time.Second)
	end := stop(t, s, info.EgressId)
	elapsed := time.Since(activeAt).Seconds()
	if end.Status != livekit.EgressStatus_EGRESS_COMPLETE || strings.Contains(end.String(), "secret-token") {
		t.Fatalf("%s %q; token in the final info: %v", end.Status, end.Error, strings.Contains(end.String(), "secret-token"))
	}
	if r := end.GetStreamResults(); len(r) != 1 || r[0].Status != livekit.StreamInfo_FINISHED {
		t.Fatalf("stream results %v", r)
	}
	stack.Eventually(t, 5*time.Second, "socket closed", func() bool { recv.mu.Lock(); defer recv.mu.Unlock(); return recv.closed })
	recv.mu.Lock()
	defer recv.mu.Unlock()
	seconds := float64(len(recv.pcm)) / (48000 * 2 * 2)
	if len(recv.pcm)%4 != 0 || seconds < 3 || seconds > elapsed+1 {
		t.Fatalf("got %d bytes = %.2f s of 48 kHz stereo S16LE in %d frames; %.2f s passed", len(recv.pcm), seconds, recv.frames, elapsed)
	}
	second := recv.pcm[48000*4 : 2*48000*4] // the second second
	for ch := range 2 {
		a440, a880, a1320 := goertzel(second, ch, 440), goertzel(second, ch, 880), goertzel(second, ch, 1320)
		if a440 < 0.05 || a880 < 0.05 || a1320 > 0.01 {
			t.Fatalf("channel %d: tone amplitudes 440 Hz %.4f, 880 Hz %.4f, 1320 Hz %.4f; want both microphones and nothing else", ch, a440, a880, a1320)
		}
	}
	t.Logf("received %.2f s of PCM in %d frames over %.2f s", seconds, recv.frames, elapsed)
}
