package worker

import (
	"context"
	"log/slog"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// ingressStub registers IngressInternal and IngressHandler so that a URL ingress (the only kind the
// server dispatches over psrpc) gets a clear Unimplemented at once instead of a 20 s "no response".
type ingressStub struct {
	log      *slog.Logger
	internal rpc.IngressInternalServer
	handler  rpc.IngressHandlerServer
}

func newIngressStub(bus psrpc.MessageBus, log *slog.Logger) (*ingressStub, error) {
	st := &ingressStub{log: log}
	var err error
	// The constructor registers StartIngress (no topic) itself.
	if st.internal, err = rpc.NewIngressInternalServer(st, bus); err != nil {
		return nil, err
	}
	if err = st.internal.RegisterListActiveIngressTopic(""); err != nil {
		return nil, err
	}
	if st.handler, err = rpc.NewIngressHandlerServer(st, bus); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *ingressStub) close() {
	st.internal.Kill()
	st.handler.Kill()
}

func unimplementedIngress() error {
	return psrpc.NewErrorf(psrpc.Unimplemented, "ingress is not implemented by mediaworker yet (see the README's feature table)")
}

// StartIngressAffinity bids weakly so that a worker that has ingress wins.
func (st *ingressStub) StartIngressAffinity(context.Context, *rpc.StartIngressRequest) float32 {
	return 0.01
}

func (st *ingressStub) StartIngress(_ context.Context, req *rpc.StartIngressRequest) (*livekit.IngressInfo, error) {
	st.log.Warn("URL ingress refused: not implemented yet", "ingress_id", req.GetInfo().GetIngressId())
	return nil, unimplementedIngress()
}

func (st *ingressStub) ListActiveIngress(context.Context, *rpc.ListActiveIngressRequest) (*rpc.ListActiveIngressResponse, error) {
	return &rpc.ListActiveIngressResponse{}, nil
}

func (st *ingressStub) UpdateIngress(context.Context, *livekit.UpdateIngressRequest) (*livekit.IngressState, error) {
	return nil, unimplementedIngress()
}

func (st *ingressStub) DeleteIngress(context.Context, *livekit.DeleteIngressRequest) (*livekit.IngressState, error) {
	return nil, unimplementedIngress()
}

func (st *ingressStub) DeleteWHIPResource(context.Context, *rpc.DeleteWHIPResourceRequest) (*emptypb.Empty, error) {
	return nil, unimplementedIngress()
}

func (st *ingressStub) ICERestartWHIPResource(context.Context, *rpc.ICERestartWHIPResourceRequest) (*rpc.ICERestartWHIPResourceResponse, error) {
	return nil, unimplementedIngress()
}

func (st *ingressStub) WHIPRTCConnectionNotify(context.Context, *rpc.WHIPRTCConnectionNotifyRequest) (*emptypb.Empty, error) {
	return nil, unimplementedIngress()
}

var _ rpc.IngressInternalServerImpl = (*ingressStub)(nil)
var _ rpc.IngressHandlerServerImpl = (*ingressStub)(nil)
