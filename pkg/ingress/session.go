package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"google.golang.org/protobuf/proto"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
	"github.com/mediaworker/mediaworker/pkg/sink"
)

// Source is where a session's media comes from.
type Source struct {
	FD   int    // an FLV stream (RTMP push) on this descriptor, when URL is ""
	URL  string // pulled: http(s) file or HLS playlist, srt://
	Live bool   // push input: forward as fast as it arrives
}

// Env is what a session needs from its process.
type Env struct {
	APIKey, APISecret, WsURL string
	Log                      *slog.Logger
	// State receives every state change; the caller adds ids and times and reports it.
	State func(*livekit.IngressState)
	// StatsEvery is how often PUBLISHING is re-reported with the input's bitrates. Default 30 s.
	StatsEvery time.Duration
}

// ErrRoom marks a failure to join or publish into the room.
var ErrRoom = errors.New("room")

// Run ingests src into info's room until the input ends (reusable push inputs end INACTIVE, pulls
// COMPLETE), ctx is cancelled (INACTIVE) or something fails (ERROR with the reason). It returns the
// final state, already sent to env.State.
func Run(ctx context.Context, env Env, info *livekit.IngressInfo, src Source) *livekit.IngressState {
	s := &session{env: env, info: info, src: src, log: env.Log, epoch: time.Now(), wake: make(chan struct{}, 2)}
	err := s.run(ctx)
	st := s.state()
	switch {
	case err != nil:
		st.Status = livekit.IngressState_ENDPOINT_ERROR
		st.Error = err.Error()
		s.log.Error("ingress failed", "error", err)
	case src.URL != "" && ctx.Err() == nil:
		st.Status = livekit.IngressState_ENDPOINT_COMPLETE
	default:
		st.Status = livekit.IngressState_ENDPOINT_INACTIVE
	}
	env.State(st)
	return st
}

type session struct {
	env   Env
	info  *livekit.IngressInfo
	src   Source
	log   *slog.Logger
	plan  Plan
	epoch time.Time // media time 0 in RTP-timestamp terms

	room    *lksdk.Room
	joined  chan struct{}
	joinErr atomic.Value
	wake    chan struct{} // a track was published or something failed: the run loop looks again

	mu      sync.Mutex // guards the fields below
	ingest  *pipeline.Ingest
	layers  []Layer
	video   []*lksdk.LocalTrack
	audio   *lksdk.LocalTrack
	inVideo *livekit.InputVideoState
	inAudio *livekit.InputAudioState
	tracks  []*livekit.TrackInfo
	roomID  string
	failed  error
	lastKey time.Time

	lastMedia atomic.Int64 // unix nanos of the last encoded sample
	// audioLead cancels the input's AAC priming (1024 samples that FLV carries no edit list for):
	// audio is sent that much earlier so that it stays with its picture.
	audioLead time.Duration
}

// Idle limits for pulled inputs (an SRT or live HLS source that stops sending never ends by itself).
const (
	pullIdleEnd   = 10 * time.Second // media flowed, then none for this long: the input is over
	pullNoMediaIn = 30 * time.Second // nothing at all for this long: the input is not usable
)

func (s *session) run(ctx context.Context) error {
	plan, err := Resolve(s.info)
	if err != nil {
		return err
	}
	s.plan = plan
	token, err := Token(s.env.APIKey, s.env.APISecret, s.info)
	if err != nil {
		return fmt.Errorf("ingress token: %w", err)
	}
	lost := make(chan struct{})
	var lostOnce sync.Once
	s.room = lksdk.NewRoom(&lksdk.RoomCallback{OnDisconnectedWithReason: func(r lksdk.DisconnectionReason) {
		lostOnce.Do(func() { s.log.Warn("left the room", "reason", string(r)); close(lost) })
	}})
	s.joined = make(chan struct{})
	go func() {
		defer close(s.joined)
		// Joining runs while the input is probed: both take a few hundred ms.
		if err := s.room.JoinWithToken(s.env.WsURL, token, lksdk.WithAutoSubscribe(false)); err != nil {
			s.joinErr.Store(fmt.Errorf("%w: join %q as %q: %v", ErrRoom, s.info.RoomName, s.info.ParticipantIdentity, err))
			return
		}
		s.mu.Lock()
		s.roomID = s.room.SID()
		s.mu.Unlock()
		s.room.LocalParticipant.SetAttributes(map[string]string{"ingress.resourceID": s.info.GetState().GetResourceId()})
		s.log.Info("joined the room", "room", s.info.RoomName, "identity", s.info.ParticipantIdentity)
	}()
	defer s.room.Disconnect()

	codec := "h264"
	if plan.Video.Codec == livekit.VideoCodec_VP8 {
		codec = "vp8"
	}
	ingest, err := pipeline.NewIngest(pipeline.IngestPlan{
		FD: s.src.FD, URL: s.src.URL, Live: s.src.Live,
		VideoCodec: codec, FrameRate: plan.Video.FrameRate, KeyframeEvery: plan.Video.KeyFrameInterval,
		Layers:       s.fit,
		AudioBitrate: plan.Audio.Bitrate, AudioChannels: plan.Audio.Channels, AudioDTX: plan.Audio.DTX,
	}, s)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ingest = ingest
	s.mu.Unlock()
	defer ingest.Stop()

	every := s.env.StatsEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	// The input's bitrates are first reported after a few seconds (an average needs some input),
	// then every StatsEvery.
	stats := time.NewTicker(min(every, 5*time.Second))
	defer stats.Stop()
	watch := time.NewTicker(time.Second)
	defer watch.Stop()
	for {
		select {
		case <-watch.C:
			if done, err := s.idle(); done {
				return err
			}
		case err := <-ingest.Done():
			if err != nil {
				return fmt.Errorf("input: %w", err)
			}
			s.log.Info("input ended")
			if err := s.err(); err != nil {
				return err
			}
			if s.state().Status != livekit.IngressState_ENDPOINT_PUBLISHING {
				return errors.New("the input ended before any audio or video could be published: is it a supported format (FLV/H.264/AAC, MP4, MKV, WebM, HLS, MP3, OGG, M4A)?")
			}
			return nil
		case <-ctx.Done():
			s.log.Info("session stopped")
			return s.err()
		case <-lost:
			if ctx.Err() != nil {
				return s.err()
			}
			return fmt.Errorf("%w: disconnected from the room (removed, room closed, or identity %q joined elsewhere)", ErrRoom, s.info.ParticipantIdentity)
		case <-s.wake:
			if err := s.err(); err != nil {
				return err
			}
			s.report()
		case <-stats.C:
			stats.Reset(every)
			s.report()
		}
	}
}

// idle ends a pulled input that stopped sending: COMPLETE if media had flowed, ERROR if none came.
func (s *session) idle() (bool, error) {
	if s.src.URL == "" {
		return false, nil // a push input ends when its publisher disconnects
	}
	last := s.lastMedia.Load()
	switch {
	case last == 0 && time.Since(s.epoch) > pullNoMediaIn:
		return true, fmt.Errorf("no media from %s after %s: check that it is reachable and sending", sink.Redact(s.src.URL), pullNoMediaIn)
	case last != 0 && time.Since(time.Unix(0, last)) > pullIdleEnd:
		s.log.Info("input idle: ending", "idle", pullIdleEnd)
		return true, s.err()
	}
	return false, nil
}

func (s *session) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *session) fail(err error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// state is the current IngressState; PUBLISHING once a track is in the room.
func (s *session) state() *livekit.IngressState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &livekit.IngressState{Status: livekit.IngressState_ENDPOINT_BUFFERING, RoomId: s.roomID, Tracks: s.tracks}
	if len(s.tracks) > 0 {
		st.Status = livekit.IngressState_ENDPOINT_PUBLISHING
	}
	if s.inVideo != nil {
		st.Video = proto.Clone(s.inVideo).(*livekit.InputVideoState)
	}
	if s.inAudio != nil {
		st.Audio = proto.Clone(s.inAudio).(*livekit.InputAudioState)
	}
	if s.ingest != nil {
		vb, ab := s.ingest.InputBitrates()
		if st.Video != nil {
			st.Video.AverageBitrate = uint32(vb)
		}
		if st.Audio != nil {
			st.Audio.AverageBitrate = uint32(ab)
		}
	}
	return st
}

func (s *session) report() {
	if st := s.state(); st.Status == livekit.IngressState_ENDPOINT_PUBLISHING {
		s.env.State(st)
	}
}

// fit picks the layers for the source size (never upscaled, aspect kept).
func (s *session) fit(w, h int) []pipeline.IngestLayer {
	layers := s.plan.Video.Fit(w, h)
	s.mu.Lock()
	s.layers = layers
	s.mu.Unlock()
	out := make([]pipeline.IngestLayer, len(layers))
	for i, l := range layers {
		out[i] = pipeline.IngestLayer{Width: l.Width, Height: l.Height, Bitrate: l.Bitrate}
	}
	return out
}

// waitJoined blocks until the room is joined; false if joining failed (the session then fails).
func (s *session) waitJoined() bool {
	<-s.joined
	if err, _ := s.joinErr.Load().(error); err != nil {
		s.fail(err)
		return false
	}
	return true
}

// VideoStarted publishes the layers as one simulcast track.
func (s *session) VideoStarted(in pipeline.InputVideo, _ []pipeline.IngestLayer) {
	mime := webrtc.MimeTypeH264
	fmtp := "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	if s.plan.Video.Codec == livekit.VideoCodec_VP8 {
		mime, fmtp = webrtc.MimeTypeVP8, ""
	}
	s.mu.Lock()
	layers := s.layers
	s.inVideo = &livekit.InputVideoState{MimeType: in.Mime, Width: uint32(in.Width), Height: uint32(in.Height), Framerate: in.FrameRate}
	s.mu.Unlock()
	s.log.Info("input video", "mime", in.Mime, "width", in.Width, "height", in.Height, "fps", in.FrameRate, "layers", len(layers))
	tracks := make([]*lksdk.LocalTrack, 0, len(layers))
	for _, l := range layers {
		t, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp},
			lksdk.WithSimulcast(s.info.IngressId, &livekit.VideoLayer{Quality: l.Quality, Width: uint32(l.Width), Height: uint32(l.Height), Bitrate: uint32(l.Bitrate)}),
			lksdk.WithRTCPHandler(s.onRTCP))
		if err != nil {
			s.fail(fmt.Errorf("video track: %w", err))
			return
		}
		t.OnBind(func() { s.keyframe(true) })
		tracks = append(tracks, t)
	}
	s.mu.Lock()
	s.video = tracks
	s.mu.Unlock()
	go func() {
		if !s.waitJoined() {
			return
		}
		top := layers[len(layers)-1]
		pub, err := s.room.LocalParticipant.PublishSimulcastTrack(tracks, &lksdk.TrackPublicationOptions{
			Name: s.plan.Video.Name, Source: s.plan.Video.Source, VideoWidth: top.Width, VideoHeight: top.Height,
		})
		if err != nil {
			s.fail(fmt.Errorf("%w: publish video: %v", ErrRoom, err))
			return
		}
		s.trackPublished(pub.TrackInfo())
	}()
}

// AudioStarted publishes the Opus track.
func (s *session) AudioStarted(in pipeline.InputAudio) {
	s.mu.Lock()
	s.inAudio = &livekit.InputAudioState{MimeType: in.Mime, Channels: uint32(in.Channels), SampleRate: uint32(in.SampleRate)}
	if in.Mime == "audio/aac" && in.SampleRate > 0 {
		s.audioLead = 1024 * time.Second / time.Duration(in.SampleRate)
	}
	s.mu.Unlock()
	s.log.Info("input audio", "mime", in.Mime, "channels", in.Channels, "rate", in.SampleRate)
	t, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		s.fail(fmt.Errorf("audio track: %w", err))
		return
	}
	s.mu.Lock()
	s.audio = t
	s.mu.Unlock()
	go func() {
		if !s.waitJoined() {
			return
		}
		pub, err := s.room.LocalParticipant.PublishTrack(t, &lksdk.TrackPublicationOptions{
			Name: s.plan.Audio.Name, Source: s.plan.Audio.Source, DisableDTX: !s.plan.Audio.DTX, Stereo: s.plan.Audio.Channels == 2,
		})
		if err != nil {
			s.fail(fmt.Errorf("%w: publish audio: %v", ErrRoom, err))
			return
		}
		s.trackPublished(pub.TrackInfo())
	}()
}

func (s *session) trackPublished(ti *livekit.TrackInfo) {
	s.mu.Lock()
	s.tracks = append(s.tracks, ti)
	s.mu.Unlock()
	s.log.Info("track published", "kind", ti.GetType().String(), "sid", ti.GetSid(), "since_start_ms", time.Since(s.epoch).Milliseconds())
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Video writes one encoded frame of layer i. Timestamps follow the media clock, so audio and video
// keep the input's sync in RTP terms.
func (s *session) Video(i int, data []byte, pts, dur time.Duration) {
	s.mu.Lock()
	var t *lksdk.LocalTrack
	if i < len(s.video) {
		t = s.video[i]
	}
	s.mu.Unlock()
	if t == nil {
		return
	}
	s.lastMedia.Store(time.Now().UnixNano())
	if dur <= 0 {
		dur = time.Second / 30
	}
	_ = t.WriteSample(media.Sample{Data: data, Duration: dur, Timestamp: s.epoch.Add(pts)}, nil)
}

// Audio writes one Opus packet.
func (s *session) Audio(data []byte, pts, dur time.Duration) {
	s.mu.Lock()
	t, lead := s.audio, s.audioLead
	s.mu.Unlock()
	if t == nil {
		return
	}
	pts -= lead
	s.lastMedia.Store(time.Now().UnixNano())
	if dur <= 0 {
		dur = 20 * time.Millisecond
	}
	_ = t.WriteSample(media.Sample{Data: data, Duration: dur, Timestamp: s.epoch.Add(pts)}, nil)
}

// onRTCP answers a subscriber's picture loss with a keyframe.
func (s *session) onRTCP(p rtcp.Packet) {
	switch p.(type) {
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		s.keyframe(false)
	}
}

// keyframe forces a keyframe on every layer, at most every 500 ms unless forced.
func (s *session) keyframe(force bool) {
	s.mu.Lock()
	if !force && time.Since(s.lastKey) < 500*time.Millisecond {
		s.mu.Unlock()
		return
	}
	s.lastKey = time.Now()
	in := s.ingest
	s.mu.Unlock()
	if in != nil {
		in.ForceKeyframe()
	}
}
