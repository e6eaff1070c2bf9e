package balancer

import (
	"net/netip"
	"syscall"
	"time"

	"github.com/dnslb/dnslb/internal/dnswire"
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
	w := &udpWorker{b: b, addr: addr, sock: sock, in: newRecvBatch(b.udpf.batch, udpHeadroom)}
	w.out = newOutbox(2*b.udpf.batch, b)
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
		w.forwardQuery(s, w.in.slot(i), pkt, from)
	}
	w.out.flush()
}

// forwardQuery puts a client query through admission, then answers it,
// drops it, or queues it upstream with a fresh ID. pkt, which starts
// udpHeadroom bytes into frame, is modified in place.
func (w *udpWorker) forwardQuery(s *Settings, frame, pkt []byte, from *unix.RawSockaddrInet6) {
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
		// from points into the receive batch, which the next receive
		// overwrites: the answer sent later (once the copies are out) goes
		// to the address read now.
		primary := rawAddrPort(from)
		b.handNotify(s, pkt, m, primary, w.addr, func(r []byte) error {
			w.out.add(w.sock, r, from, tolen, sendRef{})
			return nil
		}, func(r []byte) error {
			_, err := w.sock.conn.WriteToUDPAddrPort(r, primary)
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
		r := b.reply(pkt, m, v, src)
		if l := b.rrl.limiter.Load(); l != nil {
			var send bool
			if r, send = b.limitSelf(l, r, m.qend, src); !send {
				return
			}
		}
		w.out.add(w.sock, r, from, tolen, sendRef{})
		if v.kind == answerOverLimit {
			b.logOverLimit(s, src)
		}
		return
	}
	q := udpQuery{frame: frame, n: len(pkt), opt: m.opt, origID: m.id, qhash: m.qhash, qexact: m.qexact, front: w, retry: s.UDPRetry}
	q.client.raw, q.client.len = *from, tolen
	b.send(w.out, be, &q)
}

// udpQuery is one UDP query on its way to a backend: the message and what
// its in-flight entry keeps.
type udpQuery struct {
	// frame holds the message at frame[udpHeadroom:udpHeadroom+n], with
	// room in front for a PROXY v2 header and spare capacity behind it
	// for an ECS option (client_address). The ID is rewritten in place.
	frame         []byte
	n             int
	opt           int    // offset of the message's OPT record, -1 if none
	origID        uint16 // the client's ID
	qhash, qexact uint64 // question hashes (message)
	client        sockaddr
	front         *udpWorker // the socket the answer goes out on (its address is the VIP reached)
	retry         bool       // keep the message for a retry after a timeout
	retried       bool       // a retry already: never retried again
}

// msg returns the query's message.
func (q *udpQuery) msg() []byte { return q.frame[udpHeadroom : udpHeadroom+q.n] }

// send tracks q on one of the upstream sockets for be's address family
// and queues it in out with a fresh ID written into its message, framed
// for be's client_address mode. The in-flight entry keeps the message
// as the client sent it, so that a retry is framed for its own backend.
func (b *Balancer) send(out *outbox, be *Backend, q *udpQuery) bool {
	now := b.now()
	ups := b.udpf.upstreams.forFamily(be.family)
	for range ups {
		u := ups[int(b.udpf.upstreams.rr.Add(1))%len(ups)]
		id, ok := u.table.add(be, q, now)
		if !ok {
			continue
		}
		be.outstanding.Add(1)
		be.queries.Add(1)
		dgram := q.msg()
		setID(dgram, id)
		if mode := ClientAddress(be.clientAddr.Load()); mode != ClientAddressNone {
			var added dnswire.ECSAdded
			dgram, added = frameUDP(q.frame, q.n, mode, q.opt, q.client.addrPort(), q.front.addr, &b.settings.Load().ECS)
			if added != dnswire.AddedNothing {
				u.table.setAdded(id, added)
			}
		}
		out.add(u.sock, dgram, &be.sa.raw, be.sa.len, sendRef{up: u, be: be, id: id})
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
		b.sweep(b.now(), out)
	}
}

// sweep times out every query older than timeouts.udp, on every upstream
// socket, and only then retries them: so each retry knows every backend
// that timed out in this sweep (two that stalled in the same second).
func (b *Balancer) sweep(now int64, out *outbox) {
	s := b.settings.Load()
	deadline := now - int64(s.UDPTimeout)
	b.udpf.expired = b.udpf.expired[:0]
	for _, u := range b.udpf.upstreams.all() {
		u.table.expire(deadline, func(p *pending) { b.udpf.expired = append(b.udpf.expired, *p) })
	}
	for i := range b.udpf.expired {
		b.timedOut(&b.udpf.expired[i], s)
	}
	quiet := now - int64(s.UDPTimeout/retryQuietFraction)
	for i := range b.udpf.expired {
		b.retry(&b.udpf.expired[i], s, quiet, out)
	}
	// The retries refer to b.udpf.expired: send them before it is reused.
	out.flush()
}

// retryQuietFraction: a backend with queries in flight that has answered
// nothing for UDPTimeout/retryQuietFraction (50 ms at the default 1 s) is
// passed over by a retry while another backend is answering. The cutoff
// only ranks the candidates (with none answering, the retry still goes to
// the least loaded), so it can be short: under load a healthy backend
// answers every few milliseconds. At 250 ms a 100,000-zone storm still
// lost 4 queries whose retry went to a second NSD secondary that had
// stopped answering a moment before.
const retryQuietFraction = 20

// timedOut accounts for one unanswered query: a timeout for the backend
// and a passive failure signal after too many in a row.
func (b *Balancer) timedOut(p *pending, s *Settings) {
	be := p.be
	be.outstanding.Add(-1)
	be.timeouts.Add(1)
	be.foldLatency(s.UDPTimeout)
	n := be.consecutive.Add(1)
	if s.PassiveMaxTimeouts > 0 && n == int64(s.PassiveMaxTimeouts) && b.passive != nil {
		b.passive(be.name, n)
	}
}

// retry sends a timed-out query once more, to the backend pool.pickRetry
// chooses (another one, or this one if it alone is answering), unless it
// was a retry already or was not kept.
func (b *Balancer) retry(p *pending, s *Settings, quiet int64, out *outbox) {
	if !s.UDPRetry || p.retried || p.qlen == 0 || b.stopping.Load() {
		return
	}
	be := p.be
	to := b.pool.pickRetry(!s.RefuseWhenAllDown, be, quiet)
	if to == nil {
		return
	}
	q := udpQuery{frame: p.query[:], n: int(p.qlen), opt: int(p.qopt), origID: p.origID, qhash: p.qhash, qexact: p.qexact, client: p.client, front: p.front, retried: true}
	if b.send(out, to, &q) {
		be.retried.Add(1)
	}
}
