package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"github.com/redis/go-redis/v9"

	"github.com/mediaworker/mediaworker/pkg/config"
)

// ReportOrphaned delivers a job's final status straight to livekit-server when its worker is gone
// (killed or crashed): the job process finishes its recording on its own, and without this the
// egress would stay ACTIVE in the server forever.
func ReportOrphaned(ctx context.Context, conf *config.Config, log *slog.Logger, info *livekit.EgressInfo) error {
	rc := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{conf.Redis.Address}, Username: conf.Redis.Username, Password: conf.Redis.Password, DB: conf.Redis.DB,
	})
	defer rc.Close()
	io, err := rpc.NewIOInfoClient(psrpc.NewRedisMessageBus(rc))
	if err != nil {
		return fmt.Errorf("io client: %w", err)
	}
	defer io.Close()
	r := newReporter(io, conf.Timeouts.IOUpdate, log)
	r.created()
	r.send(info)
	wctx, cancel := context.WithTimeout(ctx, conf.Timeouts.IOUpdate+time.Second)
	defer cancel()
	r.wait(wctx)
	return nil
}
