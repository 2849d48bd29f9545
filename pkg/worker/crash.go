package worker

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"time"
)

// crashWatch reads what a child process's Go runtime writes to ipc.CrashFD when the process dies
// (the crash report of a panic, a fatal error, a fatal signal in native code) and keeps its start,
// so that the job's error says why it ended, not only "exit status 2".
type crashWatch struct {
	done chan struct{} // closed when the report's pipe is closed (the child has exited)

	mu      sync.Mutex
	partial []byte   // the last line, until its newline arrives
	head    string   // the crash's first line ("" until one is seen)
	frames  []string // the crashing goroutine's first frames outside the runtime: "func file:line"
	fn      string   // a function line waiting for its file line
	inStack int      // 0 before the crashing goroutine's stack, 1 in it, 2 after it
}

// watchCrash reads r (our end of the child's ipc.CrashFD) until the child has exited.
func watchCrash(r io.ReadCloser) *crashWatch {
	c := &crashWatch{done: make(chan struct{})}
	go func() {
		_, _ = io.Copy(c, r)
		r.Close()
		close(c.done)
	}()
	return c
}

// maxCrashFrames is how many frames of the crashing goroutine the summary names.
const maxCrashFrames = 3

func (c *crashWatch) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data := append(c.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		c.line(string(data[:i]))
		data = data[i+1:]
	}
	if len(data) > 4096 { // no crash report line is this long
		data = data[:0]
	}
	c.partial = append([]byte(nil), data...)
	return len(p), nil
}

func (c *crashWatch) line(l string) {
	if c.head == "" {
		if isCrashStart(l) {
			c.head = strings.TrimSpace(l)
		}
		return
	}
	if c.inStack == 2 || len(c.frames) >= maxCrashFrames {
		return
	}
	switch {
	case c.inStack == 0:
		if strings.HasPrefix(l, "goroutine ") {
			c.inStack = 1
		}
	case strings.TrimSpace(l) == "":
		c.inStack = 2
	case strings.HasPrefix(l, "\t"):
		if c.fn != "" {
			file, _, _ := strings.Cut(strings.TrimSpace(l), " ")
			c.frames = append(c.frames, c.fn+" "+file)
			c.fn = ""
		}
	default:
		c.fn = ""
		fn := l
		if i := strings.LastIndex(l, "("); i > 0 { // the arguments: "pkg.(*T).f(0x1, ...)"
			fn = l[:i]
		}
		if !strings.HasPrefix(fn, "runtime.") && !strings.Contains(fn, "_Cfunc_") && !strings.HasPrefix(fn, "created by") {
			c.fn = fn
		}
	}
}

// isCrashStart recognises the first line of a Go crash report.
func isCrashStart(l string) bool {
	if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
		return true
	}
	// "SIGSEGV: segmentation violation", "SIGABRT: abort"
	name, rest, ok := strings.Cut(l, ": ")
	return ok && rest != "" && len(name) > 3 && strings.HasPrefix(name, "SIG") && strings.ToUpper(name) == name && !strings.Contains(name, " ")
}

// summary is the crash in one line ("" when none was reported): its first line and where. Called
// once the child has exited, it waits (briefly) for the rest of the report.
func (c *crashWatch) summary() string {
	select {
	case <-c.done:
	case <-time.After(2 * time.Second): // the pipe is held open by something else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head == "" {
		return ""
	}
	s := c.head
	if len(c.frames) > 0 {
		s += " (in " + strings.Join(c.frames, " ← ") + ")"
	}
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}
