package source

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

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
	// OnTrack announces a new track before its first frame; returning false skips it.
	OnTrack func(t TrackMeta) bool
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
	// EndOnLeave, when set, ends the room subscription when that participant leaves; EndOnUnpublish
	// when that track is unpublished (a v2 media source ends with its video, as a participant or
	// track composite egress does).
	EndOnLeave, EndOnUnpublish string
}

// TrackMeta describes a track a Room subscribed to.
type TrackMeta struct {
	ID, Kind, Mime  string // Kind is "audio" or "video"; Mime the codec's
	Source          livekit.TrackSource
	Identity        string // the publisher's
	ParticipantKind livekit.ParticipantInfo_Kind
}

// Room receives every participant's camera, screen share and microphone, as they come and go.
type Room struct {
	p    RoomParams
	room *lksdk.Room

	ending
	mu       sync.Mutex // guards active, pubs, sizes, recv, checks, speakers, speaker, endOwner
	active   map[string]bool
	pubs     map[string]*lksdk.RemoteTrackPublication // video tracks composed
	sizes    map[string][2]int                        // the size each video track is drawn at
	recv     map[string][2]int                        // the picture size each video track arrives at
	checks   map[string]*layerCheck                   // each video track's pending layer check
	speakers []lksdk.Participant                      // the server's active speakers, loudest first
	speaker  string                                   // the video track last reported to OnSpeaker
	endOwner string                                   // the publisher of EndOnUnpublish's track
}

// SubscribeRoom joins the room as a hidden recorder and subscribes to its media.
func SubscribeRoom(_ context.Context, p RoomParams) (*Room, error) {
	r := &Room{p: p, ending: newEnding(), active: map[string]bool{}, pubs: map[string]*lksdk.RemoteTrackPublication{},
		sizes: map[string][2]int{}, recv: map[string][2]int{}, checks: map[string]*layerCheck{}}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(tr *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		kind := string(pub.Kind())
		if !r.wanted(kind, pub.Source()) || rp.Kind() == lksdk.ParticipantEgress {
			return
		}
		id := pub.SID()
		if !p.OnTrack(TrackMeta{ID: id, Kind: kind, Mime: tr.Codec().MimeType, Source: pub.Source(), Identity: rp.Identity(),
			ParticipantKind: livekit.ParticipantInfo_Kind(rp.Kind())}) {
			return
		}
		r.mu.Lock()
		if id == p.EndOnUnpublish {
			r.endOwner = rp.Identity()
		}
		r.active[id] = true
		size, sized := r.sizes[id]
		if kind == "video" {
			r.pubs[id] = pub
		}
		r.mu.Unlock()
		if sized && kind == "video" {
			requestSize(pub, size)
			r.checkLayerLater(id, true)
		}
		p.Log.Info("composing track", "track_id", id, "kind", kind, "participant", rp.Identity(), "mime", tr.Codec().MimeType)
		if kind == "video" {
			r.applySpeakers() // the speaker's camera may arrive after the server named them
		}
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
		r.mu.Lock()
		r.speakers = speakers
		r.mu.Unlock()
		r.applySpeakers()
	}
	cb.OnTrackUnsubscribed = func(_ *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		r.gone(pub.SID())
	}
	cb.OnTrackUnpublished = func(pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		r.gone(pub.SID())
		if p.EndOnUnpublish != "" && pub.SID() == p.EndOnUnpublish {
			r.end("track " + pub.SID() + " unpublished")
		}
	}
	cb.OnParticipantDisconnected = func(rp *lksdk.RemoteParticipant) {
		r.mu.Lock()
		owner := r.endOwner
		r.mu.Unlock()
		if rp.Identity() != "" && (rp.Identity() == p.EndOnLeave || rp.Identity() == owner) {
			r.end("participant " + rp.Identity() + " left the room")
		}
	}
	cb.OnDisconnectedWithReason = func(reason lksdk.DisconnectionReason) { r.end(fmt.Sprintf("room closed or left (%s)", reason)) }
	room, err := lksdk.ConnectToRoomWithToken(p.WsURL, p.Token, cb, lksdk.WithAutoSubscribe(true))
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrJoin, p.WsURL, err)
	}
	r.room = room
	// Whoever already speaks when the recorder joins is reported only in the join state.
	r.mu.Lock()
	if r.speakers == nil {
		r.speakers = room.ActiveSpeakers()
	}
	r.mu.Unlock()
	r.applySpeakers()
	return r, nil
}

// applySpeakers reports the video track of the loudest active speaker whose camera is composed,
// when it changed.
func (r *Room) applySpeakers() {
	if r.p.OnSpeaker == nil {
		return
	}
	r.mu.Lock()
	found := ""
	for _, sp := range r.speakers {
		rp, ok := sp.(*lksdk.RemoteParticipant)
		if !ok {
			continue
		}
		for _, tp := range rp.TrackPublications() {
			if tp.Kind() == lksdk.TrackKindVideo && r.active[tp.SID()] {
				found = tp.SID()
				break
			}
		}
		if found != "" {
			break
		}
	}
	changed := found != "" && found != r.speaker
	if changed {
		r.speaker = found
	}
	r.mu.Unlock()
	if changed {
		r.p.OnSpeaker(found)
	}
}

func (r *Room) wanted(kind string, src livekit.TrackSource) bool {
	if kind == "audio" {
		return r.p.Audio
	}
	return r.p.Video && src != livekit.TrackSource_SCREEN_SHARE_AUDIO && !strings.EqualFold(kind, "data")
}

// SetVideoSize says video track id is drawn at w×h (0×0: hidden). The SFU is asked for the
// simulcast layer that fits, so a small tile does not decode and scale down a large layer.
func (r *Room) SetVideoSize(id string, w, h int) {
	r.mu.Lock()
	r.sizes[id] = [2]int{w, h}
	pub := r.pubs[id]
	r.mu.Unlock()
	r.p.Log.Debug("video tile size", "track_id", id, "width", w, "height", h, "subscribed", pub != nil)
	if pub != nil {
		requestSize(pub, [2]int{w, h})
		r.checkLayerLater(id, true)
	}
}

// Layer checks: livekit-server now and then keeps sending the layer a track started on after
// being asked for another one (its allocator can miss a request that arrives while it registers
// the subscription); asking again with the same size is ignored as a repeat. So a while after
// each request the room compares the picture size that arrives with the layer that fits, and
// when they differ asks for another layer first and then for the size again.
const (
	layerCheckAfter = 4 * time.Second        // ≥ two keyframe intervals of a 2 s GOP publisher
	layerNudgeGap   = 300 * time.Millisecond // > livekit-server's 100 ms settings debounce
	layerNudges     = 2                      // per size asked for
)

type layerCheck struct {
	timer *time.Timer
	tries int
}

// ReceivedVideoSize reports the picture size video track id arrives at (its decoder's output).
func (r *Room) ReceivedVideoSize(id string, w, h int) {
	r.mu.Lock()
	r.recv[id] = [2]int{w, h}
	r.mu.Unlock()
	r.p.Log.Debug("video arrives", "track_id", id, "width", w, "height", h)
}

// checkLayerLater (re)arms the layer check of track id; fresh starts its count of nudges over.
func (r *Room) checkLayerLater(id string, fresh bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.checks[id]
	if c == nil {
		c = &layerCheck{}
		r.checks[id] = c
	}
	if fresh {
		c.tries = 0
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timer = time.AfterFunc(layerCheckAfter, func() { r.checkLayer(id) })
}

// checkLayer asks again for track id's size when the layer arriving is not the one that fits it.
func (r *Room) checkLayer(id string) {
	select {
	case <-r.Done():
		return
	default:
	}
	r.mu.Lock()
	pub, size, recv, c := r.pubs[id], r.sizes[id], r.recv[id], r.checks[id]
	if pub == nil || c == nil || size[0] <= 0 || size[1] <= 0 || recv[1] == 0 || c.tries >= layerNudges {
		r.mu.Unlock()
		return
	}
	info := pub.TrackInfo()
	_, fitH := fitAspect(size[0], size[1], int(info.GetWidth()), int(info.GetHeight()))
	want, other, ok := layerFor(info.GetLayers(), fitH)
	if !ok || nearestLayer(info.GetLayers(), recv[1]) == want {
		r.mu.Unlock()
		return
	}
	c.tries++
	r.mu.Unlock()
	r.p.Log.Info("the SFU sends another simulcast layer than the tile needs; asking again",
		"track_id", id, "tile", fmt.Sprintf("%dx%d", size[0], size[1]), "receiving", fmt.Sprintf("%dx%d", recv[0], recv[1]),
		"want", fmt.Sprintf("%dx%d", want.GetWidth(), want.GetHeight()))
	pub.SetVideoDimensions(other.GetWidth(), other.GetHeight())
	time.AfterFunc(layerNudgeGap, func() {
		select {
		case <-r.Done():
			return
		default:
		}
		r.mu.Lock()
		pub, size := r.pubs[id], r.sizes[id]
		r.mu.Unlock()
		if pub != nil {
			requestSize(pub, size)
			r.checkLayerLater(id, false)
		}
	})
}

// nearestLayer is the layer whose height is nearest h (a browser may send a layer smaller than
// it announced when its CPU or bandwidth is short).
func nearestLayer(layers []*livekit.VideoLayer, h int) *livekit.VideoLayer {
	var best *livekit.VideoLayer
	for _, l := range layers {
		if best == nil || abs(int(l.GetHeight())-h) < abs(int(best.GetHeight())-h) {
			best = l
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// layerFor is the simulcast layer livekit-server picks for a picture h lines high (the lowest
// at least 0.9·h high, else the highest), and another layer to ask for in between; ok is false
// for a track without known layers.
func layerFor(layers []*livekit.VideoLayer, h int) (want, other *livekit.VideoLayer, ok bool) {
	var sorted []*livekit.VideoLayer
	for _, l := range layers {
		if l.GetHeight() > 0 {
			sorted = append(sorted, l)
		}
	}
	if len(sorted) < 2 {
		return nil, nil, false
	}
	slices.SortFunc(sorted, func(a, b *livekit.VideoLayer) int { return int(a.GetHeight()) - int(b.GetHeight()) })
	want = sorted[len(sorted)-1]
	for _, l := range sorted {
		if float64(l.GetHeight()) >= 0.9*float64(h) {
			want = l
			break
		}
	}
	other = sorted[len(sorted)-1]
	if want == other {
		other = sorted[0]
	}
	return want, other, true
}

// requestSize asks for the layer of pub that fits size; a hidden track gets the lowest layer
// (not paused: it shows again without waiting for a keyframe request). The picture keeps its
// aspect ratio inside the area, so a 640x360 camera in a 640x720 grid tile asks for 640x360.
func requestSize(pub *lksdk.RemoteTrackPublication, size [2]int) {
	w, h := size[0], size[1]
	if w <= 0 || h <= 0 {
		_ = pub.SetVideoQuality(livekit.VideoQuality_LOW)
		pub.SetVideoDimensions(0, 0)
		return
	}
	w, h = fitAspect(w, h, int(pub.TrackInfo().GetWidth()), int(pub.TrackInfo().GetHeight()))
	pub.SetVideoDimensions(uint32(w), uint32(h))
}

// fitAspect is the largest picture of aspect srcW:srcH that fits in w×h (w×h when unknown).
func fitAspect(w, h, srcW, srcH int) (int, int) {
	if srcW <= 0 || srcH <= 0 {
		return w, h
	}
	if w*srcH <= h*srcW {
		return w, w * srcH / srcW
	}
	return h * srcW / srcH, h
}

func (r *Room) gone(id string) {
	r.mu.Lock()
	was := r.active[id]
	delete(r.active, id)
	delete(r.pubs, id)
	delete(r.sizes, id)
	delete(r.recv, id)
	if c := r.checks[id]; c != nil && c.timer != nil {
		c.timer.Stop()
	}
	delete(r.checks, id)
	if r.speaker == id {
		r.speaker = "" // reported again if they come back
	}
	r.mu.Unlock()
	if was {
		r.p.OnGone(id)
	}
}

// Close leaves the room.
func (r *Room) Close() {
	r.end("recording stopped")
	r.mu.Lock()
	for _, c := range r.checks {
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	r.mu.Unlock()
	r.room.Disconnect()
}
