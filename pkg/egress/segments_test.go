package egress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/pkg/container"
	"github.com/mediaworker/mediaworker/pkg/upload"
	"github.com/mediaworker/mediaworker/test/mediatest"
)

// segTestOffset is the pipeline running time of the test media's first sample: the output counts
// media time from its first sample.
const segTestOffset = 3 * time.Second

var segTestStart = time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)

var (
	segMediaMu sync.Mutex
	segMedia   []encodedSample
)

// segTestSamples is 7 s of 30 fps H.264 (a key frame every second) and 48 kHz stereo AAC, as the
// encoder taps give them: interleaved by pts, from segTestOffset. It is encoded on first use.
func segTestSamples(t *testing.T) []encodedSample {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	segMediaMu.Lock()
	defer segMediaMu.Unlock()
	if segMedia != nil {
		return segMedia
	}
	frames, aac := mediatest.H264AAC(t, 7)
	var video, audio []encodedSample
	for _, f := range frames {
		video = append(video, encodedSample{video: true, key: container.H264Keyframe(f.Data), data: f.Data, pts: segTestOffset + f.PTS})
	}
	frame := container.AACConfig{SampleRate: 48000, Channels: 2}.FrameDuration()
	for i, f := range aac {
		audio = append(audio, encodedSample{data: f, pts: segTestOffset + time.Duration(i)*frame})
	}
	if len(video) != 210 || !video[0].key || !video[30].key || video[29].key {
		t.Fatalf("%d access units, key frames not every 30", len(video))
	}
	for len(video) > 0 || len(audio) > 0 {
		if len(video) > 0 && (len(audio) == 0 || video[0].pts <= audio[0].pts) {
			segMedia, video = append(segMedia, video[0]), video[1:]
		} else {
			segMedia, audio = append(segMedia, audio[0]), audio[1:]
		}
	}
	return segMedia
}

// segCall is one upload a segFakeStore was asked for.
type segCall struct {
	key, contentType string
	data             []byte // the local file's content at upload time
	failed           bool
}

// segFakeStore records uploads; it can fail them all, or stall them until their context ends.
type segFakeStore struct {
	name  string
	fail  bool
	stall bool

	mu    sync.Mutex
	calls []segCall
}

func (f *segFakeStore) Check(context.Context) error { return nil }

func (f *segFakeStore) Upload(ctx context.Context, localPath, storagePath, contentType string) (string, int64, error) {
	if f.stall {
		<-ctx.Done()
		return "", 0, fmt.Errorf("fake upload: %w", ctx.Err())
	}
	data, err := os.ReadFile(localPath)
	if err != nil {
		return "", 0, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, segCall{key: storagePath, contentType: contentType, data: data, failed: f.fail})
	f.mu.Unlock()
	if f.fail {
		return "", 0, fmt.Errorf("fake %s down: %w", f.name, upload.ErrUnavailable)
	}
	return "fake://" + f.name + "/" + storagePath, int64(len(data)), nil
}

// uploads is a copy of the calls so far.
func (f *segFakeStore) uploads() []segCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// keys are the keys uploaded so far.
func (f *segFakeStore) keys() []string {
	var out []string
	for _, c := range f.uploads() {
		out = append(out, c.key)
	}
	return out
}

func segTestLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newSegTest starts an output with 2 s segments in a fresh work directory.
func newSegTest(t *testing.T, out *livekit.SegmentedFileOutput, dest *destination, video, audio bool) (*segmentOutput, string) {
	t.Helper()
	out.SegmentDuration = 2
	dir := t.TempDir()
	o, err := newSegmentOutput(segmentParams{Out: out, Vars: FileVars{RoomName: "room", Time: segTestStart}, WorkDir: dir,
		Dest: dest, Video: video, Audio: audio, AudioRate: 48000, Start: segTestStart, Log: segTestLog()})
	if err != nil {
		t.Fatal(err)
	}
	return o, dir
}

func segPush(o *segmentOutput, samples []encodedSample) {
	for _, s := range samples {
		o.push(s)
	}
}

func segClose(t *testing.T, o *segmentOutput) (*livekit.SegmentsInfo, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return o.close(ctx)
}

// segWaitFor polls cond for up to 5 s.
func segWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// segFiles lists the work directory.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// segmentNamesIn are the segment names a playlist lists.
func segmentNamesIn(playlist []byte) []string {
	var out []string
	for _, l := range strings.Split(string(playlist), "\n") {
		if strings.HasSuffix(l, ".ts") && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func segNear(got int64, want time.Duration) bool {
	d := time.Duration(got) - want
	return d > -150*time.Millisecond && d < 150*time.Millisecond
}

func TestSegmentProgressiveUpload(t *testing.T) {
	samples := segTestSamples(t)
	primary := &segFakeStore{name: "primary"}
	o, dir := newSegTest(t, &livekit.SegmentedFileOutput{FilenamePrefix: "seg"}, &destination{primary: primary}, true, true)
	if o.segmentDuration() != 2*time.Second {
		t.Fatalf("segment duration %v", o.segmentDuration())
	}

	// 5 s of media: segments 0 (0-2 s) and 1 (2-4 s) close, and are stored before close.
	i := slices.IndexFunc(samples, func(s encodedSample) bool { return s.pts >= segTestOffset+5*time.Second })
	segPush(o, samples[:i])
	segWaitFor(t, "2 segments and their playlists", func() bool { return len(primary.uploads()) >= 4 })
	early := primary.uploads()[:4]
	for n, c := range early {
		want, ct := fmt.Sprintf("seg_%05d.ts", n/2), "video/mp2t"
		if n%2 == 1 {
			want, ct = "seg.m3u8", "application/x-mpegURL"
		}
		if c.key != want || c.contentType != ct {
			t.Fatalf("upload %d: %s (%s), want %s (%s)", n, c.key, c.contentType, want, ct)
		}
	}
	if got := segmentNamesIn(early[1].data); !slices.Equal(got, []string{"seg_00000.ts"}) || bytes.Contains(early[1].data, []byte("ENDLIST")) {
		t.Errorf("playlist after segment 0 lists %v:\n%s", got, early[1].data)
	}
	if got := segmentNamesIn(early[3].data); !slices.Equal(got, []string{"seg_00000.ts", "seg_00001.ts"}) {
		t.Errorf("playlist after segment 1 lists %v", got)
	}
	for _, name := range []string{"seg_00000.ts", "seg_00001.ts"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s still on disk after its upload: %v", name, err)
		}
	}
	if in := o.info(); in.SegmentCount < 2 || in.PlaylistLocation != "fake://primary/seg.m3u8" || in.EndedAt != 0 {
		t.Errorf("info while running: %v", in)
	}

	segPush(o, samples[i:])
	info, err := segClose(t, o)
	if err != nil {
		t.Fatal(err)
	}
	calls := primary.uploads()
	var want []string
	for n := range 4 {
		want = append(want, fmt.Sprintf("seg_%05d.ts", n), "seg.m3u8")
	}
	if got := primary.keys(); !slices.Equal(got, want) {
		t.Fatalf("uploads %v, want %v", got, want)
	}
	last := calls[len(calls)-1].data
	if !bytes.HasSuffix(last, []byte("#EXT-X-ENDLIST\n")) || len(segmentNamesIn(last)) != 4 {
		t.Errorf("final playlist:\n%s", last)
	}
	for _, c := range calls[:len(calls)-1] {
		if bytes.Contains(c.data, []byte("ENDLIST")) {
			t.Errorf("%s uploaded with ENDLIST before the end", c.key)
		}
	}
	var size int64
	for _, c := range calls {
		if strings.HasSuffix(c.key, ".ts") {
			if len(c.data) == 0 || len(c.data)%188 != 0 || c.data[0] != 0x47 {
				t.Errorf("%s: %d bytes, not a transport stream", c.key, len(c.data))
			}
			size += int64(len(c.data))
		}
	}
	if info.SegmentCount != 4 || info.Size != size || !segNear(info.Duration, 7*time.Second) {
		t.Errorf("info: %d segments, %d bytes (uploaded %d), %v", info.SegmentCount, info.Size, size, time.Duration(info.Duration))
	}
	if info.PlaylistName != "seg.m3u8" || info.PlaylistLocation != "fake://primary/seg.m3u8" || info.LivePlaylistName != "" ||
		info.StartedAt != segTestStart.UnixNano() || info.EndedAt < time.Now().Add(-time.Minute).UnixNano() {
		t.Errorf("info: %v", info)
	}
	if o.usedBackup() {
		t.Error("backup used")
	}
	if files := segFiles(t, dir); len(files) != 0 {
		t.Errorf("left in the work directory: %v", files)
	}
	if again, err := o.close(context.Background()); err != nil || again.SegmentCount != 4 {
		t.Errorf("second close: %v %v", again, err)
	}
}

func TestSegmentBackupStorage(t *testing.T) {
	samples := segTestSamples(t)
	primary, backup := &segFakeStore{name: "primary", fail: true}, &segFakeStore{name: "backup"}
	o, dir := newSegTest(t, &livekit.SegmentedFileOutput{FilenamePrefix: "seg", LivePlaylistName: "live"},
		&destination{primary: primary, backup: backup}, true, true)
	segPush(o, samples)
	info, err := segClose(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if !o.usedBackup() {
		t.Error("usedBackup false")
	}
	var want []string
	for n := range 4 {
		want = append(want, fmt.Sprintf("seg_%05d.ts", n))
		if n < 3 {
			want = append(want, "seg.m3u8", "live.m3u8")
		}
	}
	want = append(want, "seg.m3u8", "live.m3u8")
	if got := backup.keys(); !slices.Equal(got, want) {
		t.Errorf("backup uploads %v, want %v", got, want)
	}
	if got := primary.keys(); !slices.Equal(got, want) {
		t.Errorf("primary tried %v, want %v", got, want)
	}
	if info.PlaylistLocation != "fake://backup/seg.m3u8" || info.LivePlaylistLocation != "fake://backup/live.m3u8" ||
		info.LivePlaylistName != "live.m3u8" || info.SegmentCount != 4 {
		t.Errorf("info: %v", info)
	}
	if files := segFiles(t, dir); len(files) != 0 {
		t.Errorf("left in the work directory: %v", files)
	}
}

func TestSegmentUploadFailureKeepsFiles(t *testing.T) {
	samples := segTestSamples(t)
	primary, backup := &segFakeStore{name: "primary", fail: true}, &segFakeStore{name: "backup", fail: true}
	o, dir := newSegTest(t, &livekit.SegmentedFileOutput{FilenamePrefix: "seg"}, &destination{primary: primary, backup: backup}, true, true)
	segPush(o, samples)
	info, err := segClose(t, o)
	if err == nil || !strings.Contains(err.Error(), "seg_00000.ts") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("close error %v, want one naming seg_00000.ts and %s", err, dir)
	}
	if o.usedBackup() {
		t.Error("usedBackup true")
	}
	files := segFiles(t, dir)
	if want := []string{"seg.m3u8", "seg_00000.ts", "seg_00001.ts", "seg_00002.ts", "seg_00003.ts"}; !slices.Equal(files, want) {
		t.Errorf("work directory %v, want %v", files, want)
	}
	if info.SegmentCount != 4 || info.PlaylistLocation != "" {
		t.Errorf("info: %v", info)
	}
	// It went on after the first failure: every segment was tried on both.
	if n := len(backup.keys()); n != 8 {
		t.Errorf("backup tried %d uploads, want 8: %v", n, backup.keys())
	}
}

func TestSegmentLocalDisk(t *testing.T) {
	samples := segTestSamples(t)
	for _, tc := range []struct {
		name         string
		video, audio bool
	}{{"video and audio", true, true}, {"audio only", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			o, dir := newSegTest(t, &livekit.SegmentedFileOutput{FilenamePrefix: "seg", PlaylistName: "index", LivePlaylistName: "live.m3u8"},
				&destination{}, tc.video, tc.audio)
			segPush(o, samples)
			info, err := segClose(t, o)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"index.m3u8", "live.m3u8", "seg_00000.ts", "seg_00001.ts", "seg_00002.ts", "seg_00003.ts"}
			if files := segFiles(t, dir); !slices.Equal(files, want) {
				t.Errorf("work directory %v, want %v", files, want)
			}
			abs, _ := filepath.Abs(dir)
			if info.PlaylistLocation != filepath.Join(abs, "index.m3u8") || info.LivePlaylistLocation != filepath.Join(abs, "live.m3u8") ||
				!filepath.IsAbs(info.PlaylistLocation) || info.PlaylistName != "index.m3u8" || info.SegmentCount != 4 ||
				!segNear(info.Duration, 7*time.Second) {
				t.Errorf("info: %v", info)
			}
			if pl := mustRead(t, filepath.Join(dir, "index.m3u8")); !bytes.HasSuffix(pl, []byte("#EXT-X-ENDLIST\n")) {
				t.Errorf("playlist:\n%s", pl)
			}
		})
	}
}

func TestSegmentTimestampNames(t *testing.T) {
	samples := segTestSamples(t)
	primary := &segFakeStore{name: "primary"}
	o, _ := newSegTest(t, &livekit.SegmentedFileOutput{FilenamePrefix: "seg", FilenameSuffix: livekit.SegmentedFileSuffix_TIMESTAMP},
		&destination{primary: primary}, true, true)
	segPush(o, samples)
	if _, err := segClose(t, o); err != nil {
		t.Fatal(err)
	}
	want := []string{"seg_20240506070809123.ts", "seg.m3u8", "seg_20240506070811123.ts", "seg.m3u8",
		"seg_20240506070813123.ts", "seg.m3u8", "seg_20240506070815123.ts", "seg.m3u8"}
	if got := primary.keys(); !slices.Equal(got, want) {
		t.Errorf("uploads %v, want %v", got, want)
	}
}

func TestSegmentPrefixDirectory(t *testing.T) {
	samples := segTestSamples(t)
	primary := &segFakeStore{name: "primary"}
	o, dir := newSegTest(t, &livekit.SegmentedFileOutput{FilenamePrefix: "{room_name}/hls/seg", LivePlaylistName: "other/live"},
		&destination{primary: primary}, true, true)
	segPush(o, samples)
	info, err := segClose(t, o)
	if err != nil {
		t.Fatal(err)
	}
	keys := primary.keys()
	if len(keys) != 12 || keys[0] != "room/hls/seg_00000.ts" || keys[1] != "room/hls/seg.m3u8" || keys[2] != "room/hls/live.m3u8" ||
		keys[9] != "room/hls/seg_00003.ts" || keys[10] != "room/hls/seg.m3u8" || keys[11] != "room/hls/live.m3u8" {
		t.Errorf("uploads %v", keys)
	}
	if info.PlaylistName != "room/hls/seg.m3u8" || info.LivePlaylistName != "room/hls/live.m3u8" ||
		info.PlaylistLocation != "fake://primary/room/hls/seg.m3u8" {
		t.Errorf("info: %v", info)
	}
	if files := segFiles(t, dir); len(files) != 0 {
		t.Errorf("left in the work directory: %v", files)
	}
}

func TestSegmentNames(t *testing.T) {
	v := FileVars{RoomName: "room", RoomID: "RM_1", Time: time.Date(2026, 11, 24, 9, 5, 7, 123e6, time.UTC)}
	tests := []struct {
		name                string
		out                 *livekit.SegmentedFileOutput
		dir, base, pl, live string
		segmentDuration     time.Duration
	}{
		{"defaults", &livekit.SegmentedFileOutput{}, "", "room-2026-11-24T090507", "room-2026-11-24T090507.m3u8", "", 4 * time.Second},
		{"directory and names", &livekit.SegmentedFileOutput{FilenamePrefix: "{room_name}/hls/seg", PlaylistName: "{room_id}.m3u8",
			LivePlaylistName: "x/live", SegmentDuration: 6}, "room/hls", "seg", "RM_1.m3u8", "live.m3u8", 6 * time.Second},
		{"directory only", &livekit.SegmentedFileOutput{FilenamePrefix: "rec/"}, "rec", "room-2026-11-24T090507",
			"room-2026-11-24T090507.m3u8", "", 4 * time.Second},
		{"ts extension dropped", &livekit.SegmentedFileOutput{FilenamePrefix: "a/seg.ts", PlaylistName: "p.ts"}, "a", "seg", "p.m3u8", "", 4 * time.Second},
		{"escape", &livekit.SegmentedFileOutput{FilenamePrefix: "../../x/{utc}"}, "x", "20261124090507123", "20261124090507123.m3u8", "", 4 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := segmentNamesFor(tc.out, v)
			if err != nil {
				t.Fatal(err)
			}
			if n.dir != tc.dir || n.base != tc.base || n.playlist != tc.pl || n.livePlaylist != tc.live {
				t.Errorf("names %+v, want dir %q base %q playlist %q live %q", n, tc.dir, tc.base, tc.pl, tc.live)
			}
			if d := segmentTarget(tc.out); d != tc.segmentDuration {
				t.Errorf("segment duration %v, want %v", d, tc.segmentDuration)
			}
		})
	}
	if _, err := segmentNamesFor(&livekit.SegmentedFileOutput{PlaylistName: "p", LivePlaylistName: "p.m3u8"}, v); err == nil {
		t.Error("live playlist named as the playlist: no error")
	}
	if _, err := newSegmentOutput(segmentParams{Out: &livekit.SegmentedFileOutput{}, WorkDir: t.TempDir(), Dest: &destination{}}); err == nil {
		t.Error("neither video nor audio: no error")
	}
}

func TestSegmentPushNeverBlocks(t *testing.T) {
	samples := segTestSamples(t)
	primary := &segFakeStore{name: "primary", stall: true}
	o, dir := newSegTest(t, &livekit.SegmentedFileOutput{FilenamePrefix: "seg"}, &destination{primary: primary}, true, true)
	began := time.Now()
	for n := 0; n < 10_000; n++ {
		s := samples[n%len(samples)]
		s.pts += time.Duration(n/len(samples)) * 7 * time.Second
		o.push(s)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("pushing 10,000 samples took %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began = time.Now()
	info, err := o.close(ctx)
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("close took %v with stalled uploads", d)
	}
	if err == nil || !strings.Contains(err.Error(), "seg_00000.ts") {
		t.Errorf("close error %v, want one naming seg_00000.ts", err)
	}
	if info.SegmentCount == 0 || info.EndedAt == 0 {
		t.Errorf("info: %v", info)
	}
	if files := segFiles(t, dir); !slices.Contains(files, "seg_00000.ts") || !slices.Contains(files, "seg.m3u8") {
		t.Errorf("work directory %v: segments not kept", files)
	}
	o.push(samples[0]) // after close: ignored
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
