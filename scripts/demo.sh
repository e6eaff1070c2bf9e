#!/usr/bin/env bash
# make demo: two NSD servers on loopback behind dnslb, queried with dig.
# Installs nsd and dig with apt-get if missing (needs root), cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nsd || ! need dig || ! need curl || ! need bc; then
	echo "== installing nsd and dnsutils (apt-get)"
	[ "$(id -u)" = 0 ] || { echo "demo: run as root, or install nsd and dnsutils first" >&2; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nsd dnsutils curl bc >/dev/null
fi
PATH="$PATH:/usr/sbin"

echo "== building dnslb"
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -buildvcs=auto -o bin/dnslb ./cmd/dnslb

work=$(mktemp -d /tmp/dnslb-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# start_nsd NAME ADDR PORT: an NSD serving example.test with a TXT record
# whoami.example.test naming the server, so we can see who answered.
start_nsd() {
	local name=$1 addr=$2 port=$3 dir="$work/$1"
	mkdir -p "$dir"
	cat >"$dir/example.test.zone" <<ZONE
\$ORIGIN example.test.
\$TTL 300
@      SOA ns1 hostmaster 2026112501 3600 600 86400 300
@      NS  ns1
ns1    A   127.0.0.1
www    A   192.0.2.1
www    AAAA 2001:db8::1
@      MX  10 mail
mail   A   192.0.2.25
whoami TXT "$name"
ZONE
	cat >"$dir/nsd.conf" <<CONF
server:
  ip-address: $addr@$port
  port: $port
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  pidfile: "$dir/nsd.pid"
  xfrdfile: "$dir/xfrd.state"
  zonelistfile: "$dir/zone.list"
  xfrdir: "$dir"
  logfile: "$dir/nsd.log"
  verbosity: 1
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: example.test.
  zonefile: example.test.zone
  provide-xfr: 127.0.0.0/8 NOKEY
CONF
	nsd -d -c "$dir/nsd.conf" &
	pids+=($!)
	eval "pid_$name=$!"
}

# wait_health NAME STATE: poll `dnslb status` until NAME's health is STATE
wait_health() {
	local start=$(date +%s.%N)
	for i in $(seq 100); do
		[ "$(bin/dnslb status -admin 127.0.0.1:9053 2>/dev/null | awk -v n="$1" '$1 == n {print $4}')" = "$2" ] && break
		sleep 0.05
	done
	printf '%s is %s after %.1fs\n' "$1" "$2" "$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo 0)"
}

echo "== starting two NSD backends: ns1 127.0.0.11:5301, ns2 127.0.0.12:5302"
start_nsd ns1 127.0.0.11 5301
start_nsd ns2 127.0.0.12 5302

for be in 127.0.0.11:5301 127.0.0.12:5302; do
	for i in $(seq 50); do
		dig +short +time=1 +tries=1 -p "${be#*:}" @"${be%:*}" example.test SOA >/dev/null 2>&1 && break
		sleep 0.1
	done
done

echo "== starting dnslb -config config.yaml (listens on 127.0.0.1:5300 and [::1]:5300)"
bin/dnslb run -config config.yaml 2>"$work/dnslb.log" &
pids+=($!)

# health checks bring new backends from pending to up after `rise` probes
for i in $(seq 50); do
	[ "$(bin/dnslb status -admin 127.0.0.1:9053 2>/dev/null | awk '$4 == "up"' | wc -l)" = 2 ] && break
	sleep 0.1
done

echo
echo "== dig through the balancer"
dig +noall +answer -p 5300 @127.0.0.1 www.example.test A
dig +noall +answer -p 5300 @::1 www.example.test AAAA
dig +noall +answer +tcp -p 5300 @127.0.0.1 example.test MX
echo "AXFR over TCP through dnslb: $(dig +noall +answer -p 5300 @127.0.0.1 example.test AXFR | wc -l) records"

echo
echo "== 200 queries for whoami.example.test TXT: who answered?"
for i in $(seq 200); do
	dig +short +time=1 +tries=1 -p 5300 @127.0.0.1 whoami.example.test TXT || echo "(no answer)"
done | sort | uniq -c

echo
echo "== dnslb status"
bin/dnslb status -admin 127.0.0.1:9053

echo
echo "== health checks: kill ns2 (SIGTERM); it is marked down, every query goes to ns1"
kill "$pid_ns2"
wait_health ns2 down
for i in $(seq 20); do
	dig +short +time=1 +tries=1 -p 5300 @127.0.0.1 whoami.example.test TXT || echo "(no answer)"
done | sort | uniq -c
echo "== restart ns2: it comes back by itself after rise=2 good probes"
start_nsd ns2 127.0.0.12 5302
wait_health ns2 up
bin/dnslb status -admin 127.0.0.1:9053

echo
echo "== a few metrics from http://127.0.0.1:9053/metrics"
curl -s http://127.0.0.1:9053/metrics 2>/dev/null | grep -E '^dnslb_backend_(queries_total|responses_total|outstanding)' || \
	echo "(curl not installed; see http://127.0.0.1:9053/metrics)"

echo
echo "== dnslb log"
cat "$work/dnslb.log"
echo "== demo done, cleaning up"
