//go:build tools

// Package tools pins the test servers the integration tests run:
// livekit-server and MinIO, built from the Go module proxy.
package tools

import (
	_ "github.com/livekit/livekit-server/cmd/server"
)
