# EventSync container images: one static binary each on a distroless base,
# running as the non-root user 65532. One final stage per binary; pick it
# with --target (`make images` builds all five):
#
#   docker build --target ingest --build-arg VERSION=1.2.0 -t ghcr.io/eventsync/ingest:1.2.0 .
#
# Targets: ingest, store, query, notifier and eventsync (the all-in-one and
# command-line client; also what a build without --target produces).
#
# One Dockerfile with targets rather than one per service: the five binaries
# share the toolchain, the module download layer and pkg/, so one file
# downloads modules once, compiles shared packages once (one build cache)
# and keeps base image, build flags and user identical across the images,
# where five copies would drift. BuildKit builds only the stages a target
# needs, so building one image costs no more than with its own file.
#
# Every module builds with GOWORK=off: each service's go.mod replaces pkg
# with ../../pkg, cmd/eventsync's replaces pkg and the services, so a module
# builds on its own. go.work is not copied: it also lists ./deploy, the
# tests of these deployment files, whose heavy dependencies have no place in
# an image build.
#
# distroless/static rather than scratch: the same size class, plus CA
# certificates (webhooks and Slack over HTTPS, TLS to ClickHouse or SMTP),
# tzdata, /etc/passwd with the nonroot user and a writable /tmp. It has no
# shell, so health checks run `<binary> healthcheck`.

FROM golang:1.26-bookworm AS modules
ENV CGO_ENABLED=0 GOWORK=off
WORKDIR /src
# go.mod and go.sum first: the download layer stays cached until a
# dependency changes.
COPY pkg/go.mod pkg/go.sum pkg/
COPY services/ingest/go.mod services/ingest/go.sum services/ingest/
COPY services/store/go.mod services/store/go.sum services/store/
COPY services/query/go.mod services/query/go.sum services/query/
COPY services/notifier/go.mod services/notifier/go.sum services/notifier/
COPY cmd/eventsync/go.mod cmd/eventsync/go.sum cmd/eventsync/
RUN for m in pkg services/ingest services/store services/query services/notifier cmd/eventsync; do \
        (cd "$m" && go mod download) || exit 1; \
    done
COPY pkg/ pkg/

FROM modules AS build-ingest
COPY services/ingest/ services/ingest/
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd services/ingest && go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ingest ./cmd/ingest

FROM modules AS build-store
COPY services/store/ services/store/
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd services/store && go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/store ./cmd/store

FROM modules AS build-query
COPY services/query/ services/query/
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd services/query && go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/query ./cmd/query

FROM modules AS build-notifier
COPY services/notifier/ services/notifier/
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    cd services/notifier && go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/notifier ./cmd/notifier

FROM modules AS build-eventsync
COPY services/ services/
COPY cmd/eventsync/ cmd/eventsync/
ARG VERSION=dev
# /out/data becomes the all-in-one's data directory, owned by the nonroot
# user: a named volume mounted there starts with that owner.
RUN --mount=type=cache,target=/root/.cache/go-build \
    mkdir -p /out/data && \
    cd cmd/eventsync && go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/eventsync .

FROM gcr.io/distroless/static-debian12:nonroot AS ingest
ARG VERSION=dev
LABEL org.opencontainers.image.title="EventSync ingest" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/eventsync/eventsync"
COPY --from=build-ingest /out/ingest /usr/local/bin/ingest
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ingest"]

FROM gcr.io/distroless/static-debian12:nonroot AS store
ARG VERSION=dev
LABEL org.opencontainers.image.title="EventSync store" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/eventsync/eventsync"
COPY --from=build-store /out/store /usr/local/bin/store
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/store"]

FROM gcr.io/distroless/static-debian12:nonroot AS query
ARG VERSION=dev
LABEL org.opencontainers.image.title="EventSync query" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/eventsync/eventsync"
COPY --from=build-query /out/query /usr/local/bin/query
USER 65532:65532
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/query"]

FROM gcr.io/distroless/static-debian12:nonroot AS notifier
ARG VERSION=dev
LABEL org.opencontainers.image.title="EventSync notifier" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/eventsync/eventsync"
COPY --from=build-notifier /out/notifier /usr/local/bin/notifier
USER 65532:65532
EXPOSE 8083
ENTRYPOINT ["/usr/local/bin/notifier"]

# The all-in-one listens on every interface of the container, so it runs
# with producer authentication (set ADMIN_TOKEN to create producers); its
# embedded NATS server stays on loopback inside the container.
FROM gcr.io/distroless/static-debian12:nonroot AS eventsync
ARG VERSION=dev
LABEL org.opencontainers.image.title="EventSync" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/eventsync/eventsync"
COPY --from=build-eventsync /out/eventsync /usr/local/bin/eventsync
COPY --from=build-eventsync --chown=65532:65532 /out/data /var/lib/eventsync
ENV HTTP_ADDR=:8080 DATA_DIR=/var/lib/eventsync
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/eventsync"]
CMD ["run"]
