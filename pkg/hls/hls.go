// Package hls cuts an encoded H.264 and/or AAC stream into MPEG-TS segments and keeps HLS media
// playlists (RFC 8216) current, for segmented egress outputs.
//
// Segments and playlists are written to a local directory; moving them to storage is the caller's
// business, told by Config.OnSegment when a segment is complete and the playlists list it.
package hls

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mediaworker/mediaworker/pkg/container"
)

const (
	liveWindow = 5 // segments in the live playlist
	// cutSlack absorbs rounding in timestamps converted from a 90 kHz clock: a key frame that
	// falls this close before the target duration still cuts.
	cutSlack = time.Millisecond
	// defaultFrame is the video frame duration assumed before two frames have shown the real one.
	defaultFrame = time.Second / 30
	// timestampLayout names segments by wall time, with the '.' removed: YYYYMMDDhhmmssmmm.
	timestampLayout = "20060102150405.000"
	// dateTimeLayout is RFC 3339 with milliseconds, for EXT-X-PROGRAM-DATE-TIME.
	dateTimeLayout = "2006-01-02T15:04:05.000Z07:00"
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("hls: segmenter closed")

// Config describes a segmented output.
type Config struct {
	Dir              string // local directory segments and playlists are written to; created if missing
	FilenamePrefix   string // base name segment names start with (no directory part)
	PlaylistName     string // base name of the main playlist, e.g. "playlist.m3u8"
	LivePlaylistName string // "" for none; else a playlist of the last 5 segments

	// SegmentDuration is the target: a segment is cut at the first video key frame at or after
	// this much media (audio only: at the first audio frame at or after).
	SegmentDuration time.Duration
	// TimestampSuffix names segments <prefix>_<YYYYMMDDhhmmss><mmm>.ts by the UTC wall time of
	// their start instead of <prefix>_00000.ts (5 digits, counting from 0).
	TimestampSuffix bool

	Video, Audio bool
	AAC          container.AACConfig // the audio frames' format

	// Start is the wall time of media time 0, for EXT-X-PROGRAM-DATE-TIME and timestamp names;
	// zero means the time New is called.
	Start time.Time
	// OnSegment is called synchronously, from WriteVideo, WriteAudio or Close, once a segment file
	// is closed and the playlists listing it have been rewritten.
	OnSegment func(Segment)
}

// Segment is a completed segment file.
type Segment struct {
	Path             string        // file path: Dir joined with Name
	Name             string        // base name, as listed in the playlists
	Index            int           // from 0; the live playlist's MEDIA-SEQUENCE counts these
	Start            time.Duration // media time of the first sample
	Duration         time.Duration // to the next segment's first sample; the last one to its end
	Size             int64         // bytes
	PlaylistPath     string        // the main playlist, rewritten to list this segment
	LivePlaylistPath string        // the live playlist, "" when there is none
}

// Segmenter cuts an encoded stream into MPEG-TS segments and keeps HLS playlists current.
//
// Each segment starts with a video key frame (audio only: with any frame); until the first key
// frame arrives, video and audio are dropped. Segments play on their own and also continue each
// other: one transport stream runs across them, its continuity counters and clock unbroken.
//
// Methods are not safe for concurrent use, except Stats. A sample the muxer refuses (no NAL
// unit, DTS after PTS, an AAC frame too big) is dropped with an error; after an I/O error every
// write returns that error, and Close still closes the open file.
type Segmenter struct {
	c   Config
	out segmentWriter
	mux *container.TSMuxer

	cur       *openSegment // nil before the first sample
	done      []Segment
	target    int           // EXT-X-TARGETDURATION so far, seconds
	lastPTS   time.Duration // of the last video frame written
	haveVideo bool
	frameDur  time.Duration // last video frame interval
	err       error
	closed    bool

	mu    sync.Mutex // guards the Stats figures
	count int
	bytes int64
	dur   time.Duration
}

// openSegment is the segment being written.
type openSegment struct {
	name, path string
	index      int
	start, end time.Duration // end: the latest sample's end
	samples    int           // written to the file
}

// New validates c and creates its directory.
func New(c Config) (*Segmenter, error) {
	if err := validate(c); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	if c.Start.IsZero() {
		c.Start = time.Now()
	}
	s := &Segmenter{c: c, frameDur: defaultFrame}
	s.mux = container.NewTSMuxer(&s.out, c.Video, c.Audio, c.AAC)
	return s, nil
}

func validate(c Config) error {
	switch {
	case c.Dir == "":
		return errors.New("hls: no directory")
	case !c.Video && !c.Audio:
		return errors.New("hls: neither video nor audio")
	case c.SegmentDuration <= 0:
		return fmt.Errorf("hls: segment duration %v", c.SegmentDuration)
	case c.LivePlaylistName != "" && c.LivePlaylistName == c.PlaylistName:
		return errors.New("hls: live playlist named as the main playlist")
	}
	if err := baseName("filename prefix", c.FilenamePrefix); err != nil {
		return err
	}
	if err := baseName("playlist name", c.PlaylistName); err != nil {
		return err
	}
	if c.LivePlaylistName != "" {
		if err := baseName("live playlist name", c.LivePlaylistName); err != nil {
			return err
		}
	}
	if c.Audio {
		if err := c.AAC.Validate(); err != nil {
			return fmt.Errorf("hls: %w", err)
		}
	}
	return nil
}

// baseName checks that name is a plain file name in Dir.
func baseName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("hls: %s %q is not a file name", what, name)
	}
	return nil
}

// WriteVideo writes one H.264 access unit (Annex-B) with its media times; key says whether it is
// a key frame (the encoder taps know: container.H264Keyframe), which carries SPS and PPS in-band.
// Segments are cut only at key frames.
func (s *Segmenter) WriteVideo(au []byte, pts, dts time.Duration, key bool) error {
	if err := s.usable(s.c.Video, "video"); err != nil {
		return err
	}
	if err := s.cutAt(pts, key); err != nil || s.cur == nil {
		return err
	}
	if err := s.mux.WriteVideo(au, pts, dts, key); err != nil {
		return s.muxError(err)
	}
	s.cur.samples++
	if s.haveVideo && pts > s.lastPTS {
		s.frameDur = pts - s.lastPTS
	}
	s.lastPTS, s.haveVideo = pts, true
	s.cur.end = max(s.cur.end, pts+s.frameDur)
	return nil
}

// WriteAudio writes one raw AAC frame (no ADTS header) with its media time.
func (s *Segmenter) WriteAudio(frame []byte, pts time.Duration) error {
	if err := s.usable(s.c.Audio, "audio"); err != nil {
		return err
	}
	if s.c.Video {
		if s.cur == nil {
			return nil // segments start with a video key frame
		}
	} else if err := s.cutAt(pts, true); err != nil {
		return err
	}
	if err := s.mux.WriteAudio(frame, pts); err != nil {
		return s.muxError(err)
	}
	s.cur.samples++
	s.cur.end = max(s.cur.end, pts+s.c.AAC.FrameDuration())
	return nil
}

// usable says why the segmenter cannot take a write.
func (s *Segmenter) usable(enabled bool, track string) error {
	switch {
	case s.closed:
		return ErrClosed
	case s.err != nil:
		return s.err
	case !enabled:
		return fmt.Errorf("hls: %s written to a segmenter without %s", track, track)
	}
	return nil
}

// fail makes err sticky.
func (s *Segmenter) fail(err error) error {
	s.err = err
	return err
}

// muxError reports a sample the muxer did not take: because the segment file failed (sticky)
// or because the sample was bad (only this sample is lost).
func (s *Segmenter) muxError(err error) error {
	err = fmt.Errorf("hls: segment %s: %w", s.cur.name, err)
	if s.out.err != nil {
		return s.fail(err)
	}
	return err
}

// cutAt starts a new segment before a sample at pts that can start one (cut) when none is open
// or the open one is long enough. With no segment open and a sample that cannot start one, it
// leaves s.cur nil: the sample is dropped.
func (s *Segmenter) cutAt(pts time.Duration, cut bool) error {
	need := s.c.SegmentDuration - min(cutSlack, s.c.SegmentDuration/2)
	if !cut || (s.cur != nil && pts-s.cur.start < need) {
		return nil
	}
	if s.cur != nil {
		if err := s.finish(pts, false); err != nil {
			return err
		}
	}
	return s.open(pts)
}

// open starts segment file number len(s.done) at media time start.
func (s *Segmenter) open(start time.Duration) error {
	seg := &openSegment{index: len(s.done), start: start, end: start}
	seg.name = s.segmentName(seg.index, start)
	seg.path = filepath.Join(s.c.Dir, seg.name)
	f, err := os.Create(seg.path)
	if err != nil {
		return s.fail(fmt.Errorf("hls: %w", err))
	}
	s.out = segmentWriter{f: f}
	s.cur = seg
	if !s.c.Video { // video segments get PAT and PMT before their key frame
		if err := s.mux.WriteTables(); err != nil {
			return s.fail(fmt.Errorf("hls: segment %s: %w", seg.name, err))
		}
	}
	return nil
}

// segmentName is <prefix>_<index> or <prefix>_<UTC wall time of start>.
func (s *Segmenter) segmentName(index int, start time.Duration) string {
	if s.c.TimestampSuffix {
		ts := strings.Replace(s.c.Start.Add(start).UTC().Format(timestampLayout), ".", "", 1)
		return fmt.Sprintf("%s_%s.ts", s.c.FilenamePrefix, ts)
	}
	return fmt.Sprintf("%s_%05d.ts", s.c.FilenamePrefix, index)
}

// finish closes the open segment, which ends at media time end, rewrites the playlists (final:
// with EXT-X-ENDLIST) and reports the segment.
func (s *Segmenter) finish(end time.Duration, final bool) error {
	cur, size := s.cur, s.out.n
	s.cur = nil
	if err := s.out.close(); err != nil {
		return s.fail(fmt.Errorf("hls: segment %s: %w", cur.name, err))
	}
	if cur.samples == 0 { // the muxer refused every sample: no segment
		return s.discard(cur, final)
	}
	seg := Segment{Path: cur.path, Name: cur.name, Index: cur.index, Start: cur.start,
		Duration: max(end-cur.start, 0), Size: size}
	s.done = append(s.done, seg)
	s.target = max(s.target, ceilSeconds(seg.Duration))
	s.mu.Lock()
	s.count++
	s.bytes += seg.Size
	s.dur += seg.Duration
	s.mu.Unlock()
	if err := s.writePlaylists(final); err != nil {
		return s.fail(err)
	}
	seg.PlaylistPath, seg.LivePlaylistPath = s.playlistPaths()
	if s.c.OnSegment != nil {
		s.c.OnSegment(seg)
	}
	return nil
}

// discard deletes a segment file without samples; it is not listed and its name is reused.
func (s *Segmenter) discard(cur *openSegment, final bool) error {
	if err := os.Remove(cur.path); err != nil {
		return s.fail(fmt.Errorf("hls: %w", err))
	}
	if !final {
		return nil
	}
	if err := s.writePlaylists(true); err != nil {
		return s.fail(err)
	}
	return nil
}

// ceilSeconds rounds d up to whole seconds, from the millisecond the playlist shows.
func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Round(time.Millisecond).Seconds()))
}

// Close ends the last segment at its last sample plus one frame, writes the final playlists
// (with EXT-X-ENDLIST) and reports the segment. It writes the playlists even if no segment was
// made. Calling Close again does nothing.
func (s *Segmenter) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.err != nil {
		_ = s.out.close()
		return s.err
	}
	if s.cur != nil {
		return s.finish(s.cur.end, true)
	}
	if err := s.writePlaylists(true); err != nil {
		return s.fail(err)
	}
	return nil
}

// Stats sums up the completed segments: how many, their bytes and their media duration. It is
// safe to call concurrently with the other methods.
func (s *Segmenter) Stats() (segments int, bytes int64, duration time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.bytes, s.dur
}

// segmentWriter is the open segment file under the one TSMuxer, counting its bytes.
type segmentWriter struct {
	f   *os.File
	n   int64
	err error // the first failed Write
}

func (w *segmentWriter) Write(b []byte) (int, error) {
	if w.f == nil {
		w.err = os.ErrClosed
		return 0, w.err
	}
	n, err := w.f.Write(b)
	w.n += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

func (w *segmentWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	*w = segmentWriter{}
	return err
}

// playlistPaths are the paths of the main and the live playlist ("" when there is none).
func (s *Segmenter) playlistPaths() (main, live string) {
	main = filepath.Join(s.c.Dir, s.c.PlaylistName)
	if s.c.LivePlaylistName != "" {
		live = filepath.Join(s.c.Dir, s.c.LivePlaylistName)
	}
	return main, live
}

// writePlaylists rewrites the main playlist and the live one; final adds EXT-X-ENDLIST.
func (s *Segmenter) writePlaylists(final bool) error {
	main, live := s.playlistPaths()
	if err := writeAtomic(main, s.playlist(s.done, true, final)); err != nil {
		return err
	}
	if live == "" {
		return nil
	}
	return writeAtomic(live, s.playlist(s.done[max(len(s.done)-liveWindow, 0):], false, final))
}

// playlist is a media playlist of segs (RFC 8216 §4.3): an EVENT playlist of all segments, or
// a live one of the latest.
func (s *Segmenter) playlist(segs []Segment, event, final bool) []byte {
	target := s.target
	if target == 0 { // no segment yet
		target = ceilSeconds(s.c.SegmentDuration)
	}
	seq := 0
	if len(segs) > 0 {
		seq = segs[0].Index
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n")
	if event {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", target, seq)
	for _, g := range segs {
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.c.Start.Add(g.Start).UTC().Format(dateTimeLayout))
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", g.Duration.Seconds(), g.Name)
	}
	if final {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// writeAtomic replaces the file at path with data through a temporary file in the same directory,
// so a reader sees the old or the new content, never part of it.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("hls: playlist: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // as os.Create would leave it, not CreateTemp's 0600
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hls: playlist %s: %w", filepath.Base(path), err)
	}
	return nil
}
