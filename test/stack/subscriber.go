package stack

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// SubTrack is what a Subscriber saw of one remote track.
type SubTrack struct {
	// The publisher, as the room describes it when Tracks is called.
	Identity, Name, Metadata string
	ParticipantKind          livekit.ParticipantInfo_Kind // INGRESS for an ingress

	Kind lksdk.TrackKind // audio or video
	// Info is the publication's TrackInfo when Tracks is called: source, name, simulcast, layers
	// (width, height, quality), mime type.
	Info     *livekit.TrackInfo
	MimeType string // codec of this subscription, as negotiated

	Packets, Bytes int       // RTP packets and payload bytes; padding-only packets are not counted
	FirstPacket    time.Time // when the first one arrived
	// Picture size from the first and from the latest H.264 SPS or VP8 keyframe header (0 until
	// one arrives); the latest changes when the SFU switches layers (see SetQuality).
	Width, Height         int
	LastWidth, LastHeight int
	LastSizeAt            time.Time // when the latest one arrived
}

// FrameArrival is one video frame as the subscriber received it: RTP packets grouped by
// timestamp, ended by the marker bit (or by the next timestamp if the marker was lost).
type FrameArrival struct {
	First, At time.Time // arrival of the first and of the last packet (At: the frame is complete)
	Bytes     int       // payload bytes, H.264 filler data excluded
	RTPTime   uint32
}

// Subscriber is a participant that subscribes to every track of a room and records what arrives.
type Subscriber struct {
	Identity string
	room     *lksdk.Room
	close    sync.Once

	// mu guards tracks and the recorded fields of every subTrack (the payload parser belongs to
	// the goroutine that reads the track). It is never held while calling into lksdk, whose
	// participant locks are held when it calls us.
	mu     sync.Mutex
	tracks map[string]*subTrack // by trackKey
}

type subTrack struct {
	SubTrack
	pub    *lksdk.RemoteTrackPublication
	rp     *lksdk.RemoteParticipant
	frames []FrameArrival
	cur    *FrameArrival // frame being received
}

func trackKey(identity string, kind lksdk.TrackKind) string { return identity + "/" + string(kind) }

// Subscribe joins room as "sub-<random>", subscribes to everything published there (asking for
// HIGH quality video) and records it until the test ends or Close.
func (s *Stack) Subscribe(t testing.TB, room string) *Subscriber {
	t.Helper()
	sub := &Subscriber{Identity: fmt.Sprintf("sub-%08x", rand.Uint32()), tracks: map[string]*subTrack{}}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = sub.onTrack
	r, err := lksdk.ConnectToRoom(s.WsURL, lksdk.ConnectInfo{APIKey: APIKey, APISecret: APISecret, RoomName: room,
		ParticipantIdentity: sub.Identity}, cb, lksdk.WithAutoSubscribe(true))
	if err != nil {
		t.Fatalf("subscriber %s join %s: %v", sub.Identity, room, err)
	}
	sub.room = r
	t.Cleanup(sub.Close)
	return sub
}

// Close leaves the room; what was recorded stays readable.
func (s *Subscriber) Close() { s.close.Do(s.room.Disconnect) }

// onTrack starts recording a newly subscribed track. A track that replaces one of the same
// participant and kind (a republish) starts a fresh record.
func (s *Subscriber) onTrack(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
	st := &subTrack{pub: pub, rp: rp}
	st.Kind, st.MimeType = pub.Kind(), track.Codec().MimeType
	key := trackKey(rp.Identity(), pub.Kind())
	s.mu.Lock()
	s.tracks[key] = st
	s.mu.Unlock()
	if pub.Kind() == lksdk.TrackKindVideo {
		_ = pub.SetVideoQuality(livekit.VideoQuality_HIGH) // the default, said explicitly
	}
	go s.read(st, track, parserFor(st.MimeType))
}

// read records the track's packets until the subscription ends.
func (s *Subscriber) read(st *subTrack, track *webrtc.TrackRemote, parser payloadParser) {
	buf := make([]byte, 1500)
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:n]) != nil || paddingOnly(&pkt) {
			continue
		}
		info := payloadInfo{media: len(pkt.Payload)}
		if parser != nil {
			info = parser.parse(pkt.Payload)
		}
		s.mu.Lock()
		st.add(time.Now(), &pkt, info)
		s.mu.Unlock()
	}
}

// paddingOnly tells the SFU's probe and stream-start packets from media. They have the padding
// bit set and carry no media, but livekit-server sends them with 255 bytes of zeros ending in 0xff
// before the padding proper, which is left as payload once the padding is removed.
func paddingOnly(pkt *rtp.Packet) bool {
	if !pkt.Padding {
		return false
	}
	for _, b := range pkt.Payload[:max(len(pkt.Payload)-1, 0)] {
		if b != 0 {
			return false
		}
	}
	return true
}

// add records one packet; s.mu is held.
func (st *subTrack) add(now time.Time, pkt *rtp.Packet, info payloadInfo) {
	if st.Packets == 0 {
		st.FirstPacket = now
	}
	st.Packets++
	st.Bytes += len(pkt.Payload)
	if info.width > 0 && info.height > 0 {
		if st.Width == 0 {
			st.Width, st.Height = info.width, info.height
		}
		st.LastWidth, st.LastHeight, st.LastSizeAt = info.width, info.height, now
	}
	if st.Kind != lksdk.TrackKindVideo {
		return
	}
	if st.cur != nil && st.cur.RTPTime != pkt.Timestamp {
		st.frames = append(st.frames, *st.cur) // its marker was lost
		st.cur = nil
	}
	if st.cur == nil {
		st.cur = &FrameArrival{First: now, RTPTime: pkt.Timestamp}
	}
	st.cur.Bytes += info.media
	st.cur.At = now
	if pkt.Marker {
		st.frames = append(st.frames, *st.cur)
		st.cur = nil
	}
}

// Tracks is a snapshot of every track recorded so far, ordered by participant identity then kind.
func (s *Subscriber) Tracks() []SubTrack {
	type entry struct {
		rec SubTrack
		st  *subTrack
	}
	s.mu.Lock()
	entries := make([]entry, 0, len(s.tracks))
	for _, st := range s.tracks {
		entries = append(entries, entry{st.SubTrack, st})
	}
	s.mu.Unlock()
	out := make([]SubTrack, 0, len(entries))
	for _, e := range entries { // pub and rp are set once, before st is shared
		tr := e.rec
		tr.Identity, tr.Name, tr.Metadata = e.st.rp.Identity(), e.st.rp.Name(), e.st.rp.Metadata()
		tr.ParticipantKind = livekit.ParticipantInfo_Kind(e.st.rp.Kind())
		tr.Info = e.st.pub.TrackInfo()
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool {
		return trackKey(out[i].Identity, out[i].Kind) < trackKey(out[j].Identity, out[j].Kind)
	})
	return out
}

// WaitTracks waits up to d until n tracks have each received at least 50 packets, and returns
// Tracks.
func (s *Subscriber) WaitTracks(t testing.TB, n int, d time.Duration) []SubTrack {
	t.Helper()
	const enough = 50
	deadline := time.Now().Add(d)
	for {
		tracks := s.Tracks()
		flowing := 0
		for _, tr := range tracks {
			if tr.Packets >= enough {
				flowing++
			}
		}
		if flowing >= n {
			return tracks
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d tracks got %d packets after %s; tracks: %s", s.Identity, flowing, n, enough, d, describe(tracks))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// describe summarises tracks for a failure message.
func describe(tracks []SubTrack) string {
	if len(tracks) == 0 {
		return "none"
	}
	var parts []string
	for _, tr := range tracks {
		parts = append(parts, fmt.Sprintf("%s/%s %s %d pkts %dx%d", tr.Identity, tr.Kind, tr.MimeType, tr.Packets, tr.LastWidth, tr.LastHeight))
	}
	return strings.Join(parts, "; ")
}

// SetQuality asks the SFU to forward layer q of identity's video track. The switch shows as a
// new SubTrack.LastWidth/LastHeight once the layer's next keyframe arrives.
func (s *Subscriber) SetQuality(t testing.TB, identity string, q livekit.VideoQuality) {
	t.Helper()
	s.mu.Lock()
	st := s.tracks[trackKey(identity, lksdk.TrackKindVideo)]
	s.mu.Unlock()
	if st == nil {
		t.Fatalf("%s: no video track from %s; tracks: %s", s.Identity, identity, describe(s.Tracks()))
	}
	if err := st.pub.SetVideoQuality(q); err != nil {
		t.Fatalf("set quality %s of %s: %v", q, identity, err)
	}
}

// FrameSizes is every complete frame received so far on identity's video track — whichever
// layer the SFU was forwarding at the time — in arrival order.
func (s *Subscriber) FrameSizes(identity string) []FrameArrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.tracks[trackKey(identity, lksdk.TrackKindVideo)]
	if st == nil {
		return nil
	}
	return append([]FrameArrival(nil), st.frames...)
}
