package rtmpserver

import (
	"path"
	"strings"
	"unicode/utf8"
)

// streamKey returns the last path segment of an RTMP publishing name with any query string
// removed: "live/abc?token=x" → "abc". OBS sends the key alone; ffmpeg sends whatever follows
// the app in the URL.
func streamKey(publishingName string) string {
	name, _, _ := strings.Cut(publishingName, "?")
	_, key := path.Split(name)
	return key
}

// redact shortens a stream key for logs: at most its first 4 characters, and never more than
// half of a short key, followed by "…".
func redact(key string) string {
	n := min(4, utf8.RuneCountInString(key)/2)
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(key[i:])
		i += size
	}
	return key[:i] + "…"
}
