package balancer

import (
	"net/netip"
)

// NotifyVerdict is what a Notifier decided about one NOTIFY.
type NotifyVerdict uint8

const (
	// NotifyIgnore: no answer at all, so that the primary tries again
	// (later, or at another node): the node is not the VRRP master, the
	// primary is over its rate, the copy queue is full, or notify
	// duplication is stopping. A NOTIFY is never acknowledged unless it
	// is copied.
	NotifyIgnore NotifyVerdict = iota
	// NotifyRefuse: REFUSED at once; the sender is not a primary.
	NotifyRefuse
	// NotifyAccept: the Notifier calls done once, after the copies to
	// the backends have been sent, and only then is the primary answered.
	NotifyAccept
)

// Notifier takes every DNS NOTIFY the balancer receives, over UDP and
// TCP, instead of forwarding it to one backend: notify duplication
// (package notifydup) copies it to all of them. It owns the NOTIFY
// policy (who is a primary, rates, TSIG); the balancer only carries the
// messages and answers.
type Notifier interface {
	// Notify decides about msg (a NOTIFY query; the callee copies what it
	// keeps) that src sent to dst, a listen address. For NotifyAccept it
	// calls done exactly once, from any goroutine, with the answer to
	// send as it is (a TSIG-signed one), or nil for the balancer's own
	// NOERROR answer.
	Notify(msg []byte, src, dst netip.AddrPort, done func(answer []byte)) NotifyVerdict
}

// notifyAnswerer builds and sends the answer to an accepted NOTIFY when
// the Notifier says the copies are out; it keeps a copy of the query,
// with room for the OPT record of the answer.
type notifyAnswerer struct {
	b      *Balancer
	query  []byte
	m      message
	client netip.Addr
	send   func(answer []byte) error
}

// newNotifyAnswerer keeps what the answer to the NOTIFY in pkt needs;
// send writes an answer to the primary.
func (b *Balancer) newNotifyAnswerer(pkt []byte, m message, client netip.Addr, send func([]byte) error) *notifyAnswerer {
	q := make([]byte, len(pkt), len(pkt)+optLen+cookieOptLen)
	copy(q, pkt)
	return &notifyAnswerer{b: b, query: q, m: m, client: client, send: send}
}

// done is the Notifier's callback.
func (a *notifyAnswerer) done(answer []byte) {
	if answer == nil {
		answer = a.b.selfAnswer(a.query, a.m, rcodeNoError, true, a.client)
	} else {
		a.b.ctr.signedNotifies.Add(1)
	}
	a.b.ctr.answers[answerNotify].Add(1)
	a.b.ctr.notifies[0].Add(1)
	_ = a.send(answer) // the primary retries a NOTIFY whose answer is lost
}

// handNotify gives a NOTIFY to the Notifier and acts on its verdict:
// REFUSED at once through now, nothing (counted) for ignore, and for
// accept the NOERROR answer through later once the copies are out.
func (b *Balancer) handNotify(s *Settings, pkt []byte, m message, src, dst netip.AddrPort, now, later func([]byte) error) {
	a := b.newNotifyAnswerer(pkt, m, src.Addr(), later)
	switch b.notifier.Notify(pkt, src, dst, a.done) {
	case NotifyRefuse:
		b.ctr.notifies[1].Add(1)
		_ = now(b.reply(pkt, m, answered(answerNotifyStranger, rcodeRefused), src.Addr()))
	case NotifyIgnore:
		b.drop(dropNotifyIgnored)
	}
}
