package hls

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaworker/mediaworker/pkg/container"
	"github.com/mediaworker/mediaworker/test/mediatest"
)

var stereo48k = container.AACConfig{SampleRate: 48000, Channels: 2}

// accessUnit is one H.264 picture of the test stream.
type accessUnit struct {
	data []byte
	pts  time.Duration
	key  bool
}

// media is a test stream: 30 fps H.264 with a key frame every second, and 48 kHz stereo AAC.
type media struct {
	video []accessUnit
	audio [][]byte // raw AAC frames, 1024 samples each
}

var (
	mediaMu sync.Mutex
	streams = map[int]media{}
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// stream returns a test stream of the given seconds, encoding it on first use.
func stream(t *testing.T, seconds int) media {
	t.Helper()
	needFFmpeg(t)
	mediaMu.Lock()
	defer mediaMu.Unlock()
	if m, ok := streams[seconds]; ok {
		return m
	}
	frames, aac := mediatest.H264AAC(t, seconds)
	m := media{audio: aac}
	for _, f := range frames {
		m.video = append(m.video, accessUnit{f.Data, f.PTS, container.H264Keyframe(f.Data)})
	}
	if len(m.video) != 30*seconds || !m.video[0].key || !m.video[30].key || m.video[29].key {
		t.Fatalf("%d access units, key frames not every 30", len(m.video))
	}
	streams[seconds] = m
	return m
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// feed writes the stream's video from AU firstVideo (nil: no video) and its audio (unless
// noAudio) interleaved by PTS, then closes the segmenter.
func feed(t *testing.T, s *Segmenter, m media, firstVideo int, video, audio bool) {
	t.Helper()
	frame := stereo48k.FrameDuration()
	vi, ai := firstVideo, 0
	if !video {
		vi = len(m.video)
	}
	if !audio {
		ai = len(m.audio)
	}
	for vi < len(m.video) || ai < len(m.audio) {
		apts := time.Duration(ai) * frame
		var err error
		if vi < len(m.video) && (ai == len(m.audio) || m.video[vi].pts <= apts) {
			err = s.WriteVideo(m.video[vi].data, m.video[vi].pts, m.video[vi].pts, m.video[vi].key)
			vi++
		} else {
			err = s.WriteAudio(m.audio[ai], apts)
			ai++
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// playlist is a parsed media playlist.
type playlist struct {
	tags    map[string]string // tag -> value of the header tags
	names   []string
	durs    []float64
	dates   []time.Time
	endlist bool
}

func parsePlaylist(t *testing.T, path string) playlist {
	t.Helper()
	lines := strings.Split(string(read(t, path)), "\n")
	if lines[0] != "#EXTM3U" || lines[len(lines)-1] != "" {
		t.Fatalf("%s: not a playlist ending in a newline:\n%s", path, strings.Join(lines, "\n"))
	}
	p := playlist{tags: map[string]string{}}
	for i := 1; i < len(lines)-1; i++ {
		tag, value, _ := strings.Cut(lines[i], ":")
		switch tag {
		case "#EXT-X-PROGRAM-DATE-TIME":
			d, err := time.Parse(time.RFC3339Nano, value)
			if err != nil || !strings.HasSuffix(value, "Z") || len(value) != len("2006-01-02T15:04:05.000Z") {
				t.Fatalf("date %q: %v", value, err)
			}
			p.dates = append(p.dates, d)
		case "#EXTINF":
			d, err := strconv.ParseFloat(strings.TrimSuffix(value, ","), 64)
			if err != nil || !strings.HasSuffix(value, ",") || i+2 >= len(lines) || strings.HasPrefix(lines[i+1], "#") {
				t.Fatalf("EXTINF %q: %v", value, err)
			}
			p.durs, p.names = append(p.durs, d), append(p.names, lines[i+1])
			i++
		case "#EXT-X-ENDLIST":
			if i != len(lines)-2 {
				t.Fatalf("ENDLIST not last")
			}
			p.endlist = true
		default:
			if _, ok := p.tags[tag]; ok || len(p.names) > 0 {
				t.Fatalf("line %q", lines[i])
			}
			p.tags[tag] = value
		}
	}
	if len(p.dates) != len(p.names) {
		t.Fatalf("%d dates for %d segments", len(p.dates), len(p.names))
	}
	target, _ := strconv.Atoi(p.tags["#EXT-X-TARGETDURATION"])
	for _, d := range p.durs {
		if int(math.Round(d)) > target {
			t.Errorf("EXTINF %.3f over target duration %d", d, target)
		}
	}
	return p
}

type probeResult struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
	} `json:"streams"`
	Format struct {
		Duration  string `json:"duration"`
		StartTime string `json:"start_time"`
	} `json:"format"`
}

// probe reads a file or playlist with ffprobe and decodes it with ffmpeg, failing on any error.
func probe(t *testing.T, path string, args ...string) (codecs []string, duration, start float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", append(args, "-v", "error", "-show_streams", "-show_format", "-of", "json", path)...).Output()
	var p probeResult
	if err != nil || json.Unmarshal(out, &p) != nil {
		t.Fatalf("ffprobe %s: %v %s", path, err, out)
	}
	for _, s := range p.Streams {
		codecs = append(codecs, s.CodecName)
	}
	slices.Sort(codecs)
	duration, _ = strconv.ParseFloat(p.Format.Duration, 64)
	start, _ = strconv.ParseFloat(p.Format.StartTime, 64)
	if msg := run(t, "ffmpeg", append(args, "-v", "error", "-i", path, "-f", "null", "-")...); msg != "" {
		t.Errorf("ffmpeg decoding %s: %s", filepath.Base(path), msg)
	}
	return codecs, duration, start
}

func config(dir string, d time.Duration) Config {
	return Config{Dir: dir, FilenamePrefix: "seg", PlaylistName: "playlist.m3u8", SegmentDuration: d,
		Video: true, Audio: true, AAC: stereo48k, Start: time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)}
}

func near(got time.Duration, want, tolerance float64) bool {
	return math.Abs(got.Seconds()-want) <= tolerance
}

func TestHLSSegments(t *testing.T) {
	m := stream(t, 7)
	dir := t.TempDir()
	c := config(filepath.Join(dir, "out"), 2*time.Second)
	var got []Segment
	c.OnSegment = func(g Segment) {
		// The segment is complete and the playlist already lists it.
		if fi, err := os.Stat(g.Path); err != nil || fi.Size() != g.Size || g.Size%188 != 0 {
			t.Errorf("segment %s: %v, size %d", g.Name, err, g.Size)
		}
		p := parsePlaylist(t, g.PlaylistPath)
		if len(p.names) != g.Index+1 || p.names[g.Index] != g.Name || p.endlist != (g.Index == 3) {
			t.Errorf("segment %d: playlist lists %v, endlist %v", g.Index, p.names, p.endlist)
		}
		got = append(got, g)
	}
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, s, m, 0, true, true)

	want := []float64{2, 2, 2, 1}
	if len(got) != len(want) {
		t.Fatalf("%d segments, want %d", len(got), len(want))
	}
	var size int64
	for i, g := range got {
		name := fmt.Sprintf("seg_%05d.ts", i)
		if g.Index != i || g.Name != name || g.Path != filepath.Join(c.Dir, name) || !near(g.Duration, want[i], 0.1) ||
			g.Start != time.Duration(2*i)*time.Second || g.LivePlaylistPath != "" {
			t.Errorf("segment %d: %+v", i, g)
		}
		size += g.Size
		codecs, _, _ := probe(t, g.Path)
		if !slices.Equal(codecs, []string{"aac", "h264"}) {
			t.Errorf("segment %d: streams %v", i, codecs)
		}
	}
	if n, b, d := s.Stats(); n != 4 || b != size || !near(d, 7, 0.1) {
		t.Errorf("stats %d segments %d bytes %v", n, b, d)
	}

	p := parsePlaylist(t, filepath.Join(c.Dir, "playlist.m3u8"))
	tags := map[string]string{"#EXT-X-VERSION": "3", "#EXT-X-PLAYLIST-TYPE": "EVENT", "#EXT-X-TARGETDURATION": "2", "#EXT-X-MEDIA-SEQUENCE": "0"}
	if fmt.Sprint(p.tags) != fmt.Sprint(tags) || !p.endlist || len(p.names) != 4 {
		t.Errorf("playlist %+v", p)
	}
	for i, d := range p.durs {
		if p.names[i] != got[i].Name || math.Abs(d-got[i].Duration.Seconds()) > 0.0005 || !p.dates[i].Equal(c.Start.Add(got[i].Start)) {
			t.Errorf("entry %d: %s %.3f %v", i, p.names[i], d, p.dates[i])
		}
	}
	codecs, d, _ := probe(t, filepath.Join(c.Dir, "playlist.m3u8"))
	if !slices.Equal(codecs, []string{"aac", "h264"}) || math.Abs(d-7) > 0.3 {
		t.Errorf("playlist: streams %v, duration %.3f s", codecs, d)
	}
	tmp, _ := filepath.Glob(filepath.Join(c.Dir, ".*"))
	if len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestHLSLivePlaylist(t *testing.T) {
	m := stream(t, 7)
	c := config(t.TempDir(), time.Second)
	c.LivePlaylistName = "live.m3u8"
	var got []int
	c.OnSegment = func(g Segment) {
		got = append(got, g.Index)
		if g.LivePlaylistPath != filepath.Join(c.Dir, "live.m3u8") {
			t.Fatalf("live playlist path %q", g.LivePlaylistPath)
		}
		p := parsePlaylist(t, g.LivePlaylistPath)
		first := max(g.Index-4, 0)
		var names []string
		for i := first; i <= g.Index; i++ {
			names = append(names, fmt.Sprintf("seg_%05d.ts", i))
		}
		if !slices.Equal(p.names, names) || p.tags["#EXT-X-MEDIA-SEQUENCE"] != strconv.Itoa(first) || p.endlist != (g.Index == 6) {
			t.Errorf("after segment %d: live playlist %v, sequence %s, endlist %v", g.Index, p.names, p.tags["#EXT-X-MEDIA-SEQUENCE"], p.endlist)
		}
		target := "1"
		if g.Index == 6 {
			target = "2" // the last segment runs to the end of the audio, 1.04 s
		}
		if _, ok := p.tags["#EXT-X-PLAYLIST-TYPE"]; ok || p.tags["#EXT-X-TARGETDURATION"] != target {
			t.Errorf("live playlist tags %v", p.tags)
		}
		if !near(g.Duration, 1, 0.1) {
			t.Errorf("segment %d: %v", g.Index, g.Duration)
		}
	}
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, s, m, 0, true, true)
	if !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6}) {
		t.Errorf("OnSegment order %v", got)
	}
	if p := parsePlaylist(t, filepath.Join(c.Dir, "playlist.m3u8")); len(p.names) != 7 || !p.endlist {
		t.Errorf("main playlist %v", p.names)
	}
	codecs, d, _ := probe(t, filepath.Join(c.Dir, "live.m3u8"))
	if !slices.Equal(codecs, []string{"aac", "h264"}) || math.Abs(d-5) > 0.3 {
		t.Errorf("live playlist: streams %v, duration %.3f s", codecs, d)
	}
}

func TestHLSTimestampNames(t *testing.T) {
	m := stream(t, 7)
	c := config(t.TempDir(), 3*time.Second)
	c.TimestampSuffix = true
	c.Start = time.Date(2024, 5, 6, 9, 8, 59, 123e6, time.FixedZone("CEST", 2*3600)) // 07:08:59.123 UTC
	var names []string
	c.OnSegment = func(g Segment) { names = append(names, g.Name) }
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, s, m, 0, true, true)
	want := []string{"seg_20240506070859123.ts", "seg_20240506070902123.ts", "seg_20240506070905123.ts"}
	if !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	p := parsePlaylist(t, filepath.Join(c.Dir, "playlist.m3u8"))
	for i, d := range p.dates {
		if want := c.Start.Add(time.Duration(3*i) * time.Second); !d.Equal(want) {
			t.Errorf("date %d: %v, want %v", i, d, want)
		}
	}
	if b := read(t, filepath.Join(c.Dir, "playlist.m3u8")); !strings.Contains(string(b), "#EXT-X-PROGRAM-DATE-TIME:2024-05-06T07:09:02.123Z\n") {
		t.Errorf("playlist:\n%s", b)
	}
	if !slices.Equal(p.names, want) || p.tags["#EXT-X-TARGETDURATION"] != "3" {
		t.Errorf("playlist %+v", p)
	}
}

func TestHLSAudioOnly(t *testing.T) {
	m := stream(t, 7)
	c := config(t.TempDir(), 2*time.Second)
	c.Video = false
	var got []Segment
	c.OnSegment = func(g Segment) { got = append(got, g) }
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteVideo(m.video[0].data, 0, 0, true); err == nil {
		t.Error("video taken by an audio-only segmenter")
	}
	feed(t, s, m, 0, false, true)
	want := []float64{2, 2, 2, 1}
	if len(got) != len(want) {
		t.Fatalf("%d segments", len(got))
	}
	frame := stereo48k.FrameDuration()
	for i, g := range got {
		// Cut at the first frame at or after 2 s: frame 94 (2.005 s), 188, 282.
		if !near(g.Duration, want[i], 0.1) || g.Start != time.Duration(94*i)*frame {
			t.Errorf("segment %d: start %v, duration %v", i, g.Start, g.Duration)
		}
		if codecs, _, _ := probe(t, g.Path); !slices.Equal(codecs, []string{"aac"}) {
			t.Errorf("segment %d: streams %v", i, codecs)
		}
	}
	if codecs, d, _ := probe(t, filepath.Join(c.Dir, "playlist.m3u8")); !slices.Equal(codecs, []string{"aac"}) || math.Abs(d-7) > 0.3 {
		t.Errorf("playlist: streams %v, duration %.3f s", codecs, d)
	}
}

// TestHLSStartsAtKeyframe: video before the first key frame, and audio before it, is dropped.
func TestHLSStartsAtKeyframe(t *testing.T) {
	m := stream(t, 7)
	c := config(t.TempDir(), 2*time.Second)
	var got []Segment
	c.OnSegment = func(g Segment) { got = append(got, g) }
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, s, m, 5, true, true) // from mid-GOP: the first key frame is at 1 s
	if len(got) != 3 || got[0].Start != time.Second || !near(got[0].Duration, 2, 0.01) || !near(got[2].Duration, 2, 0.1) {
		t.Fatalf("segments %+v", got)
	}
	codecs, _, start := probe(t, got[0].Path)
	if !slices.Equal(codecs, []string{"aac", "h264"}) || math.Abs(start-2.4) > 0.03 { // 1 s plus the 1.4 s TS offset
		t.Errorf("first segment: streams %v from %.3f s", codecs, start)
	}
	if n, _, d := s.Stats(); n != 3 || !near(d, 6, 0.1) {
		t.Errorf("stats %d segments, %v", n, d)
	}
}

func TestHLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, change := range map[string]func(*Config){
		"no dir":            func(c *Config) { c.Dir = "" },
		"no tracks":         func(c *Config) { c.Video, c.Audio = false, false },
		"no duration":       func(c *Config) { c.SegmentDuration = 0 },
		"prefix with path":  func(c *Config) { c.FilenamePrefix = "a/b" },
		"no prefix":         func(c *Config) { c.FilenamePrefix = "" },
		"no playlist":       func(c *Config) { c.PlaylistName = "" },
		"playlist dot dot":  func(c *Config) { c.PlaylistName = ".." },
		"live with path":    func(c *Config) { c.LivePlaylistName = `x\live.m3u8` },
		"same playlists":    func(c *Config) { c.LivePlaylistName = c.PlaylistName },
		"bad AAC rate":      func(c *Config) { c.AAC.SampleRate = 12345 },
		"bad AAC channels":  func(c *Config) { c.AAC.Channels = 0 },
		"dir is a file":     func(c *Config) { c.Dir = filepath.Join(dir, "file") },
		"dir under a file":  func(c *Config) { c.Dir = filepath.Join(dir, "file", "sub") },
		"playlist is a dot": func(c *Config) { c.PlaylistName = "." },
	} {
		if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		c := config(dir, time.Second)
		change(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c := config(dir, time.Second)
	c.Audio, c.AAC = false, container.AACConfig{} // no audio: the AAC config does not matter
	if _, err := New(c); err != nil {
		t.Error(err)
	}
}

func TestHLSEmptyAndClosed(t *testing.T) {
	c := config(t.TempDir(), time.Second)
	c.LivePlaylistName = "live.m3u8"
	c.OnSegment = func(g Segment) { t.Errorf("segment %+v", g) }
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	// Without a key frame nothing starts.
	if err := s.WriteVideo([]byte{0, 0, 0, 1, 0x41, 0x9a}, 0, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteAudio([]byte{1, 2, 3}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"playlist.m3u8", "live.m3u8"} {
		if p := parsePlaylist(t, filepath.Join(c.Dir, name)); len(p.names) != 0 || !p.endlist || p.tags["#EXT-X-TARGETDURATION"] != "1" {
			t.Errorf("%s: %+v", name, p)
		}
	}
	if ts, _ := filepath.Glob(filepath.Join(c.Dir, "*.ts")); len(ts) != 0 {
		t.Errorf("segments %v", ts)
	}
	if err := s.WriteAudio([]byte{1}, time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n, b, d := s.Stats(); n != 0 || b != 0 || d != 0 {
		t.Errorf("stats %d %d %v", n, b, d)
	}
}

// TestHLSWriteError: a directory gone mid-stream fails the next cut, and every write after it.
func TestHLSWriteError(t *testing.T) {
	m := stream(t, 7)
	c := config(filepath.Join(t.TempDir(), "out"), time.Second)
	var segs int
	c.OnSegment = func(Segment) { segs++ }
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i, au := range m.video {
		if i == 15 {
			if err := os.RemoveAll(c.Dir); err != nil {
				t.Fatal(err)
			}
		}
		if werr = s.WriteVideo(au.data, au.pts, au.pts, au.key); werr != nil {
			if i != 30 {
				t.Errorf("error at access unit %d", i)
			}
			break
		}
	}
	if werr == nil || !errors.Is(werr, os.ErrNotExist) {
		t.Fatalf("write error %v", werr)
	}
	if err := s.WriteAudio(m.audio[0], 2*time.Second); err != werr {
		t.Errorf("error not sticky: %v", err)
	}
	if err := s.Close(); err != werr || segs != 0 {
		t.Errorf("Close: %v, %d segments", err, segs)
	}
}

// TestHLSBadSample: a sample the muxer refuses costs only itself; a segment it opened and nothing
// else filled is not kept.
func TestHLSBadSample(t *testing.T) {
	m := stream(t, 7)
	for _, resume := range []bool{false, true} {
		c := config(t.TempDir(), 2*time.Second)
		var got []Segment
		c.OnSegment = func(g Segment) { got = append(got, g) }
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, au := range m.video[:60] {
			if err := s.WriteVideo(au.data, au.pts, au.pts, au.key); err != nil {
				t.Fatal(err)
			}
		}
		key := m.video[60]
		if err := s.WriteVideo(key.data, key.pts, key.pts+time.Second, true); err == nil {
			t.Fatal("dts after pts taken")
		}
		if resume {
			if err := s.WriteVideo(key.data, key.pts, key.pts, true); err != nil {
				t.Fatalf("good sample after a bad one: %v", err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		names := []string{"seg_00000.ts"}
		if resume {
			names = append(names, "seg_00001.ts")
		}
		files, _ := filepath.Glob(filepath.Join(c.Dir, "*.ts"))
		p := parsePlaylist(t, filepath.Join(c.Dir, "playlist.m3u8"))
		if len(got) != len(names) || len(files) != len(names) || !slices.Equal(p.names, names) || !p.endlist || !near(got[0].Duration, 2, 0.001) {
			t.Errorf("resume %v: segments %+v, files %v, playlist %+v", resume, got, files, p)
		}
	}
}
