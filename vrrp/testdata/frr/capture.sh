#!/bin/bash
# usage: capture.sh NAME /abs/path/vrrpd.conf   (as root; needs Debian package frr; writes NAME.pcap and logs to $OUT)
# Runs FRR 8.4.4 zebra + vrrpd with vrrpd.conf in a throw-away netns (veth pair d0/d1, as in
# ../keepalived/capture.sh) with the macvlan vrrpd needs (MAC 00:00:5e:00:01:33 for VRID 51,
# holding the VIP) and captures VRRP on d0 for ~6 s.
set -u
name=$1 conf=$2
dir=${OUT:-$PWD}
ns=vrrpfx-$$
run=$dir/frr-run-$$
zpid= vpid= tpid=
cleanup() {
  for p in $vpid $zpid; do kill -TERM "$p" 2>/dev/null; done; sleep 1
  for p in $vpid $zpid; do kill -KILL "$p" 2>/dev/null; done
  [ -n "$tpid" ] && kill -INT "$tpid" 2>/dev/null && sleep 0.5
  [ -n "$tpid" ] && kill -KILL "$tpid" 2>/dev/null
  ip netns pids "$ns" 2>/dev/null | while read p; do echo "leftover pid $p in $ns"; kill -KILL "$p"; done
  ip netns del "$ns" 2>/dev/null
  rm -rf "$run"
}
trap cleanup EXIT
mkdir -p "$run"; chmod 777 "$run"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add d0 address 02:00:5e:99:00:01 type veth peer name d1 address 02:00:5e:99:00:02
ip netns exec "$ns" sysctl -qw net.ipv6.conf.d0.accept_dad=0
ip netns exec "$ns" sysctl -qw net.ipv6.conf.d1.accept_dad=0
ip -n "$ns" link set d1 up
ip -n "$ns" link set d0 up
ip -n "$ns" addr add 10.99.0.1/24 dev d0
ip -n "$ns" -6 addr add fd00:99::1/64 dev d0 nodad
ip -n "$ns" link add vrrp4-51 link d0 type macvlan mode bridge
ip -n "$ns" link set vrrp4-51 address 00:00:5e:00:01:33
ip -n "$ns" addr add 10.99.0.100/24 dev vrrp4-51
ip -n "$ns" link set vrrp4-51 up
sleep 0.3
ip netns exec "$ns" tcpdump -Z root -U -i d0 -w "$dir/$name.pcap" 'ip proto 112 or ip6 proto 112' >"$dir/$name.tcpdump.log" 2>&1 &
tpid=$!
sleep 1
touch "$run/zebra.conf"
ip netns exec "$ns" /usr/lib/frr/zebra -f "$run/zebra.conf" -i "$run/zebra.pid" -z "$run/zserv.api" --vty_socket "$run" -A 127.0.0.1 -P 0 --log stdout >"$dir/$name.zebra.log" 2>&1 &
zpid=$!
sleep 1.5
ip netns exec "$ns" /usr/lib/frr/vrrpd -f "$conf" -i "$run/vrrpd.pid" -z "$run/zserv.api" --vty_socket "$run" -A 127.0.0.1 -P 0 --log stdout --log-level debug >"$dir/$name.vrrpd.log" 2>&1 &
vpid=$!
sleep 6
