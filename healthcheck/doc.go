// Package healthcheck decides whether each backend is up, down or pending
// (not yet proven), from real DNS queries and from live-traffic signals.
//
// Active checks: every target gets a real DNS query (configurable name,
// type, class, RD bit) every interval (±10% jitter, at most one probe in
// flight per target), sent from the balancer's own address with a random
// ID. The answer must carry the same ID and question, an expected rcode,
// the AA bit when required and, optionally, an answer record containing a
// given string; anything else (timeout, REFUSED, SERVFAIL, a lame answer,
// garbage) is a failure with a reason. `rise` successes in a row bring a
// target up, `fall` failures in a row take it down. New targets start
// pending.
//
// Passive checks: PassiveFailure (called by the balancer after N
// consecutive live timeouts) takes a target down at once; it then needs
// `rise` successful probes to come back.
//
// Every state change is logged on one line and reported through
// Options.OnChange; successful probe round-trip times go to
// Options.OnProbe. The package does not touch the data plane itself.
package healthcheck
