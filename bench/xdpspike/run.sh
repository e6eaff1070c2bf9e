#!/usr/bin/env bash
# bench/xdpspike/run.sh: the AF_XDP spike of issue 19 (docs/performance.md,
# section "AF_XDP"). Needs root and 2 CPUs.
#
# Topology (single arm, like a load balancer on one interface):
#
#   ns xdpspk-c  kxdpgun   xsc0 10.97.53.10 -+
#   ns xdpspk-p  proxy     xsp0 10.97.53.53 -+- br0 in ns xdpspk-w
#   ns xdpspk-b  knotd XDP xsb0 10.97.53.2  -+
#
# The proxy (CPU 1) forwards queries for 10.97.53.53:53 to 10.97.53.2:53 and
# the answers back, on its one interface. Load generator and backend both
# run over AF_XDP (kxdpgun, knotd's XDP mode) on CPU 0. Every veth runs its
# receive path in a threaded NAPI poller; the proxy's (napi/xsp0-*) is
# pinned to CPU 1 with the proxy, all others to CPU 0, so CPU 1 does the
# proxy's work and nothing else.
#
# For each round and each forwarder (xdp, sock-raw, sock-xnet, order
# rotating), kxdpgun at fixed rates (RATES, qps) and as fast as it goes
# (MAXRATE). `xdpspike measure` takes the counters and CPU times over
# SECS seconds after WARMUP; `xdpspike report` prints the tables. With
# PERF=1, a last max-rate run of each forwarder is profiled on CPU 1.
#
#   ROUNDS=4 SECS=8 RATES="10000 25000" bench/xdpspike/run.sh
set -euo pipefail

ROUNDS=${ROUNDS:-4}
SECS=${SECS:-8}
WARMUP=${WARMUP:-2}
RATES=${RATES:-"10000 25000"} # fixed offered loads (qps), below the forwarders' saturation
MAXRATE=${MAXRATE:-4000000}
VARIANTS=${VARIANTS:-"xdp sock-raw sock-xnet"}
PERF=${PERF:-1}
XDPFWD_ARGS=${XDPFWD_ARGS:-} # extra flags for xdpspike xdpfwd, e.g. "-frames 4096 -ring 2048"
# Other work shares these 2 CPUs: the measured processes and their NAPI
# threads run at this nice level (CFS weight ~88x a nice-0 task at -20).
NICE=${NICE:--20}
OUT=${OUT:-$(mktemp -d /tmp/xdpspike.XXXXXX)}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."

NSC=xdpspk-c NSW=xdpspk-w NSP=xdpspk-p NSB=xdpspk-b
IPC=10.97.53.10 IPP=10.97.53.53 IPB=10.97.53.2
MACC=02:97:53:00:00:10 MACP=02:97:53:00:00:53 MACB=02:97:53:00:00:02

PIDS=()
cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$pid" 2>/dev/null
	done
	for ns in $NSC $NSP $NSB $NSW; do
		ip netns del "$ns" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "run.sh needs root" >&2; exit 1; }
need=()
command -v kxdpgun >/dev/null || need+=(knot-dnsutils)
command -v knotd >/dev/null || need+=(knot)
command -v ethtool >/dev/null || need+=(ethtool)
if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then need+=(linux-perf); fi
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	systemctl disable --now knot 2>/dev/null || true
fi

go build -o "$OUT/xdpspike" ./bench/xdpspike
X=$OUT/xdpspike

# --- topology ---------------------------------------------------------
for ns in $NSC $NSP $NSB $NSW; do ip netns del "$ns" 2>/dev/null || true; done
for ns in $NSC $NSP $NSB $NSW; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
# nf_call_*: the kernel has bridge netfilter built in; keep iptables out
# of the bridge.
ip -n $NSW link add br0 type bridge forward_delay 0 mcast_snooping 0 stp_state 0 \
	nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0
ip -n $NSW link set br0 up
# veth NAME(in NS) PEER(in xdpspk-w) MAC IP
veth() {
	ip link add "$1" netns "$2" address "$3" type veth peer name "$5" netns $NSW
	ip -n "$2" addr add "$4/24" dev "$1"
	ip -n $NSW link set "$5" master br0
	for end in "$2:$1" "$NSW:$5"; do
		# GRO on: veth receives in a NAPI poller even without XDP;
		# threaded: that poller is a kernel thread we can pin and measure.
		# TSO off: veth_xmit hands a UDP skb to the peer's NAPI only if the
		# sending veth has no TSO; otherwise it goes through netif_rx and
		# the receiver's whole path (bridge, the next veth, the peer's XDP)
		# runs in the sender's softirq, i.e. would be charged to the proxy.
		ip netns exec "${end%%:*}" ethtool -K "${end#*:}" gro on tso off >/dev/null
		ip -n "${end%%:*}" link set "${end#*:}" up
	done
	for end in "$2:$1" "$NSW:$5"; do
		ip netns exec "${end%%:*}" sh -c "echo 1 > /sys/class/net/${end#*:}/threaded"
	done
}
veth xsc0 $NSC $MACC $IPC xsw-c
veth xsp0 $NSP $MACP $IPP xsw-p
veth xsb0 $NSB $MACB $IPB xsw-b
# Static bridge entries and no flooding of unknown unicast: without them
# the bridge floods the client's first frames to every port, and knotd's XDP
# program (which matches the port only) would answer queries meant for the
# proxy.
for p in c:$MACC p:$MACP b:$MACB; do
	bridge -n $NSW fdb replace "${p#*:}" dev "xsw-${p%%:*}" master static
	bridge -n $NSW link set dev "xsw-${p%%:*}" flood off mcast_flood off learning off
done
# Static neighbours: no ARP in the measurements.
ip -n $NSC neigh replace $IPP lladdr $MACP dev xsc0 nud permanent
ip -n $NSP neigh replace $IPC lladdr $MACC dev xsp0 nud permanent
ip -n $NSP neigh replace $IPB lladdr $MACB dev xsp0 nud permanent
ip -n $NSB neigh replace $IPP lladdr $MACP dev xsb0 nud permanent
ip -n $NSB neigh replace $IPC lladdr $MACC dev xsb0 nud permanent

# pin_napi: the proxy's veth poller on CPU 1, all the others on CPU 0, at
# the same nice level as the processes (a NIC's softirq work, when there
# is more than a little, also ends in ksoftirqd, an ordinary task; at
# SCHED_FIFO a poller that is never idle starves the forwarder behind
# it: receive livelock). NAPI threads come and go with XDP attachments,
# so this runs after each start.
pin_napi() {
	local f pid comm
	for f in /proc/[0-9]*/comm; do
		{ read -r comm <"$f"; } 2>/dev/null || continue
		pid=${f#/proc/}
		pid=${pid%/comm}
		case "$comm" in
		napi/xsp0-*) taskset -pc 1 "$pid" >/dev/null && renice -n "$NICE" -p "$pid" >/dev/null ;;
		napi/xsc0-* | napi/xsb0-* | napi/xsw-*) taskset -pc 0 "$pid" >/dev/null && renice -n "$NICE" -p "$pid" >/dev/null ;;
		esac
	done
}

# --- backend: knotd answering over XDP on xsb0, CPU 0 -------------------
mkdir -p "$OUT/knot"
cat >"$OUT/knot/bench.test.zone" <<EOF
\$ORIGIN bench.test.
\$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A $IPB
www A 192.0.2.1
www AAAA 2001:db8::1
mail A 192.0.2.25
@ MX 10 mail
EOF
cat >"$OUT/knot/knot.conf" <<EOF
server:
    rundir: "$OUT/knot"
    listen: $IPB@53
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
xdp:
    listen: xsb0@53
    udp: on
database:
    storage: "$OUT/knot"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$OUT/knot"
zone:
  - domain: bench.test
    file: bench.test.zone
EOF
printf '%s\n' "www.bench.test. A" "www.bench.test. AAAA" "bench.test. MX" "mail.bench.test. A" "nx.bench.test. A" >"$OUT/queries.txt"
ip netns exec $NSB nice -n "$NICE" taskset -c 0 knotd -c "$OUT/knot/knot.conf" >"$OUT/knot/knotd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do ip -n $NSB link show xsb0 | grep -q 'xdp' && break; sleep 0.2; done
ip -n $NSB link show xsb0 | grep -q 'xdp' || { cat "$OUT/knot/knotd.log"; echo "knotd did not attach XDP to xsb0" >&2; exit 1; }
# kxdpgun needs its own XDP program on xsc0 only while it runs; it attaches it.
if [ "${HOLD:-}" = 1 ]; then
	echo "topology up; holding for debugging (kill $$ to clean up)" >&2
	sleep infinity &
	PIDS+=($!)
	wait $!
fi

# --- forwarders ------------------------------------------------------
PROXY=
start_proxy() {
	local v=$1
	rm -f "$OUT/stats"
	case $v in
	xdp) ip netns exec $NSP nice -n "$NICE" taskset -c 1 "$X" xdpfwd -iface xsp0 -ip $IPP -backend $IPB -backend-mac $MACB -stats "$OUT/stats" $XDPFWD_ARGS >"$OUT/proxy-$v.log" 2>&1 & ;;
	sock-raw) ip netns exec $NSP nice -n "$NICE" taskset -c 1 "$X" sockfwd -io raw -ip $IPP -backend $IPB -stats "$OUT/stats" >"$OUT/proxy-$v.log" 2>&1 & ;;
	sock-xnet) ip netns exec $NSP nice -n "$NICE" taskset -c 1 "$X" sockfwd -io xnet -ip $IPP -backend $IPB -stats "$OUT/stats" >"$OUT/proxy-$v.log" 2>&1 & ;;
	esac
	PROXY=$!
	PIDS+=("$PROXY")
	for _ in $(seq 50); do [ -s "$OUT/stats" ] && break; sleep 0.1; done
	sleep 0.5
	kill -0 "$PROXY" || { cat "$OUT/proxy-$v.log"; exit 1; }
	pin_napi
}
stop_proxy() {
	kill "$PROXY" 2>/dev/null || true
	wait "$PROXY" 2>/dev/null || true
	PROXY=
	pin_napi
}

# run_load ROUND VARIANT LOAD QPS [perf]: kxdpgun on CPU 0 for the window,
# one JSON line to results.jsonl.
run_load() {
	local round=$1 v=$2 load=$3 qps=$4 tag="$1-$2-$3" perflog= perfpid=
	ip netns exec $NSC nice -n "$NICE" taskset -c 0 kxdpgun -t $((WARMUP + SECS + 4)) -Q "$qps" -F 0 -I xsc0 \
		-l $IPC -L $MACC -R $MACP -i "$OUT/queries.txt" $IPP >"$OUT/gun-$tag.log" 2>&1 &
	local gun=$!
	PIDS+=("$gun")
	if [ "${5:-}" = perf ]; then
		perflog="$OUT/perf-$v.txt"
		(sleep "$WARMUP"; perf record -q -e cpu-clock -C 1 -g -o "$OUT/perf-$v.data" -- sleep "$SECS" >/dev/null 2>&1) &
		perfpid=$!
		PIDS+=("$perfpid")
	fi
	# measure samples at SCHED_FIFO so that both ends of the window are
	# taken on time on a busy machine (it sleeps in between).
	chrt -f 60 "$X" measure -stats "$OUT/stats" -pids "$PROXY" -comm napi/xsp0- -warmup "${WARMUP}s" -dur "${SECS}s" -alive "$gun" \
		-round "$round" -variant "$v" -load "$load" -offered "$qps" -gun-log "$OUT/gun-$tag.log" -perf-log "$perflog" >>"$OUT/results.jsonl"
	wait "$gun" || true
	if [ -n "$perflog" ]; then
		wait "$perfpid" || true
		perf report -i "$OUT/perf-$v.data" --no-children --sort comm,sym --stdio 2>/dev/null | grep -v '^#' | grep -E '^ +[0-9]' | head -25 >"$perflog" || true
	fi
}

: >"$OUT/results.jsonl"
# Rotate the order of the forwarders between rounds.
read -r -a vs <<<"$VARIANTS"
for round in $(seq "$ROUNDS"); do
	for i in "${!vs[@]}"; do
		v=${vs[$(((i + round - 1) % ${#vs[@]}))]}
		echo "round $round: $v" >&2
		start_proxy "$v"
		for rate in $RATES; do
			run_load "$round" "$v" "fixed-$((rate / 1000))k" "$rate"
		done
		run_load "$round" "$v" max "$MAXRATE"
		stop_proxy
	done
done
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
	for v in "${vs[@]}"; do
		echo "profile: $v" >&2
		start_proxy "$v"
		run_load 0 "$v" max "$MAXRATE" perf
		stop_proxy
	done
fi
"$X" report "$OUT/results.jsonl" | tee "$OUT/report.md"
echo "raw results in $OUT" >&2
