package egress

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
	"github.com/mediaworker/mediaworker/pkg/source"
)

// roomFrame is a frame from one of the participant's tracks and when it arrived.
type roomFrame struct {
	kind, trackID, mime string
	f                   source.Frame
	at                  time.Time
}

// selection is what a transcoding egress records, from its request.
type selection struct {
	req         encodedRequest
	identity    string
	screenShare bool
	trackIDs    []string
	audioOnly   bool
	defaultName string
}

func selectionOf(raw *rpc.StartEgressRequest) selection {
	if p := raw.GetParticipant(); p != nil {
		return selection{req: p, identity: p.GetIdentity(), screenShare: p.GetScreenShare(), defaultName: "{publisher_identity}-{time}"}
	}
	tc := raw.GetTrackComposite()
	sel := selection{req: tc, audioOnly: tc.GetVideoTrackId() == "", defaultName: "{room_name}-{time}"}
	for _, id := range []string{tc.GetAudioTrackId(), tc.GetVideoTrackId()} {
		if id != "" {
			sel.trackIDs = append(sel.trackIDs, id)
		}
	}
	return sel
}

// runTranscoded records a participant's camera (or screen share) and microphone, or a track
// composite's audio and video tracks, transcoded into one file with the requested encoding. Tracks
// share a timeline set by when each track's first frame arrived, so a track that starts late
// starts late in the file.
func (rec *recording) runTranscoded(ctx context.Context) error {
	sel := selectionOf(rec.req.Job)
	enc, err := inspectEncoded(sel.req, sel.audioOnly)
	if err != nil {
		return err
	}
	if err := rec.checkStorage(ctx); err != nil {
		return err
	}
	conf := rec.env.Conf
	token, err := rec.token()
	if err != nil {
		return err
	}
	frames := make(chan roomFrame, 4096)
	subCtx, cancel := rec.untilStop(ctx)
	defer cancel()
	sub, media, err := source.SubscribeParticipant(subCtx, source.ParticipantParams{
		WsURL: conf.WsURL, Token: token, Identity: sel.identity, ScreenShare: sel.screenShare, TrackIDs: sel.trackIDs,
		VideoSize: [2]int{int(enc.Width), int(enc.Height)},
		Wait:      conf.Timeouts.TrackWait, Log: rec.log,
		OnFrame: func(kind, id, mime string, f source.Frame) {
			frames <- roomFrame{kind: kind, trackID: id, mime: mime, f: f, at: time.Now()}
		},
	})
	if err != nil {
		if stopped(rec.env.Stop) {
			rec.info.SetAborted("Stop called before the participant was recording")
			return nil
		}
		if errors.Is(err, source.ErrTrackNotFound) {
			return psrpc.NewError(psrpc.NotFound, err)
		}
		return err
	}
	defer sub.Close()
	waitMic, waitCam := false, false
	switch {
	case imagesOnly(sel.req):
		media.Audio = false // stills only: the audio goes nowhere
	case sel.identity != "" && !media.Audio && media.VideoMime != "":
		// A participant without a microphone yet: record silence until one is published, so that
		// a late microphone is recorded (and every file has the audio track players expect).
		media.Audio, waitMic = true, true
		rec.log.Info("no microphone yet: recording silence until one is published")
	case sel.identity != "" && media.Audio && media.VideoMime == "":
		// Only a microphone yet: record black until a camera (or screen) is published.
		waitCam = true
	}
	tr, err := rec.openTranscoder(ctx, sel, media, enc, waitCam)
	if err != nil {
		return err
	}
	defer rec.dropJournal()
	reason, loopErr := rec.transcode(ctx, sub, frames, tr, media, waitMic)
	closeErr := rec.drainErr(tr.Close(), time.Now())
	if loopErr == nil {
		loopErr = closeErr
	}
	return rec.finish(ctx, reason, errors.Join(loopErr, rec.closeTapped(ctx)))
}

// openTranscoder starts the transcoder and the outputs it feeds. With waitCam (a participant with
// only a microphone so far) and a container that holds video, the picture is black until a camera
// is published.
func (rec *recording) openTranscoder(ctx context.Context, sel selection, media source.Media, enc *Encoding, waitCam bool) (*pipeline.Transcoder, error) {
	if sel.audioOnly {
		media.VideoMime = ""
	}
	container := ""
	vars := FileVars{RoomName: rec.req.RoomName, RoomID: rec.info.RoomId, PublisherIdentity: sel.identity, Time: time.Now()}
	if files := encodedFiles(sel.req); len(files) > 0 {
		var ext string
		container, ext = containerOf(resolvedFileType(files[0], sel.audioOnly))
		rec.storeKey = OutputPath(rec.file.GetFilepath(), vars, sel.defaultName, ext)
		if err := rec.placeOutput(); err != nil {
			return nil, err
		}
	}
	plan, err := transcodePlan(enc, media, container, rec.workPath)
	if err != nil {
		return nil, err
	}
	if waitCam && (container == "" || container == "mp4") {
		plan.LateVideo = true
		rec.log.Info("no camera yet: recording black until one is published")
	}
	hasVideo := plan.VideoIn != "" || plan.LateVideo
	taps, keyint, err := rec.startTapped(ctx, sel.req, encodedOutputs{video: hasVideo, audio: plan.AudioIn,
		audioRate: plan.AudioRate, audioKbps: plan.AudioKbps, framerate: plan.Framerate}, vars)
	if err != nil {
		return nil, err
	}
	plan.Taps = taps
	if keyint > 0 {
		plan.KeyframeEvery, plan.FixedGOP = keyint, true
	}
	if hasVideo {
		if plan.Images, err = rec.startImages(ctx, sel.req, plan.Width, plan.Height, vars); err != nil {
			rec.closeTapped(ctx)
			return nil, err
		}
	}

	rec.log.Info("recording", "file", rec.workPath, "streams", rec.streams.count(), "hls", rec.segments != nil, "video", plan.VideoIn, "late_video", plan.LateVideo, "audio", plan.AudioIn,
		"size", fmt.Sprintf("%dx%d@%d", plan.Width, plan.Height, plan.Framerate), "video_kbps", plan.VideoKbps)
	tr, err := pipeline.NewTranscoder(plan)
	if err != nil {
		rec.closeTapped(ctx)
	}
	return tr, err
}

func profile(c livekit.VideoCodec) string {
	switch c {
	case livekit.VideoCodec_H264_BASELINE:
		return "baseline"
	case livekit.VideoCodec_H264_HIGH:
		return "high"
	}
	return "main"
}

// syncTolerance is how far a track may drift from its sender-report time before it is moved back.
const syncTolerance = 20 * time.Millisecond

// transcode feeds frames on one timeline until the participant leaves, a stop arrives or a limit is
// hit. With waitMic, silence is fed as audio until the first real audio frame.
func (rec *recording) transcode(ctx context.Context, sub *source.Participant, frames <-chan roomFrame, tr *pipeline.Transcoder, media source.Media, waitMic bool) (string, error) {
	t0 := time.Now()
	var silence <-chan time.Time
	if waitMic {
		tick := time.NewTicker(pipeline.SilentOpusDuration)
		defer tick.Stop()
		silence = tick.C
	}
	offsets := map[string]time.Duration{} // per track: pipeline time minus RTP time
	var syncBase time.Time                // sender wall clock at pipeline time 0 (first sender report)
	last := map[string]time.Duration{}    // per kind: last pts pushed (appsrc timestamps must not go back)
	skipped := map[string]bool{}
	journalTick := time.NewTicker(5 * time.Second)
	defer journalTick.Stop()
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	for {
		select {
		case <-silence:
			pts := last["audio"] + pipeline.SilentOpusDuration
			if last["audio"] == 0 {
				pts = time.Since(t0)
			}
			if pts > time.Since(t0)+pipeline.SilentOpusDuration {
				continue // ahead of the clock (the ticker caught up after a stall)
			}
			if err := tr.PushAudio(pipeline.SilentOpus, pts); err != nil {
				return livekit.EndReasonFailure, err
			}
			last["audio"] = pts
		case rf := <-frames:
			if rf.kind == "audio" && silence != nil {
				silence = nil // the microphone arrived
				rec.log.Info("microphone published: recording it", "track_id", rf.trackID)
			}
			if rf.kind == "video" && media.VideoMime == "" && tr.WaitsForVideo() && !skipped["video"] {
				c, err := codecOf(rf.mime)
				if err == nil {
					err = tr.AddVideo(string(c))
				}
				if err != nil {
					skipped["video"] = true
					rec.log.Warn("the camera published after recording started cannot be recorded", "track_id", rf.trackID, "error", err)
					continue
				}
				media.VideoMime = rf.mime
				rec.log.Info("camera published: recording it", "track_id", rf.trackID, "mime", rf.mime)
			}
			if (rf.kind == "video" && media.VideoMime == "") || (rf.kind == "audio" && !media.Audio) {
				if !skipped[rf.kind] {
					skipped[rf.kind] = true
					rec.log.Warn("a "+rf.kind+" track published after recording started is not recorded", "track_id", rf.trackID)
				}
				continue
			}
			off, ok := offsets[rf.trackID]
			if !ok {
				off = rf.at.Sub(t0) - rf.f.PTS // until a sender report arrives: by arrival
				offsets[rf.trackID] = off
			}
			if !rf.f.Wall.IsZero() {
				// A/V sync from RTCP sender reports: a frame's pipeline time is its capture time
				// on the sender's clock. The first report fixes the clock where that frame already is.
				if syncBase.IsZero() {
					syncBase = rf.f.Wall.Add(-(off + rf.f.PTS))
				}
				if want := rf.f.Wall.Sub(syncBase) - rf.f.PTS; want-off > syncTolerance || off-want > syncTolerance {
					rec.log.Debug("track re-synced from a sender report", "track_id", rf.trackID, "shift", want-off)
					off = want
					offsets[rf.trackID] = off
				}
			}
			pts := max(off+rf.f.PTS, last[rf.kind]+time.Millisecond)
			last[rf.kind] = pts
			push := tr.PushAudio
			if rf.kind == "video" {
				push = tr.PushVideo
			}
			if err := push(rf.f.Data, pts); err != nil {
				return livekit.EndReasonFailure, err
			}
			if rec.frames == 0 {
				rec.firstPTS = pts
			}
			rec.counted(source.Frame{PTS: max(rec.lastPTS, pts-rec.firstPTS)})
			if rec.overLimit() {
				rec.limited = true
				return livekit.EndReasonLimitReached, nil
			}
			if rec.frames == 1 {
				_ = rec.saveJournal()
			}
		case <-journalTick.C:
			_ = rec.saveJournal()
			rec.statFile()
			if rec.overLimit() {
				rec.limited = true
				return livekit.EndReasonLimitReached, nil
			}
		case <-progress.C:
			rec.logProgress()
		case <-rec.streamsChanged():
			if reason, err := rec.onStreamsChanged(); reason != "" {
				return reason, err
			}
		case u := <-rec.env.Update:
			if reason := rec.updateStream(u); reason != "" {
				return reason, nil
			}
		case <-tr.Failed():
			rec.broke = true
			return livekit.EndReasonFailure, nil // Close returns the pipeline's error
		case <-sub.Done():
			return livekit.EndReasonSrcClosed + ": " + sub.Reason(), nil
		case <-rec.env.Stop:
			rec.stopped = true
			return livekit.EndReasonAPI, nil
		case <-ctx.Done():
			return livekit.EndReasonFailure, ctx.Err()
		}
	}
}

// drainErr keeps a pipeline error that came at the end (while draining after EOS, or as the
// sources went away: within a second of endAt, when the recording loop ended) from failing an
// egress that recorded: the outputs are written as they go (MP4 in 1 s fragments, segments,
// streams), so only what was still in flight is lost. It is logged as an error.
func (rec *recording) drainErr(err error, endAt time.Time) error {
	var pe *pipeline.Error
	atEnd := errors.Is(err, pipeline.ErrDrain) || (errors.As(err, &pe) && pe.At.After(endAt.Add(-time.Second)))
	if err == nil || rec.frames == 0 || !atEnd || rec.broke {
		return err
	}
	rec.log.Error("the pipeline failed while draining at the end; everything written before is kept", "error", err)
	return nil
}

// placeOutput decides where the file is written: the job's tmp dir when it will be uploaded,
// else its final place under local_output_dir.
func (rec *recording) placeOutput() error {
	if rec.dest.primary != nil {
		rec.workPath = filepath.Join(rec.env.Conf.TmpDir, rec.info.EgressId, filepath.Base(rec.storeKey))
	} else {
		rec.workPath = filepath.Join(rec.env.Conf.LocalOutputDir, filepath.FromSlash(rec.storeKey))
	}
	if err := os.MkdirAll(filepath.Dir(rec.workPath), 0o755); err != nil {
		return fmt.Errorf("create output directory (check local_output_dir / tmp_dir permissions): %w", err)
	}
	if _, err := os.Stat(rec.workPath); err == nil {
		return fmt.Errorf("output file %s already exists; use {time} or {utc} in the filepath", rec.workPath)
	}
	return nil
}

// finish stores the file and sets the terminal status for a recording that has ended.
func (rec *recording) finish(ctx context.Context, reason string, recErr error) error {
	if rec.frames == 0 {
		if rec.workPath != "" {
			_ = os.Remove(rec.workPath)
		}
		if rec.stopped {
			rec.info.SetAborted("Stop called before any media was recorded")
			return nil
		}
		return fmt.Errorf("nothing was recorded (%s)", strings.TrimPrefix(reason, livekit.EndReasonSrcClosed+": "))
	}
	var err error
	fi := &livekit.FileInfo{}
	rec.storeSegmentsManifest(ctx)
	if rec.file != nil {
		fi, err = rec.store(ctx)
		if fi != nil {
			rec.info.FileResults = []*livekit.FileInfo{fi}
			rec.info.Result = &livekit.EgressInfo_File{File: fi}
		}
	}
	if err = errors.Join(recErr, err); err != nil {
		return err
	}
	rec.info.SetEndReason(reason)
	if rec.limited {
		rec.info.SetLimitReached()
	} else {
		rec.info.SetComplete()
	}
	rec.log.Info("egress ended", "status", rec.info.Status.String(), "location", fi.Location, "bytes", fi.Size,
		"duration", time.Duration(rec.lastPTS).String(), "streams", len(rec.info.StreamResults), "reason", reason)
	return nil
}

// transcodePlan is the pipeline plan for an encoding and the media being recorded.
func transcodePlan(enc *Encoding, media source.Media, container, out string) (pipeline.TranscodePlan, error) {
	plan := pipeline.TranscodePlan{AudioIn: media.Audio, Width: int(enc.Width), Height: int(enc.Height), Framerate: int(enc.Framerate),
		VideoKbps: int(enc.VideoKbps), Profile: profile(enc.VideoCodec), KeyframeEvery: keyframeEvery(enc), AudioCodec: audioCodecName(enc.AudioCodec),
		AudioKbps: int(enc.AudioKbps), AudioRate: int(enc.AudioFrequency), Container: container, Output: out}
	if media.VideoMime != "" {
		c, err := codecOf(media.VideoMime)
		if err != nil {
			return plan, psrpc.NewError(psrpc.InvalidArgument, err)
		}
		plan.VideoIn = string(c)
	}
	return plan, nil
}
