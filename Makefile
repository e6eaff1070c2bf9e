# dnslb — see README.md. `make help` lists the targets.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
GO ?= go

.PHONY: help build demo test test-short lint fuzz bench soak scale clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/dnslb (static, CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -ldflags "$(LDFLAGS)" -o bin/dnslb ./cmd/dnslb

demo: ## run two NSD backends + dnslb on loopback and query them (installs nsd/dig if missing)
	./scripts/demo.sh

test: ## go vet, then every test with the race detector, fuzz seeds and past finds replayed (as root: the netns/peer integration tests too)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 45m ./...

test-short: ## unit tests only: no root, no network namespace, no peer process, nothing over a second (< 30 s)
	$(GO) test -short -count=1 ./...

lint: ## go vet, gofmt and staticcheck (fetched through the Go module proxy)
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# FUZZ lists the fuzz targets as package:Target. FuzzTCPFraming is last: it
# opens thousands of TCP connections (their TIME_WAIT sockets are
# SO_REUSEADDR, so listeners can still bind those ports).
FUZZ := ./internal/dnswire/:FuzzCheck ./balancer/:FuzzParseQuery ./balancer/:FuzzParseAnswer \
	./healthcheck/:FuzzJudge ./bgp/:FuzzJudge ./config/:FuzzParse ./vrrp/:FuzzUnmarshal ./notifydup/:FuzzParseMessage \
	./balancer/:FuzzTCPFraming

fuzz: ## open-ended fuzzing, FUZZTIME per target (default 2m); a failing input lands in testdata/fuzz/: commit it as a seed
	@set -e; for t in $(FUZZ); do \
		echo "== $${t#*:} ($${t%%:*}) for $(or $(FUZZTIME),2m)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(or $(FUZZTIME),2m) "$${t%%:*}"; \
	done

bench: ## micro-benchmarks, then dnslb vs dnsdist with dnsperf (root; installs nsd/dnsperf/dnsdist; ~6 min)
	./bench/bench.sh

soak: ## 5-minute soak in network namespaces (root): VRRP pair, query stream, backend kills, reloads, fail-overs (SOAK=10m for longer)
	DNSLB_SOAK_DURATION=$(or $(SOAK),5m) $(GO) test -tags soak -count=1 -run TestSoak -v -timeout 30m ./test/integration/

scale: build ## NOTIFY storm across N zones (default 100000; root, netns, NSD+Knot; docs/performance.md "NOTIFY storms"); REPORT=file appends the figures
	DNSLB_IT_BINARY=$(CURDIR)/bin/dnslb DNSLB_STORM_N=$(or $(N),100000) DNSLB_STORM_REPORT=$(REPORT) \
		$(GO) test -count=1 -run '^TestNotifyStorm$$' -v -timeout $$(( 20 + $(or $(N),100000) / 4000 ))m ./test/integration/

clean: ## remove build output
	rm -rf bin
