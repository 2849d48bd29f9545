package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/livekit/protocol/livekit"
	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mediaworker/mediaworker/pkg/config"
	"github.com/mediaworker/mediaworker/pkg/ingress"
	"github.com/mediaworker/mediaworker/pkg/ipc"
	"github.com/mediaworker/mediaworker/pkg/worker"
)

// runIngress is one ingress session's process. A push (RTMP) session reads its FLV stream on stdin
// and ends when stdin closes; a URL session pulls info.url and takes "stop" (or stdin closing) on
// stdin. States go out as IngressState lines on fd 3.
func runIngress() error {
	conf, err := config.Load("", os.Getenv)
	if err != nil {
		return err
	}
	info := &livekit.IngressInfo{}
	if err := protojson.Unmarshal([]byte(os.Getenv(worker.EnvIngressInfo)), info); err != nil {
		return fmt.Errorf("decode %s: %w", worker.EnvIngressInfo, err)
	}
	log := newLogger(conf.LogLevel).With("component", "ingress", "ingress_id", info.IngressId,
		"resource_id", info.GetState().GetResourceId(), "room_name", info.RoomName, "pid", os.Getpid())
	if conf.LogLevel != "debug" {
		lksdk.SetLogger(protologger.GetDiscardLogger())
	}
	ipc.ReportCrashes()
	status := ipc.NewStatusWriter(os.NewFile(ipc.StatusFD, "status"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	src := ingress.Source{FD: 0, Live: true}
	if info.InputType == livekit.IngressInput_URL_INPUT {
		src = ingress.Source{URL: info.Url, Live: false}
		go func() {
			_ = ipc.ReadCommands(os.Stdin, func(c ipc.Command) {
				if c == ipc.CommandStop {
					log.Info("stopping", "why", "stop from the worker")
					cancel()
				}
			})
			cancel()
		}()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { s := <-sigs; log.Info("stopping", "why", s.String()); cancel() }()

	var orphaned atomic.Bool // the worker is gone: the final state goes to livekit-server directly
	env := ingress.Env{APIKey: conf.APIKey, APISecret: conf.APISecret, WsURL: conf.WsURL, Log: log,
		State: func(st *livekit.IngressState) {
			if err := status.WriteMessage(st); err != nil && !orphaned.Swap(true) {
				log.Warn("the worker is gone (status pipe closed): ending the session", "error", err)
				cancel()
			}
		}}
	final := ingress.Run(ctx, env, info, src)
	if orphaned.Load() {
		// The worker died: for RTMP that also cut the publisher's connection.
		st := proto.Clone(final).(*livekit.IngressState)
		if st.Status != livekit.IngressState_ENDPOINT_ERROR {
			st.Status, st.Error = livekit.IngressState_ENDPOINT_ERROR, "the worker process died; publish again (OBS reconnects by itself) to start a new session"
		}
		worker.StampIngressState(st, info.GetState().GetStartedAt(), info.GetState().GetResourceId())
		log.Warn("worker gone: reporting the final state to livekit-server directly", "status", st.Status.String())
		return worker.ReportIngressOrphaned(context.Background(), conf, log, info.IngressId, st)
	}
	return nil
}
