// Package ipc carries status from a job process to the worker and commands back.
//
// The wire is deliberately plain so a crash leaves nothing half-parsed: the job writes one
// protojson EgressInfo per line on its status pipe (fd 3), the worker writes one command word
// per line on the job's stdin. Closing stdin means the worker is gone: the job stops.
package ipc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// StatusFD is the file descriptor on which a job process writes its status lines.
const StatusFD = 3

// CrashFD is the file descriptor to which a job process's Go runtime also writes a crash report
// (runtime/debug.SetCrashOutput), so that the worker can say why the process died. Its logs go to
// the inherited stderr, which outlives the worker.
const CrashFD = 4

// ReportCrashes makes the runtime copy a crash report to CrashFD; without that descriptor (the
// process was not started by a worker) it does nothing.
func ReportCrashes() {
	f := os.NewFile(CrashFD, "crash")
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return // not the worker's pipe
	}
	_ = debug.SetCrashOutput(f, debug.CrashOptions{}) // the runtime keeps its own duplicate
	f.Close()
}

// Command is an instruction from the worker to a job process.
type Command string

const (
	// CommandStop ends the job cleanly: EOS, finalise files, upload, report.
	CommandStop Command = "stop"
	// CommandUpdateStream is followed by a space and an UpdateStreamRequest in protojson.
	CommandUpdateStream Command = "update_stream"
)

// UpdateStreamLine is the command line (without its newline) carrying u.
func UpdateStreamLine(u *livekit.UpdateStreamRequest) (string, error) {
	b, err := protojson.Marshal(u)
	if err != nil {
		return "", fmt.Errorf("marshal update: %w", err)
	}
	return string(CommandUpdateStream) + " " + string(b), nil
}

// ParseUpdateStream reads the UpdateStreamRequest of an update_stream command; ok is false for any
// other command.
func ParseUpdateStream(c Command) (u *livekit.UpdateStreamRequest, ok bool, err error) {
	body, found := strings.CutPrefix(string(c), string(CommandUpdateStream)+" ")
	if !found {
		return nil, false, nil
	}
	u = &livekit.UpdateStreamRequest{}
	if err := protojson.Unmarshal([]byte(body), u); err != nil {
		return nil, true, fmt.Errorf("%w: update_stream: %v", ErrBadLine, err)
	}
	return u, true, nil
}

// ErrBadLine marks a status line that is not an EgressInfo.
var ErrBadLine = errors.New("ipc: bad status line")

// StatusWriter writes EgressInfo lines; safe for concurrent use.
type StatusWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewStatusWriter returns a writer of status lines to w.
func NewStatusWriter(w io.Writer) *StatusWriter { return &StatusWriter{w: w} }

// Write sends one info.
func (s *StatusWriter) Write(info *livekit.EgressInfo) error { return s.WriteMessage(info) }

// WriteMessage sends one message (an ingress process reports IngressState lines).
func (s *StatusWriter) WriteMessage(m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("marshal status: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(append(b, '\n'))
	return err
}

// ReadStatus calls fn for every status line until r ends. Lines up to 16 MiB are accepted.
func ReadStatus(r io.Reader, fn func(*livekit.EgressInfo)) error {
	return readLines(r, func(b []byte) error {
		info := &livekit.EgressInfo{}
		if err := protojson.Unmarshal(b, info); err != nil {
			return err
		}
		fn(info)
		return nil
	})
}

// ReadIngressStates calls fn for every IngressState line until r ends.
func ReadIngressStates(r io.Reader, fn func(*livekit.IngressState)) error {
	return readLines(r, func(b []byte) error {
		st := &livekit.IngressState{}
		if err := protojson.Unmarshal(b, st); err != nil {
			return err
		}
		fn(st)
		return nil
	})
}

func readLines(r io.Reader, fn func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("%w: %v", ErrBadLine, err)
		}
	}
	return sc.Err()
}

// ReadCommands calls fn for every command line until r ends.
func ReadCommands(r io.Reader, fn func(Command)) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if c := strings.TrimSpace(sc.Text()); c != "" {
			fn(Command(c))
		}
	}
	return sc.Err()
}
