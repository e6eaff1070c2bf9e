package balancer

import "net/netip"

// action is what admission decided for one client message.
type action uint8

const (
	forward action = iota // send it to a backend
	answer                // dnslb answers it itself (verdict.kind, .rcode)
	drop                  // nothing is sent back (verdict.reason)
	notify                // a NOTIFY for the Notifier
)

// verdict is admission's decision for one message, as a value: the fronts
// act on it, count it, and never decide themselves.
type verdict struct {
	action action
	reason dropReason // drop
	kind   answerKind // answer
	rcode  int        // answer
	aa     bool       // answer
}

func dropped(r dropReason) verdict { return verdict{action: drop, reason: r} }

func answered(k answerKind, rcode int) verdict {
	return verdict{action: answer, kind: k, rcode: rcode}
}

// transport says which front a message came through; some checks apply to
// one only.
type transport uint8

const (
	overUDP transport = iota
	overTCP
)

// admit decides what happens to one client message (pkt, from src), in
// this order: the ACL (UDP; TCP is checked at accept), the validation
// contract (doc.go), a COOKIE-only query, NOTIFY (handed to the Notifier,
// when there is one, which has its own per-primary limits), the
// per-client rate limit (UDP: a TCP client cannot spoof its address).
// Everything else is forwarded, to the backend pick chooses. It counts nothing and allocates nothing.
//
// A message outside the contract is dropped over UDP (silence reflects
// nothing at a spoofed source) and answered FORMERR over TCP, when it is
// a query at all, so that a real client learns why.
func (b *Balancer) admit(s *Settings, pkt []byte, src netip.Addr, tr transport) (message, verdict) {
	if tr == overUDP && !s.permitted(src) {
		return message{opt: -1}, dropped(dropACL)
	}
	m, r := parseQuery(pkt)
	if r != dropNone {
		if tr == overTCP && r != dropShort && r != dropResponse {
			m.opt = -1 // a malformed OPT is not echoed (RFC 6891 7)
			return m, answered(answerFormErr, rcodeFormErr)
		}
		return m, dropped(r)
	}
	if m.cookieOnly {
		return m, answered(answerCookie, rcodeNoError)
	}
	if m.opcode == opcodeNotify && b.notifier != nil {
		return m, verdict{action: notify}
	}
	if tr == overUDP && s.QPSPerClient > 0 && !b.clientLimiter().allow(src, b.now(), s.QPSPerClient) {
		if s.RefuseOverLimit {
			return m, answered(answerOverLimit, rcodeRefused)
		}
		return m, dropped(dropRateLimited)
	}
	return m, verdict{action: forward}
}

// pick chooses the backend for a message admission forwards, by load
// (outstanding UDP queries or TCP connections), never except. With no
// backend up it answers REFUSED (all_down: refuse) or picks from all of
// them (fail-open); with none at all it drops (UDP) or answers SERVFAIL
// (TCP, whose client waits on an open connection).
func (b *Balancer) pick(s *Settings, load func(*Backend) int64, except *Backend, tr transport) (*Backend, verdict) {
	be, allDown := b.pool.pick(load, !s.RefuseWhenAllDown, except)
	switch {
	case be != nil:
		return be, verdict{action: forward}
	case allDown && s.RefuseWhenAllDown && except == nil:
		return nil, answered(answerAllDown, rcodeRefused)
	case tr == overTCP:
		return nil, answered(answerNoBackend, rcodeServFail)
	}
	return nil, dropped(dropNoBackend)
}

// permitted applies the client ACL: a Deny prefix refuses, then a
// non-empty Allow list must contain the address.
func (s *Settings) permitted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.Deny {
		if p.Contains(a) {
			return false
		}
	}
	if len(s.Allow) == 0 {
		return true
	}
	for _, p := range s.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
