package egress

import (
	"strings"
	"testing"
	"time"
)

func TestOutputPath(t *testing.T) {
	v := FileVars{RoomName: "my-room", RoomID: "RM_1", TrackID: "TR_a", TrackType: "audio", TrackSource: "microphone",
		PublisherIdentity: "alice", Time: time.Date(2026, 11, 24, 9, 5, 7, 123e6, time.UTC)}
	tests := []struct{ name, tmpl, ext, want string }{
		{"empty gets default", "", ".ogg", "TR_a-2026-11-24T090507.ogg"},
		{"dir gets default", "rec/{room_name}/", ".mp4", "rec/my-room/TR_a-2026-11-24T090507.mp4"},
		{"all vars", "{room_name}/{room_id}/{track_id}-{track_type}-{track_source}-{publisher_identity}-{utc}", ".webm",
			"my-room/RM_1/TR_a-audio-microphone-alice-20261124090507123.webm"},
		{"wrong extension fixed", "a/b.mp4", ".ogg", "a/b.ogg"},
		{"right extension kept", "a/b.ogg", ".ogg", "a/b.ogg"},
		{"unknown extension kept", "a/b.v2", ".ogg", "a/b.v2.ogg"},
		{"dotdot cannot escape", "../../etc/{track_id}", ".ogg", "etc/TR_a.ogg"},
		{"absolute made relative", "/var/x/{track_id}.ogg", ".ogg", "var/x/TR_a.ogg"},
		{"dotdot inside name", "a..b/../../c", ".mp4", "a_b/c.mp4"},
		{"only dots", "../..", ".ogg", "output.ogg"},
		{"storage URL names the key", "s3://bucket/recordings/{room_name}-{time}.mp4", ".mp4", "recordings/my-room-2026-11-24T090507.mp4"},
		{"gs URL", "gs://b/{track_id}", ".ogg", "TR_a.ogg"},
		{"bucket-only URL gets default", "s3://bucket", ".ogg", "TR_a-2026-11-24T090507.ogg"},
		{"scheme-like text inside a name kept", "{room_name}/x://y", ".ogg", "my-room/x:/y.ogg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := OutputPath(tc.tmpl, v, "{track_id}-{time}", tc.ext); got != tc.want {
				t.Fatalf("OutputPath(%q) = %q, want %q", tc.tmpl, got, tc.want)
			}
		})
	}
}

func FuzzOutputPath(f *testing.F) {
	f.Add("{room_name}/../{track_id}.mp4")
	f.Fuzz(func(t *testing.T, tmpl string) {
		p := OutputPath(tmpl, FileVars{RoomName: "r", TrackID: "t"}, "{track_id}", ".ogg")
		if strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") || p == "" {
			t.Fatalf("unsafe path %q from %q", p, tmpl)
		}
	})
}
