package source

import "sync"

// ending is the "this source is over, and why" state every source shares: it ends once, with the
// first reason given.
type ending struct {
	endMu  sync.Mutex // guards ended, reason
	ended  bool
	reason string
	done   chan struct{}
}

func newEnding() ending { return ending{done: make(chan struct{})} }

func (e *ending) end(reason string) {
	e.endMu.Lock()
	defer e.endMu.Unlock()
	if !e.ended {
		e.ended, e.reason = true, reason
		close(e.done)
	}
}

// Done is closed when the source can deliver no more media; Reason says why.
func (e *ending) Done() <-chan struct{} { return e.done }

// Reason says why the source ended.
func (e *ending) Reason() string {
	e.endMu.Lock()
	defer e.endMu.Unlock()
	return e.reason
}
