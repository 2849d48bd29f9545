package source

import (
	"errors"
	"fmt"
	"github.com/pion/rtcp"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	lksdk "github.com/livekit/server-sdk-go/v2"
)

// ErrUnsupportedCodec marks a track codec the recorder cannot write without transcoding.
var ErrUnsupportedCodec = errors.New("unsupported codec")

// depacketizer picks the RTP depacketizer and keyframe test for a mime type.
func depacketizer(mime string) (rtp.Depacketizer, func([]byte) bool, error) {
	switch strings.ToLower(mime) {
	case "audio/opus", "audio/red":
		return &codecs.OpusPacket{}, func([]byte) bool { return true }, nil
	case "video/h264":
		return &codecs.H264Packet{}, isH264Keyframe, nil
	case "video/vp8":
		return &codecs.VP8Packet{}, isVP8Keyframe, nil
	case "video/vp9":
		return &codecs.VP9Packet{}, isVP9Keyframe, nil
	}
	return nil, nil, fmt.Errorf("%w %q: track egress records Opus, H.264, VP8 and VP9", ErrUnsupportedCodec, mime)
}

// readTrack turns RTP into frames until the track ends. It asks for a keyframe (PLI) until one
// arrives, so a video file starts decodable without waiting for the publisher's next GOP.
func readTrack(tr *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant, log *slog.Logger, onFrame func(Frame)) {
	dep, isKey, err := depacketizer(tr.Codec().MimeType)
	if err != nil {
		log.Error("cannot record track", "error", err)
		return
	}
	clock := tr.Codec().ClockRate
	// maxLate 200 packets ≈ 1 s of 720p video: reorders late packets, gives up on lost ones.
	sb := samplebuilder.New(200, dep, clock, samplebuilder.WithMaxTimeDelay(time.Second))
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	gotKey := !video
	lastPLI := time.Time{}
	var ts tsUnwrapper
	sender := &senderClock{rate: clock}
	if pub != nil {
		ssrc := uint32(tr.SSRC())
		pub.OnRTCP(func(p rtcp.Packet) {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == ssrc {
				sender.update(sr.NTPTime, sr.RTPTime)
			}
		})
	}
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Debug("track read ended", "error", err)
			}
			return
		}
		if !gotKey && time.Since(lastPLI) > 500*time.Millisecond {
			rp.WritePLI(tr.SSRC())
			lastPLI = time.Now()
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			key := isKey(s.Data)
			if !gotKey && !key {
				continue // a file must start at a keyframe
			}
			gotKey = true
			pts := ts.unwrap(s.PacketTimestamp)
			onFrame(Frame{Data: s.Data, PTS: time.Duration(pts * int64(time.Second) / int64(clock)), Keyframe: key, Wall: sender.wall(s.PacketTimestamp)})
		}
	}
}

// tsUnwrapper turns 32-bit RTP timestamps into a 64-bit count from the first one (RFC 3550 §5.1:
// timestamps wrap), tolerating small backwards steps from reordering.
type tsUnwrapper struct {
	started bool
	first   uint32
	last    uint32
	high    int64
}

func (u *tsUnwrapper) unwrap(ts uint32) int64 {
	if !u.started {
		u.started, u.first, u.last = true, ts, ts
		return 0
	}
	if ts < u.last && u.last-ts > 1<<31 {
		u.high += 1 << 32 // forward wrap
	}
	u.last = ts
	v := u.high + int64(ts) - int64(u.first)
	if v < 0 {
		v = 0
	}
	return v
}

// isH264Keyframe looks for an IDR slice (NAL type 5) in an Annex-B access unit (ITU-T H.264 §7.4.1.2).
func isH264Keyframe(b []byte) bool {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if b[i+3]&0x1f == 5 {
				return true
			}
			i += 2
		}
	}
	return false
}

// isVP8Keyframe reads the frame tag's P bit (RFC 6386 §9.1: 0 = key frame).
func isVP8Keyframe(b []byte) bool { return len(b) > 0 && b[0]&0x01 == 0 }

// isVP9Keyframe reads the uncompressed header (VP9 bitstream spec §6.2): frame_marker, profile,
// show_existing_frame, frame_type (0 = KEY_FRAME).
func isVP9Keyframe(b []byte) bool {
	if len(b) == 0 || b[0]>>6 != 2 {
		return false
	}
	profile := (b[0]>>5)&1 | ((b[0]>>4)&1)<<1
	bit := 4 // index from the MSB of the next field: 0-1 frame_marker, 2-3 profile bits
	if profile == 3 {
		bit++ // reserved_zero
	}
	showExisting := b[0]>>(7-bit)&1 == 1
	if showExisting {
		return false
	}
	bit++
	return b[0]>>(7-bit)&1 == 0
}

// senderClock maps a track's RTP timestamps to the sender's wall clock with its latest RTCP sender
// report (RFC 3550 §6.4.1): the SFU rewrites reports per subscriber so that the tracks of one
// participant share one clock.
type senderClock struct {
	rate uint32
	mu   sync.Mutex
	ntp  time.Time // wall time of rtp in the latest report
	rtp  uint32
}

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

func (c *senderClock) update(ntp uint64, rtp uint32) {
	secs, frac := int64(ntp>>32)-ntpEpochOffset, ntp&0xFFFFFFFF
	c.mu.Lock()
	c.ntp, c.rtp = time.Unix(secs, int64(frac*1e9>>32)), rtp
	c.mu.Unlock()
}

// wall is the sender's capture time of an RTP timestamp; zero before the first report.
func (c *senderClock) wall(ts uint32) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ntp.IsZero() || c.rate == 0 {
		return time.Time{}
	}
	d := int64(int32(ts - c.rtp)) // signed: timestamps wrap
	return c.ntp.Add(time.Duration(d * int64(time.Second) / int64(c.rate)))
}
