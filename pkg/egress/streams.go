package egress

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils"
	"google.golang.org/protobuf/proto"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
	"github.com/mediaworker/mediaworker/pkg/sink"
)

// Stream destination retry policy: a destination that fails is reconnected with a growing delay;
// it is given up (FAILED) once it has not run cleanly for streamGiveUp. An attempt that ran
// streamHealthy without an error counts as working again.
const (
	streamFirstRetry = time.Second
	streamMaxRetry   = 8 * time.Second
	streamGiveUp     = 30 * time.Second
	streamHealthy    = 10 * time.Second
	streamQueue      = 512 // samples (≈ 5 s of video and audio) buffered per destination
)

// encodedSample is one frame from the encoder taps.
type encodedSample struct {
	video bool
	key   bool
	data  []byte
	pts   time.Duration
}

// streams fans the encoded media out to the stream destinations (RTMP, RTMPS, SRT, WebSocket), each on its
// own goroutine and pipeline, and keeps their StreamInfo. Destinations can be added and removed
// while it runs (UpdateStream).
type streams struct {
	log          *slog.Logger
	video, audio bool
	audioRate    int
	silence      []byte        // one AAC frame of silence, to fill audio gaps (nil: gaps are left)
	changed      chan struct{} // a destination's status changed (buffered 1)

	mu    sync.Mutex // guards dests, order
	dests map[string]*streamDest
	order []*streamDest // every destination ever added, in order (results keep the ended ones)
}

type streamDest struct {
	url  string // as requested (secret)
	in   chan encodedSample
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex // guards info
	info *livekit.StreamInfo
}

func newStreams(log *slog.Logger, video, audio bool, audioRate, audioKbps int) *streams {
	s := &streams{log: log, video: video, audio: audio, audioRate: audioRate, changed: make(chan struct{}, 1),
		dests: map[string]*streamDest{}}
	if video && audio {
		var err error
		if s.silence, err = pipeline.SilentAAC(audioRate, audioKbps); err != nil {
			log.Warn("no silent AAC frame: a muted microphone will stall the streams' video", "error", err)
		}
	}
	return s
}

// add starts sending to rawURL; it is a no-op for a URL already live.
func (s *streams) add(rawURL string) {
	rawURL = strings.TrimSpace(rawURL)
	target := streamTarget(rawURL)
	s.mu.Lock()
	if _, ok := s.dests[rawURL]; ok {
		s.mu.Unlock()
		return
	}
	d := &streamDest{url: target, in: make(chan encodedSample, streamQueue), stop: make(chan struct{}), done: make(chan struct{}),
		info: &livekit.StreamInfo{Url: redactStreamURL(rawURL), StartedAt: time.Now().UnixNano(), Status: livekit.StreamInfo_ACTIVE}}
	s.dests[rawURL] = d
	s.order = append(s.order, d)
	s.mu.Unlock()
	s.log.Info("streaming", "url", d.info.Url)
	go s.run(d)
	s.notify()
}

// remove stops sending to rawURL (FINISHED); it reports whether the URL was live.
func (s *streams) remove(rawURL string) bool {
	rawURL = strings.TrimSpace(rawURL)
	s.mu.Lock()
	d, ok := s.dests[rawURL]
	delete(s.dests, rawURL)
	s.mu.Unlock()
	if ok {
		close(d.stop)
		<-d.done
	}
	return ok
}

// count is how many destinations were ever added (0 for nil).
func (s *streams) count() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}

// live is how many destinations are still sending (or retrying).
func (s *streams) live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dests)
}

// close ends every destination cleanly, all at once (each may take its drain time).
func (s *streams) close() {
	s.mu.Lock()
	urls := make([]string, 0, len(s.dests))
	for u := range s.dests {
		urls = append(urls, u)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.remove(u)
		}()
	}
	wg.Wait()
}

// results is a copy of every destination's StreamInfo, durations current.
func (s *streams) results() []*livekit.StreamInfo {
	s.mu.Lock()
	order := append([]*streamDest(nil), s.order...)
	s.mu.Unlock()
	out := make([]*livekit.StreamInfo, 0, len(order))
	now := time.Now().UnixNano()
	for _, d := range order {
		d.mu.Lock()
		c := proto.Clone(d.info).(*livekit.StreamInfo)
		d.mu.Unlock()
		if c.Status == livekit.StreamInfo_ACTIVE {
			c.Duration = now - c.StartedAt
		}
		out = append(out, c)
	}
	return out
}

func (s *streams) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// push hands a sample to every destination without blocking: a destination that is behind by
// streamQueue samples loses this one (its sender then waits for the next keyframe).
func (s *streams) push(smp encodedSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dests {
		select {
		case d.in <- smp:
		default:
			select {
			case d.in <- encodedSample{}: // marks the gap: the sender resynchronises on a keyframe
			default:
			}
		}
	}
}

// run sends to one destination until it is removed or given up, reconnecting on failure.
func (s *streams) run(d *streamDest) {
	defer close(d.done)
	retry := streamFirstRetry
	lastGood := time.Now()
	for {
		began := time.Now()
		err := s.send(d)
		if err == nil { // removed or ended
			d.end(livekit.StreamInfo_FINISHED, "")
			s.log.Info("stream ended", "url", d.info.Url)
			s.notify()
			return
		}
		if time.Since(began) >= streamHealthy {
			lastGood, retry = time.Now(), streamFirstRetry
		}
		msg := err.Error()
		if pe := (*pipeline.Error)(nil); errors.As(err, &pe) {
			msg = pe.Message // the element path and source line are for the log
		}
		msg = scrubURL(msg, d.url)
		if time.Since(lastGood) >= streamGiveUp {
			s.mu.Lock()
			for u, live := range s.dests {
				if live == d {
					delete(s.dests, u) // no longer live: live() counts what still sends
				}
			}
			s.mu.Unlock()
			d.end(livekit.StreamInfo_FAILED, msg)
			s.log.Error("stream failed; given up (the other outputs go on)", "url", d.info.Url, "error", msg,
				"retries", d.info.Retries)
			s.notify()
			return
		}
		d.mu.Lock()
		d.info.Retries++
		d.info.LastRetryAt = time.Now().UnixNano()
		d.info.Error = msg
		d.mu.Unlock()
		s.log.Warn("stream destination failed; retrying", "url", d.info.Url, "error", scrubURL(err.Error(), d.url), "in", retry)
		s.notify()
		select {
		case <-d.stop:
			d.end(livekit.StreamInfo_FINISHED, msg)
			s.notify()
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, streamMaxRetry)
	}
}

// errStreamEnded is a sender that ended without an error while it should still run.
var errStreamEnded = errors.New("the destination closed the stream")

// send runs one connection: it starts at a keyframe with timestamps from 0 and returns nil when
// the destination is removed, or the error that ended it.
func (s *streams) send(d *streamDest) error {
	if pipeline.IsWebSocketURL(d.url) {
		return s.sendWebSocket(d)
	}
	snd, err := pipeline.NewStreamSender(pipeline.StreamPlan{URL: d.url, Video: s.video, Audio: s.audio, AudioRate: s.audioRate})
	if err != nil {
		return err
	}
	defer snd.Close()
	synced, base := false, time.Duration(0)
	lastAudio := time.Duration(-1) // pts of the last audio frame sent
	frame := time.Duration(1024) * time.Second / time.Duration(max(s.audioRate, 1))
	// The video encoder holds frames longer than the audio encoder: when a keyframe arrives, the
	// audio of its first ≈ 0.5 s has gone by already. It is kept while waiting, and sent after it.
	var early []encodedSample
	for {
		select {
		case <-d.stop:
			return nil
		case err := <-snd.Done():
			if err == nil {
				err = errStreamEnded
			}
			return err
		case smp := <-d.in:
			if smp.data == nil { // samples were lost: start again at a keyframe
				synced, early = false, nil
				continue
			}
			if !synced {
				if s.video && !(smp.video && smp.key) {
					if !smp.video {
						early = keepEarlyAudio(early, smp)
					}
					continue
				}
				synced, base = true, smp.pts
				if smp.video {
					if err := snd.PushVideo(smp.data, 0); err != nil {
						return err
					}
					if err := pushEarlyAudio(snd, early, base, &lastAudio); err != nil {
						return err
					}
					early = nil
					continue
				}
			}
			if smp.pts < base || (!smp.video && smp.pts-base <= lastAudio) {
				continue
			}
			if smp.video {
				if err := s.fillSilence(snd, &lastAudio, smp.pts-base, frame); err != nil {
					return err
				}
				if err := snd.PushVideo(smp.data, smp.pts-base); err != nil {
					return err
				}
				continue
			}
			lastAudio = smp.pts - base
			if err := snd.PushAudio(smp.data, lastAudio); err != nil {
				return err
			}
		}
	}
}

// earlyAudio bounds the audio kept while a destination waits for a keyframe.
const earlyAudio = 2 * time.Second

// pushEarlyAudio sends the audio kept before the keyframe at base that belongs after it.
func pushEarlyAudio(snd *pipeline.StreamSender, early []encodedSample, base time.Duration, lastAudio *time.Duration) error {
	for _, a := range early {
		if a.pts < base || a.pts-base <= *lastAudio {
			continue
		}
		*lastAudio = a.pts - base
		if err := snd.PushAudio(a.data, *lastAudio); err != nil {
			return err
		}
	}
	return nil
}

// keepEarlyAudio appends an audio sample to those kept before the first keyframe, dropping what
// is older than earlyAudio behind it.
func keepEarlyAudio(early []encodedSample, smp encodedSample) []encodedSample {
	early = append(early, smp)
	i := 0
	for i < len(early) && smp.pts-early[i].pts > earlyAudio {
		i++
	}
	return early[i:]
}

// sendWebSocket runs one WebSocket connection: the egress's audio decoded to PCM (S16LE 48 kHz
// stereo in binary frames, as the official egress sends it), no video. It returns nil when the
// destination is removed, or the error that ended it.
func (s *streams) sendWebSocket(d *streamDest) error {
	if !s.audio {
		return errors.New("a WebSocket stream carries audio, and this egress records none")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	ws, err := sink.DialWebSocket(ctx, d.url)
	cancel()
	if err != nil {
		return err
	}
	defer ws.Close()
	werr := make(chan error, 1)
	snd, err := pipeline.NewStreamSender(pipeline.StreamPlan{URL: d.url, Audio: true, AudioRate: s.audioRate, PCM: func(pcm []byte) {
		if err := ws.WriteAudio(pcm); err != nil {
			select {
			case werr <- err:
			default:
			}
		}
	}})
	if err != nil {
		return err
	}
	defer snd.Close() // before ws.Close: the last decoded audio is still written
	synced, base := false, time.Duration(0)
	last := time.Duration(-1)
	for {
		select {
		case <-d.stop:
			return nil
		case err := <-snd.Done():
			if err == nil {
				err = errStreamEnded
			}
			return err
		case err := <-werr:
			return err
		case smp := <-d.in:
			if smp.data == nil || smp.video {
				continue
			}
			if !synced {
				synced, base = true, smp.pts
			}
			if smp.pts < base || smp.pts-base <= last {
				continue
			}
			last = smp.pts - base
			if err := snd.PushAudio(smp.data, last); err != nil {
				return err
			}
		}
	}
}

// audioGap is how far the audio may fall behind the video before silence fills in: the muxers
// interleave by time and would hold the video back waiting for audio that a muted microphone
// never sends.
const audioGap = 500 * time.Millisecond

// fillSilence sends silent frames after *lastAudio up to 200 ms before the video at pts.
func (s *streams) fillSilence(snd *pipeline.StreamSender, lastAudio *time.Duration, pts, frame time.Duration) error {
	if s.silence == nil || pts-*lastAudio < audioGap {
		return nil
	}
	for *lastAudio+frame < pts-200*time.Millisecond {
		*lastAudio += frame
		if *lastAudio < 0 {
			*lastAudio = 0
		}
		if err := snd.PushAudio(s.silence, *lastAudio); err != nil {
			return err
		}
	}
	return nil
}

func (d *streamDest) end(status livekit.StreamInfo_Status, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info.Status = status
	d.info.EndedAt = time.Now().UnixNano()
	d.info.Duration = d.info.EndedAt - d.info.StartedAt
	if msg != "" {
		d.info.Error = msg
	}
}

// streamTarget resolves the shorthand schemes the official egress accepts (mux://key,
// twitch://key) to their ingest URLs; other URLs are used as they are.
func streamTarget(raw string) string {
	raw = strings.TrimSpace(raw)
	switch {
	case strings.HasPrefix(raw, "mux://"):
		return "rtmps://global-live.mux.com:443/app/" + strings.TrimPrefix(raw, "mux://")
	case strings.HasPrefix(raw, "twitch://"):
		return "rtmp://live.twitch.tv/app/" + strings.TrimPrefix(raw, "twitch://")
	}
	return raw
}

// redactStreamURL hides what authorises a stream in reports and logs: an RTMP stream key (the
// last path segment), user info, and the query (an SRT streamid or passphrase).
func redactStreamURL(raw string) string {
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "mux://") || strings.HasPrefix(raw, "twitch://") {
		scheme, key, _ := strings.Cut(raw, "://")
		return scheme + "://" + utils.RedactIdentifier(key)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	if u.User != nil {
		u.User = url.User("{redacted}")
	}
	if u.RawQuery != "" {
		u.RawQuery = "{redacted}"
	}
	if i := strings.LastIndex(u.Path, "/"); i >= 0 && i < len(u.Path)-1 && !strings.HasPrefix(u.Path[i+1:], "{") {
		u.Path = u.Path[:i+1] + utils.RedactIdentifier(u.Path[i+1:]) // (a "{…}" key is redacted already)
	}
	return strings.NewReplacer("%7B", "{", "%7D", "}").Replace(u.String())
}

// scrubURL removes a destination's URL and its secret parts from an error message.
func scrubURL(msg, raw string) string {
	msg = strings.ReplaceAll(msg, raw, redactStreamURL(raw))
	var secrets []string
	if u, err := url.Parse(raw); err == nil {
		if i := strings.LastIndex(u.Path, "/"); i >= 0 && len(u.Path)-i > 4 {
			secrets = append(secrets, u.Path[i+1:])
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= 4 {
					secrets = append(secrets, v)
				}
			}
		}
		if u.User != nil {
			secrets = append(secrets, u.User.String())
		}
	}
	for _, sct := range secrets {
		msg = strings.ReplaceAll(msg, sct, "{redacted}")
	}
	return msg
}
