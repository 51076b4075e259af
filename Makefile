# rpcbench. `make run` runs the default benchmark, `make test` everything CI runs.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/rpcbench/rpcbench/internal/env.Version=$(VERSION) -X github.com/rpcbench/rpcbench/internal/env.Commit=$(COMMIT)
BIN := bin/rpcbench

# testcontainers settings this project's machines need (see docs in README).
export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_HOST_OVERRIDE := 127.0.0.1

.PHONY: build run brokers run-check test test-deps test-build unit bench bench-vs bench-smoke bench-rocketmq-patched proto images thrift fuzz vet clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rpcbench

# run: the first time, `make brokers` (run at the same time as the build)
# installs Docker and builds the broker images; later it is a no-op.
run:
	@$(MAKE) --no-print-directory -j2 build brokers
	$(BIN) run

# RUN_BROKERS: the brokers the default scenario (scenarios/default.yaml)
# needs; `make run` sets up these alone (nats runs inside rpcbench). `make
# test` sets up all four (.ci/ensure-deps.sh).
RUN_BROKERS := rabbitmq rocketmq
export RUN_BROKERS

# brokers installs and starts what the RabbitMQ and RocketMQ drivers need
# when it is missing (Docker engine, local images; the process sources'
# java and jars where Docker cannot run), skipping what is done.
brokers:
	bash docker/ensure-brokers.sh $(RUN_BROKERS)

# run-check: the set-up is idempotent and `make run` measures every seed
# transport (short cells).
run-check: build
	RPCBENCH_BIN=$(CURDIR)/$(BIN) bash .ci/run-check.sh

# test-deps installs and starts what the tests need when it is missing.
test-deps:
	bash .ci/ensure-deps.sh

# The race detector runs on every package's tests but these:
#  - cmd/rpcbench: its tests run bin/rpcbench (built without -race) as a
#    user does; under -race its own test binary would compile all 1,461
#    packages of every driver a second time, for nothing the tests run;
#  - drivers/gozero and drivers/dubbo: thin adapters over go-zero and
#    Dubbo-go, whose graphs (1,191 and 652 packages) would be compiled again
#    with race instrumentation; their tests still run, without it;
#  - drivers/rocketmq: rocketmq-client-go v2.1.2 races within itself
#    (ResponseFuture: remote_client.go:231 against client.go:591), so the
#    race detector fails its package whatever the driver does.
# On a fresh machine the race build of everything took 476 s of the test
# run; of these packages' dependencies, about half of that.
# TESTFLAGS: more go test flags (make test TESTFLAGS=-v: each test's time).
TESTFLAGS ?=
NORACE_PKGS := /cmd/rpcbench /drivers/gozero /drivers/dubbo /drivers/rocketmq
norace_re := ($(subst $(eval) ,|,$(NORACE_PKGS)))$$
RACE_PKGS = $(shell $(GO) list ./... | grep -v -E '$(norace_re)')
NORACE = $(shell $(GO) list ./... | grep -E '$(norace_re)')

# test: the set-up (network and dpkg bound) runs beside the builds (CPU
# bound): the binary, vet, and the tests' packages.
test:
	@$(MAKE) --no-print-directory -j2 test-deps test-build
	$(MAKE) --no-print-directory run-check
	@# -p 1: the broker tests check deadlines to 100 ms; two packages' brokers
	@# at once on 2 cores (under -race) made calls 185 ms late.
	RPCBENCH_BIN=$(CURDIR)/$(BIN) $(GO) test -p 1 -race -count=1 -timeout 45m $(TESTFLAGS) $(RACE_PKGS)
	RPCBENCH_BIN=$(CURDIR)/$(BIN) $(GO) test -p 1 -count=1 -timeout 30m $(TESTFLAGS) $(NORACE)
	$(MAKE) --no-print-directory bench-smoke
	$(MAKE) fuzz

# test-build compiles, with both cores, every package the tests need (the
# race-instrumented ones too) so that `go test -p 1` later only links:
# under -p 1 its compiles would run one at a time. `go list -export`
# compiles without linking.
test-build: build vet
	$(GO) list -export -race -test -deps $(RACE_PKGS) >/dev/null
	$(GO) list -export -test -deps $(NORACE) >/dev/null

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime 10s ./drivers/tcp/frame
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 10s ./internal/wire
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 10s ./scenarios
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 10s ./results
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeHistogram$$' -fuzztime 10s ./results

# bench-smoke: each direct driver's benchmark against its library's loop,
# once with a few calls (-short): that the benchmarks run, not what they
# measure (`make bench-vs` measures).
VSPLAIN_PKGS := ./drivers/connect ./drivers/http ./drivers/netrpc ./drivers/thrift ./drivers/rpcx ./drivers/dubbo ./drivers/gozero
bench-smoke: build
	RPCBENCH_BIN=$(CURDIR)/$(BIN) $(GO) test -short -count=1 -run '^$$' -bench VsPlain -benchtime 1x $(VSPLAIN_PKGS)

# bench-vs: each direct driver against its library's minimal loop, ten
# paired rounds each (README: "Each direct driver against its library's
# own minimal loop"), each against a responder in a process of its own
# (rpcbench serve); about 10 minutes.
bench-vs: build
	RPCBENCH_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -run '^$$' -bench VsPlain -benchtime 3000x $(VSPLAIN_PKGS)

bench: build
	RPCBENCH_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/runner ./internal/wire ./drivers/... ./report

# The rocketmq benchmarks against rocketmq-client-go with two performance
# defects patched (drivers/rocketmq/testdata/clientpatch): what those defects cost.
bench-rocketmq-patched:
	bash drivers/rocketmq/testdata/clientpatch/bench.sh

images:
	bash docker/build-images.sh

PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.1
proto:
	command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH=$(CURDIR)/bin:$$PATH protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative internal/wire/rpcbench.proto

# thrift regenerates the thrift driver's Go code from its IDL with Debian's
# thrift-compiler (0.17; its output builds against the Go library pinned
# in go.mod), installed when missing.
thrift:
	command -v thrift >/dev/null || { apt-get update -qq && apt-get install -y -qq thrift-compiler; }
	thrift --gen go:package_prefix=github.com/rpcbench/rpcbench/drivers/thrift/,skip_remote \
		-out drivers/thrift drivers/thrift/rpcbench.thrift
	gofmt -w drivers/thrift/benchthrift

clean:
	rm -rf bin
