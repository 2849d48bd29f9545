package egress

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
	"github.com/mediaworker/mediaworker/pkg/source"
)

// parseLayout splits a layout name ("grid", "speaker-light", "single-speaker-dark", "") into the
// composer's layout and the background colour (0xAARRGGBB); ok is false for unknown names.
func parseLayout(name string) (layout string, background uint32, ok bool) {
	background = 0xFF000000
	switch {
	case strings.HasSuffix(name, "-light"):
		name, background = strings.TrimSuffix(name, "-light"), 0xFFF2F2F2
	case strings.HasSuffix(name, "-dark"):
		name, background = strings.TrimSuffix(name, "-dark"), 0xFF1A1A1A
	}
	switch name {
	case "", pipeline.LayoutGrid:
		return pipeline.LayoutGrid, background, true
	case pipeline.LayoutSpeaker, pipeline.LayoutSingleSpeaker:
		return name, background, true
	}
	return "", 0, false
}

// compositeLayoutSupported says whether the layout can be composed natively.
func compositeLayoutSupported(layout string) bool {
	_, _, ok := parseLayout(layout)
	return ok
}

// runRoomComposite composes every participant's video in a grid and mixes all audio, natively
// (no browser), into one file, until the room closes or the egress is stopped.
func (rec *recording) runRoomComposite(ctx context.Context) error {
	q := rec.req.Job.GetRoomComposite()
	enc, err := inspectEncoded(q, q.GetAudioOnly())
	if err != nil {
		return err
	}
	if err := rec.checkStorage(ctx); err != nil {
		return err
	}
	container := ""
	vars := FileVars{RoomName: rec.req.RoomName, RoomID: rec.info.RoomId, Time: time.Now(),
		PublisherIdentity: rec.req.Raw.GetEgress().GetMedia().GetParticipantVideo().GetIdentity()}
	if files := encodedFiles(q); len(files) > 0 {
		var ext string
		container, ext = containerOf(resolvedFileType(files[0], q.GetAudioOnly()))
		rec.storeKey = OutputPath(rec.file.GetFilepath(), vars, "{room_name}-{time}", ext)
		if err := rec.placeOutput(); err != nil {
			return err
		}
	}
	layout, background, _ := parseLayout(q.GetLayout())
	taps, keyint, err := rec.startTapped(ctx, q, encodedOutputs{video: !q.GetAudioOnly(), audio: !q.GetVideoOnly(),
		audioRate: int(enc.AudioFrequency), audioKbps: int(enc.AudioKbps), framerate: int(enc.Framerate)}, vars)
	if err != nil {
		return err
	}
	plan := pipeline.ComposePlan{Width: int(enc.Width), Height: int(enc.Height), Framerate: int(enc.Framerate),
		VideoKbps: int(enc.VideoKbps), Profile: profile(enc.VideoCodec), KeyframeEvery: keyframeEvery(enc),
		Layout: layout, Background: background, AudioCodec: audioCodecName(enc.AudioCodec), AudioKbps: int(enc.AudioKbps),
		AudioRate: int(enc.AudioFrequency), AudioOnly: q.GetAudioOnly(), VideoOnly: q.GetVideoOnly(), Container: container, Output: rec.workPath,
		Taps: taps}
	if keyint > 0 {
		plan.KeyframeEvery, plan.FixedGOP = keyint, true
	}
	if !plan.AudioOnly {
		if plan.Images, err = rec.startImages(ctx, q, plan.Width, plan.Height, vars); err != nil {
			rec.closeTapped(ctx)
			return err
		}
	}
	if imagesOnly(q) {
		plan.VideoOnly = true // stills only: the audio goes nowhere
	}
	comp, err := pipeline.NewComposer(plan)
	if err != nil {
		rec.closeTapped(ctx)
		return err
	}
	// A v2 MediaSource with audio routes runs here too: its selection picks the tracks.
	var sel *mediaSelection
	if m := rec.req.Raw.GetEgress().GetMedia(); m != nil {
		if sel, err = newMediaSelection(m); err != nil {
			comp.Close()
			rec.closeTapped(ctx)
			return err
		}
		rec.log.Info("composing a media source", "file", rec.workPath, "streams", rec.streams.count(), "hls", rec.segments != nil, "selection", sel.String())
	} else {
		rec.log.Info("composing", "file", rec.workPath, "streams", rec.streams.count(), "hls", rec.segments != nil, "layout", layout)
	}
	mix := &mixer{mode: q.GetAudioMixing()}
	conf := rec.env.Conf
	token, err := rec.token()
	if err != nil {
		comp.Close()
		rec.closeTapped(ctx)
		return err
	}
	params := source.RoomParams{WsURL: conf.WsURL, Token: token, Log: rec.log,
		Audio: !plan.VideoOnly, Video: !q.GetAudioOnly(),
		OnTrack: func(t source.TrackMeta) bool {
			if t.Kind == "audio" {
				if sel != nil {
					pan, take := sel.audio(t)
					return take && comp.AddAudio(t.ID, pan) == nil
				}
				return comp.AddAudio(t.ID, mix.pan(t.ParticipantKind == livekit.ParticipantInfo_AGENT)) == nil
			}
			take, preferred := true, false
			if sel != nil {
				take, preferred = sel.video(t)
			}
			if !take {
				return false
			}
			c, err := codecOf(t.Mime)
			if err == nil {
				err = comp.AddVideo(t.ID, string(c))
			}
			if err != nil {
				rec.log.Warn("track left out of the composite", "track_id", t.ID, "error", err)
				return false
			}
			if preferred {
				comp.SetSpeaker(t.ID) // single-speaker layout: the media source's video shows alone
			}
			return true
		},
		OnFrame: func(id string, f source.Frame) { _ = comp.Push(id, f.Data) },
		OnGone:  comp.Remove,
		OnMute:  comp.SetMuted,
		OnSpeaker: func(id string) {
			rec.log.Debug("active speaker", "video_track_id", id)
			comp.SetSpeaker(id)
		},
		OnOwnMetadata: func(md string) {
			// UpdateLayout: livekit-server sets the recorder's metadata to {"layout": "…"}.
			var m struct {
				Layout string `json:"layout"`
			}
			if json.Unmarshal([]byte(md), &m) != nil || m.Layout == "" {
				return
			}
			if l, _, ok := parseLayout(m.Layout); ok {
				rec.log.Info("layout updated", "layout", m.Layout)
				comp.SetLayout(l)
			} else {
				rec.log.Warn("UpdateLayout to an unknown layout ignored", "layout", m.Layout)
			}
		},
	}
	if sel != nil {
		// The media source shows its one video, whoever speaks; it has no layout to update. It
		// ends with its video as participant and track composite egresses do.
		params.OnSpeaker, params.OnOwnMetadata = nil, func(string) {}
		params.EndOnLeave, params.EndOnUnpublish = sel.videoIdentity, sel.videoTrack
	}
	room, err := source.SubscribeRoom(ctx, params)
	if err != nil {
		comp.Close()
		rec.closeTapped(ctx)
		return err
	}
	defer room.Close()
	comp.OnTileSizes(func(id string, s pipeline.TileSize) { room.SetVideoSize(id, s.W, s.H) })
	comp.OnDecodedSize(room.ReceivedVideoSize)
	defer rec.dropJournal()
	// The canvas is recorded from the start, participants or not: the egress is ACTIVE now.
	start := time.Now()
	rec.counted(source.Frame{})
	reason, err := rec.compose(ctx, room, comp.Failed(), start)
	endAt := time.Now()
	room.Close()
	closeErr := rec.drainErr(comp.Close(), endAt)
	return rec.finish(ctx, reason, errors.Join(err, closeErr, rec.closeTapped(ctx)))
}

// compose waits for the end while keeping the journal and duration current; a pipeline error
// (failed) ends it at once.
func (rec *recording) compose(ctx context.Context, room *source.Room, failed <-chan struct{}, start time.Time) (string, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-rec.streamsChanged():
			if reason, err := rec.onStreamsChanged(); reason != "" {
				rec.lastPTS = time.Since(start)
				return reason, err
			}
		case u := <-rec.env.Update:
			if reason := rec.updateStream(u); reason != "" {
				rec.lastPTS = time.Since(start)
				return reason, nil
			}
		case <-tick.C:
			rec.lastPTS = time.Since(start)
			rec.statFile()
			if rec.overLimit() {
				rec.limited = true
				return livekit.EndReasonLimitReached, nil
			}
			if int(rec.lastPTS.Seconds())%5 == 0 {
				_ = rec.saveJournal()
			}
			if int(rec.lastPTS.Seconds())%30 == 0 {
				rec.logProgress()
			}
		case <-failed:
			rec.lastPTS = time.Since(start)
			rec.broke = true
			return livekit.EndReasonFailure, nil // Close returns the pipeline's error
		case <-room.Done():
			rec.lastPTS = time.Since(start)
			return livekit.EndReasonSrcClosed + ": " + room.Reason(), nil
		case <-rec.env.Stop:
			rec.lastPTS = time.Since(start)
			rec.stopped = true
			return livekit.EndReasonAPI, nil
		case <-ctx.Done():
			return livekit.EndReasonFailure, ctx.Err()
		}
	}
}

// containerOf maps a file type to the transcoder's container and the file extension.
func containerOf(t livekit.EncodedFileType) (string, string) {
	switch t {
	case livekit.EncodedFileType_OGG:
		return "ogg", ".ogg"
	case livekit.EncodedFileType_MP3:
		return "mp3", ".mp3"
	}
	return "mp4", ".mp4"
}

func audioCodecName(c livekit.AudioCodec) string {
	if n := strings.ToLower(strings.TrimPrefix(c.String(), "AC_")); n == "opus" || n == "mp3" {
		return n
	}
	return "aac"
}

func keyframeEvery(e *Encoding) int {
	if e.KeyFrameInterval > 0 {
		return int(e.KeyFrameInterval * float64(e.Framerate))
	}
	return 0
}

// mixer places each audio track in the stereo field per audio_mixing: DEFAULT_MIXING centres all;
// DUAL_CHANNEL_AGENT puts agents left and everyone else right; DUAL_CHANNEL_ALTERNATE alternates
// left and right in the order tracks arrive.
type mixer struct {
	mode livekit.AudioMixing
	mu   sync.Mutex // guards n
	n    int        // tracks placed so far (ALTERNATE)
}

func (m *mixer) pan(agent bool) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.mode {
	case livekit.AudioMixing_DUAL_CHANNEL_AGENT:
		if agent {
			return -1
		}
		return 1
	case livekit.AudioMixing_DUAL_CHANNEL_ALTERNATE:
		m.n++
		if m.n%2 == 1 {
			return -1
		}
		return 1
	}
	return 0
}
