// Package stack starts the real servers an integration test needs — Redis, livekit-server, MinIO,
// the mediaworker binary — on loopback inside a network namespace of the test run's own.
package stack

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// NodeIP is the address WebRTC media uses inside the test namespace. pion gathers no loopback
// candidates, so the namespace gets a veth pair whose end mw0 has this private address; it exists only
// inside the namespace, so no packet can leave the test.
const NodeIP = "10.200.0.1"

const envInNetns = "MEDIAWORKER_TEST_NETNS"

// RunInNetns re-executes the test binary inside a new network namespace (unshare -n) with lo and a
// veth pair up, and returns its exit code; it returns -1 if we are already inside one.
// Call it first in TestMain.
func RunInNetns(m *testing.M) int {
	if os.Getenv(envInNetns) == "1" {
		return -1
	}
	script := `set -e
ip link set lo up
ip link add mw0 type veth peer name mw1
ip addr add ` + NodeIP + `/24 dev mw0
ip link set mw1 up
ip link set mw0 up
exec "$0" "$@"`
	args := append([]string{"-n", "--", "/bin/sh", "-c", script}, os.Args...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), envInNetns+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "cannot create the test network namespace (needs root and iproute2: unshare -n, ip link add type veth): %v\n", err)
		return 1
	}
	return 0
}

// Main is TestMain for packages that run the stack: re-exec inside the namespace, then run.
func Main(m *testing.M) {
	if code := RunInNetns(m); code >= 0 {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
