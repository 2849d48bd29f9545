package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	lkegress "github.com/livekit/protocol/egress"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/config"
	"github.com/mediaworker/mediaworker/pkg/container"
	"github.com/mediaworker/mediaworker/pkg/source"
)

// Env is what a job needs from the process it runs in.
type Env struct {
	Conf *config.Config
	Log  *slog.Logger
	// Status receives every update; the last one is terminal.
	Status func(*livekit.EgressInfo)
	// Stop is closed when the job must end cleanly (StopEgress, shutdown, worker gone).
	Stop <-chan struct{}
	// Update receives UpdateStream requests, already validated (nil: none come).
	Update <-chan *livekit.UpdateStreamRequest
}

// Run runs the job r asks for and always ends by sending a terminal status: track egress records
// one track without transcoding (Opus → Ogg, H.264 → fragmented MP4, VP8/VP9 → WebM); participant
// egress transcodes a participant's camera and microphone to MP4. The file is then stored.
func Run(ctx context.Context, env Env, r *Request) {
	rec := &recording{env: env, req: r, info: NewInfo(r, time.Now()), file: fileOutput(r.Job), log: env.Log}
	var err error
	switch r.Kind {
	case KindParticipant, KindTrackComposite:
		err = rec.runTranscoded(ctx)
	case KindRoomComposite:
		err = rec.runRoomComposite(ctx)
	default:
		err = rec.run(ctx)
	}
	if err != nil {
		rec.fail(err)
	}
	env.Status(rec.info)
}

// fileOutput is the request's file output in the shape storage code takes (EncodedFileOutput and
// DirectFileOutput carry the same storage choices).
func fileOutput(raw *rpc.StartEgressRequest) *livekit.DirectFileOutput {
	if f := raw.GetTrack().GetFile(); f != nil {
		return f
	}
	var req encodedRequest
	switch q := raw.Request.(type) {
	case *rpc.StartEgressRequest_Participant:
		req = q.Participant
	case *rpc.StartEgressRequest_TrackComposite:
		req = q.TrackComposite
	case *rpc.StartEgressRequest_RoomComposite:
		req = q.RoomComposite
	default:
		return nil
	}
	outs := encodedFiles(req)
	if len(outs) == 0 {
		return nil
	}
	e := outs[0]
	d := storageOf(e.GetS3(), e.GetGcp(), e.GetAzure(), e.GetAliOSS())
	d.Filepath, d.DisableManifest = e.GetFilepath(), e.GetDisableManifest()
	return d
}

type recording struct {
	env  Env
	req  *Request
	info *livekit.EgressInfo
	file *livekit.DirectFileOutput
	log  *slog.Logger

	track    *source.Track
	streams  *streams       // stream outputs, nil without
	segments *segmentOutput // HLS output, nil without
	segDest  *destination   // where the HLS output goes
	images   []*imageOutput
	dest     *destination
	workPath string // where the file is written
	storeKey string // its name in storage (the expanded filepath)
	firstAt  time.Time
	lastPTS  time.Duration
	frames   int64
	stopped  bool // StopEgress or shutdown ended it
	limited  bool // a configured limit ended it
	broke    bool // the media pipeline reported an error while recording: it ended the recording
	firstPTS time.Duration
	out      *byteCounter
	fileSize int64 // bytes a pipeline wrote to workPath, as last seen (statFile)
}

// token is the recorder's join token: identity = egress_id, hidden, subscribe only (protocol's
// BuildEgressToken, as the official egress; UpdateLayout finds the recorder by that identity).
func (rec *recording) token() (string, error) {
	c := rec.env.Conf
	t, err := lkegress.BuildEgressToken(rec.info.EgressId, c.APIKey, c.APISecret, rec.req.RoomName)
	if err != nil {
		return "", fmt.Errorf("build recorder token: %w", err)
	}
	return t, nil
}

// untilStop is ctx, also cancelled when the job is asked to stop, so that joining and waiting for
// tracks end at once.
func (rec *recording) untilStop(ctx context.Context) (context.Context, context.CancelFunc) {
	sub, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-rec.env.Stop:
			cancel()
		case <-sub.Done():
		}
	}()
	return sub, cancel
}

func (rec *recording) run(ctx context.Context) error {
	conf := rec.env.Conf
	token, err := rec.token()
	if err != nil {
		return err
	}
	if err := rec.checkStorage(ctx); err != nil {
		return err
	}
	frames := make(chan source.Frame, 4096)
	subCtx, cancel := rec.untilStop(ctx)
	defer cancel()
	muted := make(chan bool, 16)
	rec.track, err = source.SubscribeTrack(subCtx, source.TrackParams{
		WsURL: conf.WsURL, Token: token, TrackID: rec.req.Job.GetTrack().GetTrackId(),
		Wait: conf.Timeouts.TrackWait, Log: rec.log, OnFrame: func(f source.Frame) { frames <- f },
		OnMute: func(m bool) {
			select {
			case muted <- m:
			default: // a flood of mute toggles: the receiver still gets the latest on the next one
			}
		},
	})
	if err != nil {
		if stopped(rec.env.Stop) {
			rec.info.SetAborted("Stop called before the track was recording")
			return nil
		}
		if errors.Is(err, source.ErrTrackNotFound) {
			return psrpc.NewError(psrpc.NotFound, err)
		}
		return err
	}
	defer rec.track.Close()
	ti := rec.track.Info()
	rec.log = rec.log.With("track_id", ti.TrackID, "mime", ti.MimeType, "publisher", ti.PublisherIdentity)
	if u := rec.req.Job.GetTrack().GetWebsocketUrl(); u != "" {
		return rec.runWebSocket(ctx, frames, muted, u)
	}
	w, f, err := rec.open(ti)
	if err != nil {
		return err
	}
	defer rec.dropJournal()
	reason, recErr := rec.record(ctx, frames, w)
	closeErr := errors.Join(w.Close(), f.Close())
	if recErr == nil {
		recErr = closeErr
	}
	return rec.finish(ctx, reason, recErr)
}

// open expands the filepath and creates the output file and its container writer.
func (rec *recording) open(ti source.TrackInfo) (container.Writer, *os.File, error) {
	codec, err := codecOf(ti.MimeType)
	if err != nil {
		return nil, nil, psrpc.NewError(psrpc.InvalidArgument, err)
	}
	ext, err := container.Extension(codec)
	if err != nil {
		return nil, nil, err
	}
	vars := FileVars{RoomName: rec.req.RoomName, RoomID: rec.info.RoomId, TrackID: ti.TrackID, TrackType: ti.Kind,
		TrackSource: ti.Source, PublisherIdentity: ti.PublisherIdentity, Time: time.Now()}
	rec.storeKey = OutputPath(rec.file.GetFilepath(), vars, "{track_id}-{time}", ext)
	if err := rec.placeOutput(); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(rec.workPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("create output file: %w", err)
	}
	rec.out = &byteCounter{w: f}
	w, err := container.New(codec, rec.out)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	rec.log.Info("recording track", "file", rec.workPath)
	return w, f, nil
}

// record writes frames until the track ends or a stop arrives; it returns the end reason.
func (rec *recording) record(ctx context.Context, frames <-chan source.Frame, w container.Writer) (string, error) {
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	journalTick := time.NewTicker(5 * time.Second)
	defer journalTick.Stop()
	for {
		select {
		case f := <-frames:
			if err := rec.write(w, f); err != nil {
				return livekit.EndReasonFailure, err
			}
			if rec.overLimit() {
				rec.limited = true
				return livekit.EndReasonLimitReached, nil
			}
		case <-rec.track.Done():
			rec.drain(frames, w)
			return livekit.EndReasonSrcClosed + ": " + rec.track.Reason(), nil
		case <-rec.env.Stop:
			rec.stopped = true
			rec.drain(frames, w)
			return livekit.EndReasonAPI, nil
		case <-ctx.Done():
			return livekit.EndReasonFailure, ctx.Err()
		case <-journalTick.C:
			if err := rec.saveJournal(); err != nil {
				rec.log.Warn("could not update the recording journal", "error", err)
			}
		case <-progress.C:
			rec.logProgress()
		}
	}
}

// overLimit tells whether an output reached its limit: limits.file_output_max_duration or
// _max_size for a file, or the stream, segment or image output's max duration.
func (rec *recording) overLimit() bool {
	l := rec.env.Conf.Limits
	over := func(limit time.Duration) bool { return limit > 0 && rec.lastPTS >= limit }
	size := rec.fileSize
	if rec.out != nil {
		size = rec.out.n
	}
	return (rec.file != nil && (over(l.FileOutputMaxDuration) || (l.FileOutputMaxSize > 0 && size >= l.FileOutputMaxSize))) ||
		(rec.streams != nil && over(l.StreamOutputMaxDuration)) ||
		(rec.segments != nil && over(l.SegmentOutputMaxDuration)) ||
		(len(rec.images) > 0 && over(l.ImageOutputMaxDuration))
}

// statFile refreshes fileSize, the size of a file a pipeline writes (for file_output_max_size).
func (rec *recording) statFile() {
	if st, err := os.Stat(rec.workPath); err == nil && rec.workPath != "" {
		rec.fileSize = st.Size()
	}
}

func (rec *recording) drain(frames <-chan source.Frame, w container.Writer) {
	for {
		select {
		case f := <-frames:
			_ = rec.write(w, f)
		default:
			return
		}
	}
}

func (rec *recording) write(w container.Writer, f source.Frame) error {
	if err := w.WriteSample(container.Sample{Data: f.Data, PTS: f.PTS, Keyframe: f.Keyframe}); err != nil {
		return fmt.Errorf("write %s: %w", rec.workPath, err)
	}
	rec.counted(f)
	if rec.frames == 1 {
		if err := rec.saveJournal(); err != nil {
			rec.log.Warn("could not write the recording journal; a crash would strand this file", "error", err)
		}
	}
	return nil
}

// counted notes a frame delivered; the first one makes the egress ACTIVE.
func (rec *recording) counted(f source.Frame) {
	rec.frames++
	rec.lastPTS = f.PTS
	if rec.frames == 1 {
		rec.firstAt = time.Now()
		rec.info.UpdateStatus(livekit.EgressStatus_EGRESS_ACTIVE)
		rec.env.Status(rec.info)
		rec.log.Info("egress active: media is being written")
	}
}

// store puts the finished file where the request asked, falling back to the backup storage. When
// both fail the local file is kept and the error says where it is.
func (rec *recording) store(ctx context.Context) (*livekit.FileInfo, error) {
	fi := &livekit.FileInfo{Filename: rec.storeKey, StartedAt: rec.firstAt.UnixNano(), EndedAt: time.Now().UnixNano(),
		Duration: int64(rec.lastPTS)}
	stat, err := os.Stat(rec.workPath)
	if err != nil {
		return fi, fmt.Errorf("stat output: %w", err)
	}
	fi.Size = stat.Size()
	if rec.dest.primary == nil {
		fi.Location, _ = filepath.Abs(rec.workPath)
		rec.storeManifest(ctx, nil, fi)
		return fi, nil
	}
	// Each attempt is bounded by the store (5 min + 1 s/MiB); retries bound the whole.
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	used := rec.dest.primary
	loc, size, err := used.Upload(uctx, rec.workPath, rec.storeKey, contentType(rec.storeKey))
	if err != nil && rec.dest.backup != nil {
		rec.log.Error("upload failed; trying the backup storage", "error", err)
		used = rec.dest.backup
		if loc, size, err = used.Upload(uctx, rec.workPath, rec.storeKey, contentType(rec.storeKey)); err == nil {
			rec.info.SetBackupUsed()
		}
	}
	if err != nil {
		rec.log.Error("upload failed; recording kept locally", "file", rec.workPath, "error", err)
		return fi, fmt.Errorf("upload failed, the recording is kept at %s on the worker: %w", rec.workPath, err)
	}
	fi.Location, fi.Size = presigned(uctx, rec.env.Conf, rec.log, used, rec.storeKey, loc), size
	rec.storeManifest(uctx, used, fi)
	rec.log.Info("uploaded", "location", loc, "bytes", size, "seconds", time.Since(start).Seconds(), "backup", rec.info.BackupStorageUsed)
	_ = os.Remove(rec.workPath)
	_ = os.Remove(filepath.Dir(rec.workPath))
	return fi, nil
}

// checkStorage resolves where the file will go and fails early on storage that can never work.
func (rec *recording) checkStorage(ctx context.Context) error {
	if rec.file == nil {
		return nil
	}
	d, err := resolveStorage(ctx, rec.env.Conf, rec.file)
	if err != nil {
		return psrpc.NewError(psrpc.InvalidArgument, err)
	}
	rec.dest = d
	warning, err := d.check(ctx)
	if warning != nil {
		rec.log.Warn("storage not usable now; recording anyway, the upload is retried at the end (then the backup storage, if any)", "error", warning)
	}
	return err
}

func codecOf(mime string) (container.Codec, error) {
	switch strings.ToLower(mime) {
	case "audio/opus", "audio/red":
		return container.CodecOpus, nil
	case "video/h264":
		return container.CodecH264, nil
	case "video/vp8":
		return container.CodecVP8, nil
	case "video/vp9":
		return container.CodecVP9, nil
	}
	return "", fmt.Errorf("track codec %s cannot be recorded without transcoding (Opus, H.264, VP8, VP9 can)", mime)
}

func contentType(name string) string {
	switch filepath.Ext(name) {
	case ".ogg":
		return "audio/ogg"
	case ".mp4":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	}
	return "application/octet-stream"
}

func stopped(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// fail ends the egress FAILED with err, keeping any results already filled.
func (rec *recording) fail(err error) {
	rec.log.Error("egress failed", "error", err)
	rec.info.SetFailed(err)
}

// byteCounter counts what is written to the output file (for limits.file_output_max_size). It
// forwards Seek so writers can patch headers on Close.
type byteCounter struct {
	w *os.File
	n int64
}

func (c *byteCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *byteCounter) Seek(offset int64, whence int) (int64, error) { return c.w.Seek(offset, whence) }

// logProgress says how far a recording got: media time, frames, bytes on disk and the bit rate.
func (rec *recording) logProgress() {
	var size int64
	if st, err := os.Stat(rec.workPath); err == nil {
		size = st.Size()
	}
	rec.log.Info("recording", "media_seconds", rec.lastPTS.Seconds(), "frames", rec.frames, "bytes", size,
		"kbps", float64(size*8)/1000/max(rec.lastPTS.Seconds(), 0.001))
}
