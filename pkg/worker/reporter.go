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

// reporter sends one job's updates to IOInfo in order, retrying each until it lands. Updates
// queued while one is in flight are coalesced to the newest, because each carries the whole status.
// Nothing is sent before created() (an update landing before CreateEgress would suppress the
// egress_started webhook), and nothing after the first terminal status (each fires a *_ended webhook).
type reporter = statusReporter[*livekit.EgressInfo]

type statusReporter[T proto.Message] struct {
	update     func(context.Context, T) error
	isTerminal func(T) bool
	describe   func(T) string
	timeout    time.Duration
	log        *slog.Logger

	mu       sync.Mutex // guards pending, terminal
	pending  T
	has      bool
	terminal bool
	wake     chan struct{}
	ready    chan struct{}
	done     chan struct{}
	once     sync.Once
}

// newReporter reports an egress with IOInfo.UpdateEgress.
func newReporter(io egressIO, timeout time.Duration, log *slog.Logger) *reporter {
	return newStatusReporter(func(ctx context.Context, info *livekit.EgressInfo) error {
		_, err := io.UpdateEgress(ctx, info)
		return err
	}, func(info *livekit.EgressInfo) bool { return egress.IsTerminal(info.Status) },
		func(info *livekit.EgressInfo) string { return info.Status.String() }, timeout, log)
}

func newStatusReporter[T proto.Message](update func(context.Context, T) error, isTerminal func(T) bool, describe func(T) string,
	timeout time.Duration, log *slog.Logger) *statusReporter[T] {
	r := &statusReporter[T]{update: update, isTerminal: isTerminal, describe: describe, timeout: timeout, log: log,
		wake: make(chan struct{}, 1), ready: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// created releases the updates held back until IOInfo.CreateEgress (or CreateIngress) has returned.
func (r *statusReporter[T]) created() { r.once.Do(func() { close(r.ready) }) }

// discard drops everything queued and to come: for a job the server never recorded.
func (r *statusReporter[T]) discard() {
	r.mu.Lock()
	var zero T
	r.pending, r.has, r.terminal = zero, false, true
	r.mu.Unlock()
	r.created()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// send queues info; it returns false if a terminal update was already queued.
func (r *statusReporter[T]) send(info T) bool {
	r.mu.Lock()
	if r.terminal {
		r.mu.Unlock()
		return false
	}
	r.pending, r.has = proto.Clone(info).(T), true
	r.terminal = r.isTerminal(info)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return true
}

// wait blocks until the terminal update was delivered (or given up on) or ctx ends.
func (r *statusReporter[T]) wait(ctx context.Context) {
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

func (r *statusReporter[T]) run() {
	defer close(r.done)
	<-r.ready
	for range r.wake {
		r.mu.Lock()
		info, has, last := r.pending, r.has, r.terminal
		r.has = false
		r.mu.Unlock()
		if has {
			r.deliver(info)
		}
		if last {
			return
		}
	}
}

func (r *statusReporter[T]) deliver(info T) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.update(ctx, info)
		if err == nil {
			r.log.Debug("status reported", "status", r.describe(info))
			return
		}
		if ctx.Err() != nil {
			r.log.Error("giving up reporting status to livekit-server; check Redis and the server", "status", r.describe(info), "attempts", attempt, "error", err)
			return
		}
		r.log.Warn("reporting status failed, retrying", "status", r.describe(info), "attempt", attempt, "error", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
