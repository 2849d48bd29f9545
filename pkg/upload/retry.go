package upload

import (
	"context"
	"errors"
	"time"
)

// Retry shapes the retries of transient failures; permanent ones (ErrPermanent) are not retried.
type Retry struct {
	Attempts   int
	FirstDelay time.Duration
	MaxDelay   time.Duration
}

// DefaultRetry: 5 attempts, 200 ms doubling to 5 s — an unreachable store fails within ~10 s.
var DefaultRetry = Retry{Attempts: 5, FirstDelay: 200 * time.Millisecond, MaxDelay: 5 * time.Second}

// do runs fn until it succeeds, fails permanently, runs out of attempts or ctx ends.
func (r Retry) do(ctx context.Context, fn func() error) error {
	delay := r.FirstDelay
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || errors.Is(err, ErrPermanent) || attempt >= r.Attempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return err
		}
		delay = min(2*delay, r.MaxDelay)
	}
}

// attemptTimeout bounds one upload attempt: 5 minutes plus a second per MiB (≈ 1 MB/s at worst),
// so a long recording is never cut off by a fixed limit while a dead connection still ends.
func attemptTimeout(size int64) time.Duration {
	return 5*time.Minute + time.Duration(size>>20)*time.Second
}
