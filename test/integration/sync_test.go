package integration

import (
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/test/stack"
)

// TestAVSync records a publisher whose video flashes white while its audio beeps, at the same
// instant every 2 s, and checks that the recording keeps each flash and beep within 100 ms. The
// publisher is an RTMP ingress (ffmpeg makes the flashes and beeps on one clock), recorded by a
// participant egress: both ends of the worker are in the measurement.
func TestAVSync(t *testing.T) {
	s := stack.New(t)
	w := s.StartWorker(t, "worker", "")
	info, err := s.Ingress().CreateIngress(ctx(t), &livekit.CreateIngressRequest{
		InputType: livekit.IngressInput_RTMP_INPUT, RoomName: "sync", ParticipantIdentity: "flasher",
	})
	if err != nil {
		t.Fatalf("CreateIngress: %v", err)
	}
	stack.Start(t, "ffmpeg-flash", nil, "ffmpeg", "-nostdin", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", "color=c=black:s=640x360:r=30,drawbox=color=white:t=fill:enable='between(mod(t,2),1,1.1)'",
		"-f", "lavfi", "-i", "aevalsrc='if(between(mod(t,2),1,1.1),0.5*sin(2*PI*1000*t),0)':s=48000:c=stereo",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-bf", "2", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ar", "48000", "-f", "flv", w.RTMPURL+"/"+info.StreamKey)
	waitIngressEvent(t, s, info.IngressId, "ingress_started", 1, 30*time.Second)
	eg, err := s.Egress().StartParticipantEgress(ctx(t), &livekit.ParticipantEgressRequest{RoomName: "sync", Identity: "flasher",
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "sync"}}})
	if err != nil {
		t.Fatalf("StartParticipantEgress: %v", err)
	}
	end := stopAfter(t, s, eg.EgressId, 10*time.Second)
	if end.Status != livekit.EgressStatus_EGRESS_COMPLETE || len(end.FileResults) != 1 {
		t.Fatalf("egress: %s %q", end.Status, end.Error)
	}
	path := end.FileResults[0].Location
	flashes, beeps := flashOnsets(t, path), beepOnsets(t, path)
	t.Logf("flashes at %v, beeps at %v", flashes, beeps)
	for _, line := range regexp.MustCompile(`\n`).Split(w.Output(), -1) {
		if regexp.MustCompile(`re-synced`).MatchString(line) {
			t.Log(line)
		}
	}
	pairs := 0
	for _, f := range flashes {
		nearest := math.Inf(1)
		for _, b := range beeps {
			if math.Abs(b-f) < math.Abs(nearest) {
				nearest = b - f
			}
		}
		if math.Abs(nearest) > 0.5 {
			continue // a flash whose beep fell outside the recording
		}
		pairs++
		if math.Abs(nearest) > 0.1 {
			t.Errorf("flash at %.3f s, beep %+.0f ms away (want within 100 ms)", f, nearest*1000)
		} else {
			t.Logf("flash at %.3f s: beep %+.0f ms", f, nearest*1000)
		}
	}
	if pairs < 3 {
		t.Fatalf("only %d flash/beep pairs in the recording", pairs)
	}
}

var (
	rePTS  = regexp.MustCompile(`pts_time:([0-9.]+)`)
	reYAVG = regexp.MustCompile(`lavfi\.signalstats\.YAVG=([0-9.]+)`)
	reSil  = regexp.MustCompile(`silence_end: ([0-9.]+)`)
)

// flashOnsets are the times of the first bright frame of each flash.
func flashOnsets(t *testing.T, path string) []float64 {
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-an", "-vf",
		"signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg signalstats: %v\n%s", err, out)
	}
	var onsets []float64
	pts, bright, first := -1.0, false, true
	for _, line := range regexp.MustCompile(`\n`).Split(string(out), -1) {
		if m := rePTS.FindStringSubmatch(line); m != nil {
			pts, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := reYAVG.FindStringSubmatch(line); m != nil {
			y, _ := strconv.ParseFloat(m[1], 64)
			// A file that starts bright shows no onset: the first decodable frame (often the
			// flash, where the publisher's encoder puts a keyframe) is held from 0 until the next.
			if y > 128 && !bright && !first {
				onsets = append(onsets, pts)
			}
			bright, first = y > 128, false
		}
	}
	return onsets
}

// beepOnsets are the times where silence ends.
func beepOnsets(t *testing.T, path string) []float64 {
	out, err := exec.Command("ffmpeg", "-v", "info", "-i", path, "-vn", "-af", "silencedetect=n=-30dB:d=0.3", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg silencedetect: %v\n%s", err, out)
	}
	var onsets []float64
	for _, m := range reSil.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		onsets = append(onsets, v)
	}
	return onsets
}
