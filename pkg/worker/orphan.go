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
	io, done, err := ioClient(conf)
	if err != nil {
		return err
	}
	defer done()
	r := newReporter(io, conf.Timeouts.IOUpdate, log)
	r.created()
	r.send(info)
	wctx, cancel := context.WithTimeout(ctx, conf.Timeouts.IOUpdate+time.Second)
	defer cancel()
	r.wait(wctx)
	return nil
}

// ReportIngressOrphaned delivers an ingress session's final state straight to livekit-server when
// its worker is gone, so that the ingress does not stay PUBLISHING in the server forever.
func ReportIngressOrphaned(ctx context.Context, conf *config.Config, log *slog.Logger, ingressID string, st *livekit.IngressState) error {
	io, done, err := ioClient(conf)
	if err != nil {
		return err
	}
	defer done()
	r := newIngressReporter(func(ctx context.Context, req *rpc.UpdateIngressStateRequest) error {
		_, err := io.UpdateIngressState(ctx, req)
		return err
	}, conf.Timeouts.IOUpdate, log)
	r.created()
	r.send(&rpc.UpdateIngressStateRequest{IngressId: ingressID, State: st})
	wctx, cancel := context.WithTimeout(ctx, conf.Timeouts.IOUpdate+time.Second)
	defer cancel()
	r.wait(wctx)
	return nil
}

// ioClient is an IOInfo client on its own Redis connection; done closes both.
func ioClient(conf *config.Config) (rpc.IOInfoClient, func(), error) {
	rc := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{conf.Redis.Address}, Username: conf.Redis.Username, Password: conf.Redis.Password, DB: conf.Redis.DB,
	})
	io, err := rpc.NewIOInfoClient(psrpc.NewRedisMessageBus(rc))
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("io client: %w", err)
	}
	return io, func() { io.Close(); rc.Close() }, nil
}
