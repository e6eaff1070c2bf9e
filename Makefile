# dnslb — see README.md. `make help` lists the targets.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
GO ?= go

.PHONY: help build demo test test-short lint fuzz bench soak clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/dnslb (static, CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/dnslb ./cmd/dnslb

demo: ## run two NSD backends + dnslb on loopback and query them (installs nsd/dig if missing)
	./scripts/demo.sh

test: ## go vet, all tests with the race detector (integration tests need root, nsd, dig, kdig, iproute2), then each fuzz target for 10s
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz FUZZTIME=$(or $(FUZZTIME),10s)

test-short: ## unit tests only (no root, no NSD)
	$(GO) test -short -count=1 ./...

lint: ## go vet, gofmt and staticcheck (fetched through the Go module proxy)
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	$(GO) test -run XXX -fuzz FuzzParseQuery -fuzztime $(or $(FUZZTIME),20s) ./balancer/
	$(GO) test -run XXX -fuzz FuzzParseAnswer -fuzztime $(or $(FUZZTIME),20s) ./balancer/
	$(GO) test -run XXX -fuzz FuzzJudge -fuzztime $(or $(FUZZTIME),20s) ./healthcheck/
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime $(or $(FUZZTIME),20s) ./config/
	$(GO) test -run XXX -fuzz FuzzUnmarshal -fuzztime $(or $(FUZZTIME),20s) ./vrrp/
	$(GO) test -run XXX -fuzz FuzzParseFrame -fuzztime $(or $(FUZZTIME),20s) ./notifydup/
	@# last: it opens thousands of TCP connections (their TIME_WAIT sockets
	@# are SO_REUSEADDR, so listeners can still bind those ports)
	$(GO) test -run XXX -fuzz FuzzTCPFraming -fuzztime $(or $(FUZZTIME),20s) ./balancer/

bench: ## micro-benchmarks, then dnslb vs dnsdist with dnsperf (root; installs nsd/dnsperf/dnsdist; ~6 min)
	./bench/bench.sh

soak: ## 5-minute soak in network namespaces (root): VRRP pair, query stream, backend kills, reloads, fail-overs (SOAK=10m for longer)
	DNSLB_SOAK_DURATION=$(or $(SOAK),5m) $(GO) test -tags soak -count=1 -run TestSoak -v -timeout 30m ./test/integration/

clean: ## remove build output
	rm -rf bin
