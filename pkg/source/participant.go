package source

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
)

// ParticipantParams configure a participant subscription.
type ParticipantParams struct {
	WsURL, Token, Identity string
	// ScreenShare records the screen share (and its audio) instead of camera and microphone.
	ScreenShare bool
	// Wait is how long to wait for the participant to join and publish.
	Wait time.Duration
	Log  *slog.Logger
	// OnFrame receives frames of the participant's recorded tracks; each track from its own
	// goroutine, in order. trackID tells republished tracks apart.
	OnFrame func(kind, trackID string, f Frame)
}

// Media is what the participant publishes when recording starts: video mime ("" for none), audio.
type Media struct {
	VideoMime string
	Audio     bool
}

// Participant is a live subscription to one participant's camera (or screen) and microphone,
// including tracks they publish later.
type Participant struct {
	p    ParticipantParams
	room *lksdk.Room

	mu        sync.Mutex // guards ended, reason
	ended     bool
	reason    string
	done      chan struct{}
	published chan struct{}
}

// SubscribeParticipant joins the room as a hidden recorder, waits for the participant and their
// media, and subscribes. It returns what is published at that moment.
func SubscribeParticipant(ctx context.Context, p ParticipantParams) (*Participant, Media, error) {
	s := &Participant{p: p, done: make(chan struct{}), published: make(chan struct{}, 1)}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackPublished = func(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		if rp.Identity() == p.Identity && s.wanted(pub) {
			if err := pub.SetSubscribed(true); err != nil {
				p.Log.Warn("could not subscribe to a late track", "track_id", pub.SID(), "error", err)
			}
			notify(s.published)
		}
	}
	cb.OnTrackSubscribed = func(tr *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		if rp.Identity() != p.Identity || !s.wanted(pub) {
			return
		}
		kind, id := string(pub.Kind()), pub.SID()
		p.Log.Info("recording participant track", "track_id", id, "kind", kind, "mime", tr.Codec().MimeType)
		go readTrack(tr, rp, p.Log, func(f Frame) { p.OnFrame(kind, id, f) })
	}
	cb.OnParticipantDisconnected = func(rp *lksdk.RemoteParticipant) {
		if rp.Identity() == p.Identity {
			s.end("participant left the room")
		}
	}
	cb.OnDisconnectedWithReason = func(r lksdk.DisconnectionReason) { s.end(fmt.Sprintf("disconnected from room (%s)", r)) }
	room, err := lksdk.ConnectToRoomWithToken(p.WsURL, p.Token, cb, lksdk.WithAutoSubscribe(false))
	if err != nil {
		return nil, Media{}, fmt.Errorf("%w at %s: %v", ErrJoin, p.WsURL, err)
	}
	s.room = room
	media, err := s.await(ctx)
	if err != nil {
		room.Disconnect()
		return nil, Media{}, err
	}
	return s, media, nil
}

// wanted tells whether pub is one of the tracks this egress records.
func (s *Participant) wanted(pub *lksdk.RemoteTrackPublication) bool {
	src := pub.Source()
	if s.p.ScreenShare {
		return src == livekit.TrackSource_SCREEN_SHARE || src == livekit.TrackSource_SCREEN_SHARE_AUDIO
	}
	return src == livekit.TrackSource_CAMERA || src == livekit.TrackSource_MICROPHONE ||
		(src == livekit.TrackSource_UNKNOWN && pub.Kind() != "")
}

// await waits for the participant to publish something wanted, then briefly for the rest (a camera
// and a microphone rarely arrive in the same instant), and subscribes to what is there.
func (s *Participant) await(ctx context.Context) (Media, error) {
	deadline := time.Now().Add(s.p.Wait)
	var settle time.Time
	for {
		rp, pubs := s.find()
		m := Media{}
		for _, pub := range pubs {
			if pub.Kind() == lksdk.TrackKindVideo {
				m.VideoMime = pub.MimeType()
			} else {
				m.Audio = true
			}
		}
		if rp != nil && len(pubs) > 0 {
			if settle.IsZero() {
				settle = time.Now().Add(time.Second)
			}
			if (m.VideoMime != "" && m.Audio) || time.Now().After(settle) {
				for _, pub := range pubs {
					if err := pub.SetSubscribed(true); err != nil {
						return m, fmt.Errorf("subscribe to %s: %w", pub.SID(), err)
					}
				}
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			if rp == nil {
				return m, fmt.Errorf("%w: participant %q did not join within %s", ErrTrackNotFound, s.p.Identity, s.p.Wait)
			}
			return m, fmt.Errorf("%w: participant %q published no camera, screen or microphone within %s", ErrTrackNotFound, s.p.Identity, s.p.Wait)
		}
		select {
		case <-s.published:
		case <-time.After(100 * time.Millisecond):
		case <-s.done:
			return m, fmt.Errorf("before recording started: %s", s.Reason())
		case <-ctx.Done():
			return m, ctx.Err()
		}
	}
}

func (s *Participant) find() (*lksdk.RemoteParticipant, []*lksdk.RemoteTrackPublication) {
	for _, rp := range s.room.GetRemoteParticipants() {
		if rp.Identity() != s.p.Identity {
			continue
		}
		var pubs []*lksdk.RemoteTrackPublication
		for _, tp := range rp.TrackPublications() {
			if pub, ok := tp.(*lksdk.RemoteTrackPublication); ok && s.wanted(pub) && pub.MimeType() != "" {
				pubs = append(pubs, pub)
			}
		}
		return rp, pubs
	}
	return nil, nil
}

func (s *Participant) end(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.ended, s.reason = true, reason
		close(s.done)
	}
}

// Done is closed when the participant left or the room closed.
func (s *Participant) Done() <-chan struct{} { return s.done }

// Reason says why it ended.
func (s *Participant) Reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Close leaves the room.
func (s *Participant) Close() {
	s.end("recording stopped")
	s.room.Disconnect()
}
