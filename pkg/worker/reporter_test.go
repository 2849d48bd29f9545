package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/psrpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// fakeIO records updates; failFirst makes the first n UpdateEgress calls fail.
type fakeIO struct {
	mu        sync.Mutex
	creates   []*livekit.EgressInfo
	updates   []livekit.EgressStatus
	failFirst int
	createErr error
}

func (f *fakeIO) CreateEgress(_ context.Context, i *livekit.EgressInfo, _ ...psrpc.RequestOption) (*emptypb.Empty, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, i)
	return &emptypb.Empty{}, f.createErr
}

func (f *fakeIO) UpdateEgress(_ context.Context, i *livekit.EgressInfo, _ ...psrpc.RequestOption) (*emptypb.Empty, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFirst > 0 {
		f.failFirst--
		return nil, errors.New("no response from servers")
	}
	f.updates = append(f.updates, i.Status)
	return &emptypb.Empty{}, nil
}

func (f *fakeIO) statuses() []livekit.EgressStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]livekit.EgressStatus(nil), f.updates...)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestReporterHoldsUntilCreatedAndSendsOneTerminal(t *testing.T) {
	f := &fakeIO{failFirst: 2}
	r := newReporter(f, 10*time.Second, quiet)
	r.send(&livekit.EgressInfo{Status: livekit.EgressStatus_EGRESS_ACTIVE})
	time.Sleep(50 * time.Millisecond)
	if got := f.statuses(); len(got) != 0 {
		t.Fatalf("sent before created: %v", got)
	}
	r.created()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.statuses()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !r.send(&livekit.EgressInfo{Status: livekit.EgressStatus_EGRESS_COMPLETE}) {
		t.Fatal("first terminal refused")
	}
	if r.send(&livekit.EgressInfo{Status: livekit.EgressStatus_EGRESS_FAILED}) {
		t.Fatal("second terminal accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.wait(ctx)
	got := f.statuses()
	want := []livekit.EgressStatus{livekit.EgressStatus_EGRESS_ACTIVE, livekit.EgressStatus_EGRESS_COMPLETE}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("updates %v, want %v (retried through failures, in order, one terminal)", got, want)
	}
}
