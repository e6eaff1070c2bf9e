// Package bgp announces the VIPs as host routes (/32, /128) while the node
// is fit to serve them and withdraws them when it is not: anycast and
// route-based failover for dnslb.
//
// It is split like the vrrp package:
//
//   - [Judge] is the pure decision: from the number of healthy backends,
//     the VRRP state of the VIP's instance and whether the node is
//     stopping, a [Verdict] (fit or not) with a reason.
//   - [Announcer] is the pure core: it keeps what is announced, turns
//     verdicts into announce and withdraw calls on a [Routes], logs one
//     line per change with its reason, and keeps the
//     dnslb_bgp_announced gauge. It is tested with a fake Routes.
//   - [Speaker] is a [Routes] that speaks BGP itself: an embedded GoBGP
//     (github.com/osrg/gobgp/v3) with the configured neighbours, changed
//     in place on reload; it keeps dnslb_bgp_session_state.
//   - [Kernel] (the thin Linux file, netlink) is a [Routes] that adds a
//     kernel route per VIP with its own protocol number, for a local BIRD
//     or FRR to redistribute. So that the node accepts the VIPs' traffic,
//     [AddLocal] and [RemoveLocal] put them on a local interface (lo) as
//     addresses in mode active, [AddLocalRoutes] and [RemoveLocalRoutes]
//     as local routes in the local table in mode kernel (an address would
//     shadow the kernel route with a connected one in FRR's zebra).
//
// What it does not: BFD (GoBGP v3 has none: failure detection is the hold
// timer, or the TCP session closing), receiving routes (every path from a
// neighbour is ignored; GoBGP's RIB keeps them), route policy beyond
// communities, MED and next hop, or deciding VRRP: main feeds it the node's
// state.
package bgp
