# mediaworker — `make dev` runs the whole local stack, `make test` runs every test.
SHELL := /bin/bash
GO ?= go
BIN := bin/mediaworker
export LIVEKIT_SERVER_BIN ?= $(HOME)/.cache/mediaworker/tools/livekit-server-v1.13.5/livekit-server
export MINIO_BIN ?= $(HOME)/.cache/mediaworker/tools/minio-7aac2a2c5b7c/minio

.PHONY: deps build test unit integration dev bench vet clean

deps:
	@scripts/install.sh

build:
	$(GO) build -o $(BIN) ./cmd/mediaworker

vet:
	$(GO) vet ./...

unit: build
	$(GO) test -count=1 ./pkg/... ./cmd/... ./test/static/...

# Integration tests start Redis, livekit-server, MinIO and workers on loopback inside a network
# namespace the test binary creates (needs root: unshare -n).
integration: build
	MEDIAWORKER_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -timeout 30m ./test/integration/...

test: deps vet unit integration

dev: deps build
	@scripts/dev.sh

bench: deps build
	MEDIAWORKER_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/bench/... | tee /tmp/mediaworker-bench.txt

clean:
	rm -rf bin
