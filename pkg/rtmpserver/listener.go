package rtmpserver

import (
	"errors"
	"net"
	"time"
)

// listener adapts a net.Listener to go-rtmp's Serve loop, which retries every Accept error at
// once, forever, unless its server was closed: a listener closed by someone else, or one out
// of file descriptors, would spin a core. Temporary errors back off like net/http; any other
// error stops the go-rtmp server so its Serve returns.
type listener struct {
	net.Listener
	done <-chan struct{} // the Server's: closed by Server.Close
	stop func()          // closes the go-rtmp server wrapping this listener
	err  error           // the error that ended Accept; read after Serve returns
}

func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		nc, err := l.Listener.Accept()
		if err == nil {
			return nc, nil
		}
		if !isTemporary(err) {
			l.err = err
			l.stop()
			return nil, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			l.err = ErrServerClosed
			l.stop()
			return nil, ErrServerClosed
		}
	}
}

// isTemporary reports EMFILE, ECONNABORTED and the like. net.Error.Temporary is deprecated
// for callers guessing about I/O errors, but it is still what Accept errors use for this.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
