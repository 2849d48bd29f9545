// Package worker is the service livekit-server dispatches to over psrpc: it claims egress jobs by
// spare capacity, runs each in its own process, reports status to IOInfo, and serves health and metrics.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"github.com/redis/go-redis/v9"

	"github.com/mediaworker/mediaworker/pkg/config"
	"github.com/mediaworker/mediaworker/pkg/egress"
)

// Service holds the RPC servers, the running jobs and the admission model.
// Lock order: Service.mu, then job.mu.
type Service struct {
	conf       *config.Config
	configBody []byte
	exe        string
	log        *slog.Logger
	metrics    *metrics

	rc         redis.UniversalClient
	io         rpc.IOInfoClient
	egressSrv  rpc.EgressInternalServer
	handlerSrv rpc.EgressHandlerServer
	ingress    *ingressService

	cap    *capacity
	cancel context.CancelFunc

	mu       sync.Mutex // guards jobs, draining
	jobs     map[string]*job
	draining bool
	reports  sync.WaitGroup // reporters still delivering a terminal status
}

// New connects to Redis and prepares the servers; nothing is claimed until Start.
// exe is the binary started with `run-job` for each job.
func New(conf *config.Config, exe string, log *slog.Logger) (*Service, error) {
	body, err := conf.Marshal()
	if err != nil {
		return nil, err
	}
	s := &Service{conf: conf, configBody: body, exe: exe, log: log, jobs: map[string]*job{}}
	s.cap = newCapacity(config.CPUs(), conf.Capacity.MaxCPUUtilization, conf.Capacity.MaxJobs)
	s.metrics = newMetrics(s)
	s.rc = redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{conf.Redis.Address}, Username: conf.Redis.Username, Password: conf.Redis.Password, DB: conf.Redis.DB,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.rc.Ping(ctx).Err(); err != nil {
		s.rc.Close()
		return nil, fmt.Errorf("connect to redis at %s (redis.address): %w", conf.Redis.Address, err)
	}
	bus := psrpc.NewRedisMessageBus(s.rc)
	if s.io, err = rpc.NewIOInfoClient(bus); err != nil {
		return nil, fmt.Errorf("io client: %w", err)
	}
	if s.egressSrv, err = rpc.NewEgressInternalServer(s, bus); err != nil {
		return nil, fmt.Errorf("egress server: %w", err)
	}
	if s.handlerSrv, err = rpc.NewEgressHandlerServer(&egressHandler{s}, bus); err != nil {
		return nil, fmt.Errorf("egress handler server: %w", err)
	}
	if s.ingress, err = newIngressService(s, bus); err != nil {
		return nil, fmt.Errorf("ingress servers: %w", err)
	}
	return s, nil
}

// Start begins claiming jobs. The StartEgress topic is "" because livekit-server always uses it.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(ctx)
	go s.measure(ctx, 2*time.Second)
	if err := s.egressSrv.RegisterListActiveEgressTopic(""); err != nil {
		return fmt.Errorf("register ListActiveEgress: %w", err)
	}
	if err := s.egressSrv.RegisterStartEgressTopic(""); err != nil {
		return fmt.Errorf("register StartEgress: %w", err)
	}
	if err := s.ingress.listen(); err != nil {
		return err
	}
	s.log.Info("worker ready: claiming egress and ingress jobs", "cpus", config.CPUs(), "budget_cores", s.cap.total)
	s.recoverKilledJobs(ctx)
	return nil
}

// recoverKilledJobs stores the partial recordings of jobs that were killed with their worker
// (journals left in tmp_dir) and ends their egresses FAILED with those files.
func (s *Service) recoverKilledJobs(ctx context.Context) {
	for _, id := range egress.Journals(s.conf.TmpDir) {
		log := s.log.With("egress_id", id)
		s.reports.Add(1)
		go func() {
			defer s.reports.Done()
			info, err := egress.Recover(ctx, s.conf, log, id)
			switch {
			case errors.Is(err, egress.ErrStillRunning):
				log.Info("a job from before the restart is still recording; it reports for itself")
				return
			case err != nil:
				log.Error("could not recover a killed job's recording", "error", err)
				return
			}
			log.Warn("recovered the recording of a job killed with its worker", "status", info.Status.String(), "error", info.Error)
			rep := newReporter(s.io, s.conf.Timeouts.IOUpdate, log)
			rep.created()
			rep.send(info)
			rep.wait(ctx)
		}()
	}
}

// measure samples each job process's CPU use into the admission model until ctx ends.
func (s *Service) measure(ctx context.Context, interval time.Duration) {
	last := map[int]float64{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seen := map[int]float64{}
		for _, v := range s.jobInfos() {
			cpu, err := processCPU(v.PID)
			if err != nil || v.PID == 0 {
				continue
			}
			if prev, ok := last[v.PID]; ok {
				s.cap.observe(v.EgressID+v.IngressID, (cpu-prev)/interval.Seconds())
			}
			seen[v.PID] = cpu
		}
		last = seen
	}
}

// Drain stops claiming and waits for running jobs to end on their own, up to grace; then stops them.
func (s *Service) Drain(ctx context.Context, grace time.Duration) {
	s.stopClaiming()
	s.log.Info("draining: no new jobs; waiting for running jobs to finish", "jobs", s.jobCount(), "grace", grace)
	wctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if s.waitJobs(wctx) != nil {
		s.log.Warn("drain grace period over or interrupted; stopping remaining jobs", "jobs", s.jobCount())
	}
	// Stopping must still be waited for when the drain itself was cut short.
	s.StopAll(context.WithoutCancel(ctx))
}

// StopAll ends every job cleanly (EOS, files finalised and uploaded) and waits for their final status.
func (s *Service) StopAll(ctx context.Context) {
	s.stopClaiming()
	s.mu.Lock()
	jobs := make([]*job, 0, len(s.jobs))
	for _, j := range s.jobs {
		jobs = append(jobs, j)
	}
	s.mu.Unlock()
	for _, j := range jobs {
		j.stop()
	}
	s.ingress.stopAll()
	wctx, cancel := context.WithTimeout(ctx, s.conf.Timeouts.StopGrace+10*time.Second)
	defer cancel()
	if err := s.waitJobs(wctx); err != nil {
		s.log.Error("jobs still running at shutdown", "jobs", s.jobCount())
	}
	done := make(chan struct{})
	go func() { s.reports.Wait(); close(done) }()
	select {
	case <-done:
	case <-wctx.Done():
	}
}

// Close releases the servers and Redis; call after Drain or StopAll.
func (s *Service) Close() {
	s.egressSrv.Kill()
	s.handlerSrv.Kill()
	s.ingress.close()
	s.io.Close()
	if s.cancel != nil {
		s.cancel()
	}
	s.rc.Close()
}

func (s *Service) stopClaiming() {
	s.mu.Lock()
	was := s.draining
	s.draining = true
	s.mu.Unlock()
	if !was {
		s.egressSrv.DeregisterStartEgressTopic("")
		s.ingress.stopListening()
	}
}

func (s *Service) waitJobs(ctx context.Context) error {
	for {
		if s.jobCount() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// jobCount is the running egress jobs and ingress sessions.
func (s *Service) jobCount() int {
	s.mu.Lock()
	n := len(s.jobs)
	s.mu.Unlock()
	return n + s.ingress.count()
}

// Ready is false while draining or when not even the cheapest job fits.
func (s *Service) Ready() bool {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	return !draining && s.cap.canAccept(s.conf.Capacity.TrackCPUCost)
}

func (s *Service) costOf(r *egress.Request) float64 {
	if r.AudioOnly {
		return s.conf.Capacity.AudioCPUCost
	}
	switch r.Kind {
	case egress.KindParticipant, egress.KindTrackComposite:
		return s.conf.Capacity.TranscodeCPUCost
	case egress.KindRoomComposite:
		return s.conf.Capacity.CompositeCPUCost
	}
	return s.conf.Capacity.TrackCPUCost
}

// jobInfos lists running jobs for /jobs.
func (s *Service) jobInfos() []jobView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]jobView, 0, len(s.jobs))
	for id, j := range s.jobs {
		info := j.snapshot()
		out = append(out, jobView{EgressID: id, Kind: string(j.req.Kind), Room: j.req.RoomName, PID: j.processID(), Status: info.Status.String()})
	}
	for _, ss := range s.ingress.list() {
		out = append(out, jobView{IngressID: ss.info.IngressId, Kind: "ingress_" + ss.info.InputType.String(), Room: ss.info.RoomName,
			PID: ss.processID(), Status: ss.snapshot().Status.String()})
	}
	return out
}

type jobView struct {
	EgressID  string `json:"egress_id,omitempty"`
	IngressID string `json:"ingress_id,omitempty"`
	Kind      string `json:"kind"`
	Room      string `json:"room"`
	PID       int    `json:"pid"`
	Status    string `json:"status"`
}

var _ rpc.EgressInternalServerImpl = (*Service)(nil)
var _ rpc.EgressHandlerServerImpl = (*egressHandler)(nil)
