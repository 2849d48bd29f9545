package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ListenRTMP runs ffmpeg as a one-connection RTMP server (app "live", the given stream key) that
// copies what it receives into an FLV file; ffmpeg ends when the publisher disconnects.
func ListenRTMP(t testing.TB, key ...string) (url, out string, p *Proc) {
	t.Helper()
	k := "key"
	if len(key) > 0 {
		k = key[0]
	}
	port := FreePort(t)
	out = filepath.Join(t.TempDir(), "got.flv")
	url = fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", port, k)
	p = Start(t, "ffmpeg-rtmp-"+k, nil, "ffmpeg", "-hide_banner", "-nostdin", "-v", "info", "-listen", "1", "-i", url, "-c", "copy", "-f", "flv", out)
	// Not WaitTCP: the listener takes exactly one connection.
	Eventually(t, 10*time.Second, "ffmpeg listening", func() bool { return listening("/proc/net/tcp", port, "0A") })
	return url, out, p
}

// ListenSRT runs an SRT listener (GStreamer srtsrc) that stores the MPEG-TS it receives as it
// arrives; url is what a caller connects to.
func ListenSRT(t testing.TB) (url, out string, p *Proc) {
	t.Helper()
	port := FreePort(t) // a free TCP port is very likely a free UDP port too
	out = filepath.Join(t.TempDir(), "got.ts")
	url = fmt.Sprintf("srt://127.0.0.1:%d", port)
	p = Start(t, "srt-listener", nil, "gst-launch-1.0", "-q", "srtsrc", "uri="+url+"?mode=listener", "!",
		"filesink", "buffer-mode=unbuffered", "location="+out)
	Eventually(t, 10*time.Second, "SRT listener bound", func() bool { return listening("/proc/net/udp", port, "") })
	return url, out, p
}

// listening reports whether a socket is bound to port in table (/proc/net/tcp or udp), in state
// (hex, "0A" = LISTEN) if state is set.
func listening(table string, port int, state string) bool {
	b, _ := os.ReadFile(table)
	want := fmt.Sprintf(":%04X", port)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && (state == "" || f[3] == state) {
			return true
		}
	}
	return false
}
