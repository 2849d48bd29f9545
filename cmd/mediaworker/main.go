// Command mediaworker is a LiveKit Egress and Ingress worker: `mediaworker worker` serves
// livekit-server over Redis and listens for RTMP; `mediaworker run-job` and `run-ingress` are the
// per-job child processes the worker starts.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mediaworker/mediaworker/pkg/config"
	"github.com/mediaworker/mediaworker/pkg/worker"
)

var version = "dev"

const usage = `mediaworker — a LiveKit Egress and Ingress worker

usage:
  mediaworker worker [--config FILE]   run the service (config also from MEDIAWORKER_CONFIG_BODY and env)
  mediaworker run-job                  run one egress job (started by the worker; not for direct use)
  mediaworker run-ingress              run one ingress session (started by the worker; not for direct use)
  mediaworker healthcheck              exit 0 if the local worker answers /healthz (for container HEALTHCHECK)
  mediaworker version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "worker":
		err = runWorker(os.Args[2:])
	case "run-job":
		err = runJob()
	case "run-ingress":
		err = runIngress()
	case "healthcheck":
		err = healthcheck()
	case "version":
		fmt.Println(version)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mediaworker:", err)
		os.Exit(1)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func runWorker(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	path := fs.String("config", "", "YAML config file (default: MEDIAWORKER_CONFIG_BODY, then env only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	conf, err := config.Load(*path, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(conf.LogLevel).With("component", "worker")
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary for job processes: %w", err)
	}
	svc, err := worker.New(conf, exe, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if conf.HTTPAddr != "" {
		go func() {
			if err := svc.ServeHTTP(ctx, conf.HTTPAddr); err != nil {
				log.Error("http server failed (http_addr)", "addr", conf.HTTPAddr, "error", err)
			}
		}()
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	switch sig := <-sigs; sig {
	case syscall.SIGTERM:
		// SIGTERM: stop claiming, let running jobs finish (bounded). A second signal stops them now.
		log.Info("SIGTERM: draining", "grace", conf.Timeouts.DrainGrace)
		dctx, dcancel := context.WithCancel(ctx)
		go func() { <-sigs; log.Info("second signal: stopping jobs now"); dcancel() }()
		svc.Drain(dctx, conf.Timeouts.DrainGrace)
		dcancel()
	default:
		log.Info("SIGINT: ending every job cleanly")
		svc.StopAll(ctx)
	}
	log.Info("worker stopped")
	time.Sleep(100 * time.Millisecond) // let the last log lines flush through the pipe
	return nil
}

// healthcheck probes the worker's /healthz on MEDIAWORKER_HTTP_ADDR (default 127.0.0.1:9090).
func healthcheck() error {
	addr := os.Getenv("MEDIAWORKER_HTTP_ADDR")
	if addr == "" {
		addr = config.Default().HTTPAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("MEDIAWORKER_HTTP_ADDR %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %s", resp.Status)
	}
	return nil
}
