package egress

import (
	"path"
	"strings"
	"time"
)

// FileVars are the values a filepath template may use.
type FileVars struct {
	RoomName, RoomID                string
	TrackID, TrackType, TrackSource string
	PublisherIdentity               string
	Time                            time.Time
}

// OutputPath expands a filepath template the way the official egress does:
// {room_name} {room_id} {track_id} {track_type} {track_source} {publisher_identity}
// {time} (2006-01-02T150405) {utc} (20060102150405 + ms). An empty template or one ending in "/"
// gets defaultName ("{track_id}-{time}" for tracks); a missing or wrong extension becomes ext.
// The result is a clean relative path: leading "/" and every ".." are dropped, so it cannot escape
// the output base (local directory or bucket prefix). A template written as a storage URL
// ("s3://bucket/recordings/{room_name}.mp4", as LiveKit's examples do) names the key in the
// request's storage: "recordings/…" (the storage config says which bucket).
func OutputPath(template string, v FileVars, defaultName, ext string) string {
	template = stripStorageURL(template)
	if template == "" || strings.HasSuffix(template, "/") {
		template += defaultName
	}
	t := v.Time.UTC()
	r := strings.NewReplacer(
		"{room_name}", v.RoomName, "{room_id}", v.RoomID,
		"{track_id}", v.TrackID, "{track_type}", v.TrackType, "{track_source}", v.TrackSource,
		"{publisher_identity}", v.PublisherIdentity, "{participant_identity}", v.PublisherIdentity,
		"{time}", t.Format("2006-01-02T150405"), "{utc}", t.Format("20060102150405")+t.Format(".000")[1:],
	)
	p := r.Replace(template)
	var parts []string
	for _, seg := range strings.Split(p, "/") {
		seg = strings.TrimSpace(seg)
		if seg == "" || seg == "." || seg == ".." {
			continue
		}
		parts = append(parts, strings.ReplaceAll(seg, "..", "_"))
	}
	p = strings.Join(parts, "/")
	if p == "" {
		p = "output"
	}
	if cur := path.Ext(p); cur != ext {
		// "name.mp4" for an ogg track becomes "name.ogg"; "name.v2" keeps ".v2" and gains the extension.
		if knownExt(cur) {
			p = strings.TrimSuffix(p, cur)
		}
		p += ext
	}
	return p
}

func knownExt(e string) bool {
	switch strings.ToLower(e) {
	case ".mp4", ".ogg", ".webm", ".mp3", ".m4a", ".ts", ".ivf", ".mkv", ".opus", ".h264":
		return true
	}
	return false
}

// stripStorageURL drops a "scheme://bucket/" prefix from a filepath template.
func stripStorageURL(template string) string {
	i := strings.Index(template, "://")
	if i <= 0 || strings.ContainsAny(template[:i], "/{}") {
		return template
	}
	rest := template[i+3:]
	if j := strings.Index(rest, "/"); j >= 0 {
		return rest[j+1:]
	}
	return ""
}
