package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/mediaworker/mediaworker/pkg/egress"
)

// egressIO is the part of livekit-server's IOInfo service a worker reports to.
type egressIO interface {
	CreateEgress(ctx context.Context, info *livekit.EgressInfo, opts ...psrpc.RequestOption) (*emptypb.Empty, error)
	UpdateEgress(ctx context.Context, info *livekit.EgressInfo, opts ...psrpc.RequestOption) (*emptypb.Empty, error)
}

// reporter sends one egress's updates to IOInfo.UpdateEgress in order, retrying each until it lands.
// Updates queued while one is in flight are coalesced to the newest, because each carries the whole
// info. Nothing is sent before created() (an update landing before CreateEgress would suppress the
// egress_started webhook), and nothing after the first terminal status (each fires egress_ended).
type reporter struct {
	io      egressIO
	timeout time.Duration
	log     *slog.Logger

	mu       sync.Mutex // guards pending, terminal
	pending  *livekit.EgressInfo
	terminal bool
	wake     chan struct{}
	ready    chan struct{}
	done     chan struct{}
	once     sync.Once
}

func newReporter(io egressIO, timeout time.Duration, log *slog.Logger) *reporter {
	r := &reporter{io: io, timeout: timeout, log: log, wake: make(chan struct{}, 1), ready: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// created releases the updates held back until IOInfo.CreateEgress has returned.
func (r *reporter) created() { r.once.Do(func() { close(r.ready) }) }

// discard drops everything queued and to come: for an egress the server never recorded.
func (r *reporter) discard() {
	r.mu.Lock()
	r.pending, r.terminal = nil, true
	r.mu.Unlock()
	r.created()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// send queues info; it returns false if a terminal update was already queued.
func (r *reporter) send(info *livekit.EgressInfo) bool {
	r.mu.Lock()
	if r.terminal {
		r.mu.Unlock()
		return false
	}
	r.pending = proto.Clone(info).(*livekit.EgressInfo)
	r.terminal = egress.IsTerminal(info.Status)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return true
}

// wait blocks until the terminal update was delivered (or given up on) or ctx ends.
func (r *reporter) wait(ctx context.Context) {
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

func (r *reporter) run() {
	defer close(r.done)
	<-r.ready
	for range r.wake {
		r.mu.Lock()
		info, last := r.pending, r.terminal
		r.pending = nil
		r.mu.Unlock()
		if info != nil {
			r.deliver(info)
		}
		if last {
			return
		}
	}
}

func (r *reporter) deliver(info *livekit.EgressInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := r.io.UpdateEgress(ctx, info)
		if err == nil {
			r.log.Debug("egress status reported", "status", info.Status.String())
			return
		}
		if ctx.Err() != nil {
			r.log.Error("giving up reporting egress status to livekit-server; check Redis and the server", "status", info.Status.String(), "attempts", attempt, "error", err)
			return
		}
		r.log.Warn("reporting egress status failed, retrying", "status", info.Status.String(), "attempt", attempt, "error", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
