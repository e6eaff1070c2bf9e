// Package testpeer gives integration tests real DNS and VRRP peers with
// strict cleanup: NSD servers serving a known zone, network namespaces made
// by the test (alone or as hosts on a bridged LAN), keepalived, tcpdump
// captures, and a delay line that slows one backend down.
//
// What it does:
//   - StartNSD writes nsd.conf and the zone (DefaultZone, origin
//     example.test.) into t.TempDir(), runs `nsd -d` in its own process
//     group (optionally inside a netns), waits at most 5s until it answers
//     SOA, and kills it by PID in t.Cleanup.
//   - NewNetNS creates a named network namespace with lo up; everything
//     started in it is killed by PID and the namespace deleted on cleanup.
//     NetNS.Do runs Go code (and so creates sockets) inside it;
//     NetNS.DelayFromAddr delays one source address's packets.
//   - NewLAN builds an Ethernet segment: a bridge in a switch namespace
//     and hosts (AddHost: one namespace each, eth0 with stable MACs and
//     addresses); SetLink/SetPort take a host off the network.
//   - StartKeepalived runs keepalived (VRRP) in a host namespace, for
//     failover and interop tests; keepalived.go's top comment has the
//     configs and facts of keepalived 2.2.7.
//   - NetNS.Capture runs tcpdump into a pcap; ReadPackets decodes it with
//     gopacket, ParseVRRP decodes VRRP v2/v3 and checks its checksum.
//   - NSDOptions.Zones with Primary or PrimaryAddr makes NSD a primary
//     (notify:, provide-xfr:) or secondary (allow-notify:, request-xfr:)
//     of given zones, optionally with a TSIG key; NSD.SetSerial bumps a
//     primary's serial (zone file + SIGHUP), which makes it notify.
//     StartKnot runs Knot DNS the same ways (Knot.SetSerial: knotc
//     zone-reload). SOASerial and WaitSerial read a server's serial from
//     inside a namespace. DNSMessages/Notifies decode DNS (NOTIFYs) from a
//     capture. dnsrole.go's top comment has the NOTIFY facts of NSD 4.6.1
//     and Knot 3.2.6 (transport, retries, answers to strangers).
//   - StartPDNS (PowerDNS Authoritative with the bind backend) and
//     StartUnbound (a resolver answering from local zones only) take the
//     client's address from a PROXY v2 header (proxy-protocol-from,
//     proxy-protocol-port) or, PowerDNS, an ECS option; their query logs
//     are parsed (PDNS.QueryLog, AXFRLog; Unbound.QueryLog). Knot's
//     ProxyAllowlist and Whoami (mod-whoami) do the same for Knot, which
//     logs no client addresses. ExchangeFrom and TransferFrom send a
//     query or an AXFR from a chosen source address inside a namespace,
//     behind a PROXY v2 or LOCAL header built with go-proxyproto.
//     pdns.go, unbound.go and knot.go hold the facts measured for Knot
//     3.2.6, PowerDNS 4.7.3 and Unbound 1.17.1.
//   - Query, Exchange and Whoami are small miekg/dns helpers that fail the
//     test on error.
//   - RequireRoot and RequireTool skip a test loudly ("SKIP: ...") with the
//     reason and an install hint. SkipShort skips under -short ("SKIP
//     (-short): ..."); RequireRoot calls it first, so every root test
//     skips under -short.
//
// What it does not do:
//   - It sends no traffic outside 127.0.0.0/8, ::1, or namespaces the test
//     created. qdiscs, filters, TUN devices and sysctls are changed only
//     inside a NetNS, never in the host's namespace.
//   - It does not kill processes by name: only PIDs (process groups) it
//     started, plus whatever `ip netns pids` reports in a namespace it made.
//   - It is not for production code: helpers call t.Fatal instead of
//     returning errors.
//
// Cleanup when things go wrong: processes get Setpgid and Pdeathsig=SIGKILL,
// so they die with a killed test binary; as root, NSD also runs in a PID
// namespace of its own so its forked children never linger (not even as
// zombies). Namespaces cannot die with the binary, so each has an owner
// marker in /run/testpeer, and NewNetNS deletes namespaces whose owner
// process is gone (left by `go test -timeout` or SIGKILL).
package testpeer
