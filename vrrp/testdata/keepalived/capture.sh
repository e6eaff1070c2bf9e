#!/bin/bash
# usage: capture.sh NAME /abs/path/CONF   (as root; writes NAME.pcap and logs to $OUT, default the current directory)
# Runs keepalived 2.2.7 with CONF in a throw-away netns (veth pair d0/d1, 10.99.0.1/24 and
# fd00:99::1/64 on d0, MAC 02:00:5e:99:00:01) and captures VRRP adverts, gratuitous ARPs and
# unsolicited NAs on d0 with tcpdump for ~6 s: 3 s of Master_Down_Interval, a few adverts,
# then SIGTERM (keepalived sends a priority-0 advert). Every process is killed by PID and the
# namespace is deleted on exit.
set -u
name=$1 conf=$2
dir=${OUT:-$PWD}
ns=vrrpfx-$$
kpid= tpid=
cleanup() {
  [ -n "$kpid" ] && kill -TERM "$kpid" 2>/dev/null && sleep 1.5
  [ -n "$kpid" ] && kill -KILL "$kpid" 2>/dev/null
  [ -n "$tpid" ] && kill -INT "$tpid" 2>/dev/null && sleep 0.5
  [ -n "$tpid" ] && kill -KILL "$tpid" 2>/dev/null
  ip netns pids "$ns" 2>/dev/null | while read p; do echo "leftover pid $p in $ns"; kill -KILL "$p"; done
  ip netns del "$ns" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add d0 address 02:00:5e:99:00:01 type veth peer name d1 address 02:00:5e:99:00:02
ip netns exec "$ns" sysctl -qw net.ipv6.conf.d0.accept_dad=0
ip netns exec "$ns" sysctl -qw net.ipv6.conf.d1.accept_dad=0
ip -n "$ns" link set d1 up
ip -n "$ns" link set d0 up
ip -n "$ns" addr add 10.99.0.1/24 dev d0
ip -n "$ns" -6 addr add fd00:99::1/64 dev d0 nodad
sleep 0.3
ip -n "$ns" addr show dev d0
ip netns exec "$ns" tcpdump -Z root -U -i d0 -w "$dir/$name.pcap" 'ip proto 112 or ip6 proto 112 or arp or (icmp6 and ip6[40] == 136)' >"$dir/$name.tcpdump.log" 2>&1 &
tpid=$!
sleep 1
ip netns exec "$ns" unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /run && exec /usr/sbin/keepalived -n -l -D -f "$0" -p /run/kd.pid -r /run/kd-vrrp.pid -c /run/kd-check.pid' "$conf" >"$dir/$name.keepalived.log" 2>&1 &
kpid=$!
sleep 6
