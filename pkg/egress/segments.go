package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/proto"

	"github.com/mediaworker/mediaworker/pkg/container"
	"github.com/mediaworker/mediaworker/pkg/hls"
)

const (
	// segmentQueue is how many samples wait for the segment writer: ≈ 10 s of 30 fps video with
	// 48 kHz AAC (77 samples a second). push drops samples beyond it.
	segmentQueue = 800
	// segmentDefaultDuration is the target segment length when the request gives none (as the
	// official egress).
	segmentDefaultDuration = 4 * time.Second
	// segmentBacklog is how many uploads may wait before the playlists of the waiting ones are
	// skipped: each later upload carries a newer playlist listing their segments too.
	segmentBacklog = 8
	// segmentKeptErrors is how many upload errors are kept for close's error; the rest are counted.
	segmentKeptErrors = 3
	// segmentCloseGrace is how long close still waits for the uploader once ctx has ended and the
	// uploads were cancelled.
	segmentCloseGrace = 5 * time.Second

	segmentContentType  = "video/mp2t"
	playlistContentType = "application/x-mpegURL"
)

// segmentOutput writes one SegmentedFileOutput: HLS segments cut from the encoded taps, each stored
// as soon as it closes, then the playlists.
//
// Three parties share it: push (GStreamer threads) queues samples without blocking; the writer
// goroutine feeds them to the segmenter and queues each finished segment; the uploader goroutine
// (none on local disk) stores the segments and playlists in order. close ends both.
type segmentOutput struct {
	log          *slog.Logger
	dest         *destination
	names        segmentNames
	workDir      string
	video, audio bool
	target       time.Duration
	local        bool   // nothing is uploaded: the files stay in workDir
	key          string // storage key of the main playlist, naming the output in errors

	in         chan encodedSample
	pushMu     sync.Mutex // guards closed, gap, dropped
	closed     bool
	gap        bool // samples were lost since the last one queued
	dropped    int
	writerDone chan struct{}

	// Owned by the writer goroutine.
	seg        *hls.Segmenter
	based      bool          // base is set
	base       time.Duration // pts of the first sample: media time 0
	needKey    bool          // video resumes at a key frame after lost samples
	flushing   bool          // the segmenter is closing: the last segment's playlists go with the final upload
	writeFails int

	qmu      sync.Mutex // guards queue, qDone
	queue    []*segmentUpload
	qDone    bool          // no more uploads will be queued
	wake     chan struct{} // an upload was queued or the queue finished (buffered 1)
	upCtx    context.Context
	upCancel context.CancelFunc
	upDone   chan struct{} // the uploader ended (on local disk: the writer)

	mu        sync.Mutex // guards inf, backupOn, errs, failures, closeErr
	inf       *livekit.SegmentsInfo
	backupOn  bool
	errs      []error // the first upload or write errors
	failures  int     // files not stored
	closeOnce sync.Once
	closeErr  error
}

// segmentParams configures a segmentOutput.
type segmentParams struct {
	Out          *livekit.SegmentedFileOutput
	Vars         FileVars     // for templates in filename_prefix / playlist names
	WorkDir      string       // local directory for the files (when dest.primary is nil this IS the final place: files stay there)
	Dest         *destination // primary nil = local disk (nothing uploaded, files kept in WorkDir)
	Video, Audio bool
	AudioRate    int       // AAC, 2 channels
	Start        time.Time // wall clock of the first media
	Log          *slog.Logger
}

// segmentNames are where an HLS output's files go in storage.
type segmentNames struct {
	dir          string // storage directory, "" for the root
	base         string // segment file names start with it
	playlist     string // main playlist file name
	livePlaylist string // live playlist file name, "" for none
}

// segmentUpload is one job of the uploader: a finished segment (none for the final playlists) and
// the playlists as they were right after it.
type segmentUpload struct {
	file, key string // the segment's local path and storage key; "" for none
	playlists []playlistSnapshot
}

// playlistSnapshot is a playlist's content at one moment: the segmenter rewrites the file with
// every segment, so what is uploaded after a segment is copied when that segment ends.
type playlistSnapshot struct {
	name string // file name
	live bool
	data []byte
}

// newSegmentOutput validates the output, creates its segmenter in p.WorkDir and starts writing
// (and uploading, unless the files stay on local disk).
func newSegmentOutput(p segmentParams) (*segmentOutput, error) {
	names, err := segmentNamesFor(p.Out, p.Vars)
	if err != nil {
		return nil, psrpc.NewError(psrpc.InvalidArgument, err)
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	start := p.Start
	if start.IsZero() {
		start = time.Now()
	}
	o := &segmentOutput{
		log: log.With("playlist", names.key(names.playlist)), dest: p.Dest, names: names, workDir: p.WorkDir,
		video: p.Video, audio: p.Audio, target: segmentTarget(p.Out), local: p.Dest == nil || p.Dest.primary == nil,
		in: make(chan encodedSample, segmentQueue), writerDone: make(chan struct{}),
		wake: make(chan struct{}, 1), upDone: make(chan struct{}), key: names.key(names.playlist),
		inf: &livekit.SegmentsInfo{PlaylistName: names.key(names.playlist), StartedAt: start.UnixNano()},
	}
	if names.livePlaylist != "" {
		o.inf.LivePlaylistName = names.key(names.livePlaylist)
	}
	o.seg, err = hls.New(hls.Config{
		Dir: p.WorkDir, FilenamePrefix: names.base, PlaylistName: names.playlist, LivePlaylistName: names.livePlaylist,
		SegmentDuration: o.target, TimestampSuffix: p.Out.GetFilenameSuffix() == livekit.SegmentedFileSuffix_TIMESTAMP,
		Video: p.Video, Audio: p.Audio, AAC: container.AACConfig{SampleRate: p.AudioRate, Channels: 2},
		Start: start, OnSegment: o.segmentDone,
	})
	if err != nil {
		return nil, fmt.Errorf("segmented output %s: %w", o.key, err)
	}
	o.upCtx, o.upCancel = context.WithCancel(context.Background())
	go o.write()
	if o.local {
		o.upDone = o.writerDone // nothing to upload: done when written
	} else {
		go o.upload()
	}
	return o, nil
}

// segmentTarget is the requested segment duration, segmentDefaultDuration when none.
func segmentTarget(out *livekit.SegmentedFileOutput) time.Duration {
	if s := out.GetSegmentDuration(); s > 0 {
		return time.Duration(s) * time.Second
	}
	return segmentDefaultDuration
}

// segmentNamesFor expands the output's filename prefix and playlist names: the prefix's directory
// is the storage directory of every file, segments and playlists alike. OutputPath with no
// extension adds none (and drops a known media one, such as ".ts").
func segmentNamesFor(out *livekit.SegmentedFileOutput, v FileVars) (segmentNames, error) {
	prefix := OutputPath(out.GetFilenamePrefix(), v, "{room_name}-{time}", "")
	n := segmentNames{dir: path.Dir(prefix), base: path.Base(prefix)}
	if n.dir == "." {
		n.dir = ""
	}
	n.playlist = n.base + ".m3u8"
	if pl := out.GetPlaylistName(); pl != "" {
		n.playlist = playlistFileName(pl, v, n.base)
	}
	if live := out.GetLivePlaylistName(); live != "" {
		n.livePlaylist = playlistFileName(live, v, n.base+"-live")
	}
	if n.livePlaylist == n.playlist {
		return n, fmt.Errorf("live_playlist_name %q is the playlist_name", n.livePlaylist)
	}
	return n, nil
}

// playlistFileName is the expanded file name of a playlist (any directory dropped), ending in .m3u8.
func playlistFileName(template string, v FileVars, defaultName string) string {
	name := path.Base(OutputPath(template, v, defaultName, ""))
	if !strings.HasSuffix(strings.ToLower(name), ".m3u8") {
		name += ".m3u8"
	}
	return name
}

// key is the storage key of the file name in the output's directory.
func (n segmentNames) key(name string) string {
	return path.Join(n.dir, name)
}

// segmentDuration is the effective target duration of a segment.
func (o *segmentOutput) segmentDuration() time.Duration { return o.target }

// push queues a sample for the segmenter without blocking. When the queue is full the sample is
// lost (logged once); video then resumes at the next key frame.
func (o *segmentOutput) push(s encodedSample) {
	o.pushMu.Lock()
	defer o.pushMu.Unlock()
	if o.closed {
		return
	}
	if o.gap { // tell the writer about the loss before the next sample
		select {
		case o.in <- encodedSample{}:
			o.gap = false
		default:
			o.dropped++
			return
		}
	}
	select {
	case o.in <- s:
	default:
		o.gap = true
		o.dropped++
		if o.dropped == 1 {
			o.log.Warn("segment writer behind; dropping media until it catches up", "queued", segmentQueue)
		}
	}
}

// info is a snapshot of the output's results so far.
func (o *segmentOutput) info() *livekit.SegmentsInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	return proto.Clone(o.inf).(*livekit.SegmentsInfo)
}

// usedBackup tells whether any file went to the backup storage.
func (o *segmentOutput) usedBackup() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.backupOn
}

// close ends the output: the last segment is cut, every upload finishes (or is cancelled when ctx
// ends) and the final playlists, with EXT-X-ENDLIST, are stored last. It returns the final info
// and an error naming what was not stored (those files are kept in the work directory). Calling
// it again returns the same.
func (o *segmentOutput) close(ctx context.Context) (*livekit.SegmentsInfo, error) {
	o.closeOnce.Do(func() {
		ended := time.Now()
		o.pushMu.Lock()
		o.closed = true
		close(o.in)
		dropped := o.dropped
		o.pushMu.Unlock()
		if dropped > 0 {
			o.log.Warn("media was dropped from the segments", "samples", dropped)
		}
		err := o.wait(ctx)
		o.mu.Lock()
		o.inf.EndedAt = ended.UnixNano()
		o.closeErr = errors.Join(err, o.failure())
		o.mu.Unlock()
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	return proto.Clone(o.inf).(*livekit.SegmentsInfo), o.closeErr
}

// wait waits for the writer and the uploader to finish; when ctx ends first the uploads are
// cancelled and it waits segmentCloseGrace more.
func (o *segmentOutput) wait(ctx context.Context) error {
	defer o.upCancel()
	select {
	case <-o.upDone:
		<-o.writerDone // the uploader ends only after the writer queued the final playlists
		return nil
	case <-ctx.Done():
	}
	o.upCancel()
	o.log.Error("segments not all stored in time; the rest stay on the worker", "dir", o.workDir, "error", ctx.Err())
	grace := time.NewTimer(segmentCloseGrace)
	defer grace.Stop()
	for _, c := range []chan struct{}{o.writerDone, o.upDone} {
		select {
		case <-c:
		case <-grace.C:
			return fmt.Errorf("segmented output %s: still storing after %v: %w", o.key, segmentCloseGrace, ctx.Err())
		}
	}
	return fmt.Errorf("segmented output %s: closing: %w", o.key, ctx.Err())
}

// failure sums up the files that were not stored; o.mu held.
func (o *segmentOutput) failure() error {
	if o.failures == 0 {
		return nil
	}
	return fmt.Errorf("segmented output %s: %d files not stored, kept in %s: %w",
		o.key, o.failures, o.workDir, errors.Join(o.errs...))
}

// failed remembers an error for close.
func (o *segmentOutput) failed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures++
	if len(o.errs) < segmentKeptErrors {
		o.errs = append(o.errs, err)
	}
}

// write is the writer goroutine: it feeds the queued samples to the segmenter, then closes it and
// queues the final playlists.
func (o *segmentOutput) write() {
	defer close(o.writerDone)
	for s := range o.in {
		o.writeSample(s)
	}
	o.flushing = true
	if err := o.seg.Close(); err != nil {
		o.log.Error("segment writing failed", "error", err)
		o.failed(fmt.Errorf("write segments in %s: %w", o.workDir, err))
	}
	o.finalPlaylists()
}

// writeSample gives one sample to the segmenter at its media time from the first sample.
func (o *segmentOutput) writeSample(s encodedSample) {
	if s.data == nil { // samples were lost
		o.needKey = o.video
		return
	}
	if (s.video && !o.video) || (!s.video && !o.audio) {
		return
	}
	if !o.based {
		o.based, o.base = true, s.pts
	}
	if s.pts < o.base {
		return
	}
	pts := s.pts - o.base
	var err error
	if s.video {
		if o.needKey && !s.key {
			return
		}
		o.needKey = false
		err = o.seg.WriteVideo(s.data, pts, pts, s.key)
	} else {
		err = o.seg.WriteAudio(s.data, pts)
	}
	if err != nil {
		if o.writeFails++; o.writeFails == 1 {
			o.log.Error("segment writer refused media (logged once)", "video", s.video, "error", err)
		}
	}
}

// segmentDone is the segmenter's OnSegment: it counts the segment and, unless the files stay on
// local disk, queues its upload with the playlists as they are now.
func (o *segmentOutput) segmentDone(s hls.Segment) {
	o.mu.Lock()
	o.inf.SegmentCount++
	o.inf.Size += s.Size
	o.inf.Duration += int64(s.Duration)
	if o.local {
		o.localLocations()
	}
	o.mu.Unlock()
	if o.local {
		return
	}
	up := &segmentUpload{file: s.Path, key: o.names.key(s.Name)}
	if !o.flushing { // the final playlists follow the last segment
		up.playlists = o.snapshot()
	}
	o.enqueue(up)
}

// finalPlaylists queues the playlists as the closed segmenter left them (EXT-X-ENDLIST) and ends
// the queue.
func (o *segmentOutput) finalPlaylists() {
	if o.local {
		o.mu.Lock()
		o.localLocations()
		o.mu.Unlock()
		return
	}
	if snaps := o.snapshot(); len(snaps) > 0 {
		o.enqueue(&segmentUpload{playlists: snaps})
	}
	o.qmu.Lock()
	o.qDone = true
	o.qmu.Unlock()
	o.signal()
}

// localLocations points the info at the playlists in the work directory; o.mu held.
func (o *segmentOutput) localLocations() {
	o.inf.PlaylistLocation = absPath(filepath.Join(o.workDir, o.names.playlist))
	if o.names.livePlaylist != "" {
		o.inf.LivePlaylistLocation = absPath(filepath.Join(o.workDir, o.names.livePlaylist))
	}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// snapshot reads the playlists as they are now.
func (o *segmentOutput) snapshot() []playlistSnapshot {
	var out []playlistSnapshot
	for _, pl := range []playlistSnapshot{{name: o.names.playlist}, {name: o.names.livePlaylist, live: true}} {
		if pl.name == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(o.workDir, pl.name))
		if err != nil {
			o.log.Error("cannot read the playlist to upload it", "file", pl.name, "error", err)
			o.failed(fmt.Errorf("read playlist %s: %w", pl.name, err))
			continue
		}
		pl.data = data
		out = append(out, pl)
	}
	return out
}

// enqueue hands a job to the uploader. When many wait, the playlists of the waiting ones are
// skipped: the new job's playlists list their segments too.
func (o *segmentOutput) enqueue(up *segmentUpload) {
	o.qmu.Lock()
	if len(o.queue) >= segmentBacklog {
		for _, w := range o.queue {
			w.playlists = nil
		}
	}
	o.queue = append(o.queue, up)
	o.qmu.Unlock()
	o.signal()
}

func (o *segmentOutput) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// next is the uploader's next job; false once the queue is finished and empty.
func (o *segmentOutput) next() (*segmentUpload, bool) {
	for {
		o.qmu.Lock()
		if len(o.queue) > 0 {
			up := o.queue[0]
			o.queue[0] = nil
			o.queue = o.queue[1:]
			o.qmu.Unlock()
			return up, true
		}
		done := o.qDone
		o.qmu.Unlock()
		if done {
			return nil, false
		}
		<-o.wake
	}
}

// upload is the uploader goroutine: every job in order, segment then playlists.
func (o *segmentOutput) upload() {
	defer close(o.upDone)
	for {
		up, ok := o.next()
		if !ok {
			return
		}
		if up.file != "" {
			o.storeSegment(up)
		}
		final := up.file == ""
		for _, pl := range up.playlists {
			o.storePlaylist(pl, final)
		}
	}
}

// storeSegment uploads a segment and deletes its local file; a segment that cannot be stored stays.
func (o *segmentOutput) storeSegment(up *segmentUpload) {
	if _, err := o.store(up.file, up.key, segmentContentType); err != nil {
		o.log.Error("segment upload failed; kept on the worker", "key", up.key, "file", up.file, "error", err)
		o.failed(err)
		return
	}
	if err := os.Remove(up.file); err != nil {
		o.log.Warn("cannot delete an uploaded segment", "file", up.file, "error", err)
	}
}

// storePlaylist uploads a playlist snapshot through a temporary file; the final one also deletes
// the local playlist once stored.
func (o *segmentOutput) storePlaylist(pl playlistSnapshot, final bool) {
	key := o.names.key(pl.name)
	tmp := filepath.Join(o.workDir, "."+pl.name+".upload")
	defer os.Remove(tmp)
	loc, err := "", o.upCtx.Err()
	if err == nil {
		err = os.WriteFile(tmp, pl.data, 0o644)
	}
	if err == nil {
		loc, err = o.store(tmp, key, playlistContentType)
	}
	if err != nil {
		err = fmt.Errorf("store playlist %s: %w", key, err)
		o.log.Error("playlist upload failed", "key", key, "final", final, "error", err)
		if final { // earlier ones are superseded by the next
			o.failed(err)
		}
		return
	}
	o.mu.Lock()
	if pl.live {
		o.inf.LivePlaylistLocation = loc
	} else {
		o.inf.PlaylistLocation = loc
	}
	o.mu.Unlock()
	if final {
		_ = os.Remove(filepath.Join(o.workDir, pl.name))
	}
}

// store uploads a file to the primary storage, else to the backup, and returns its location.
func (o *segmentOutput) store(local, key, contentType string) (string, error) {
	loc, backup, err := o.dest.store(o.upCtx, o.log, local, key, contentType)
	if backup {
		o.mu.Lock()
		o.backupOn = true
		o.mu.Unlock()
	}
	return loc, err
}
