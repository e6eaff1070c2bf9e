package balancer

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/internal/dnswire"
)

// maxTCPInflight is how many queries one client connection may have
// outstanding at once (pipelining, RFC 7766 6.2.1.1). When all are in
// flight the session stops reading the client until an answer frees one,
// so a client that never reads cannot make dnslb buffer without bound.
const (
	tcpInflightBits = 6
	maxTCPInflight  = 1 << tcpInflightBits
)

// tcpQuery is one client query outstanding on a session.
type tcpQuery struct {
	used          bool
	id            uint16 // sent upstream: random high bits, slot index low bits
	origID        uint16 // the client's
	qhash, qexact uint64
	msg           *[]byte // the query with its length prefix, kept for a re-send
	n             int     // its length, prefix included
	up            *tcpUpstream
	isXFR         bool
	xfr           xfr
	relayed       int              // answer messages relayed (zone transfers send several)
	failed        *Backend         // the backend whose connection failed it: a re-send avoids it
	resent        bool             // already re-sent after a failure
	answered      bool             // its (last) answer is being written: the slot frees after that
	opt           int              // offset of the query's OPT record, -1 if none
	ecs           dnswire.ECSAdded // what client_address: ecs added to it (taken out of its answers)
}

// tcpSession serves one client connection. Its reader (run) puts every
// message through admission; dnslb's own answers are written back at once
// and the connection stays open; forwarded queries get an ID of the
// session and go out on the session's current backend connection. Answers
// come back in any order (tcpUpstream.readLoop), are matched like UDP
// answers (ID, question, QR) and relayed with the client's ID. A backend
// connection that closes or fails does not close the client's: what was
// outstanding on it is sent again on a new one.
type tcpSession struct {
	b          *Balancer
	client     *net.TCPConn
	clientAddr netip.Addr
	idle       time.Duration
	readLimit  time.Duration // a client message must arrive whole within this of its first byte
	writeLimit time.Duration // a write to the client must finish within this
	lastActive atomic.Int64  // unix nanoseconds of the last byte either way

	draining atomic.Bool // shutting down: stop at the next message boundary

	wmu sync.Mutex // serializes writes to the client

	connMu sync.Mutex // one backend dial at a time

	mu       sync.Mutex
	cond     *sync.Cond // signalled when a slot frees or the session closes
	slots    [maxTCPInflight]tcpQuery
	inflight int
	rng      uint64
	up       *tcpUpstream   // where new queries go; nil until needed
	ups      []*tcpUpstream // every open backend connection
	closed   bool

	readers sync.WaitGroup // upstream read loops
}

func newTCPSession(b *Balancer, c *net.TCPConn, client netip.Addr, s *Settings) *tcpSession {
	sess := &tcpSession{b: b, client: c, clientAddr: client, idle: s.TCPIdleTimeout,
		readLimit: s.TCPReadTimeout, writeLimit: s.TCPWriteTimeout, rng: uint64(time.Now().UnixNano()) | 1}
	sess.cond = sync.NewCond(&sess.mu)
	sess.touch()
	return sess
}

func (s *tcpSession) touch() { s.lastActive.Store(time.Now().UnixNano()) }

func (s *tcpSession) idleDeadline() time.Time {
	return time.Unix(0, s.lastActive.Load()).Add(s.idle)
}

func (s *tcpSession) outstanding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight > 0
}

// drain makes the session stop reading client messages at the next
// message boundary; the answers owed are relayed and the connection
// closes cleanly.
func (s *tcpSession) drain() {
	s.draining.Store(true)
	s.client.SetReadDeadline(time.Now()) // wake a read waiting for the next message
}

// run reads client messages until the client closes, errs or is told to
// stop, then finishes the session.
func (s *tcpSession) run() {
	defer s.release()
	b := s.b
	f := framer{c: s.client, idle: s.idleDeadline, waitMore: s.outstanding, drain: s.draining.Load,
		limit: s.readLimit, active: s.touch}
	clean := false
	for {
		bufp := msgBufs.Get().(*[]byte)
		msg, err := f.read(*bufp)
		if err != nil {
			msgBufs.Put(bufp)
			s.noteReadError(err)
			clean = errors.Is(err, io.EOF) || errors.Is(err, errDrained)
			break
		}
		set := b.settings.Load()
		m, v := b.admit(set, msg[2:], s.clientAddr, overTCP)
		if v.action == forward {
			s.forward(set, msg, m)
			msgBufs.Put(bufp)
			continue
		}
		if v.action == drop {
			msgBufs.Put(bufp)
			b.drop(dropTCPMalformed)
			clean = true // what was asked before is still answered
			break
		}
		if v.action == notify {
			local := s.client.LocalAddr().(*net.TCPAddr).AddrPort()
			remote := s.client.RemoteAddr().(*net.TCPAddr).AddrPort()
			b.handNotify(set, msg[2:], m, remote, local, func(r []byte) error { return s.writeAnswer(*bufp, r) }, s.writeFramed)
			msgBufs.Put(bufp)
			continue
		}
		err = s.writeAnswer(*bufp, b.reply(msg[2:], m, v, s.clientAddr))
		msgBufs.Put(bufp)
		if err != nil || v.kind == answerFormErr {
			clean = err == nil
			break
		}
	}
	if clean {
		s.awaitAnswers()
	}
	s.finish(clean)
}

// awaitAnswers waits until every outstanding query is answered (or given
// up on) or the session is closed.
func (s *tcpSession) awaitAnswers() {
	s.mu.Lock()
	for s.inflight > 0 && !s.closed {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// writeAnswer writes r, an answer built in place in buf[2:] (or, for a
// signed NOTIFY answer, anywhere), to the client with its length prefix.
func (s *tcpSession) writeAnswer(buf, r []byte) error {
	if len(r) > 0 && len(buf) >= 2+len(r) && &buf[2] == &r[0] {
		putLen(buf, len(r))
		return s.write(buf[:2+len(r)])
	}
	return s.writeFramed(r)
}

// writeFramed writes r with a length prefix, from a new buffer (answers
// that are not built in place: NOTIFY answers sent after the copies).
func (s *tcpSession) writeFramed(r []byte) error {
	out := make([]byte, 2+len(r))
	putLen(out, len(r))
	copy(out[2:], r)
	return s.write(out)
}

// write writes one framed message to the client within the write limit. A
// client that does not read its answers (timeouts.tcp_write) is cut off:
// it would otherwise hold its buffers and a backend connection for ever.
func (s *tcpSession) write(frame []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writeLimit > 0 {
		s.client.SetWriteDeadline(time.Now().Add(s.writeLimit))
	}
	_, err := s.client.Write(frame)
	if err == nil {
		s.touch()
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		b := s.b
		b.drop(dropTCPWriteTimeout)
		if b.logDue(dropTCPWriteTimeout) {
			b.log.Warn("tcp client does not read its answers, closed", "client", s.clientAddr.String(),
				"key", "timeouts.tcp_write", "limit", s.writeLimit.String(), "dropped_total", b.ctr.drops[dropTCPWriteTimeout].Load())
		}
	}
	s.close()
	return err
}

// forward takes a slot for the query in msg (with its length prefix),
// waiting while all are in use, and sends it.
func (s *tcpSession) forward(set *Settings, msg []byte, m message) {
	s.mu.Lock()
	for s.inflight == maxTCPInflight && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return
	}
	idx := 0
	for s.slots[idx].used {
		idx++
	}
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	q := &s.slots[idx]
	*q = tcpQuery{used: true, id: uint16(s.rng>>32)<<tcpInflightBits | uint16(idx), origID: m.id,
		qhash: m.qhash, qexact: m.qexact, msg: keepBuf(msg), n: len(msg),
		isXFR: m.qtype == typeAXFR || m.qtype == typeIXFR, xfr: xfr{qtype: m.qtype}, opt: m.opt}
	setID((*q.msg)[2:], q.id)
	id := q.id
	s.inflight++
	s.mu.Unlock()
	s.dispatch(set, idx, id)
}

// dispatch sends the query in slot idx on a backend connection: the
// current one, or a new one (avoiding a backend that failed this query).
// When no backend can take it, the client gets dnslb's own answer
// (REFUSED when all are down and all_down is refuse, else SERVFAIL).
//
// idx and id name the query: a slot freed and taken by a newer query
// meanwhile has another id.
func (s *tcpSession) dispatch(set *Settings, idx int, id uint16) {
	for {
		s.mu.Lock()
		q := &s.slots[idx]
		if !q.used || q.id != id || s.closed {
			s.mu.Unlock()
			return
		}
		avoid := q.failed
		s.mu.Unlock()
		u, v := s.upstream(set, avoid)
		if u == nil {
			s.answerSlot(idx, id, v)
			return
		}
		s.mu.Lock()
		if !q.used || q.id != id {
			s.mu.Unlock()
			return
		}
		if u.dead {
			s.mu.Unlock()
			continue // it died meanwhile: its end already ran without this query
		}
		q.up = u
		// The answer may be relayed and the slot freed (and taken by
		// the next query) before Write returns: write a copy.
		wb := keepBuf((*q.msg)[:q.n])
		n := q.n
		q.ecs = dnswire.AddedNothing
		if u.mode == ClientAddressECS {
			n, q.ecs = s.addECS(*wb, n, q.opt, set)
		}
		s.mu.Unlock()
		// From here the connection owns the query: if the write fails,
		// its reader ends it and the query is sent again.
		err := u.write((*wb)[:n])
		putBuf(wb)
		if err != nil {
			u.writeFailed()
		}
		return
	}
}

// addECS adds the client's ECS option to the framed query buf[:n] and
// returns its new length and what was added.
func (s *tcpSession) addECS(buf []byte, n, opt int, set *Settings) (int, dnswire.ECSAdded) {
	msg, added := addECS(buf[2:n], opt, s.clientAddr, &set.ECS)
	putLen(buf, len(msg))
	return 2 + len(msg), added
}

// answerSlot gives up on the query in slot idx and answers it with
// dnslb's own answer for v.
func (s *tcpSession) answerSlot(idx int, id uint16, v verdict) {
	s.mu.Lock()
	q := &s.slots[idx]
	if !q.used || q.id != id {
		s.mu.Unlock()
		return
	}
	bp, n, origID := q.msg, q.n, q.origID
	q.msg = nil
	s.freeSlot(q, false)
	s.mu.Unlock()
	defer putBuf(bp)
	buf := *bp
	msg := buf[2:n]
	setID(msg, origID)
	m, _ := parseQuery(msg)
	_ = s.writeAnswer(buf, s.b.reply(msg, m, v, s.clientAddr))
}

// freeSlot releases a slot (s.mu held), and its message buffer if
// putMsg.
func (s *tcpSession) freeSlot(q *tcpQuery, putMsg bool) {
	if putMsg && q.msg != nil {
		putBuf(q.msg)
	}
	*q = tcpQuery{}
	s.inflight--
	s.cond.Broadcast()
}

// upstream returns the backend connection a query should go out on: the
// current one, unless it is to avoid's backend, else a new one to the
// backend with the fewest TCP connections per weight (one whose TCP
// recently failed only as a last resort). A backend that refuses the
// connection is left for another, once.
func (s *tcpSession) upstream(set *Settings, avoid *Backend) (*tcpUpstream, verdict) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.mu.Lock()
	u, closed := s.up, s.closed
	s.mu.Unlock()
	if closed {
		return nil, dropped(dropTCPBackendConnect)
	}
	if u != nil && u.usable() && u.be != avoid {
		return u, verdict{action: forward}
	}
	b := s.b
	except := avoid
	var last verdict
	for attempt := 0; attempt < 2; attempt++ {
		be, v := b.pick(set, tcpLoad, except, overTCP)
		if be == nil {
			if attempt > 0 && last.action != 0 {
				return nil, last
			}
			return nil, v
		}
		u, err := s.dial(be)
		if err == nil {
			return u, verdict{action: forward}
		}
		b.drop(dropTCPBackendConnect)
		b.logLimited(dropTCPBackendConnect, "tcp connect to backend failed", "backend", be.name, "err", err)
		b.backendFailed(be)
		except = be
		last = answered(answerNoBackend, rcodeServFail)
	}
	return nil, answered(answerNoBackend, rcodeServFail)
}

// finish ends the session. After a clean end (the client closed its side,
// or shutdown) the client gets a FIN first and its side is read until it
// closes (at most a second): closing a socket with unread data would send
// a reset, and a client that sees a clean close retries a query it sent
// meanwhile on a new connection (RFC 7766).
func (s *tcpSession) finish(clean bool) {
	if clean && s.draining.Load() {
		s.client.CloseWrite()
		s.client.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, s.client)
	}
	s.close()
}

// close closes the client connection and every backend connection; safe
// to call more than once.
func (s *tcpSession) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	ups := append([]*tcpUpstream(nil), s.ups...)
	s.cond.Broadcast()
	s.mu.Unlock()
	s.client.Close()
	for _, u := range ups {
		u.end(upstreamSessionClosed)
	}
}

func (s *tcpSession) release() {
	s.close()
	s.readers.Wait()
	s.mu.Lock()
	for i := range s.slots {
		if q := &s.slots[i]; q.used {
			s.freeSlot(q, true)
		}
	}
	s.mu.Unlock()
	b := s.b
	b.tcpf.mu.Lock()
	if b.tcpf.perClient[s.clientAddr]--; b.tcpf.perClient[s.clientAddr] <= 0 {
		delete(b.tcpf.perClient, s.clientAddr)
	}
	delete(b.tcpf.sessions, s)
	b.tcpf.conns.Add(-1)
	b.tcpf.mu.Unlock()
	b.sessionWG.Done()
}

// noteReadError counts the client-side read failures that lose data.
func (s *tcpSession) noteReadError(err error) {
	switch {
	case errors.Is(err, errPartial):
		s.b.drop(dropTCPTimeout)
	case errors.Is(err, errSlow):
		s.b.drop(dropTCPSlow)
		if s.b.logDue(dropTCPSlow) {
			s.b.log.Warn("tcp client too slow to send a whole message, closed", "client", s.clientAddr.String(),
				"key", "timeouts.tcp_read", "limit", s.readLimit.String(), "dropped_total", s.b.ctr.drops[dropTCPSlow].Load())
		}
	case errors.Is(err, errTooShort), errors.Is(err, io.ErrUnexpectedEOF):
		s.b.drop(dropTCPMalformed)
	}
}
