package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/livekit/protocol/livekit"
	protologger "github.com/livekit/protocol/logger"
	"github.com/livekit/protocol/rpc"
	lksdk "github.com/livekit/server-sdk-go/v2"
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
	if conf.LogLevel != "debug" {
		// The SDK and pion log every signalling and ICE step; our own lines say what matters.
		lksdk.SetLogger(protologger.GetDiscardLogger())
	}
	ipc.ReportCrashes()
	status := ipc.NewStatusWriter(os.NewFile(ipc.StatusFD, "status"))

	stop := make(chan struct{})
	var once sync.Once
	var orphaned atomic.Bool // the worker is gone: finish alone and report to the server directly
	stopNow := func(why string) { once.Do(func() { log.Info("stopping", "why", why); close(stop) }) }
	updates := make(chan *livekit.UpdateStreamRequest, 16)
	go func() {
		_ = ipc.ReadCommands(os.Stdin, func(c ipc.Command) {
			if c == ipc.CommandStop {
				stopNow("StopEgress")
				return
			}
			u, ok, err := ipc.ParseUpdateStream(c)
			switch {
			case err != nil:
				log.Warn("bad command from the worker ignored", "error", err)
			case ok:
				updates <- u
			}
		})
		orphaned.Store(true)
		stopNow("the worker is gone (control pipe closed)")
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { s := <-sigs; stopNow(s.String()) }()

	var final *livekit.EgressInfo
	env := egress.Env{Conf: conf, Log: log, Stop: stop, Update: updates, Status: func(i *livekit.EgressInfo) {
		final = i
		if err := status.Write(i); err != nil && !orphaned.Load() {
			log.Warn("could not report status to the worker", "error", err)
		}
	}}
	egress.Run(context.Background(), env, r)
	if orphaned.Load() && final != nil {
		if final.Status == livekit.EgressStatus_EGRESS_COMPLETE {
			// The recording was cut short by the worker's death, not by the user: say so, keep the file.
			final.SetEndReason("worker process died")
			final.SetFailed(errors.New("the worker process died; the recording was stopped early and what was recorded is kept (see file_results)"))
		}
		log.Warn("worker gone: reporting the final status to livekit-server directly", "status", final.Status.String())
		return worker.ReportOrphaned(context.Background(), conf, log, final)
	}
	return nil
}
