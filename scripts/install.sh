#!/usr/bin/env bash
# Installs what `make dev` / `make test` need and is missing: Debian packages, Go modules, and the
# pinned test servers (livekit-server, MinIO) built from the Go module proxy into a cache outside
# the repo, keyed by version, so a second run is instant.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${MEDIAWORKER_CACHE:-$HOME/.cache/mediaworker}/tools"
LIVEKIT_VERSION=v1.13.5
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # as pinned in test/tools/minio/go.mod (the module has no release tags)
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0
APT_PACKAGES=(redis-server ffmpeg iproute2 util-linux ca-certificates pkg-config gcc
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav)

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "Go 1.26 is required (https://go.dev/dl); it is not on PATH" >&2; exit 1; }
log "go modules"
go mod download

lk="$CACHE/livekit-server-$LIVEKIT_VERSION/livekit-server"
if [ ! -x "$lk" ]; then
  log "building livekit-server $LIVEKIT_VERSION (≈1.5 min warm, longer cold) into $lk"
  mkdir -p "$(dirname "$lk")"
  (cd test/tools && go mod download && go build -o "$lk.tmp" github.com/livekit/livekit-server/cmd/server)
  mv "$lk.tmp" "$lk"
fi

mi="$CACHE/minio-${MINIO_VERSION##*-}/minio"
if [ ! -x "$mi" ]; then
  log "building MinIO $MINIO_VERSION (pinned in test/tools/minio; ≈4–8 min cold) into $mi"
  mkdir -p "$(dirname "$mi")"
  (cd test/tools/minio && go build -o "$mi.tmp" github.com/minio/minio)
  mv "$mi.tmp" "$mi"
fi
gcs="$CACHE/fake-gcs-server-$FAKE_GCS_VERSION/fake-gcs-server"
if [ ! -x "$gcs" ]; then
  log "building fake-gcs-server $FAKE_GCS_VERSION (≈1 min) into $gcs"
  mkdir -p "$(dirname "$gcs")"
  GOBIN="$(dirname "$gcs")" go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
fi

az="$CACHE/azurite-$AZURITE_VERSION"
if [ ! -x "$az/node_modules/.bin/azurite-blob" ]; then
  command -v npm >/dev/null || { echo "Node.js 20 and npm are required for the Azure emulator (Azurite)" >&2; exit 1; }
  log "installing Azurite $AZURITE_VERSION (npm) into $az"
  mkdir -p "$az"
  (cd "$az" && npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null)
fi
log "ready: livekit-server, MinIO, fake-gcs-server, Azurite under $CACHE"
