// Package source brings media into a job: here, one room track subscribed as a hidden recorder.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
)

// Errors a track subscription can end with.
var (
	ErrTrackNotFound = errors.New("track not found")
	ErrJoin          = errors.New("could not join the room")
)

// Frame is one complete encoded frame with its time relative to the track's first frame.
type Frame struct {
	Data     []byte
	PTS      time.Duration
	Keyframe bool
	// Wall is when the sender captured the frame, from its RTCP sender reports (zero until the
	// first report): frames of different tracks with equal Wall belong together (A/V sync).
	Wall time.Time
}

// TrackInfo describes the subscribed track, for filenames and results.
type TrackInfo struct {
	TrackID           string
	Kind              string // "audio" or "video"
	Source            string // e.g. "microphone", "camera"
	PublisherIdentity string
	MimeType          string // e.g. "audio/opus", "video/H264"
}

// TrackParams configure a subscription.
type TrackParams struct {
	WsURL, Token, TrackID string
	// Wait is how long to wait for the track to be published before ErrTrackNotFound.
	Wait time.Duration
	Log  *slog.Logger
	// OnFrame receives every frame, in order, from one goroutine.
	OnFrame func(Frame)
	// OnMute, if set, is told when the publisher mutes or unmutes the track.
	OnMute func(muted bool)
}

// Track is a live subscription to one room track.
type Track struct {
	p    TrackParams
	room *lksdk.Room

	published  chan struct{} // a track was published somewhere in the room (re-check)
	subscribed chan *webrtc.TrackRemote

	ending
	mu        sync.Mutex // guards info, publisher
	info      TrackInfo
	publisher string
}

// SubscribeTrack joins the room with p.Token (a hidden recorder token) and subscribes to p.TrackID.
// It returns once the track's media has started arriving, or with an error.
func SubscribeTrack(ctx context.Context, p TrackParams) (*Track, error) {
	t := &Track{p: p, published: make(chan struct{}, 1), subscribed: make(chan *webrtc.TrackRemote, 1), ending: newEnding()}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackPublished = func(*lksdk.RemoteTrackPublication, *lksdk.RemoteParticipant) { notify(t.published) }
	cb.OnTrackSubscribed = func(tr *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		if pub.SID() == p.TrackID {
			select {
			case t.subscribed <- tr:
			default:
			}
		}
	}
	mute := func(muted bool) func(lksdk.TrackPublication, lksdk.Participant) {
		return func(pub lksdk.TrackPublication, _ lksdk.Participant) {
			if pub.SID() == p.TrackID && p.OnMute != nil {
				p.OnMute(muted)
			}
		}
	}
	cb.OnTrackMuted, cb.OnTrackUnmuted = mute(true), mute(false)
	cb.OnTrackUnpublished = func(pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		if pub.SID() == p.TrackID {
			t.end("track unpublished")
		}
	}
	cb.OnParticipantDisconnected = func(rp *lksdk.RemoteParticipant) {
		t.mu.Lock()
		mine := rp.Identity() == t.publisher
		t.mu.Unlock()
		if mine {
			t.end("publisher left the room")
		}
	}
	cb.OnDisconnectedWithReason = func(r lksdk.DisconnectionReason) { t.end(fmt.Sprintf("disconnected from room (%s)", r)) }
	room, err := lksdk.ConnectToRoomWithToken(p.WsURL, p.Token, cb, lksdk.WithAutoSubscribe(false))
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v (check ws_url and that api_key/api_secret are one of the server's keys)", ErrJoin, p.WsURL, err)
	}
	t.room = room
	if err := t.subscribe(ctx); err != nil {
		room.Disconnect()
		return nil, err
	}
	return t, nil
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (t *Track) subscribe(ctx context.Context) error {
	deadline := time.NewTimer(t.p.Wait)
	defer deadline.Stop()
	var pub *lksdk.RemoteTrackPublication
	var rp *lksdk.RemoteParticipant
	for pub == nil {
		pub, rp = t.find()
		if pub != nil {
			break
		}
		select {
		case <-t.published:
		case <-time.After(500 * time.Millisecond): // participants can arrive without a publish event
		case <-deadline.C:
			return fmt.Errorf("%w: no track %s in the room after %s (check the track id: ListParticipants shows each participant's tracks)", ErrTrackNotFound, t.p.TrackID, t.p.Wait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t.mu.Lock()
	t.publisher = rp.Identity()
	t.info = TrackInfo{TrackID: pub.SID(), Kind: string(pub.Kind()), Source: strings.ToLower(pub.Source().String()),
		PublisherIdentity: rp.Identity(), MimeType: pub.MimeType()}
	t.mu.Unlock()
	if err := pub.SetSubscribed(true); err != nil {
		return fmt.Errorf("subscribe to %s: %w", t.p.TrackID, err)
	}
	select {
	case tr := <-t.subscribed:
		t.mu.Lock()
		t.info.MimeType = tr.Codec().MimeType
		t.mu.Unlock()
		go func() {
			readTrack(tr, nil, rp, t.p.Log, t.p.OnFrame) // one track: no other to sync with
			t.end("track ended")
		}()
		return nil
	case <-t.done:
		return fmt.Errorf("track %s ended before media arrived: %s", t.p.TrackID, t.Reason())
	case <-deadline.C:
		return fmt.Errorf("subscribed to %s but no media arrived within %s (is the publisher's connection up?)", t.p.TrackID, t.p.Wait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *Track) find() (*lksdk.RemoteTrackPublication, *lksdk.RemoteParticipant) {
	for _, rp := range t.room.GetRemoteParticipants() {
		for _, tp := range rp.TrackPublications() {
			if pub, ok := tp.(*lksdk.RemoteTrackPublication); ok && pub.SID() == t.p.TrackID {
				return pub, rp
			}
		}
	}
	return nil, nil
}

// Info describes the track (valid after SubscribeTrack returned).
func (t *Track) Info() TrackInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info
}

// Close leaves the room.
func (t *Track) Close() {
	t.end("recording stopped")
	t.room.Disconnect()
}
