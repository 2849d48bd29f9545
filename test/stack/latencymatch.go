package stack

import (
	"slices"
	"time"
)

// Matching marks to frames (see the drawing in latency.go).
const (
	latencyWindow   = 3 * time.Second       // a frame answers a mark only this long after it
	offsetTolerance = 50 * time.Millisecond // half the 100 ms step of the gaps between marks
	anchorVoters    = 6                     // later noise frames that vote for an anchor
	videoClockRate  = 90000                 // RTP clock of every video codec (RFC 6184, RFC 7741)
)

// MatchLatency pairs each mark with the noise frame that answers it and returns, per mark,
// arrival − mark; -1 for a mark no frame answers (lost, or the subscriber was not there yet).
//
// Noise frames are the frames over bigFrameBytes. A noise frame answers mark i if it arrived
// within 3 s after it and its RTP time sits at the same offset from the mark as the frames that
// answer the marks around it: RTP time carries the publisher's timestamps, which ffmpeg took from
// the wall clock. As the gaps between marks vary, only the true pairing keeps that offset over
// several frames, so a latency longer than a gap, noise frames lost at startup or mid-stream and
// large frames that are not noise do not shift the pairing. The offset is found again ("anchor")
// where it changes, as when an ingress re-bases timestamps after a stall.
func MatchLatency(marks []time.Time, frames []FrameArrival) []time.Duration {
	out := make([]time.Duration, len(marks))
	for i := range out {
		out[i] = -1
	}
	if len(marks) == 0 {
		return out
	}
	m := matcher{marks: marks, noise: noiseFrames(frames)}
	last, anchored := -1, false // last mark paired; offset known
	var offset time.Duration
	for j, f := range m.noise {
		i := -1
		if anchored {
			i = m.find(f, offset, last)
		}
		if i < 0 { // not where the offset says: a new offset, or a large frame that is not noise
			i = m.anchor(j, last)
		}
		if i < 0 {
			continue
		}
		out[i], last, offset, anchored = f.at.Sub(marks[i]), i, m.offset(f, i), true
	}
	return out
}

// noiseFrame is a frame over the size threshold, with its RTP time since the first frame.
type noiseFrame struct {
	at  time.Time
	rtp time.Duration
}

// noiseFrames picks the noise frames, unwrapping RTP time across all frames.
func noiseFrames(frames []FrameArrival) []noiseFrame {
	big := bigFrameBytes(frames)
	var out []noiseFrame
	var ticks int64
	for k, f := range frames {
		if k > 0 {
			ticks += int64(int32(f.RTPTime - frames[k-1].RTPTime))
		}
		if f.Bytes > big {
			out = append(out, noiseFrame{at: f.At, rtp: time.Duration(ticks) * time.Second / videoClockRate})
		}
	}
	return out
}

type matcher struct {
	marks []time.Time
	noise []noiseFrame
}

// offset is f's RTP time less mark i's time since the first mark.
func (m *matcher) offset(f noiseFrame, i int) time.Duration {
	return f.rtp - m.marks[i].Sub(m.marks[0])
}

// find returns the mark after mark `after` that f answers at offset, or -1.
func (m *matcher) find(f noiseFrame, offset time.Duration, after int) int {
	best, bestDev := -1, offsetTolerance
	for i := after + 1; i < len(m.marks) && m.marks[i].Before(f.at); i++ {
		if f.at.Sub(m.marks[i]) > latencyWindow {
			continue
		}
		if dev := (m.offset(f, i) - offset).Abs(); dev < bestDev {
			best, bestDev = i, dev
		}
	}
	return best
}

// anchor returns the mark that noise frame j answers judging by the frames after it: of the marks
// j could answer, the one whose offset most of them agree with (the earliest, so the longer
// latency, on a tie). -1 unless a majority agrees: a wrong offset still finds some frame near
// some mark (marks are ~500 ms apart, the tolerance ±50 ms), a large frame that is not noise too.
func (m *matcher) anchor(j, after int) int {
	f := m.noise[j]
	voters := min(anchorVoters, len(m.noise)-j-1)
	best, bestVotes := -1, voters/2
	for i := after + 1; i < len(m.marks) && m.marks[i].Before(f.at); i++ {
		if f.at.Sub(m.marks[i]) > latencyWindow {
			continue
		}
		offset, votes, prev := m.offset(f, i), 0, i
		for _, g := range m.noise[j+1 : min(j+1+anchorVoters, len(m.noise))] {
			if k := m.find(g, offset, prev); k >= 0 {
				votes, prev = votes+1, k
			}
		}
		if votes > bestVotes {
			best, bestVotes = i, votes
		}
	}
	return best
}

// bigFrameBytes is the size a noise frame exceeds: 8× the median frame (grey P-frames), and also
// 1/8 of the 99th percentile (a noise frame: 2 of every fps frames) so that grey keyframes, which
// can be 8× a grey P-frame too, do not count.
func bigFrameBytes(frames []FrameArrival) int {
	if len(frames) == 0 {
		return 0
	}
	sizes := make([]int, len(frames))
	for i, f := range frames {
		sizes[i] = f.Bytes
	}
	slices.Sort(sizes)
	return max(8*sizes[len(sizes)/2], sizes[len(sizes)*99/100]/8)
}
