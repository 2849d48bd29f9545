package egress

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
)

func TestCheckStreamURL(t *testing.T) {
	tests := []struct {
		proto livekit.StreamProtocol
		url   string
		ok    bool
	}{
		{livekit.StreamProtocol_DEFAULT_PROTOCOL, "rtmp://a.rtmp.youtube.com/live2/abcd-efgh", true},
		{livekit.StreamProtocol_RTMP, "rtmps://live.example.com:443/app/key", true},
		{livekit.StreamProtocol_RTMP, "mux://streamkey", true},
		{livekit.StreamProtocol_RTMP, "twitch://streamkey", true},
		{livekit.StreamProtocol_RTMP, "srt://127.0.0.1:9000", false},
		{livekit.StreamProtocol_RTMP, "rtmp://host", false}, // no app/key
		{livekit.StreamProtocol_SRT, "srt://127.0.0.1:9000?streamid=x", true},
		{livekit.StreamProtocol_SRT, "srt://127.0.0.1", false}, // no port
		{livekit.StreamProtocol_SRT, "rtmp://host/app/key", false},
		{livekit.StreamProtocol_DEFAULT_PROTOCOL, "http://host/app/key", false},
		{livekit.StreamProtocol_DEFAULT_PROTOCOL, "not a url", false},
		{livekit.StreamProtocol_DEFAULT_PROTOCOL, "wss://stt.example.com/streamkey", true},
		{livekit.StreamProtocol_WEBSOCKET, "ws://127.0.0.1:8080/pcm?token=streamkey", true},
		{livekit.StreamProtocol_WEBSOCKET, "rtmp://host/app/streamkey", false},
		{livekit.StreamProtocol_RTMP, "ws://127.0.0.1:8080/pcm", false},
		{livekit.StreamProtocol_WEBSOCKET, "ws:///nohost", false},
	}
	for _, tc := range tests {
		err := checkStreamURL(tc.proto, tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%v %q: %v", tc.proto, tc.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "streamkey") {
			t.Errorf("error shows the key: %v", err)
		}
	}
}

func TestRedactStreamURL(t *testing.T) {
	tests := map[string]string{
		"rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl": "rtmp://a.rtmp.youtube.com/live2/{abc...jkl}",
		"srt://host:9000?streamid=secret&passphrase=pw":  "srt://host:9000?{redacted}",
		"rtmps://user:pw@host/app/k":                     "rtmps://{redacted}@host/app/{...}",
		"mux://abcdefghij":                               "mux://{abc...hij}",
	}
	for in, want := range tests {
		if got := redactStreamURL(in); got != want {
			t.Errorf("redactStreamURL(%q) = %q, want %q", in, got, want)
		}
	}
	msg := scrubURL("could not connect to rtmp://h/app/supersecret (rtmp2sink: supersecret refused)", "rtmp://h/app/supersecret")
	if strings.Contains(msg, "supersecret") {
		t.Fatalf("scrubbed: %s", msg)
	}
}

func TestStreamURLsApply(t *testing.T) {
	r, err := Inspect(&rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_RoomComposite{RoomComposite: &livekit.RoomCompositeEgressRequest{
		RoomName: "r", StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_RTMP, Urls: []string{"rtmp://h/app/one"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStreamURLs(r)
	code := func(err error) psrpc.ErrorCode {
		var pe psrpc.Error
		if errors.As(err, &pe) {
			return pe.Code()
		}
		return psrpc.OK
	}
	steps := []struct {
		add, remove []string
		want        psrpc.ErrorCode
	}{
		{add: []string{"rtmp://h/app/two"}, want: psrpc.OK},
		{add: []string{"rtmp://h/app/two"}, want: psrpc.AlreadyExists},
		{add: []string{"srt://h:1"}, want: psrpc.InvalidArgument},
		{remove: []string{"rtmp://h/app/three"}, want: psrpc.NotFound},
		{remove: []string{"rtmp://h/app/one", "rtmp://h/app/two"}, want: psrpc.OK},
		{remove: []string{"rtmp://h/app/one"}, want: psrpc.NotFound},
		{want: psrpc.InvalidArgument},
	}
	for i, st := range steps {
		if got := code(s.Apply(&livekit.UpdateStreamRequest{EgressId: "EG_1", AddOutputUrls: st.add, RemoveOutputUrls: st.remove})); got != st.want {
			t.Fatalf("step %d: %v, want %v", i, got, st.want)
		}
	}
	// A destination the job gave up can be added again.
	if code(s.Apply(&livekit.UpdateStreamRequest{EgressId: "EG_1", AddOutputUrls: []string{"rtmp://h/app/again"}})) != psrpc.OK {
		t.Fatal("add")
	}
	s.Forget([]*livekit.StreamInfo{{Url: redactStreamURL("rtmp://h/app/again"), Status: livekit.StreamInfo_FAILED}})
	if got := code(s.Apply(&livekit.UpdateStreamRequest{EgressId: "EG_1", AddOutputUrls: []string{"rtmp://h/app/again"}})); got != psrpc.OK {
		t.Fatalf("re-adding a failed destination: %v", got)
	}
	// The old FAILED entry stays in the results; the new attempt is live.
	s.Forget([]*livekit.StreamInfo{{Url: redactStreamURL("rtmp://h/app/again"), Status: livekit.StreamInfo_FAILED},
		{Url: redactStreamURL("rtmp://h/app/again"), Status: livekit.StreamInfo_ACTIVE}})
	if got := code(s.Apply(&livekit.UpdateStreamRequest{EgressId: "EG_1", RemoveOutputUrls: []string{"rtmp://h/app/again"}})); got != psrpc.OK {
		t.Fatalf("removing the re-added destination: %v", got)
	}
	// A video-only egress takes RTMP destinations but no WebSocket one (it has no audio to send).
	r, err = Inspect(&rpc.StartEgressRequest{EgressId: "EG_2", Request: &rpc.StartEgressRequest_RoomComposite{RoomComposite: &livekit.RoomCompositeEgressRequest{
		RoomName: "r", VideoOnly: true, StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"rtmp://h/app/one"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	vo := NewStreamURLs(r)
	if got := code(vo.Apply(&livekit.UpdateStreamRequest{EgressId: "EG_2", AddOutputUrls: []string{"wss://stt.example/in"}})); got != psrpc.InvalidArgument {
		t.Fatalf("adding a WebSocket destination to a video-only egress: %v, want InvalidArgument", got)
	}
	if got := code(vo.Apply(&livekit.UpdateStreamRequest{EgressId: "EG_2", AddOutputUrls: []string{"rtmp://h/app/two"}})); got != psrpc.OK {
		t.Fatalf("adding an RTMP destination to a video-only egress: %v", got)
	}
	var none *StreamURLs
	if code(none.Apply(&livekit.UpdateStreamRequest{AddOutputUrls: []string{"rtmp://h/app/x"}})) != psrpc.InvalidArgument {
		t.Fatal("an egress without streams accepted an update")
	}
}

func TestNewInfoRedactsStreamURLs(t *testing.T) {
	r, err := Inspect(&rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_RoomComposite{RoomComposite: &livekit.RoomCompositeEgressRequest{
		RoomName: "r", StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"srt://h:9000?streamid=sid123&passphrase=pass456", "rtmp://h/app/rtmpkey789"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := NewInfo(r, time.Now()).String()
	for _, secret := range []string{"sid123", "pass456", "rtmpkey789"} {
		if strings.Contains(s, secret) {
			t.Fatalf("%s in %s", secret, s)
		}
	}
	if r.Job.GetRoomComposite().GetStreamOutputs()[0].Urls[0] != "srt://h:9000?streamid=sid123&passphrase=pass456" {
		t.Fatal("redaction changed the job's own request")
	}
}

func TestDrainErr(t *testing.T) {
	rec := &recording{frames: 10, log: slog.New(slog.DiscardHandler)}
	end := time.Now()
	early := &pipeline.Error{Message: "early", At: end.Add(-5 * time.Second)}
	late := &pipeline.Error{Message: "at the end", At: end.Add(-200 * time.Millisecond)}
	if rec.drainErr(early, end) == nil {
		t.Fatal("an error long before the end was dropped")
	}
	if rec.drainErr(late, end) != nil || rec.drainErr(fmt.Errorf("x: %w", pipeline.ErrDrain), end) != nil {
		t.Fatal("an error at the end failed a recording")
	}
	if (&recording{log: rec.log}).drainErr(late, end) == nil {
		t.Fatal("an error with nothing recorded was dropped")
	}
}

// TestStreamTarget: the shorthand schemes the README lists resolve to the services' ingest URLs.
func TestStreamTarget(t *testing.T) {
	for in, want := range map[string]string{
		"mux://abc123":            "rtmps://global-live.mux.com:443/app/abc123",
		"twitch://live_987":       "rtmp://live.twitch.tv/app/live_987",
		" rtmp://h/app/k ":        "rtmp://h/app/k",
		"srt://h:9000?streamid=x": "srt://h:9000?streamid=x",
	} {
		if got := streamTarget(in); got != want {
			t.Errorf("streamTarget(%q) = %q, want %q", in, got, want)
		}
	}
}
