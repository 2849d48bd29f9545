package rtmpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fileSinks is an Accept that writes each allowed key to dir/KEY.flv.
type fileSinks struct {
	dir   string
	allow map[string]bool
	mu    sync.Mutex
	files map[string]*closeNotifier
}

type closeNotifier struct {
	*os.File
	once   sync.Once
	closed chan struct{}
}

func (f *closeNotifier) Close() error {
	err := f.File.Close()
	f.once.Do(func() { close(f.closed) })
	return err
}

func (fs *fileSinks) accept(_ context.Context, key string, _ net.Addr) (io.WriteCloser, error) {
	if !fs.allow[key] {
		return nil, errors.New("unknown stream key")
	}
	f, err := os.Create(filepath.Join(fs.dir, key+".flv"))
	if err != nil {
		return nil, err
	}
	cn := &closeNotifier{File: f, closed: make(chan struct{})}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files[key] = cn
	return cn, nil
}

func (fs *fileSinks) file(key string) *closeNotifier {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.files[key]
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (apt-get install -y ffmpeg)", name)
	}
}

// ffmpegPush publishes a test pattern and a tone for secs seconds, paced in real time.
func ffmpegPush(ctx context.Context, url string, secs int) (string, error) {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(secs), "-c:v", "libx264", "-preset", "veryfast", "-g", "60",
		"-c:a", "aac", "-f", "flv", url)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type probe struct {
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-of", "json",
		"-show_entries", "stream=codec_type,codec_name,width,height,sample_rate:format=duration", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	return p
}

// TestFFmpeg pushes with the real ffmpeg and checks the FLV with ffprobe, while a wrong key,
// a second publisher on the live key and garbage connections hit the same server.
func TestFFmpeg(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	fs := &fileSinks{dir: t.TempDir(), allow: map[string]bool{"goodkey": true}, files: map[string]*closeNotifier{}}
	s, logs := newTestServer(t, fs.accept)
	s.publishTimeout = 2 * time.Second // for the garbage connection that stops mid-handshake
	addr := startServer(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	type result struct {
		out string
		err error
	}
	good := make(chan result, 1)
	go func() {
		out, err := ffmpegPush(ctx, fmt.Sprintf("rtmp://%s/x/goodkey", addr), 3)
		good <- result{out, err}
	}()
	waitFor(t, 10*time.Second, "goodkey live", func() bool { return slices.Contains(s.Live(), "goodkey") })

	var wg sync.WaitGroup
	wg.Go(func() {
		out, err := ffmpegPush(ctx, fmt.Sprintf("rtmp://%s/x/wrongkey", addr), 1)
		if err == nil || !strings.Contains(out, "unknown stream key") {
			t.Errorf("wrong key: ffmpeg err %v, output:\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(fs.dir, "wrongkey.flv")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("file for refused key: %v", err)
		}
	})
	wg.Go(func() {
		out, err := ffmpegPush(ctx, fmt.Sprintf("rtmp://%s/x/goodkey?second=1", addr), 1)
		if err == nil || !strings.Contains(out, "stream key already live") {
			t.Errorf("second publisher: ffmpeg err %v, output:\n%s", err, out)
		}
	})
	wg.Go(func() {
		for _, junk := range [][]byte{[]byte("\x16\x03\x01garbage"), bytes.Repeat([]byte{3, 0xFF}, 4000)} {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			nc.Write(junk)
			if err := (&testClient{nc: nc}).waitClosed(12 * time.Second); err != nil {
				t.Error("garbage:", err)
			}
			nc.Close()
		}
	})
	wg.Wait()

	r := <-good
	if r.err != nil {
		t.Fatalf("ffmpeg: %v\n%s", r.err, r.out)
	}
	f := fs.file("goodkey")
	select {
	case <-f.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("writer not closed after ffmpeg finished")
	}
	p := ffprobe(t, f.Name())
	var video, audio bool
	for _, st := range p.Streams {
		switch st.CodecType {
		case "video":
			video = st.CodecName == "h264" && st.Width == 320 && st.Height == 240
		case "audio":
			audio = st.CodecName == "aac" && st.SampleRate == "48000"
		}
	}
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	t.Logf("ffprobe: duration %.3f s, %d streams", d, len(p.Streams))
	if !video || !audio || err != nil || math.Abs(d-3) > 0.5 {
		t.Fatalf("ffprobe: %+v (video ok %v, audio ok %v, duration %v %v)", p, video, audio, d, err)
	}
	checkFFmpegFLV(t, f.Name())
	if len(s.Live()) != 0 {
		t.Fatalf("live after ffmpeg ended: %v", s.Live())
	}
	if got := logs.find("INFO rtmp connection closed", "key=goo…", "app=x"); len(got) != 1 {
		t.Fatalf("close line: %q", logs.Lines())
	}
}

// checkFFmpegFLV checks the structure ffprobe forgives: every PreviousTagSize, onMetaData
// first, and video that starts with its sequence header and then a keyframe.
func checkFFmpegFLV(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := readFLV(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) == 0 || tags[0].typ != TagTypeScript || !bytes.HasPrefix(tags[0].body, []byte("\x02\x00\x0aonMetaData")) {
		t.Fatalf("first tag is not onMetaData: %+v", tags[0])
	}
	var video []VideoTag
	for _, tag := range tags {
		if tag.typ == TagTypeVideo {
			v, err := ParseVideoTagHeader(tag.body)
			if err != nil {
				t.Fatal(err)
			}
			video = append(video, v)
		}
	}
	if len(video) < 80 || !video[0].IsSequenceHeader() || !video[1].IsKeyframe() {
		t.Fatalf("%d video tags, first %+v, second %+v", len(video), video[0], video[1])
	}
}
