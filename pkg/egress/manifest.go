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
	EgressID  string              `json:"egress_id"`
	RoomID    string              `json:"room_id"`
	RoomName  string              `json:"room_name"`
	StartedAt int64               `json:"started_at"`
	EndedAt   int64               `json:"ended_at"`
	Files     []*livekit.FileInfo `json:"files"`
}

// storeManifest writes the manifest for fi with st (nil: local disk, next to the file). A failure
// is logged, not fatal: the recording itself is stored.
func (rec *recording) storeManifest(ctx context.Context, st upload.Store, fi *livekit.FileInfo) {
	if rec.file.GetDisableManifest() {
		return
	}
	b, _ := json.MarshalIndent(manifest{EgressID: rec.info.EgressId, RoomID: rec.info.RoomId, RoomName: rec.info.RoomName,
		StartedAt: fi.StartedAt, EndedAt: fi.EndedAt, Files: []*livekit.FileInfo{fi}}, "", "  ")
	key := path.Join(path.Dir(rec.storeKey), rec.info.EgressId+".json")
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
