//go:build tools

// Package tools pins the MinIO server the integration tests run (S3-compatible storage).
package tools

import _ "github.com/minio/minio"
