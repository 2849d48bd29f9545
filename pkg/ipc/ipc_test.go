package ipc

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"
)

func TestStatusRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewStatusWriter(&buf)
	in := []*livekit.EgressInfo{
		{EgressId: "EG_1", Status: livekit.EgressStatus_EGRESS_ACTIVE},
		{EgressId: "EG_1", Status: livekit.EgressStatus_EGRESS_COMPLETE, FileResults: []*livekit.FileInfo{{Filename: "a.ogg", Size: 42}}},
	}
	for _, i := range in {
		if err := w.Write(i); err != nil {
			t.Fatal(err)
		}
	}
	var got []*livekit.EgressInfo
	if err := ReadStatus(&buf, func(i *livekit.EgressInfo) { got = append(got, i) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Status != livekit.EgressStatus_EGRESS_COMPLETE || got[1].FileResults[0].Size != 42 {
		t.Fatalf("got %v", got)
	}
}

func TestReadStatusBadLine(t *testing.T) {
	err := ReadStatus(strings.NewReader("{\"egress_id\":\"EG\"}\nnot json\n"), func(*livekit.EgressInfo) {})
	if !errors.Is(err, ErrBadLine) {
		t.Fatalf("want ErrBadLine, got %v", err)
	}
}

func TestReadCommands(t *testing.T) {
	var got []Command
	_ = ReadCommands(strings.NewReader("stop\n\n  stop \n"), func(c Command) { got = append(got, c) })
	if len(got) != 2 || got[0] != CommandStop {
		t.Fatalf("got %v", got)
	}
}

func FuzzReadStatus(f *testing.F) {
	f.Add([]byte("{\"egress_id\":\"EG\",\"status\":\"EGRESS_ACTIVE\"}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ReadStatus(bytes.NewReader(b), func(*livekit.EgressInfo) {})
	})
}
