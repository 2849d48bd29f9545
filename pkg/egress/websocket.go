package egress

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/pipeline"
	"github.com/mediaworker/mediaworker/pkg/sink"
	"github.com/mediaworker/mediaworker/pkg/source"
)

// runWebSocket decodes an audio track to PCM (S16LE, 48 kHz, stereo) and streams it to rawURL in
// binary frames, with {"muted":bool} text frames when the publisher mutes or unmutes — what the
// official egress sends, for transcription services.
func (rec *recording) runWebSocket(ctx context.Context, frames <-chan source.Frame, muted <-chan bool, rawURL string) error {
	if ti := rec.track.Info(); ti.Kind != "audio" {
		return psrpc.NewErrorf(psrpc.InvalidArgument, "websocket_url takes an audio track; %s is %s", ti.TrackID, ti.Kind)
	}
	ws, err := sink.DialWebSocket(ctx, rawURL)
	if err != nil {
		return err
	}
	defer ws.Close()
	var (
		mu      sync.Mutex
		sendErr error
		sent    int64
	)
	dec, err := pipeline.NewOpusDecoder(func(pcm []byte) {
		mu.Lock()
		defer mu.Unlock()
		if sendErr != nil {
			return
		}
		if sendErr = ws.WriteAudio(pcm); sendErr == nil {
			sent += int64(len(pcm))
		}
	})
	if err != nil {
		return err
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return sendErr
	}
	reason, loopErr := rec.stream(ctx, frames, muted, ws, dec, failed)
	closeErr := dec.Close()
	if err := errors.Join(loopErr, failed()); err != nil {
		return fmt.Errorf("%w (the receiver got %d bytes of PCM first)", err, sent)
	}
	if closeErr != nil {
		rec.log.Warn("audio decoder did not close cleanly", "error", closeErr)
	}
	if rec.frames == 0 && rec.stopped {
		rec.info.SetAborted("Stop called before any media was sent")
		return nil
	}
	rec.info.SetEndReason(reason)
	rec.info.SetComplete()
	rec.log.Info("egress complete", "pcm_bytes", sent, "media_seconds", rec.lastPTS.Seconds(), "reason", reason)
	return nil
}

// stream feeds frames to the decoder and mute changes to the socket until the track ends, a stop
// arrives or the socket fails; it returns the end reason.
func (rec *recording) stream(ctx context.Context, frames <-chan source.Frame, muted <-chan bool, ws *sink.WebSocket,
	dec *pipeline.OpusDecoder, failed func() error) (string, error) {
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case f := <-frames:
			if err := dec.Push(f.Data, f.PTS); err != nil {
				return livekit.EndReasonFailure, err
			}
			rec.counted(f)
		case m := <-muted:
			if err := ws.WriteMuted(m); err != nil {
				return livekit.EndReasonFailure, err
			}
		case <-check.C:
			if err := failed(); err != nil {
				return livekit.EndReasonFailure, err
			}
		case <-rec.track.Done():
			return livekit.EndReasonSrcClosed + ": " + rec.track.Reason(), nil
		case <-rec.env.Stop:
			rec.stopped = true
			return livekit.EndReasonAPI, nil
		case <-ctx.Done():
			return livekit.EndReasonFailure, ctx.Err()
		}
	}
}
