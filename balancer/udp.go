package balancer

import (
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// udpWorker serves one client-facing UDP socket. Each listen address has
// Options.UDPWorkers of them, bound with SO_REUSEPORT so the kernel spreads
// clients over them; each has its own goroutine, receive batch and outbox.
type udpWorker struct {
	b       *Balancer
	addr    netip.AddrPort
	sock    *udpSock
	in      *recvBatch
	out     *outbox
	readFn  func(fd uintptr) bool // w.readReady, made once: no allocation per read
	serveFn func(n int)           // w.serveBatch
	err     syscall.Errno         // why readFn stopped, read by run
}

func (b *Balancer) newUDPWorker(addr netip.AddrPort, sock *udpSock) *udpWorker {
	w := &udpWorker{b: b, addr: addr, sock: sock, in: newRecvBatch(b.batch)}
	w.out = newOutbox(2*b.batch, b)
	w.readFn, w.serveFn = w.readReady, w.serveBatch
	return w
}

// run reads until the socket is closed or the balancer stops.
func (w *udpWorker) run() {
	defer w.b.workers.Done()
	for {
		err := w.sock.rc.Read(w.readFn)
		if w.b.stopping.Load() || (err != nil && isClosed(err)) {
			return
		}
		if err != nil || w.err != 0 {
			// Transient errors must not kill the loop.
			w.b.log.Debug("udp read error", "address", w.addr.String(), "err", err, "errno", w.err)
			w.err = 0
			time.Sleep(time.Millisecond)
		}
	}
}

// readReady is the RawConn.Read callback (see recvBatch.drain).
func (w *udpWorker) readReady(fd uintptr) bool {
	return w.in.drain(fd, w.serveFn, &w.b.stopping, &w.err)
}

// serveBatch forwards the n datagrams of the last receive and sends what
// they produced.
func (w *udpWorker) serveBatch(n int) {
	s := w.b.settings.Load()
	for i := 0; i < n; i++ {
		pkt, from, ok := w.in.datagram(i)
		if !ok {
			w.b.drop(dropTruncated)
			continue
		}
		w.forwardQuery(s, pkt, from)
	}
	w.out.flush()
}

// forwardQuery puts a client query through admission, then answers it,
// drops it, or queues it upstream with a fresh ID. pkt is modified in
// place.
func (w *udpWorker) forwardQuery(s *Settings, pkt []byte, from *unix.RawSockaddrInet6) {
	b := w.b
	var src netip.Addr
	if len(s.Allow)+len(s.Deny) > 0 || s.QPSPerClient > 0 {
		src = rawAddrPort(from).Addr()
	}
	m, v := b.admit(s, pkt, src, overUDP)
	var be *Backend
	if v.action == forward {
		be, v = b.pick(s, outstandingLoad, nil, overUDP)
	}
	tolen := uint32(unix.SizeofSockaddrInet4)
	if w.sock.family == unix.AF_INET6 {
		tolen = unix.SizeofSockaddrInet6
	}
	switch v.action {
	case notify:
		b.handNotify(s, pkt, m, rawAddrPort(from), w.addr, func(r []byte) error {
			w.out.add(w.sock, r, from, tolen, sendRef{})
			return nil
		}, func(r []byte) error {
			_, err := w.sock.conn.WriteToUDPAddrPort(r, rawAddrPort(from))
			return err
		})
		return
	case drop:
		b.drop(v.reason)
		if v.reason == dropRateLimited {
			b.logOverLimit(s, src)
		}
		return
	case answer:
		if !src.IsValid() {
			src = rawAddrPort(from).Addr()
		}
		w.out.add(w.sock, b.reply(pkt, m, v, src), from, tolen, sendRef{})
		if v.kind == answerOverLimit {
			b.logOverLimit(s, src)
		}
		return
	}
	var keep []byte
	if s.UDPRetry {
		keep = pkt
	}
	var client sockaddr
	client.raw, client.len = *from, tolen
	b.send(w.out, be, pkt, m.id, m.qhash, m.qexact, &client, w, keep, false)
}

// reply builds dnslb's own answer to a message admission answers, and
// counts it.
func (b *Balancer) reply(pkt []byte, m message, v verdict, client netip.Addr) []byte {
	b.answers[v.kind].Add(1)
	return b.selfAnswer(pkt, m, v.rcode, v.aa, client)
}

// handNotify gives a NOTIFY to the Notifier and acts on its verdict:
// REFUSED at once through now, nothing (counted) for ignore, and for
// accept the NOERROR answer through later once the copies are out.
func (b *Balancer) handNotify(s *Settings, pkt []byte, m message, src, dst netip.AddrPort, now, later func([]byte) error) {
	a := b.newNotifyAnswerer(pkt, m, src.Addr(), later)
	switch b.notifier.Notify(pkt, src, dst, a.done) {
	case NotifyRefuse:
		b.notifies[1].Add(1)
		_ = now(b.reply(pkt, m, answered(answerNotifyStranger, rcodeRefused), src.Addr()))
	case NotifyIgnore:
		b.drop(dropNotifyIgnored)
	}
}

// logOverLimit logs, at most every 10 s, that a client is over
// limits.qps_per_client.
func (b *Balancer) logOverLimit(s *Settings, client netip.Addr) {
	if b.logDue(dropRateLimited) {
		b.log.Warn("client over limits.qps_per_client", "client", client.String(), "limit", s.QPSPerClient,
			"dropped_total", b.drops[dropRateLimited].Load(), "refused_total", b.answers[answerOverLimit].Load())
	}
}

// clientLimiter returns the per-client rate limiter, allocating its table
// (about 2 MB) the first time limits.qps_per_client is on.
func (b *Balancer) clientLimiter() *clientLimiter {
	b.limiterOnce.Do(func() { b.limiter = new(clientLimiter) })
	return b.limiter
}

// send tracks a query on one of the upstream sockets for be's address
// family and queues it in out with a fresh ID written into pkt. keep, if
// not nil, is stored for a retry.
func (b *Balancer) send(out *outbox, be *Backend, pkt []byte, origID uint16, qhash, qexact uint64, client *sockaddr, w *udpWorker, keep []byte, retried bool) bool {
	now := b.now()
	ups := b.upstreams.forFamily(be.family)
	for range ups {
		u := ups[int(b.upstreams.rr.Add(1))%len(ups)]
		id, ok := u.table.add(be, origID, qhash, qexact, client, w, now, keep, retried)
		if !ok {
			continue
		}
		be.outstanding.Add(1)
		be.queries.Add(1)
		setID(pkt, id)
		out.add(u.sock, pkt, &be.sa.raw, be.sa.len, sendRef{up: u, be: be, id: id})
		return true
	}
	b.drop(dropBackendFull)
	b.logLimited(dropBackendFull, "upstream in-flight tables full, query dropped", "backend", be.name)
	return false
}

// sendFailed undoes a datagram the kernel would not send: a query's
// in-flight entry is freed and counted as a send error.
func (b *Balancer) sendFailed(ref sendRef, err syscall.Errno) {
	b.drop(dropSendError)
	if ref.up == nil {
		return
	}
	if ref.up.table.remove(ref.id) {
		ref.be.outstanding.Add(-1)
	}
	ref.be.queries.Add(^uint64(0))
	ref.be.sendErrors.Add(1)
	b.logLimited(dropSendError, "cannot send to backend", "backend", ref.be.name, "err", err.Error())
}

// sweepLoop frees in-flight entries whose answer is overdue.
func (b *Balancer) sweepLoop() {
	defer b.workers.Done()
	out := newOutbox(64, b)
	for {
		timeout := b.settings.Load().UDPTimeout
		tick := min(max(timeout/8, 5*time.Millisecond), 100*time.Millisecond)
		select {
		case <-b.stop:
			return
		case <-time.After(tick):
		}
		b.sweep(b.now()-int64(b.settings.Load().UDPTimeout), out)
	}
}

func (b *Balancer) sweep(deadline int64, out *outbox) {
	s := b.settings.Load()
	for _, u := range b.upstreams.all() {
		b.expired = b.expired[:0]
		u.table.expire(deadline, func(p *pending) { b.expired = append(b.expired, *p) })
		for i := range b.expired {
			b.timedOut(&b.expired[i], s, out)
		}
		// The retries refer to b.expired: send them before it is reused.
		out.flush()
	}
}

// timedOut accounts for one unanswered query: a timeout for the backend, a
// passive failure signal after too many in a row, and one retry elsewhere.
func (b *Balancer) timedOut(p *pending, s *Settings, out *outbox) {
	be := p.be
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
	if b.send(out, other, p.query[:p.qlen], p.origID, p.qhash, p.qexact, &p.client, p.front, nil, true) {
		be.retried.Add(1)
	}
}
