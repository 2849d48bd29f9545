# syntax=docker/dockerfile:1
# mediaworker: build stage (Go + cgo for GStreamer) and a slim runtime with the GStreamer plugins.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY pkg ./pkg
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mediaworker ./cmd/mediaworker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates tini \
      gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
      gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/mediaworker mediaworker \
    && mkdir -p /var/lib/mediaworker/tmp /var/lib/mediaworker/recordings \
    && chown -R mediaworker /var/lib/mediaworker
COPY --from=build /out/mediaworker /usr/local/bin/mediaworker
USER 10001
ENV MEDIAWORKER_HTTP_ADDR=0.0.0.0:9090 \
    MEDIAWORKER_TMP_DIR=/var/lib/mediaworker/tmp \
    MEDIAWORKER_LOCAL_OUTPUT_DIR=/var/lib/mediaworker/recordings
VOLUME ["/var/lib/mediaworker"]
# 9090: health, metrics; 1935: RTMP ingress
EXPOSE 9090 1935
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s CMD ["mediaworker", "healthcheck"]
# tini forwards SIGTERM (drain) and SIGINT (stop all) to the worker and reaps job processes.
ENTRYPOINT ["tini", "--", "mediaworker"]
CMD ["worker"]
