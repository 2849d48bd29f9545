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
	// TrackIDs, when set, select these tracks (of any participants) instead of Identity's media.
	TrackIDs []string
	// VideoSize is the size the video is recorded at: of a simulcast camera, the SFU sends the
	// layer that fits it (a 640x360 recording does not decode the 1280x720 layer). Zero: the best.
	VideoSize [2]int
	// Wait is how long to wait for the participant to join and publish.
	Wait time.Duration
	Log  *slog.Logger
	// OnFrame receives frames of the participant's recorded tracks; each track from its own
	// goroutine, in order. trackID tells republished tracks apart; mime is the track's codec.
	OnFrame func(kind, trackID, mime string, f Frame)
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

	ending
	mu        sync.Mutex      // guards owners
	owners    map[string]bool // identities whose tracks are recorded
	published chan struct{}
}

// SubscribeParticipant joins the room as a hidden recorder, waits for the participant and their
// media, and subscribes. It returns what is published at that moment.
func SubscribeParticipant(ctx context.Context, p ParticipantParams) (*Participant, Media, error) {
	s := &Participant{p: p, ending: newEnding(), published: make(chan struct{}, 1), owners: map[string]bool{p.Identity: p.Identity != ""}}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackPublished = func(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		if s.wanted(pub, rp) {
			if err := pub.SetSubscribed(true); err != nil {
				p.Log.Warn("could not subscribe to a late track", "track_id", pub.SID(), "error", err)
			}
			notify(s.published)
		}
	}
	cb.OnTrackSubscribed = func(tr *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		if !s.wanted(pub, rp) {
			return
		}
		kind, id, mime := string(pub.Kind()), pub.SID(), tr.Codec().MimeType
		p.Log.Info("recording participant track", "track_id", id, "kind", kind, "mime", tr.Codec().MimeType)
		if kind == "video" && p.VideoSize[0] > 0 {
			requestSize(pub, p.VideoSize)
		}
		go readTrack(tr, pub, rp, p.Log, func(f Frame) { p.OnFrame(kind, id, mime, f) })
	}
	cb.OnParticipantDisconnected = func(rp *lksdk.RemoteParticipant) {
		s.mu.Lock()
		mine := s.owners[rp.Identity()]
		s.mu.Unlock()
		if mine {
			s.end("participant " + rp.Identity() + " left the room")
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

// wanted tells whether pub, published by rp, is one of the tracks this egress records.
func (s *Participant) wanted(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) bool {
	if len(s.p.TrackIDs) > 0 {
		for _, id := range s.p.TrackIDs {
			if pub.SID() == id {
				return true
			}
		}
		return false
	}
	if rp.Identity() != s.p.Identity {
		return false
	}
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
		found, pubs := s.find()
		m := Media{}
		for _, pub := range pubs {
			if pub.Kind() == lksdk.TrackKindVideo {
				m.VideoMime = pub.MimeType()
			} else {
				m.Audio = true
			}
		}
		complete := (m.VideoMime != "" && m.Audio) || (len(s.p.TrackIDs) > 0 && len(pubs) == len(s.p.TrackIDs))
		if len(pubs) > 0 && (len(s.p.TrackIDs) == 0 || complete) {
			if settle.IsZero() {
				settle = time.Now().Add(time.Second)
			}
			if complete || time.Now().After(settle) {
				for _, pub := range pubs {
					if err := pub.SetSubscribed(true); err != nil {
						return m, fmt.Errorf("subscribe to %s: %w", pub.SID(), err)
					}
				}
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			if len(s.p.TrackIDs) > 0 {
				return m, fmt.Errorf("%w: tracks %v not all published within %s (found %d; check the track ids)", ErrTrackNotFound, s.p.TrackIDs, s.p.Wait, len(pubs))
			}
			if !found {
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

// find returns whether the participant (identity mode) is in the room, and the wanted publications
// present now; it records their publishers as owners.
func (s *Participant) find() (bool, []*lksdk.RemoteTrackPublication) {
	found := false
	var pubs []*lksdk.RemoteTrackPublication
	for _, rp := range s.room.GetRemoteParticipants() {
		found = found || rp.Identity() == s.p.Identity
		for _, tp := range rp.TrackPublications() {
			if pub, ok := tp.(*lksdk.RemoteTrackPublication); ok && s.wanted(pub, rp) && pub.MimeType() != "" {
				pubs = append(pubs, pub)
				s.mu.Lock()
				s.owners[rp.Identity()] = true
				s.mu.Unlock()
			}
		}
	}
	return found, pubs
}

// Close leaves the room.
func (s *Participant) Close() {
	s.end("recording stopped")
	s.room.Disconnect()
}
