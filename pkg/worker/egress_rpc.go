package worker

import (
	"context"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"

	"github.com/mediaworker/mediaworker/pkg/egress"
)

// StartEgressAffinity is this worker's bid for a job; below zero means no claim.
//
// livekit-server grants the first bid of 1 at once and otherwise waits 500 ms to pick the best,
// so every worker with room bids 1 (no 500 ms on the start path) and a busier worker bids later:
// the least loaded worker's claim arrives first and wins. Spreading jobs keeps what one crash
// takes down small; the delay is at most claimDelayMax.
func (s *Service) StartEgressAffinity(ctx context.Context, req *rpc.StartEgressRequest) float32 {
	a := s.affinity(ctx, req)
	s.log.Debug("bid for egress", "egress_id", req.GetEgressId(), "affinity", a)
	return a
}

func (s *Service) affinity(ctx context.Context, req *rpc.StartEgressRequest) float32 {
	r, err := egress.Inspect(req)
	if err != nil && r == nil {
		return -1
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return -1
	}
	if err != nil {
		// Not built yet: still claim (weakly, so a worker that has it wins) to answer a clear
		// Unimplemented at once rather than leaving the caller to time out on "no response".
		return 0.01
	}
	if !s.cap.canAccept(s.costOf(r)) {
		return -1
	}
	if n := s.jobCount(); n > 0 {
		delay := claimDelayBusy + time.Duration(float64(claimDelayMax-claimDelayBusy)*s.cap.loadFraction())
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	return 1
}

// A busy worker's claim waits claimDelayBusy plus up to claimDelayMax at full load.
const (
	claimDelayBusy = 10 * time.Millisecond
	claimDelayMax  = 60 * time.Millisecond
)

// StartEgress validates, reserves capacity, launches the job process and registers the egress with
// livekit-server (IOInfo.CreateEgress) before returning its STARTING info.
func (s *Service) StartEgress(ctx context.Context, req *rpc.StartEgressRequest) (*livekit.EgressInfo, error) {
	log := s.log.With("egress_id", req.GetEgressId(), "room", req.GetRoomId())
	r, err := egress.Inspect(req)
	if err != nil {
		log.Warn("egress request refused", "error", err)
		s.metrics.refused(r, err)
		return nil, err
	}
	log = log.With("room_name", r.RoomName, "kind", r.Kind)
	j, err := s.admit(r)
	if err != nil {
		log.Warn("egress request refused", "error", err)
		s.metrics.refused(r, err)
		return nil, err
	}
	if err := s.handlerSrv.RegisterStopEgressTopic(req.EgressId); err != nil {
		return nil, s.abandon(j, psrpc.NewError(psrpc.Internal, err))
	}
	_ = s.handlerSrv.RegisterUpdateStreamTopic(req.EgressId)
	_ = s.handlerSrv.RegisterUpdateEgressTopic(req.EgressId)

	if err := j.start(s.exe, s.configBody, s.onJobExit); err != nil {
		return nil, s.abandon(j, psrpc.NewError(psrpc.Internal, err))
	}
	info := j.snapshot()
	cctx, cancel := context.WithTimeout(ctx, s.conf.Timeouts.IOCreate)
	defer cancel()
	if _, err := s.io.CreateEgress(cctx, info); err != nil {
		log.Error("livekit-server did not record the egress (IOInfo.CreateEgress); stopping the job", "error", err)
		j.rep.discard() // the server has no record: a later FAILED would only create a phantom one
		j.kill()
		return nil, psrpc.NewErrorf(psrpc.Unavailable, "could not register egress with livekit-server: %v", err)
	}
	j.rep.created()
	log.Info("egress started")
	return info, nil
}

// admit checks for duplicates and capacity and records the job, atomically.
func (s *Service) admit(r *egress.Request) (*job, error) {
	id := r.Raw.EgressId
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return nil, psrpc.NewErrorf(psrpc.Unavailable, "worker is shutting down; retry and another worker will take it")
	}
	if _, dup := s.jobs[id]; dup {
		return nil, psrpc.NewErrorf(psrpc.AlreadyExists, "egress %s already exists", id)
	}
	cost := s.costOf(r)
	if err := s.cap.reserve(id, cost); err != nil {
		return nil, psrpc.NewError(psrpc.ResourceExhausted, err)
	}
	jl := s.log.With("egress_id", id, "room_name", r.RoomName, "kind", r.Kind)
	j := &job{req: r, cost: cost, log: jl, stopGrace: s.conf.Timeouts.StopGrace, exited: make(chan struct{}), streams: egress.NewStreamURLs(r),
		info: egress.NewInfo(r, time.Now()), rep: newReporter(s.io, s.conf.Timeouts.IOUpdate, jl)}
	s.jobs[id] = j
	s.reports.Add(1)
	go func() { defer s.reports.Done(); j.rep.wait(context.Background()) }()
	s.metrics.started(r.Kind)
	return j, nil
}

// abandon undoes admit for a job whose process never started; the server has no record of it.
func (s *Service) abandon(j *job, err error) error {
	s.forget(j)
	j.rep.discard()
	return err
}

func (s *Service) onJobExit(j *job) {
	info := j.snapshot()
	s.metrics.ended(j.req.Kind, info)
	s.forget(j)
}

func (s *Service) forget(j *job) {
	id := j.req.Raw.EgressId
	s.handlerSrv.DeregisterStopEgressTopic(id)
	s.handlerSrv.DeregisterUpdateStreamTopic(id)
	s.handlerSrv.DeregisterUpdateEgressTopic(id)
	s.mu.Lock()
	delete(s.jobs, id)
	s.mu.Unlock()
	s.cap.release(id)
}

// ListActiveEgress answers with the egresses running here (the OSS server never calls it; tools may).
func (s *Service) ListActiveEgress(context.Context, *rpc.ListActiveEgressRequest) (*rpc.ListActiveEgressResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &rpc.ListActiveEgressResponse{}
	for id := range s.jobs {
		resp.EgressIds = append(resp.EgressIds, id)
	}
	return resp, nil
}

func (s *Service) lookup(id string) (*job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return nil, psrpc.NewErrorf(psrpc.NotFound, "egress %s is not running on this worker", id)
	}
	return j, nil
}

// egressHandler serves the per-egress topics (topic = egress_id).
type egressHandler struct{ s *Service }

// StopEgress asks the job to finish; the answer is the info with status ENDING.
func (h *egressHandler) StopEgress(_ context.Context, req *livekit.StopEgressRequest) (*livekit.EgressInfo, error) {
	j, err := h.s.lookup(req.EgressId)
	if err != nil {
		return nil, err
	}
	j.log.Info("stop requested (StopEgress)")
	return j.stop(), nil
}

// UpdateStream adds and removes stream destinations of a running egress.
func (h *egressHandler) UpdateStream(_ context.Context, req *livekit.UpdateStreamRequest) (*livekit.EgressInfo, error) {
	j, err := h.s.lookup(req.EgressId)
	if err != nil {
		return nil, err
	}
	info, err := j.updateStream(req)
	if err != nil {
		j.log.Warn("UpdateStream refused", "error", err)
		return nil, err
	}
	j.log.Info("UpdateStream applied", "added", len(req.AddOutputUrls), "removed", len(req.RemoveOutputUrls))
	return info, nil
}

// UpdateEgress is in the pinned protocol's interface; livekit-server never calls it.
func (h *egressHandler) UpdateEgress(context.Context, *livekit.UpdateEgressRequest) (*livekit.EgressInfo, error) {
	return nil, psrpc.NewErrorf(psrpc.Unimplemented, "UpdateEgress is not implemented by mediaworker yet")
}
