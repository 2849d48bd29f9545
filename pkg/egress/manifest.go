package egress

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/pkg/upload"
)

// manifest lists what an egress produced; it is stored as <egress_id>.json next to the outputs
// (unless the output sets disable_manifest) and reported as manifest_location.
type manifest struct {
	EgressID  string                  `json:"egress_id"`
	RoomID    string                  `json:"room_id"`
	RoomName  string                  `json:"room_name"`
	StartedAt int64                   `json:"started_at"`
	EndedAt   int64                   `json:"ended_at"`
	Files     []*livekit.FileInfo     `json:"files"`
	Playlists []*livekit.SegmentsInfo `json:"playlists,omitempty"`
}

// storeManifest writes the manifest for fi with st (nil: local disk, next to the file). A failure
// is logged, not fatal: the recording itself is stored.
func (rec *recording) storeManifest(ctx context.Context, st upload.Store, fi *livekit.FileInfo) {
	if rec.file.GetDisableManifest() {
		return
	}
	rec.writeManifest(ctx, st, path.Dir(rec.storeKey), fi.StartedAt, fi.EndedAt, []*livekit.FileInfo{fi})
}

// storeSegmentsManifest writes the manifest of an egress whose only stored output is HLS, next
// to its playlist.
func (rec *recording) storeSegmentsManifest(ctx context.Context) {
	if rec.segments == nil || rec.file != nil || len(rec.info.SegmentResults) == 0 {
		return
	}
	sr := rec.info.SegmentResults[0]
	rec.writeManifest(ctx, rec.segDest.primary, path.Dir(sr.PlaylistName), sr.StartedAt, sr.EndedAt, []*livekit.FileInfo{})
}

// writeManifest stores the manifest as <dir>/<egress_id>.json with st (nil: local disk).
func (rec *recording) writeManifest(ctx context.Context, st upload.Store, dir string, started, ended int64, files []*livekit.FileInfo) {
	b, _ := json.MarshalIndent(manifest{EgressID: rec.info.EgressId, RoomID: rec.info.RoomId, RoomName: rec.info.RoomName,
		StartedAt: started, EndedAt: ended, Files: files, Playlists: rec.info.SegmentResults}, "", "  ")
	key := path.Join(dir, rec.info.EgressId+".json")
	if st == nil {
		p := filepath.Join(rec.env.Conf.LocalOutputDir, filepath.FromSlash(key))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			rec.log.Warn("could not write the manifest", "error", err)
			return
		}
		rec.info.ManifestLocation, _ = filepath.Abs(p)
		return
	}
	tmp := filepath.Join(rec.env.Conf.TmpDir, rec.info.EgressId, rec.info.EgressId+".json")
	err := os.MkdirAll(filepath.Dir(tmp), 0o700)
	if err == nil {
		err = os.WriteFile(tmp, b, 0o600)
	}
	defer os.Remove(tmp)
	if err != nil {
		rec.log.Warn("could not write the manifest", "error", err)
		return
	}
	loc, _, err := st.Upload(ctx, tmp, key, "application/json")
	if err != nil {
		rec.log.Warn("could not store the manifest", "error", err)
		return
	}
	rec.info.ManifestLocation = loc
}
