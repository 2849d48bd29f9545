package worker

import (
	"io"
	"testing"
)

func TestCrashWatch(t *testing.T) {
	const report = `{"level":"INFO","msg":"recording"}
SIGSEGV: segmentation violation
PC=0x7f895c0e2b38 m=4 sigcode=1 addr=0x118
signal arrived during cgo execution

goroutine 29 gp=0x273480283860 m=4 mp=0x27348020f808 [syscall]:
runtime.cgocall(0x638f20, 0x27348021bcd8)
	/usr/local/go/src/runtime/cgocall.go:167 +0x4b fp=0x27348021bcb0 sp=0x27348021bc78 pc=0x4ab24b
github.com/go-gst/go-gst/gst._Cfunc_gst_element_set_state(0x214d5450, 0x1)
	_cgo_gotypes.go:7884 +0x46 fp=0x27348021bcd8 sp=0x27348021bcb0 pc=0x5adec6
github.com/go-gst/go-gst/gst.(*Element).SetState(0x273480324a80?, 0x1)
	/root/go/pkg/mod/github.com/go-gst/go-gst@v1.4.0/gst/gst_element.go:527 +0x4c fp=0x27348021bd28 sp=0x27348021bcd8 pc=0x5bae0c
github.com/mediaworker/mediaworker/pkg/pipeline.(*graph).stop(0x2734803a6090)
	/work/main/pkg/pipeline/pipeline.go:258 +0x7d fp=0x27348021bd50 sp=0x27348021bd28 pc=0x61679d
github.com/mediaworker/mediaworker/pkg/pipeline.(*graph).drain(0x2734803a6090, 0x12a05f200, 0x0)
	/work/main/pkg/pipeline/pipeline.go:229 +0x266 fp=0x27348021be30 sp=0x27348021bd50 pc=0x616486
github.com/mediaworker/mediaworker/pkg/pipeline.(*graph).finishLinger(0x2734803a6090, 0x12a05f200, 0x0)
	/work/main/pkg/pipeline/pipeline.go:214 +0x125 fp=0x27348021bed8 sp=0x27348021be30 pc=0x6161c5

goroutine 1 gp=0x2734801d01e0 m=nil [chan receive]:
main.main()
	/work/main/cmd/mediaworker/main.go:10
`
	r, w := io.Pipe()
	c := watchCrash(r)
	// Written in uneven pieces, as a pipe delivers it.
	for i := 0; i < len(report); i += 37 {
		_, _ = io.WriteString(w, report[i:min(i+37, len(report))])
	}
	w.Close()
	want := "SIGSEGV: segmentation violation (in github.com/go-gst/go-gst/gst.(*Element).SetState /root/go/pkg/mod/github.com/go-gst/go-gst@v1.4.0/gst/gst_element.go:527" +
		" ← github.com/mediaworker/mediaworker/pkg/pipeline.(*graph).stop /work/main/pkg/pipeline/pipeline.go:258" +
		" ← github.com/mediaworker/mediaworker/pkg/pipeline.(*graph).drain /work/main/pkg/pipeline/pipeline.go:229)"
	if got := c.summary(); got != want {
		t.Fatalf("summary\n got %s\nwant %s", got, want)
	}

	c = &crashWatch{done: closed()}
	_, _ = io.WriteString(c, "panic: runtime error: index out of range [3] with length 3\n\ngoroutine 7 [running]:\nmain.f(...)\n\t/x/main.go:5 +0x1d\n")
	if got := c.summary(); got != "panic: runtime error: index out of range [3] with length 3 (in main.f /x/main.go:5)" {
		t.Fatalf("panic summary %q", got)
	}
	c = &crashWatch{done: closed()}
	_, _ = io.WriteString(c, `{"level":"ERROR","msg":"SIGNAL: not a crash"}`+"\nSIGTERM received: stopping\n")
	if got := c.summary(); got != "" {
		t.Fatalf("ordinary log lines taken for a crash: %q", got)
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
