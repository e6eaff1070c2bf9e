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
// times out is, if enabled, retried once on another backend; consecutive
// timeouts are reported through Options.OnPassiveFailure.
//
// What it does not do: health probing (the healthcheck package calls
// SetHealth), configuration parsing, or metrics serving; those live in the
// healthcheck, config and admin packages and are wired in cmd/dnslb.
package balancer
