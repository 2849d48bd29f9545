#!/usr/bin/env bash
# `make dev`: Redis, livekit-server, MinIO and the worker in the foreground; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${MEDIAWORKER_DEV_DIR:-$PWD/.dev}"
mkdir -p "$STATE/minio" "$STATE/recordings" "$STATE/tmp"
pids=()
# Stop in reverse start order: the worker finalises its jobs while the server and Redis are still up.
cleanup() {
  trap - EXIT INT TERM
  echo; echo "[dev] stopping"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -INT "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

busy() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
for port in 6379 7880 9000 9090 1935; do
  if busy "$port"; then echo "[dev] port $port is in use: stop what holds it (ss -ltnp 'sport = :$port') and retry" >&2; exit 1; fi
done

redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no >"$STATE/redis.log" 2>&1 & pids+=($!)
"$LIVEKIT_SERVER_BIN" --config deploy/dev/livekit.yaml >"$STATE/livekit.log" 2>&1 & pids+=($!)
MINIO_ROOT_USER=minioadmin MINIO_ROOT_PASSWORD=minioadmin "$MINIO_BIN" server --quiet --address 127.0.0.1:9000 \
  --console-address 127.0.0.1:9001 "$STATE/minio" >"$STATE/minio.log" 2>&1 & pids+=($!)
for i in $(seq 100); do busy 9000 && busy 7880 && break; sleep 0.2; done
curl -s -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user minioadmin:minioadmin -X PUT http://127.0.0.1:9000/recordings || true

cat <<MSG

  mediaworker dev stack is up (logs in $STATE/*.log)
    LiveKit     ws://127.0.0.1:7880   api key: devkey   secret: mediaworker-dev-secret-0123456789abcdef
    MinIO (S3)  http://127.0.0.1:9000 minioadmin / minioadmin, bucket "recordings" (force_path_style)
    Worker      http://127.0.0.1:9090/healthz /readyz /metrics /jobs; local files in $STATE/recordings
    RTMP        rtmp://127.0.0.1:1935/x  (ingress: OBS Server = this, Stream Key = the ingress's stream_key)

  Try it: publish a track from a browser (https://meet.livekit.io → custom server) or with any SDK, then
    export LIVEKIT_URL=http://127.0.0.1:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=mediaworker-dev-secret-0123456789abcdef
    lk egress start --type track ...   # or the server SDK's start_track_egress(room_name, track_id, file)
  Ingress: create one (SDK create_ingress(input_type=RTMP_INPUT, room_name=..., participant_identity=...),
    or lk ingress create), then push with OBS or
    ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -c:v libx264 -g 60 -c:a aac \
      -f flv rtmp://127.0.0.1:1935/x/<stream_key>
  Ctrl-C stops everything.

MSG
LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=mediaworker-dev-secret-0123456789abcdef LIVEKIT_WS_URL=ws://127.0.0.1:7880 \
REDIS_ADDR=127.0.0.1:6379 MEDIAWORKER_RTMP_ADDR=127.0.0.1:1935 MEDIAWORKER_LOCAL_OUTPUT_DIR="$STATE/recordings" MEDIAWORKER_TMP_DIR="$STATE/tmp" \
  bin/mediaworker worker & pids+=($!)
wait "${pids[-1]}"
