// Package notifydup makes every backend learn of a zone change that a
// primary announced to the VIP.
//
// Primaries send DNS NOTIFY (RFC 1996) to the VIP; the balancer answers
// them itself and would hand them to one backend only. A Duplicator sniffs
// the NOTIFYs on the VIP's interface (AF_PACKET with a kernel BPF filter:
// inbound, unfragmented UDP to a VIP on port 53 with QR=0 and opcode
// NOTIFY, re-checked in userspace) and sends a verbatim copy to every
// backend with the primary's source address and port, so the secondaries'
// unchanged ACLs accept it (and a TSIG signature still verifies) and they
// transfer from the primary. NOTIFYs that reached the balancer over TCP
// are handed in with Handle and copied as UDP.
//
// Only NOTIFYs from the configured primaries are copied; others are
// dropped and counted, so a NOTIFY flood from strangers is never amplified.
// Per-primary rate limit; a NOTIFY for the same (primary, zone, serial)
// within the dedup window is copied once.
//
// Copies are injected as Ethernet frames with AF_PACKET (netfilter does not
// rewrite them; the next hop's MAC comes from the neighbour table via
// netlink, resolved on demand), falling back to a raw IP socket
// (IP_HDRINCL) on links without a link-layer address. Checksums are
// computed from scratch. A secondary whose route back to the primary uses
// another interface must run with rp_filter 2 (loose) or it silently drops
// the copies.
//
// Convergence tracking: when the NOTIFY carries the zone's SOA serial, each
// backend's SOA is queried from the balancer's own address with backoff,
// and the copy is sent again until the backend's serial reaches it.
// Backends that are down are copied too: a NOTIFY is cheap and the zone
// must be current when they come back.
package notifydup
