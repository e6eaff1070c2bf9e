// Package notifydup makes every backend learn of a zone change that a
// primary announced to the VIP, and owns the whole NOTIFY policy.
//
// Primaries send DNS NOTIFY (RFC 1996) to the VIP. The balancer does not
// forward them to one backend: it hands each one, UDP or TCP, to
// Duplicator.Notify, which decides:
//
//   - from a source outside the configured primaries: refused (REFUSED);
//   - not the VRRP master, over the primary's rate, copy queue full, or
//     stopping: ignored, with no answer at all, so that the primary sends
//     it again (to this node later, or to the new master);
//   - otherwise accepted: a verbatim copy goes to every backend with the
//     primary's source address and port, so the secondaries' unchanged
//     ACLs accept it (and a TSIG signature still verifies) and they
//     transfer from the primary; only then is the primary answered
//     (NOERROR, AA; signed with the request's key when it was signed with
//     a configured one). A NOTIFY is never acknowledged without its copies
//     having been sent.
//
// Copies are injected as Ethernet frames with AF_PACKET (netfilter does not
// rewrite them; the next hop's MAC comes from the neighbour table via
// netlink, resolved on demand), falling back to a raw IP socket
// (IP_HDRINCL) on links without a link-layer address. Checksums are
// computed from scratch. A secondary whose route back to the primary uses
// another interface must run with rp_filter 2 (loose) or it silently drops
// the copies.
//
// Convergence tracking (tracker.go): when the NOTIFY carries the zone's
// SOA serial, each backend's SOA is polled until it serves the serial,
// at most Policy.TrackQPS queries a second per backend (notify.track_qps),
// over one UDP socket per backend with many queries in flight. At most
// Policy.MaxTracked (zone, backend) pairs are tracked (notify.max_tracked,
// ~200 bytes each); beyond that a copy is sent once, untracked. A copy is
// sent again only when the backend looks stuck on that zone: it answers
// with the old serial and either has converged no zone for a while
// (longer the more zones it has pending) or has converged zones notified
// well after this one. A secondary busy working through a bulk change in
// order is left alone, so re-sends never add to its queue; one that lost
// copies in a storm gets just those again.
//
// Duplicates: a NOTIFY for a (zone, serial) whose copy is still queued
// shares it; one for a (zone, serial) still tracked on every backend, or
// that every backend was seen to serve within the dedup window, is
// answered without a copy; any other is copied again, so a primary's
// re-notify reaches a secondary that still lacks the serial. (A primary
// re-sends a NOTIFY it got no timely answer to: in a storm these would
// otherwise double the copies.)
package notifydup
