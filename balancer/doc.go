// Package balancer is dnslb's data plane: it listens for DNS queries on the
// configured addresses (UDP and TCP), picks a backend with the
// least-connection policy and relays the answer back to the client.
//
// UDP: each listen address has Options.UDPWorkers sockets bound with
// SO_REUSEPORT, each read by its own goroutine in batches (recvmmsg); what
// a batch produces is sent in batches too (sendmmsg, one call per
// destination socket). Every query gets a fresh DNS ID on one of a few
// upstream sockets shared by all backends of its address family
// (Options.UpstreamSockets). The socket's in-flight table remembers the
// backend, the client, the original ID and a hash of the question; an
// answer is relayed only when its ID, source address (the backend's) and
// question match an in-flight entry, and the original ID is restored.
// Entries that are not answered within the UDP timeout are freed and
// counted. Nothing on this path allocates, takes a map lookup or starts a
// goroutine per packet; see hotpath_test.go and docs/performance.md.
//
// TCP: each client connection is proxied to one backend connection, chosen
// by the fewest active connections per weight. Both directions are framed
// (2-byte length prefix), so every client message is validated and every
// answer is counted; zone transfers stream through unchanged.
//
// Least connection: for UDP the backend with the fewest outstanding queries
// divided by weight wins, for TCP the fewest active connections divided by
// weight; ties go to the backend whose latency (EWMA) is clearly lower, then
// round-robin. A backend that slows down accumulates outstanding queries and
// so receives less traffic.
//
// Health: only backends whose Health is Up get new queries; when backends
// exist but none is up, the balancer either picks from all of them anyway
// (fail-open, the default) or answers REFUSED itself. A UDP query that
// times out is, if enabled, retried once on a backend that is answering,
// another one by preference (pool.pickRetry); consecutive
// timeouts are reported through Options.OnPassiveFailure.
//
// What a backend is handed (the validation contract). dnslb checks the
// structure of a query, plus the few parts of RDATA that a server must
// interpret for every message, and nothing else:
//
//   - the header: 12 bytes, QR=0, opcode QUERY, NOTIFY or UPDATE, QDCOUNT 1;
//   - the question: an uncompressed name (labels of at most 63 bytes, at
//     most 255 in all), type and class;
//   - every record of the answer, authority and additional sections: owner
//     name (compression pointers only backwards), fixed part, RDATA within
//     the message, and no byte after the last record;
//   - the RDATA of the types whose names a server must decompress (RFC
//     3597 section 4: NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR, MINFO, MX,
//     RP, AFSDB, RT, SIG, PX, NAPTR, SRV; and KX, DNAME, TSIG): its fields
//     and names fill RDLENGTH exactly (an empty RDATA, as in RFC 2136
//     deletes and prerequisites, is fine);
//   - OPT: at most one, in the additional section, owned by the root, its
//     options filling it; an EDNS Client Subnet option must be well formed
//     (RFC 7871 section 6) and a COOKIE option 8 or 16 to 40 bytes long;
//   - TSIG or SIG(0), if present, is the last additional record.
//
// The RDATA of every other type is opaque, as RFC 3597 says it is to a
// server that does not know the type: a URI record of one byte in the
// additional section is forwarded. Servers handle such queries on their
// own: NSD 4.6 and BIND 9.18 answer FORMERR, Knot 3.2 answers FORMERR to
// a short A or AAAA record and ignores a URI record it does not need
// (test/integration/contract_test.go sends them every such input).
// The line is drawn there because names are what a server decompresses
// and ECS/COOKIE are what it acts on for every query; checking every
// type's RDATA would put miekg/dns's whole type table on the hot path for
// messages real clients never send. The contract is implemented once, in
// internal/dnswire (Check), and fuzzed against miekg/dns with exactly this
// set of types and options checked (internal/dnswire/dnswiretest.Oracle).
//
// What it does not do: health probing (the healthcheck package calls
// SetHealth), configuration parsing, or metrics serving; those live in the
// healthcheck, config and admin packages and are wired in cmd/dnslb.
package balancer
