package balancer

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// udpFrontend is one client-facing UDP socket and its worker's buffer. A
// later change can run several per address with SO_REUSEPORT, and read in
// batches, without touching forwardQuery.
type udpFrontend struct {
	b    *Balancer
	addr netip.AddrPort
	conn *net.UDPConn
	buf  []byte // owned by the worker goroutine
}

func (b *Balancer) udpLoop(f *udpFrontend) {
	defer b.workers.Done()
	for {
		if err := f.serveOne(); err != nil {
			if b.stopping.Load() || isClosed(err) {
				return
			}
			// Transient errors (e.g. ICMP-reported ones) must not kill the loop.
			b.log.Debug("udp read error", "address", f.addr.String(), "err", err)
			time.Sleep(time.Millisecond)
		}
	}
}

// serveOne reads one query and forwards it.
func (f *udpFrontend) serveOne() error {
	n, client, err := f.conn.ReadFromUDPAddrPort(f.buf)
	if err != nil {
		return err
	}
	f.b.forwardQuery(f, f.buf[:n], client)
	return nil
}

// forwardQuery validates a client query, picks a backend and sends the
// query upstream with a fresh ID. pkt is modified in place.
func (b *Balancer) forwardQuery(f *udpFrontend, pkt []byte, client netip.AddrPort) {
	m, r := parseQuery(pkt)
	if r != dropNone {
		b.drop(r)
		return
	}
	be := b.pool.pickUDP()
	if be == nil {
		b.drop(dropNoBackend)
		return
	}
	now := b.now()
	for range be.ups {
		u := be.pickUpstream()
		id, ok := u.table.add(m.id, m.qhash, client, f, now)
		if !ok {
			continue
		}
		be.outstanding.Add(1)
		setID(pkt, id)
		_, err := u.conn.Write(pkt)
		if errors.Is(err, syscall.ECONNREFUSED) {
			// A connected socket reports an earlier ICMP port unreachable
			// on the next send; the datagram was not sent, try again.
			_, err = u.conn.Write(pkt)
		}
		if err != nil {
			if u.table.remove(id) {
				be.outstanding.Add(-1)
			}
			be.sendErrors.Add(1)
			b.drop(dropSendError)
			return
		}
		be.queries.Add(1)
		return
	}
	b.drop(dropBackendFull)
	b.logLimited(dropBackendFull, "backend in-flight table full, query dropped", "backend", be.name)
}

func (b *Balancer) upstreamLoop(u *upstream) {
	defer b.workers.Done()
	for {
		n, err := u.conn.Read(u.buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			// ECONNREFUSED: the backend's port is closed; the queries
			// will time out and be counted. Keep reading.
			continue
		}
		b.relayAnswer(u, u.buf[:n])
	}
}

// relayAnswer matches an answer from a backend to its query and sends it
// to the client with the original ID restored.
func (b *Balancer) relayAnswer(u *upstream, pkt []byte) {
	be := u.be
	m, r := parseAnswer(pkt)
	if r != dropNone {
		be.unmatched.Add(1)
		b.drop(r)
		return
	}
	p, ok := u.table.take(m.id, m.qhash)
	if !ok {
		be.unmatched.Add(1)
		b.drop(dropAnswerUnmatched)
		return
	}
	be.outstanding.Add(-1)
	be.rcodes[m.rcode].Add(1)
	be.observeLatency(time.Duration(b.now() - p.sent))
	setID(pkt, p.origID)
	if _, err := p.front.conn.WriteToUDPAddrPort(pkt, p.client); err != nil {
		b.drop(dropSendError)
	}
}

// sweepLoop frees in-flight entries whose answer is overdue.
func (b *Balancer) sweepLoop() {
	defer b.workers.Done()
	for {
		timeout := b.settings.Load().UDPTimeout
		tick := min(max(timeout/8, 5*time.Millisecond), 100*time.Millisecond)
		select {
		case <-b.stop:
			return
		case <-time.After(tick):
		}
		b.sweep(b.now() - int64(b.settings.Load().UDPTimeout))
	}
}

func (b *Balancer) sweep(deadline int64) {
	timeout := b.settings.Load().UDPTimeout
	for _, be := range b.pool.all() {
		for _, u := range be.ups {
			u.table.expire(deadline, func(*pending) {
				be.outstanding.Add(-1)
				be.timeouts.Add(1)
				be.foldLatency(timeout)
			})
		}
	}
}
