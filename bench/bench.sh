#!/usr/bin/env bash
# make bench: the hot-path micro-benchmarks, then dnslb against dnsdist in
# front of the same two NSD servers, loaded by dnsperf (bench/proxybench).
# Installs nsd, dnsperf and dnsdist with apt-get when missing (needs root).
#
#   ROUNDS=3 SECONDS_PER_RUN=10 make bench     # the defaults
#   ./bench/bench.sh -profile /tmp/dnslb.pprof # extra flags go to proxybench
#   SCALING="1;0-1" make bench                 # dnslb alone on growing CPU sets
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PATH:/usr/sbin:/sbin"

missing=()
command -v nsd >/dev/null || missing+=(nsd)
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v dnsdist >/dev/null || missing+=(dnsdist)
command -v taskset >/dev/null || missing+=(util-linux)
command -v knotd >/dev/null || missing+=(knot)  # the proxy_v2 variant's backends (PROXY v2)
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "bench: missing ${missing[*]}; run as root to apt-get install them" >&2; exit 1; }
	echo "== installing ${missing[*]} (apt-get)"
	apt-get update -qq
	# policy-rc.d keeps the packages' own services (dnsdist, nsd) from starting
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	rm -f /usr/sbin/policy-rc.d
fi
if [ "$(nproc)" -lt 2 ]; then
	echo "bench: only $(nproc) CPU; the proxy and the load share it and the figures mean little" >&2
fi

echo "== hot-path micro-benchmarks (go test -bench)"
go test -run XXX -bench . -benchmem ./balancer/ | grep -E '^(Benchmark|ok|FAIL)'

echo "== building dnslb"
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -buildvcs=auto -o bin/dnslb ./cmd/dnslb

if [ -n "${SCALING:-}" ]; then
	echo "== dnslb scaling over CPU sets: $SCALING"
	exec go run ./bench/proxybench -rounds "${ROUNDS:-3}" -seconds "${SECONDS_PER_RUN:-10}" -scaling "$SCALING" "$@"
fi
echo "== dnslb vs dnsdist: ${ROUNDS:-3} rounds of ${SECONDS_PER_RUN:-10}s per run (about $(( ${ROUNDS:-3} * 3 * (${SECONDS_PER_RUN:-10} * 3 + 5) / 60 + 1 )) minutes)"
exec go run ./bench/proxybench -rounds "${ROUNDS:-3}" -seconds "${SECONDS_PER_RUN:-10}" "$@"
