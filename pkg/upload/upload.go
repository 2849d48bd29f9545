// Package upload stores finished outputs in object storage or on local disk.
package upload

import (
	"context"
	"errors"
)

// Errors a store can return; wrapped with details.
var (
	// ErrPermanent marks a failure that retrying cannot fix (credentials, missing bucket, bad config).
	ErrPermanent = errors.New("storage refused")
	// ErrUnavailable marks a failure that may pass (endpoint down, timeouts).
	ErrUnavailable = errors.New("storage unavailable")
)

// Store puts a local file somewhere durable.
type Store interface {
	// Check verifies the destination is usable (credentials, bucket) before anything is recorded.
	Check(ctx context.Context) error
	// Upload copies localPath to storagePath and returns where it went and how many bytes.
	Upload(ctx context.Context, localPath, storagePath, contentType string) (location string, size int64, err error)
}
