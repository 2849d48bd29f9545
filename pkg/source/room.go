package source

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
)

// RoomParams configure a whole-room subscription (room composite).
type RoomParams struct {
	WsURL, Token string
	Log          *slog.Logger
	// Audio and Video choose which kinds to receive.
	Audio, Video bool
	// OnTrack announces a new track (kind "audio" or "video", codec mime, whether its publisher is
	// an agent) before its first frame; returning false skips it.
	OnTrack func(id, kind, mime string, agent bool) bool
	// OnFrame receives each track's frames, from one goroutine per track.
	OnFrame func(id string, f Frame)
	// OnGone says a track stopped (unpublished, unsubscribed, or its publisher left).
	OnGone func(id string)
	// OnMute reports a track muted or unmuted.
	OnMute func(id string, muted bool)
	// OnSpeaker reports the video track of the loudest active speaker.
	OnSpeaker func(videoTrackID string)
	// OnOwnMetadata reports the recorder's own metadata: livekit-server's UpdateLayout sets it to {"layout": …}.
	OnOwnMetadata func(metadata string)
}

// Room receives every participant's camera, screen share and microphone, as they come and go.
type Room struct {
	p    RoomParams
	room *lksdk.Room

	ending
	mu     sync.Mutex // guards active
	active map[string]bool
}

// SubscribeRoom joins the room as a hidden recorder and subscribes to its media.
func SubscribeRoom(_ context.Context, p RoomParams) (*Room, error) {
	r := &Room{p: p, ending: newEnding(), active: map[string]bool{}}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(tr *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		kind := string(pub.Kind())
		if !r.wanted(kind, pub.Source()) || rp.Kind() == lksdk.ParticipantEgress {
			return
		}
		id := pub.SID()
		if !p.OnTrack(id, kind, tr.Codec().MimeType, rp.Kind() == lksdk.ParticipantAgent) {
			return
		}
		r.mu.Lock()
		r.active[id] = true
		r.mu.Unlock()
		p.Log.Info("composing track", "track_id", id, "kind", kind, "participant", rp.Identity(), "mime", tr.Codec().MimeType)
		go func() {
			readTrack(tr, pub, rp, p.Log, func(f Frame) { p.OnFrame(id, f) })
			r.gone(id)
		}()
	}
	mute := func(muted bool) func(lksdk.TrackPublication, lksdk.Participant) {
		return func(pub lksdk.TrackPublication, _ lksdk.Participant) { p.OnMute(pub.SID(), muted) }
	}
	cb.OnTrackMuted, cb.OnTrackUnmuted = mute(true), mute(false)
	cb.OnMetadataChanged = func(_ string, who lksdk.Participant) {
		if lp, ok := who.(*lksdk.LocalParticipant); ok {
			p.OnOwnMetadata(lp.Metadata())
		}
	}
	cb.OnActiveSpeakersChanged = func(speakers []lksdk.Participant) {
		for _, sp := range speakers {
			rp, ok := sp.(*lksdk.RemoteParticipant)
			if !ok {
				continue
			}
			for _, tp := range rp.TrackPublications() {
				if tp.Kind() == lksdk.TrackKindVideo && r.isActive(tp.SID()) {
					p.OnSpeaker(tp.SID())
					return
				}
			}
		}
	}
	cb.OnTrackUnsubscribed = func(_ *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		r.gone(pub.SID())
	}
	cb.OnTrackUnpublished = func(pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) { r.gone(pub.SID()) }
	cb.OnDisconnectedWithReason = func(reason lksdk.DisconnectionReason) { r.end(fmt.Sprintf("room closed or left (%s)", reason)) }
	room, err := lksdk.ConnectToRoomWithToken(p.WsURL, p.Token, cb, lksdk.WithAutoSubscribe(true))
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrJoin, p.WsURL, err)
	}
	r.room = room
	return r, nil
}

func (r *Room) wanted(kind string, src livekit.TrackSource) bool {
	if kind == "audio" {
		return r.p.Audio
	}
	return r.p.Video && src != livekit.TrackSource_SCREEN_SHARE_AUDIO && !strings.EqualFold(kind, "data")
}

func (r *Room) isActive(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active[id]
}

func (r *Room) gone(id string) {
	r.mu.Lock()
	was := r.active[id]
	delete(r.active, id)
	r.mu.Unlock()
	if was {
		r.p.OnGone(id)
	}
}

// Close leaves the room.
func (r *Room) Close() {
	r.end("recording stopped")
	r.room.Disconnect()
}
