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
	s := b.settings.Load()
	if m.opcode == opcodeNotify && len(s.NotifyPrimaries) > 0 {
		r := b.notifyReply(pkt, m, b.notifyAllowed(s, client.Addr()), s)
		if _, err := f.conn.WriteToUDPAddrPort(r, client); err != nil {
			b.drop(dropSendError)
		}
		return
	}
	be, allDown := b.pool.pickUDP(!s.RefuseWhenAllDown)
	if be == nil {
		if allDown && s.RefuseWhenAllDown {
			b.refuse(f, pkt, m, client)
			return
		}
		b.drop(dropNoBackend)
		return
	}
	var keep []byte
	if s.UDPRetry {
		keep = pkt
	}
	b.send(be, pkt, m.id, m.qhash, client, f, keep, false)
}

// send tracks a query on one of be's upstream sockets and sends it with a
// fresh ID written into pkt. keep, if not nil, is stored for a retry.
func (b *Balancer) send(be *Backend, pkt []byte, origID uint16, qhash uint64, client netip.AddrPort, f *udpFrontend, keep []byte, retried bool) bool {
	now := b.now()
	for range be.ups {
		u := be.pickUpstream()
		id, ok := u.table.add(origID, qhash, client, f, now, keep, retried)
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
			return false
		}
		be.queries.Add(1)
		return true
	}
	b.drop(dropBackendFull)
	b.logLimited(dropBackendFull, "backend in-flight table full, query dropped", "backend", be.name)
	return false
}

// refuse answers the client REFUSED itself (all_down: refuse): the header
// and question of its query with QR set and no records.
func (b *Balancer) refuse(f *udpFrontend, pkt []byte, m message, client netip.AddrPort) {
	b.drop(dropAllDownRefused)
	if _, err := f.conn.WriteToUDPAddrPort(refusal(pkt, m), client); err != nil {
		b.drop(dropSendError)
	}
}

// notifyAllowed reports whether a NOTIFY from src is from a primary, and
// counts the answer.
func (b *Balancer) notifyAllowed(s *Settings, src netip.Addr) bool {
	src = src.Unmap()
	for _, p := range s.NotifyPrimaries {
		if p.Contains(src) {
			b.notifies[0].Add(1)
			return true
		}
	}
	b.notifies[1].Add(1)
	return false
}

// notifyAnswer turns a parsed NOTIFY in place into the balancer's own
// answer (RFC 1996 4.7): same ID, opcode and question, QR and AA set,
// NOERROR for a primary, REFUSED for anyone else.
func notifyAnswer(pkt []byte, m message, ok bool) []byte {
	r := refusal(pkt, m)
	if ok {
		r[2] |= 0x04 // AA
		r[3] = 0     // NOERROR
	}
	return r
}

// refusal turns a parsed query in place into its REFUSED answer.
func refusal(pkt []byte, m message) []byte {
	r := pkt[:m.qend]
	r[2] = (r[2] | 0x80) &^ 0x06 // QR=1, AA=0, TC=0; opcode and RD kept
	r[3] = 5                     // RA=0, Z/AD/CD=0, RCODE=REFUSED
	for i := 6; i < headerLen; i++ {
		r[i] = 0 // no answer, authority or additional records
	}
	return r
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
	if be.consecutive.Load() != 0 {
		be.consecutive.Store(0)
	}
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
	s := b.settings.Load()
	for _, be := range b.pool.all() {
		for _, u := range be.ups {
			b.expired = b.expired[:0]
			u.table.expire(deadline, func(p *pending) { b.expired = append(b.expired, *p) })
			for i := range b.expired {
				b.timedOut(be, &b.expired[i], s)
			}
		}
	}
}

// timedOut accounts for one unanswered query: a timeout for the backend, a
// passive failure signal after too many in a row, and one retry elsewhere.
func (b *Balancer) timedOut(be *Backend, p *pending, s *Settings) {
	be.outstanding.Add(-1)
	be.timeouts.Add(1)
	be.foldLatency(s.UDPTimeout)
	n := be.consecutive.Add(1)
	if s.PassiveMaxTimeouts > 0 && n == int64(s.PassiveMaxTimeouts) && b.passive != nil {
		b.passive(be.name, n)
	}
	if !s.UDPRetry || p.retried || p.qlen == 0 || b.stopping.Load() {
		return
	}
	other, _ := b.pool.pick(outstandingLoad, !s.RefuseWhenAllDown, be)
	if other == nil {
		return
	}
	if b.send(other, p.query[:p.qlen], p.origID, p.qhash, p.client, p.front, nil, true) {
		be.retried.Add(1)
	}
}
