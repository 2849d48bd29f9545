package egress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mediaworker/mediaworker/pkg/config"
)

// ErrStillRunning means a journal's job process is alive: it will report for itself.
var ErrStillRunning = errors.New("job process still running")

// journal is what a recording job keeps on disk (<tmp_dir>/<egress_id>/job.json) while it records,
// so that a worker starting after the job was killed can store the partial file and end the egress
// FAILED with it, instead of leaving it ACTIVE with the file stranded on disk. It holds the
// request, storage credentials included, so it is written 0600.
type journal struct {
	Request   json.RawMessage `json:"request"`
	PID       int             `json:"pid"`
	WorkPath  string          `json:"work_path"`
	StoreKey  string          `json:"store_key"`
	StartedAt int64           `json:"started_at"` // first frame, unix ns
	MediaNS   int64           `json:"media_ns"`   // media recorded so far
}

func journalPath(tmpDir, egressID string) string { return filepath.Join(tmpDir, egressID, "job.json") }

// saveJournal writes the recording's journal atomically (temp file + rename).
func (rec *recording) saveJournal() error {
	req, err := protojson.Marshal(rec.req.Raw)
	if err != nil {
		return err
	}
	b, err := json.Marshal(journal{Request: req, PID: os.Getpid(), WorkPath: rec.workPath, StoreKey: rec.storeKey,
		StartedAt: rec.firstAt.UnixNano(), MediaNS: int64(rec.lastPTS)})
	if err != nil {
		return err
	}
	p := journalPath(rec.env.Conf.TmpDir, rec.info.EgressId)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

func (rec *recording) dropJournal() {
	p := journalPath(rec.env.Conf.TmpDir, rec.info.EgressId)
	_ = os.Remove(p)
	_ = os.Remove(filepath.Dir(p)) // only if empty: a kept recording stays
}

// Journals lists the egress ids with a journal under tmpDir.
func Journals(tmpDir string) []string {
	matches, _ := filepath.Glob(filepath.Join(tmpDir, "*", "job.json"))
	ids := make([]string, 0, len(matches))
	for _, m := range matches {
		ids = append(ids, filepath.Base(filepath.Dir(m)))
	}
	return ids
}

// Recover finishes the egress of a killed job from its journal: it stores the partial recording
// like the job would have and returns the final info (FAILED, with file_results). It returns
// ErrStillRunning if the job process is alive.
func Recover(ctx context.Context, conf *config.Config, log *slog.Logger, egressID string) (*livekit.EgressInfo, error) {
	p := journalPath(conf.TmpDir, egressID)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("journal %s: %w", p, err)
	}
	if jobAlive(j.PID) {
		return nil, ErrStillRunning
	}
	raw := &rpc.StartEgressRequest{}
	if err := protojson.Unmarshal(j.Request, raw); err != nil {
		return nil, fmt.Errorf("journal %s: request: %w", p, err)
	}
	r, err := Inspect(raw)
	if err != nil {
		return nil, err
	}
	rec := &recording{env: Env{Conf: conf, Log: log}, req: r, info: NewInfo(r, time.Unix(0, j.StartedAt)),
		file: fileOutput(r.Job), log: log, workPath: j.WorkPath, storeKey: j.StoreKey,
		firstAt: time.Unix(0, j.StartedAt), lastPTS: time.Duration(j.MediaNS)}
	cause := errors.New("the job process was killed mid-recording; a restarted worker stored what was recorded (see file_results)")
	if rec.file == nil || j.WorkPath == "" {
		cause = errors.New("the job process was killed mid-egress")
	} else if rec.dest, err = resolveStorage(ctx, conf, rec.file); err == nil {
		var fi *livekit.FileInfo
		fi, err = rec.store(ctx)
		if fi != nil {
			rec.info.FileResults = []*livekit.FileInfo{fi}
			rec.info.Result = &livekit.EgressInfo_File{File: fi}
		}
	}
	if err != nil {
		cause = fmt.Errorf("the job process was killed mid-recording, and storing the partial recording failed: %w", err)
	}
	rec.info.SetEndReason("job process killed")
	rec.info.SetFailed(cause)
	rec.dropJournal()
	return rec.info, nil
}

// jobAlive tells whether pid is a running mediaworker job (not a reused pid).
func jobAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(cmd), "run-job")
}
