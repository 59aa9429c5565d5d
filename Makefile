# EventSync. Every target works from a fresh clone with only Go installed
# (the ClickHouse tests need a server: see .ci/run).

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
MODULES := $(shell go list -m -f '{{.Dir}}')
PKGS    := $(addsuffix /...,$(MODULES))
LDFLAGS := -s -w -X main.version=$(VERSION)
BINS    := ./cmd/eventsync ./services/ingest/cmd/ingest ./services/store/cmd/store ./services/query/cmd/query ./services/notifier/cmd/notifier

.PHONY: run build test fuzz lint bench tidy images

## run: EventSync all-in-one (embedded NATS and store) on 127.0.0.1:8080
run:
	go run ./cmd/eventsync run

## build: static binaries into ./bin
build:
	mkdir -p bin
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/ $(BINS)

## test: every test of every module (ClickHouse tests run when EVENTSYNC_TEST_CLICKHOUSE_URL is set), then the fuzz targets
test:
	go test -count=1 -timeout 15m $(PKGS)
	$(MAKE) fuzz

# Fuzz targets as package:Target; go test fuzzes one target per run.
FUZZ     := pkg/event:FuzzParseBody pkg/event:FuzzParseBodyRoundTrip pkg/subject:FuzzValidatePattern pkg/subject:FuzzSplitTag pkg/subject:FuzzRegexp pkg/auth:FuzzParseAuthorization
# A number of executions rather than a duration: when a -fuzztime duration
# runs out while the fuzzer minimizes a new input, go test reports
# "context deadline exceeded" as a failure. 20000 runs take 2-5 s a target.
FUZZTIME ?= 20000x

## fuzz: run each fuzz target FUZZTIME (default 20000 executions); a failing input is saved under the package's testdata/fuzz
fuzz:
	@set -e; for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "go test -run='^$$' -fuzz='^$$name\$$' -fuzztime=$(FUZZTIME) ./$$pkg"; \
		go test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) ./$$pkg; \
	done

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)

## bench: end-to-end load test of the all-in-one (and ClickHouse when CLICKHOUSE_URL is set), then publish and ingest on one NATS server (R1) against a three-node cluster (R3)
bench:
	go run ./cmd/eventsync bench --target all
	go test -run '^$$' -bench Cluster -benchtime 50000x -count 3 ./cmd/eventsync/internal/cluster

tidy:
	for m in $(MODULES); do (cd $$m && go mod tidy); done

# Image names match the Kubernetes manifests: ghcr.io/eventsync/<binary>:<version>.
IMAGE_PREFIX ?= ghcr.io/eventsync/
IMAGES       := ingest store query notifier eventsync

## images: container images $(IMAGE_PREFIX)<binary>:$(VERSION) of every binary (needs a Docker engine)
images:
	@command -v docker >/dev/null || { echo "make images: docker is not installed" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine answers (docker info failed): start one, or point DOCKER_HOST at one" >&2; exit 1; }
	@set -e; for i in $(IMAGES); do \
		echo "docker build --target $$i -t $(IMAGE_PREFIX)$$i:$(VERSION) --build-arg VERSION=$(VERSION) ."; \
		docker build --target $$i -t $(IMAGE_PREFIX)$$i:$(VERSION) --build-arg VERSION=$(VERSION) .; \
	done
