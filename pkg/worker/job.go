package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mediaworker/mediaworker/pkg/egress"
	"github.com/mediaworker/mediaworker/pkg/ipc"
)

// Env names under which a job process receives its work.
const (
	EnvConfigBody = "MEDIAWORKER_CONFIG_BODY"
	EnvJobRequest = "MEDIAWORKER_JOB_REQUEST"
)

// job is one egress running in its own process, so that a crash in native code ends this job alone.
// The process reports EgressInfo lines on fd 3 and takes commands on stdin (package ipc).
type job struct {
	req       *egress.Request
	cost      float64
	rep       *reporter
	log       *slog.Logger
	stopGrace time.Duration

	mu      sync.Mutex // guards info, ending, stdin, pid, updated, streams
	info    *livekit.EgressInfo
	ending  bool
	stdin   io.WriteCloser
	pid     int
	updated chan struct{}      // closed (and replaced) at each status from the process
	streams *egress.StreamURLs // live stream destinations (nil: no stream output)

	exited chan struct{}
}

// start launches the job process; onExit runs after the process is gone and the final status is queued.
func (j *job) start(exe string, configBody []byte, onExit func(*job)) error {
	reqJSON, err := protojson.Marshal(j.req.Raw)
	if err != nil {
		return fmt.Errorf("encode job request: %w", err)
	}
	cmd, stdin, statusR, crash, err := spawn(exe, "run-job", EnvConfigBody+"="+string(configBody), EnvJobRequest+"="+string(reqJSON))
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.stdin, j.pid = stdin, cmd.Process.Pid
	j.mu.Unlock()
	j.log.Info("job process started", "pid", cmd.Process.Pid)

	go func() {
		readErr := ipc.ReadStatus(statusR, j.onStatus)
		statusR.Close()
		waitErr := cmd.Wait()
		j.finish(readErr, waitErr, cmd.ProcessState, crash.summary())
		close(j.exited)
		onExit(j)
	}()
	return nil
}

// spawn starts `exe sub` with env added: the child logs to our stderr, writes status lines on fd 3
// (statusR is our end), reads commands (or, for RTMP ingress, media) on stdin, and runs in its own
// process group so that a Ctrl-C meant for the worker does not kill it before it finalises.
func spawn(exe, sub string, env ...string) (*exec.Cmd, io.WriteCloser, *os.File, *crashWatch, error) {
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("status pipe: %w", err)
	}
	crashR, crashW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		statusW.Close()
		return nil, nil, nil, nil, fmt.Errorf("crash pipe: %w", err)
	}
	cmd := exec.Command(exe, sub)
	cmd.Env = append(os.Environ(), env...)
	// Inherited, not piped through us: a job whose worker was killed must still be able to log.
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // JSON lines tagged with the job's ids
	cmd.ExtraFiles = []*os.File{statusW, crashW}  // fd 3 = ipc.StatusFD, fd 4 = ipc.CrashFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	statusW.Close()
	crashW.Close()
	if err != nil {
		statusR.Close()
		crashR.Close()
		return nil, nil, nil, nil, fmt.Errorf("start %s process: %w", sub, err)
	}
	return cmd, stdin, statusR, watchCrash(crashR), nil
}

// onStatus takes an update from the job process.
func (j *job) onStatus(info *livekit.EgressInfo) {
	j.mu.Lock()
	// Keep what the worker owns: the request as redacted at start, and ENDING once stop was asked.
	info.Request = j.info.Request
	if j.ending && info.Status == livekit.EgressStatus_EGRESS_ACTIVE {
		info.Status = livekit.EgressStatus_EGRESS_ENDING
	}
	j.info = info
	j.streams.Forget(info.StreamResults)
	if j.updated != nil {
		close(j.updated)
		j.updated = nil
	}
	j.mu.Unlock()
	j.rep.send(info)
}

// updateStream validates u, hands it to the job process and answers with the status the process
// reports after applying it (or the current one after 5 s).
func (j *job) updateStream(u *livekit.UpdateStreamRequest) (*livekit.EgressInfo, error) {
	line, err := ipc.UpdateStreamLine(u)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	if j.ending || egress.IsTerminal(j.info.Status) {
		j.mu.Unlock()
		return nil, psrpc.NewErrorf(psrpc.FailedPrecondition, "egress %s is ending", u.EgressId)
	}
	if err := j.streams.Apply(u); err != nil {
		j.mu.Unlock()
		return nil, err
	}
	if j.updated == nil {
		j.updated = make(chan struct{})
	}
	next, stdin := j.updated, j.stdin
	j.mu.Unlock()
	if stdin == nil {
		return nil, psrpc.NewErrorf(psrpc.Unavailable, "egress %s is not running yet", u.EgressId)
	}
	if _, err := io.WriteString(stdin, line+"\n"); err != nil {
		return nil, psrpc.NewErrorf(psrpc.Unavailable, "egress %s: could not reach its process: %v", u.EgressId, err)
	}
	select {
	case <-next:
	case <-time.After(5 * time.Second):
	case <-j.exited:
	}
	return j.snapshot(), nil
}

// finish makes sure exactly one terminal status goes out, whatever way the process ended.
func (j *job) finish(readErr, waitErr error, state *os.ProcessState, crash string) {
	j.mu.Lock()
	info := proto.Clone(j.info).(*livekit.EgressInfo)
	j.mu.Unlock()
	if egress.IsTerminal(info.Status) {
		return
	}
	reason := "job process exited without reporting a result"
	if state != nil {
		reason = fmt.Sprintf("job process ended unexpectedly (%s)", state.String())
	}
	if crash != "" {
		reason += ": " + crash
	}
	if readErr != nil {
		reason += "; status stream: " + readErr.Error()
	}
	if waitErr != nil && !errors.As(waitErr, new(*exec.ExitError)) {
		reason += "; " + waitErr.Error()
	}
	j.log.Error("egress failed: "+reason, "pid", j.pid)
	info.SetFailed(errors.New(reason + ": the recording was cut short; files already written are kept in tmp_dir"))
	j.rep.send(info)
}

// stop asks the job to end cleanly, and kills it if it has not ended after the grace period.
// It returns the info to answer StopEgress with.
func (j *job) stop() *livekit.EgressInfo {
	j.mu.Lock()
	first := !j.ending
	j.ending = true
	info := proto.Clone(j.info).(*livekit.EgressInfo)
	stdin := j.stdin
	j.mu.Unlock()
	if egress.IsTerminal(info.Status) {
		return info
	}
	info.UpdateStatus(livekit.EgressStatus_EGRESS_ENDING)
	if !first {
		return info
	}
	if stdin != nil {
		if _, err := io.WriteString(stdin, string(ipc.CommandStop)+"\n"); err != nil {
			j.log.Warn("could not send stop to job process", "error", err)
		}
	}
	j.rep.send(info)
	go func() {
		select {
		case <-j.exited:
		case <-time.After(j.stopGrace):
			j.log.Error("job did not end within timeouts.stop_grace after stop; killing it", "grace", j.stopGrace)
			j.kill()
		}
	}()
	return info
}

// kill ends the process group at once.
func (j *job) kill() {
	j.mu.Lock()
	pid := j.pid
	j.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// snapshot returns a copy of the latest info.
func (j *job) snapshot() *livekit.EgressInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	return proto.Clone(j.info).(*livekit.EgressInfo)
}

func (j *job) processID() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.pid
}

// waitExit blocks until the process has exited or ctx ends.
func (j *job) waitExit(ctx context.Context) error {
	select {
	case <-j.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
