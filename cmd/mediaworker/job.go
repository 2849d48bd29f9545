package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mediaworker/mediaworker/pkg/config"
	"github.com/mediaworker/mediaworker/pkg/egress"
	"github.com/mediaworker/mediaworker/pkg/ipc"
	"github.com/mediaworker/mediaworker/pkg/worker"
)

// runJob is the child process: it reads its request from the environment, reports on fd 3 and
// stops on "stop" from stdin, on stdin closing (the worker is gone) or on SIGTERM/SIGINT.
func runJob() error {
	conf, err := config.Load("", os.Getenv)
	if err != nil {
		return err
	}
	req := &rpc.StartEgressRequest{}
	if err := protojson.Unmarshal([]byte(os.Getenv(worker.EnvJobRequest)), req); err != nil {
		return fmt.Errorf("decode %s: %w", worker.EnvJobRequest, err)
	}
	r, err := egress.Inspect(req)
	if err != nil {
		return err
	}
	log := newLogger(conf.LogLevel).With("component", "job", "egress_id", req.EgressId, "room_name", r.RoomName, "kind", r.Kind, "pid", os.Getpid())
	status := ipc.NewStatusWriter(os.NewFile(ipc.StatusFD, "status"))

	stop := make(chan struct{})
	var once sync.Once
	stopNow := func(why string) { once.Do(func() { log.Info("stopping", "why", why); close(stop) }) }
	go func() {
		_ = ipc.ReadCommands(os.Stdin, func(c ipc.Command) {
			if c == ipc.CommandStop {
				stopNow("StopEgress")
			}
		})
		stopNow("worker closed the control pipe")
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { s := <-sigs; stopNow(s.String()) }()

	env := egress.Env{Conf: conf, Log: log, Stop: stop, Status: func(i *livekit.EgressInfo) {
		if err := status.Write(i); err != nil {
			log.Warn("could not report status to the worker", "error", err)
		}
	}}
	egress.RunTrack(context.Background(), env, r)
	return nil
}
