package rtmpserver

import (
	"io"
	"strings"

	"github.com/sirupsen/logrus"
)

// newRTMPLogger gives go-rtmp a logrus logger that prints nothing and hands each error
// entry to onError. go-rtmp reports why it dropped a connection (bad handshake, undecodable
// chunk, recovered panic) only through its logger, as "Server closed by error: Err = %+v".
func newRTMPLogger(onError func(msg string)) logrus.FieldLogger {
	l := logrus.New()
	l.Out = io.Discard
	l.Level = logrus.ErrorLevel // go-rtmp logs every message at Info; skip formatting them
	l.AddHook(errorHook(onError))
	return l
}

type errorHook func(msg string)

func (errorHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.ErrorLevel, logrus.FatalLevel, logrus.PanicLevel}
}

func (h errorHook) Fire(e *logrus.Entry) error {
	h(errorSummary(e.Message))
	return nil
}

// errorSummary turns a pkg/errors "%+v" dump (messages interleaved with stack frames, innermost
// cause first) into one line, outermost message first: "Failed to handshake: EOF".
func errorSummary(dump string) string {
	dump = strings.TrimPrefix(dump, "Server closed by error: Err = ")
	lines := strings.Split(dump, "\n")
	var msgs []string
	for i, l := range lines {
		isFrame := strings.HasPrefix(l, "\t") || (i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t"))
		if !isFrame && strings.TrimSpace(l) != "" {
			msgs = append(msgs, l)
		}
	}
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	return strings.Join(msgs, ": ")
}
