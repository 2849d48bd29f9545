package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/mediaworker/mediaworker/pkg/ingress"
	"github.com/mediaworker/mediaworker/pkg/ipc"
	"github.com/mediaworker/mediaworker/pkg/rtmpserver"
)

// EnvIngressInfo carries an ingress session's IngressInfo (protojson, with its state) to its process.
const EnvIngressInfo = "MEDIAWORKER_INGRESS_INFO"

// ingressService serves push ingress (RTMP/RTMPS listeners) and URL pull (IngressInternal), and
// the per-ingress IngressHandler topics livekit-server uses to end a live session.
type ingressService struct {
	s        *Service
	log      *slog.Logger
	internal rpc.IngressInternalServer
	handler  rpc.IngressHandlerServer
	rtmp     *rtmpserver.Server
	lns      []net.Listener

	mu       sync.Mutex // guards sessions, closed
	sessions map[string]*ingressSession
	closed   bool
}

func newIngressService(s *Service, bus psrpc.MessageBus) (*ingressService, error) {
	is := &ingressService{s: s, log: s.log.With("component", "ingress"), sessions: map[string]*ingressSession{}}
	var err error
	// The constructor registers StartIngress (no topic) itself.
	if is.internal, err = rpc.NewIngressInternalServer(is, bus); err != nil {
		return nil, err
	}
	if err = is.internal.RegisterListActiveIngressTopic(""); err != nil {
		return nil, err
	}
	if is.handler, err = rpc.NewIngressHandlerServer(is, bus); err != nil {
		return nil, err
	}
	is.rtmp = rtmpserver.New(is.accept, is.log)
	return is, nil
}

// listen opens the RTMP and RTMPS listeners of the config.
func (is *ingressService) listen() error {
	c := is.s.conf.Ingress
	if c.RTMPAddr != "" {
		ln, err := net.Listen("tcp", c.RTMPAddr)
		if err != nil {
			return fmt.Errorf("rtmp listener (ingress.rtmp_addr %s): %w", c.RTMPAddr, err)
		}
		is.serve(ln, "rtmp")
	}
	if c.RTMPSAddr != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("rtmps certificate (ingress.tls_cert_file / tls_key_file): %w", err)
		}
		ln, err := net.Listen("tcp", c.RTMPSAddr)
		if err != nil {
			return fmt.Errorf("rtmps listener (ingress.rtmps_addr %s): %w", c.RTMPSAddr, err)
		}
		is.serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), "rtmps")
	}
	return nil
}

func (is *ingressService) serve(ln net.Listener, scheme string) {
	is.lns = append(is.lns, ln)
	is.log.Info("listening for ingress", "scheme", scheme, "addr", ln.Addr().String())
	go func() {
		if err := is.rtmp.Serve(ln); err != nil && !errors.Is(err, rtmpserver.ErrServerClosed) {
			is.log.Error("ingress listener stopped", "scheme", scheme, "error", err)
		}
	}()
}

// stopListening refuses new publishers (draining); live sessions go on.
func (is *ingressService) stopListening() {
	for _, ln := range is.lns {
		_ = ln.Close()
	}
}

// stopAll ends every session.
func (is *ingressService) stopAll() {
	for _, ss := range is.list() {
		ss.stop()
	}
}

func (is *ingressService) close() {
	is.mu.Lock()
	is.closed = true
	is.mu.Unlock()
	_ = is.rtmp.Close()
	is.internal.Kill()
	is.handler.Kill()
}

func (is *ingressService) list() []*ingressSession {
	is.mu.Lock()
	defer is.mu.Unlock()
	out := make([]*ingressSession, 0, len(is.sessions))
	for _, ss := range is.sessions {
		out = append(out, ss)
	}
	return out
}

func (is *ingressService) count() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return len(is.sessions)
}

// accept admits an RTMP publisher: the stream key must belong to an enabled RTMP ingress.
func (is *ingressService) accept(ctx context.Context, key string, remote net.Addr) (io.WriteCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, is.s.conf.Timeouts.IOCreate)
	defer cancel()
	resp, err := is.s.io.GetIngressInfo(ctx, &rpc.GetIngressInfoRequest{StreamKey: key})
	if err != nil {
		var perr psrpc.Error
		if errors.As(err, &perr) && perr.Code() == psrpc.NotFound {
			return nil, errors.New("unknown stream key: create the ingress first (CreateIngress) and use its stream_key")
		}
		return nil, fmt.Errorf("could not look up the stream key on livekit-server (is it running on the same Redis?): %w", err)
	}
	info := resp.GetInfo()
	switch {
	case info == nil:
		return nil, errors.New("unknown stream key")
	case info.Enabled != nil && !*info.Enabled:
		return nil, fmt.Errorf("ingress %s is disabled (UpdateIngress enabled=true to allow publishing)", info.IngressId)
	case info.InputType != livekit.IngressInput_RTMP_INPUT:
		return nil, fmt.Errorf("stream key of ingress %s is for %s, not RTMP", info.IngressId, info.InputType)
	}
	ss, err := is.start(info, ingress.ResourceIDFor(info.InputType), remote.String())
	if err != nil {
		return nil, err
	}
	return ss, nil
}

// start reserves capacity, reports BUFFERING and launches the session process. For RTMP the
// session is also the writer the stream's FLV goes to.
func (is *ingressService) start(info *livekit.IngressInfo, resourceID, from string) (*ingressSession, error) {
	is.s.mu.Lock()
	draining := is.s.draining
	is.s.mu.Unlock()
	is.mu.Lock()
	old := is.sessions[info.IngressId]
	closed := is.closed
	is.mu.Unlock()
	if draining || closed {
		return nil, errors.New("this worker is shutting down; publish again to reach another worker")
	}
	if old != nil {
		// OBS reconnecting: the previous session's process is usually ending already.
		select {
		case <-old.exited:
		case <-time.After(3 * time.Second):
			return nil, fmt.Errorf("ingress %s already has a live session on this worker", info.IngressId)
		}
	}
	log := is.log.With("ingress_id", info.IngressId, "resource_id", resourceID, "room_name", info.RoomName)
	now := time.Now()
	info = proto.Clone(info).(*livekit.IngressInfo)
	info.State = &livekit.IngressState{Status: livekit.IngressState_ENDPOINT_BUFFERING, StartedAt: now.UnixNano(), UpdatedAt: now.UnixNano(), ResourceId: resourceID}
	if err := ingress.Validate(info); err != nil {
		is.reportOnce(info, fmt.Errorf("invalid ingress settings: %w", err), log)
		return nil, err
	}
	if err := is.s.cap.reserve(info.IngressId, is.s.conf.Ingress.CPUCost); err != nil {
		return nil, fmt.Errorf("%w; another worker can take this stream", err)
	}
	ss := &ingressSession{info: info, log: log, exited: make(chan struct{}), state: proto.Clone(info.State).(*livekit.IngressState)}
	ss.rep = newIngressReporter(is.updateState, is.s.conf.Timeouts.IOUpdate, log)
	if info.InputType != livekit.IngressInput_URL_INPUT {
		ss.rep.created() // the server created push ingresses itself
	}
	ss.rep.send(&rpc.UpdateIngressStateRequest{IngressId: info.IngressId, State: ss.state})
	if err := ss.spawn(is.s.exe, is.s.configBody, func() { is.ended(ss) }); err != nil {
		is.s.cap.release(info.IngressId)
		ss.fail(err)
		return nil, err
	}
	is.mu.Lock()
	is.sessions[info.IngressId] = ss
	is.mu.Unlock()
	if err := is.handler.RegisterUpdateIngressTopic(info.IngressId); err != nil {
		log.Warn("could not register UpdateIngress for this session", "error", err)
	}
	if err := is.handler.RegisterDeleteIngressTopic(info.IngressId); err != nil {
		log.Warn("could not register DeleteIngress for this session", "error", err)
	}
	log.Info("ingress session started", "input", info.InputType.String(), "from", from, "pid", ss.processID())
	return ss, nil
}

// reportOnce sends a terminal ERROR for a session that never started.
func (is *ingressService) reportOnce(info *livekit.IngressInfo, err error, log *slog.Logger) {
	st := proto.Clone(info.State).(*livekit.IngressState)
	st.Status, st.Error, st.EndedAt = livekit.IngressState_ENDPOINT_ERROR, err.Error(), time.Now().UnixNano()
	log.Error("ingress refused", "error", err)
	go func() {
		if err := is.updateState(context.Background(), &rpc.UpdateIngressStateRequest{IngressId: info.IngressId, State: st}); err != nil {
			log.Warn("could not report the refusal", "error", err)
		}
	}()
}

// updateState reports to IOInfo; an ingress deleted meanwhile is not an error worth retrying.
func (is *ingressService) updateState(ctx context.Context, r *rpc.UpdateIngressStateRequest) error {
	_, err := is.s.io.UpdateIngressState(ctx, r)
	var perr psrpc.Error
	if errors.As(err, &perr) && perr.Code() == psrpc.NotFound {
		is.log.Info("ingress no longer exists on the server; state not recorded", "ingress_id", r.IngressId, "status", r.State.Status.String())
		return nil
	}
	return err
}

func (is *ingressService) ended(ss *ingressSession) {
	is.mu.Lock()
	if is.sessions[ss.info.IngressId] == ss {
		delete(is.sessions, ss.info.IngressId)
	}
	is.mu.Unlock()
	is.handler.DeregisterUpdateIngressTopic(ss.info.IngressId)
	is.handler.DeregisterDeleteIngressTopic(ss.info.IngressId)
	is.s.cap.release(ss.info.IngressId)
}

// newIngressReporter reports one session's states in order (update is IOInfo.UpdateIngressState).
func newIngressReporter(update func(context.Context, *rpc.UpdateIngressStateRequest) error, timeout time.Duration, log *slog.Logger) *statusReporter[*rpc.UpdateIngressStateRequest] {
	return newStatusReporter(update, func(r *rpc.UpdateIngressStateRequest) bool { return ingressTerminal(r.State.Status) },
		func(r *rpc.UpdateIngressStateRequest) string { return r.State.Status.String() }, timeout, log)
}

// StampIngressState gives a state from a session process the session's ids and times, as the
// server orders updates by them: started_at and resource_id of the session, updated_at now, and
// ended_at when it is terminal.
func StampIngressState(st *livekit.IngressState, startedAt int64, resourceID string) {
	now := time.Now().UnixNano()
	st.StartedAt, st.ResourceId, st.UpdatedAt = startedAt, resourceID, now
	if ingressTerminal(st.Status) {
		st.EndedAt = now
	}
}

func ingressTerminal(s livekit.IngressState_Status) bool {
	switch s {
	case livekit.IngressState_ENDPOINT_INACTIVE, livekit.IngressState_ENDPOINT_ERROR, livekit.IngressState_ENDPOINT_COMPLETE:
		return true
	}
	return false
}

// StartIngressAffinity bids for a URL ingress while it fits, less as the worker fills up.
func (is *ingressService) StartIngressAffinity(context.Context, *rpc.StartIngressRequest) float32 {
	if !is.s.Ready() || !is.s.cap.canAccept(is.s.conf.Ingress.CPUCost) {
		return -1
	}
	return float32(1 - 0.5*is.s.cap.loadFraction())
}

// StartIngress runs a URL pull: the worker records the ingress with IOInfo.CreateIngress itself.
func (is *ingressService) StartIngress(ctx context.Context, req *rpc.StartIngressRequest) (*livekit.IngressInfo, error) {
	info := req.GetInfo()
	if info == nil || info.InputType != livekit.IngressInput_URL_INPUT {
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "StartIngress takes URL_INPUT ingresses only")
	}
	if err := ingress.Validate(withState(info)); err != nil {
		return nil, psrpc.NewError(psrpc.InvalidArgument, err)
	}
	ss, err := is.start(info, ingress.ResourceIDFor(info.InputType), info.Url)
	if err != nil {
		if errors.Is(err, ErrFull) {
			return nil, psrpc.NewError(psrpc.ResourceExhausted, err)
		}
		return nil, psrpc.NewError(psrpc.Internal, err)
	}
	out := ss.snapshotInfo()
	cctx, cancel := context.WithTimeout(ctx, is.s.conf.Timeouts.IOCreate)
	defer cancel()
	if _, err := is.s.io.CreateIngress(cctx, out); err != nil {
		var perr psrpc.Error
		if !errors.As(err, &perr) || perr.Code() != psrpc.Unavailable {
			ss.stop()
			ss.rep.discard()
			return nil, psrpc.NewErrorf(psrpc.Internal, "record the ingress on livekit-server: %v", err)
		}
	}
	ss.rep.created()
	return out, nil
}

// withState gives a copy of info a state so validation sees a complete info.
func withState(info *livekit.IngressInfo) *livekit.IngressInfo {
	c := proto.Clone(info).(*livekit.IngressInfo)
	if c.State == nil {
		c.State = &livekit.IngressState{}
	}
	return c
}

func (is *ingressService) ListActiveIngress(context.Context, *rpc.ListActiveIngressRequest) (*rpc.ListActiveIngressResponse, error) {
	resp := &rpc.ListActiveIngressResponse{}
	for _, ss := range is.list() {
		resp.IngressIds = append(resp.IngressIds, ss.info.IngressId)
		resp.IngressSessions = append(resp.IngressSessions, &rpc.IngressSession{IngressId: ss.info.IngressId, ResourceId: ss.info.State.ResourceId})
	}
	return resp, nil
}

// UpdateIngress ends the live session: new settings apply to the next one (as the official worker).
func (is *ingressService) UpdateIngress(_ context.Context, req *livekit.UpdateIngressRequest) (*livekit.IngressState, error) {
	return is.endSession(req.IngressId, "UpdateIngress")
}

// DeleteIngress ends the live session.
func (is *ingressService) DeleteIngress(_ context.Context, req *livekit.DeleteIngressRequest) (*livekit.IngressState, error) {
	return is.endSession(req.IngressId, "DeleteIngress")
}

func (is *ingressService) endSession(id, why string) (*livekit.IngressState, error) {
	is.mu.Lock()
	ss := is.sessions[id]
	is.mu.Unlock()
	if ss == nil {
		return nil, psrpc.NewErrorf(psrpc.NotFound, "ingress %s has no session on this worker", id)
	}
	ss.log.Info("ending the session", "why", why)
	ss.stop()
	st := ss.snapshot()
	st.Status = livekit.IngressState_ENDPOINT_INACTIVE
	return st, nil
}

func (is *ingressService) DeleteWHIPResource(context.Context, *rpc.DeleteWHIPResourceRequest) (*emptypb.Empty, error) {
	return nil, errWHIP
}

func (is *ingressService) ICERestartWHIPResource(context.Context, *rpc.ICERestartWHIPResourceRequest) (*rpc.ICERestartWHIPResourceResponse, error) {
	return nil, errWHIP
}

func (is *ingressService) WHIPRTCConnectionNotify(context.Context, *rpc.WHIPRTCConnectionNotifyRequest) (*emptypb.Empty, error) {
	return nil, errWHIP
}

var errWHIP = psrpc.NewErrorf(psrpc.Unimplemented, "WHIP ingress is not implemented by mediaworker yet (see the README's feature table)")

// ingressSession is one ingress in its own process. For RTMP it is also the writer of the
// stream: FLV goes to the process's stdin, and closing it ends the session.
type ingressSession struct {
	info *livekit.IngressInfo
	log  *slog.Logger
	rep  *statusReporter[*rpc.UpdateIngressStateRequest]

	mu      sync.Mutex // guards state, stdin, pid, stopped
	state   *livekit.IngressState
	stdin   io.WriteCloser
	pid     int
	stopped bool
	exited  chan struct{}
}

func (ss *ingressSession) spawn(exe string, configBody []byte, onExit func()) error {
	infoJSON, err := protojson.Marshal(ss.info)
	if err != nil {
		return fmt.Errorf("encode ingress info: %w", err)
	}
	cmd, stdin, statusR, crash, err := spawn(exe, "run-ingress", EnvConfigBody+"="+string(configBody), EnvIngressInfo+"="+string(infoJSON))
	if err != nil {
		return err
	}
	ss.mu.Lock()
	ss.stdin, ss.pid = stdin, cmd.Process.Pid
	ss.mu.Unlock()
	go func() {
		readErr := ipc.ReadIngressStates(statusR, ss.onState)
		statusR.Close()
		_ = cmd.Wait()
		if !ingressTerminal(ss.snapshot().Status) {
			reason := "ingress process ended unexpectedly (" + cmd.ProcessState.String() + ")"
			if c := crash.summary(); c != "" {
				reason += ": " + c
			}
			if readErr != nil {
				reason += "; " + readErr.Error()
			}
			ss.fail(errors.New(reason))
		}
		onExit() // before exited closes: a reconnect waiting on it finds the ids free
		close(ss.exited)
	}()
	return nil
}

// onState takes a state from the process and reports it with the session's ids and times.
func (ss *ingressSession) onState(st *livekit.IngressState) {
	ss.mu.Lock()
	StampIngressState(st, ss.state.StartedAt, ss.state.ResourceId)
	ss.state = st
	ss.mu.Unlock()
	ss.log.Info("ingress state", "status", st.Status.String(), "error", st.Error)
	ss.rep.send(&rpc.UpdateIngressStateRequest{IngressId: ss.info.IngressId, State: st})
}

func (ss *ingressSession) fail(err error) {
	ss.log.Error("ingress failed", "error", err)
	st := ss.snapshot()
	st.Status, st.Error = livekit.IngressState_ENDPOINT_ERROR, err.Error()
	ss.onState(st)
}

// Write takes the RTMP stream's FLV bytes.
func (ss *ingressSession) Write(p []byte) (int, error) {
	ss.mu.Lock()
	w := ss.stdin
	ss.mu.Unlock()
	if w == nil {
		return 0, io.ErrClosedPipe
	}
	return w.Write(p)
}

// Close is the publisher going away: the process drains and ends INACTIVE.
func (ss *ingressSession) Close() error {
	ss.stop()
	return nil
}

// stop ends the session: stdin closes (end of stream for RTMP, "stop" for URL); a process that
// has not exited 10 s later is killed.
func (ss *ingressSession) stop() {
	ss.mu.Lock()
	first := !ss.stopped
	ss.stopped = true
	stdin := ss.stdin
	pid := ss.pid
	ss.mu.Unlock()
	if !first || stdin == nil {
		return
	}
	if ss.info.InputType == livekit.IngressInput_URL_INPUT {
		_, _ = io.WriteString(stdin, string(ipc.CommandStop)+"\n")
	}
	_ = stdin.Close()
	go func() {
		select {
		case <-ss.exited:
		case <-time.After(10 * time.Second):
			ss.log.Error("ingress process did not end 10 s after stop; killing it")
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
}

func (ss *ingressSession) snapshot() *livekit.IngressState {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return proto.Clone(ss.state).(*livekit.IngressState)
}

func (ss *ingressSession) snapshotInfo() *livekit.IngressInfo {
	info := proto.Clone(ss.info).(*livekit.IngressInfo)
	info.State = ss.snapshot()
	return info
}

func (ss *ingressSession) processID() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.pid
}

var _ rpc.IngressInternalServerImpl = (*ingressService)(nil)
var _ rpc.IngressHandlerServerImpl = (*ingressService)(nil)
