package balancer

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/internal/dnswire"
	"github.com/dnslb/dnslb/internal/proxyv2"
)

// tcpBackoff is how long new TCP connections avoid a backend after a
// connection to it failed (refused, or closed before its first answer),
// unless no other backend is left.
const tcpBackoff = 2 * time.Second

// tcpLoad is the TCP least-connection load: open connections, plus a
// penalty that puts a backend in TCP backoff behind every other one.
func tcpLoad(be *Backend) int64 {
	l := be.tcpActive.Load()
	if be.tcpBackoffUntil.Load() > time.Now().UnixNano() {
		l += 1 << 40
	}
	return l
}

// upstreamEnd says why a backend connection ended.
type upstreamEnd uint8

const (
	upstreamIdle          upstreamEnd = iota // nothing outstanding on it any more
	upstreamClosed                           // the backend closed it
	upstreamFailed                           // an error, or no answer within timeouts.tcp_idle
	upstreamMismatch                         // it sent an answer that matches no outstanding query
	upstreamSessionClosed                    // the client's session ended
)

// tcpUpstream is one connection from a session to a backend.
type tcpUpstream struct {
	s          *tcpSession
	be         *Backend
	conn       *net.TCPConn
	wmu        sync.Mutex // serializes writes
	lastActive atomic.Int64
	eof        atomic.Bool // the backend closed first: no TIME_WAIT on our side
	// failAt is set when a write failed (unix nanoseconds): no new query
	// goes out on the connection, and its reader stops by then, after
	// reading the answers already on their way.
	failAt atomic.Int64
	// mode is the backend's client_address when the connection opened:
	// a proxy_v2 connection starts with the client's PROXY header.
	mode ClientAddress

	// guarded by s.mu
	dead     bool
	answered int // answer messages matched on it
}

// dial opens a connection to be and makes it the session's current one.
func (s *tcpSession) dial(be *Backend) (*tcpUpstream, error) {
	be.tcpActive.Add(1) // count before dialing so that concurrent picks spread
	d := net.Dialer{Timeout: min(s.idle, 3*time.Second), Control: reuseAddr}
	c, err := d.Dial("tcp", be.addr.String())
	if err != nil {
		be.tcpActive.Add(-1)
		return nil, err
	}
	u := &tcpUpstream{s: s, be: be, conn: c.(*net.TCPConn), mode: ClientAddress(be.clientAddr.Load())}
	u.touch()
	if u.mode == ClientAddressProxyV2 { // not proxy_v2_udp
		if err := u.sendProxyHeader(); err != nil {
			u.conn.SetLinger(0)
			u.conn.Close()
			be.tcpActive.Add(-1)
			return nil, err
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		u.conn.SetLinger(0)
		u.conn.Close()
		be.tcpActive.Add(-1)
		return nil, net.ErrClosed
	}
	s.up = u
	s.ups = append(s.ups, u)
	s.readers.Add(1)
	s.mu.Unlock()
	go u.readLoop()
	return u, nil
}

// sendProxyHeader writes the PROXY v2 header for the session's client
// and the VIP it connected to: the first bytes of the connection.
func (u *tcpUpstream) sendProxyHeader() error {
	var hdr [proxyv2.MaxLen]byte
	src := u.s.client.RemoteAddr().(*net.TCPAddr).AddrPort()
	dst := u.s.client.LocalAddr().(*net.TCPAddr).AddrPort()
	u.setWriteDeadline()
	_, err := u.conn.Write(proxyv2.Append(hdr[:0], src, dst, true))
	return err
}

// setWriteDeadline gives the next write timeouts.tcp_write (or 5s).
func (u *tcpUpstream) setWriteDeadline() {
	limit := u.s.writeLimit
	if limit <= 0 {
		limit = 5 * time.Second
	}
	u.conn.SetWriteDeadline(time.Now().Add(limit))
}

func (u *tcpUpstream) touch() { u.lastActive.Store(time.Now().UnixNano()) }

func (u *tcpUpstream) idleDeadline() time.Time {
	d := time.Unix(0, u.lastActive.Load()).Add(u.s.idle)
	if f := u.failAt.Load(); f != 0 && f < d.UnixNano() {
		return time.Unix(0, f)
	}
	return d
}

// usable reports whether new queries may go out on u.
func (u *tcpUpstream) usable() bool {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	return !u.dead && u.failAt.Load() == 0
}

// writeFailed marks u as failed after a write error. Its reader ends it
// (and sends again what is outstanding) once the answers the backend had
// already sent are read: at EOF, or half a second from now.
func (u *tcpUpstream) writeFailed() {
	at := time.Now().Add(500 * time.Millisecond)
	if u.failAt.CompareAndSwap(0, at.UnixNano()) {
		u.conn.SetReadDeadline(at)
	}
}

// write sends one framed query; a backend that does not take it within
// timeouts.tcp_write (or 5s) has failed.
func (u *tcpUpstream) write(frame []byte) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	u.setWriteDeadline()
	_, err := u.conn.Write(frame)
	u.touch()
	if err == nil {
		u.be.tcpQueries.Add(1)
	}
	return err
}

// pending counts the queries outstanding on u (s.mu held).
func (u *tcpUpstream) pending() int {
	n := 0
	for i := range u.s.slots {
		if q := &u.s.slots[i]; q.used && q.up == u {
			n++
		}
	}
	return n
}

// readLoop relays the backend's answers until the connection ends. Each
// answer must match an outstanding query of this connection (ID,
// question in any letter case, QR=1); a zone transfer's messages until its
// end (xfr). Anything else closes the connection, as a UDP answer that
// matches nothing is dropped; what was outstanding on it is sent again.
func (u *tcpUpstream) readLoop() {
	defer u.s.readers.Done()
	s, b, be := u.s, u.s.b, u.be
	f := framer{c: u.conn, idle: u.idleDeadline, waitMore: func() bool { return false }, active: u.touch}
	for {
		bufp := msgBufs.Get().(*[]byte)
		msg, err := f.read(*bufp)
		if err != nil {
			msgBufs.Put(bufp)
			why := upstreamFailed
			switch {
			case errors.Is(err, io.EOF):
				u.eof.Store(true)
				why = upstreamClosed
			case errors.Is(err, os.ErrDeadlineExceeded):
				s.mu.Lock()
				if u.pending() == 0 && u.failAt.Load() == 0 {
					why = upstreamIdle
				}
				s.mu.Unlock()
			}
			u.end(why)
			return
		}
		am, r := parseAnswer(msg[2:])
		// After its first message a zone transfer may leave the
		// question out (RFC 5936 2.2.1): such a message matches by ID.
		continued := r != dropNone && isBareAnswer(msg[2:])
		if continued {
			am = message{id: uint16(msg[2])<<8 | uint16(msg[3]), rcode: msg[5] & 0x0f, qend: headerLen}
		}
		s.mu.Lock()
		q := &s.slots[int(am.id)&(maxTCPInflight-1)]
		matched := q.used && !q.answered && q.up == u && q.id == am.id
		if continued {
			matched = matched && q.isXFR && q.relayed > 0
		} else {
			matched = matched && r == dropNone && (q.qhash == am.qhash || am.noQuestion)
		}
		if !matched {
			s.mu.Unlock()
			msgBufs.Put(bufp)
			be.unmatched.Add(1)
			b.drop(dropTCPAnswerMismatch)
			b.logLimited(dropTCPAnswerMismatch, "tcp answer matches no outstanding query, backend connection closed", "backend", be.name)
			u.end(upstreamMismatch)
			return
		}
		done := !q.isXFR || q.xfr.feed(msg[2:], am.qend)
		q.relayed++
		u.answered++
		origID, caseChanged, id, ecs := q.origID, !continued && !am.noQuestion && q.qexact != am.qexact, q.id, q.ecs
		// The slot is freed once the answer is written, so that a session
		// waiting for its answers does not close before.
		q.answered = done
		s.mu.Unlock()
		be.rcodes[am.rcode].Add(1)
		if caseChanged {
			be.caseChanged.Add(1)
		}
		if am.noQuestion {
			be.noQuestion.Add(1)
		}
		if be.consecutive.Load() != 0 {
			be.consecutive.Store(0)
		}
		setID(msg[2:], origID)
		if ecs != dnswire.AddedNothing {
			stripped, _ := dnswire.StripECS(msg[2:], ecs)
			putLen(msg, len(stripped))
			msg = msg[:2+len(stripped)]
		}
		err = s.write(msg)
		msgBufs.Put(bufp)
		spare := false
		if done {
			s.mu.Lock()
			if q.used && q.id == id {
				s.freeSlot(q, true)
			}
			spare = s.up != u && u.pending() == 0
			s.mu.Unlock()
		}
		if err != nil {
			return // the session is closed; close ends this connection
		}
		if spare {
			u.end(upstreamIdle) // no longer the session's current one, and done
			return
		}
	}
}

// end closes the connection (once) and takes care of the queries still
// outstanding on it:
//   - the backend closed it after answering on it (servers do, after an
//     answer or when idle): they are sent again, on a new connection;
//   - it failed (refused, reset, timed out, closed before any answer, or
//     sent a wrong answer): each is sent once more, avoiding this backend;
//     a query that fails twice is answered SERVFAIL by dnslb;
//   - a zone transfer already partly relayed cannot be sent again: the
//     client's connection is closed, so that it retries.
func (u *tcpUpstream) end(why upstreamEnd) {
	s := u.s
	s.mu.Lock()
	if u.dead {
		s.mu.Unlock()
		return
	}
	u.dead = true
	if s.up == u {
		s.up = nil
	}
	for i, x := range s.ups {
		if x == u {
			s.ups = append(s.ups[:i], s.ups[i+1:]...)
			break
		}
	}
	failure := why == upstreamFailed || why == upstreamMismatch || (why == upstreamClosed && u.answered == 0)
	type ref struct {
		idx int
		id  uint16
	}
	var again, giveUp []ref
	abort := false
	for i := range s.slots {
		q := &s.slots[i]
		if !q.used || q.up != u || q.answered {
			continue // not on u, or done (its last answer is being written)
		}
		q.up = nil
		switch {
		case s.closed || why == upstreamSessionClosed:
		case q.relayed > 0:
			abort = true
		case !failure:
			again = append(again, ref{i, q.id})
		case q.resent:
			giveUp = append(giveUp, ref{i, q.id})
		default:
			q.resent, q.failed = true, u.be
			u.be.retried.Add(1)
			again = append(again, ref{i, q.id})
		}
	}
	closed := s.closed
	s.mu.Unlock()

	if !u.eof.Load() {
		// We close first: reset instead of leaving a TIME_WAIT socket on
		// one of our ephemeral ports for a minute, so that abusive
		// clients cannot exhaust the ports towards the backends.
		u.conn.SetLinger(0)
	}
	u.conn.Close()
	u.be.tcpActive.Add(-1)
	if failure && why != upstreamSessionClosed {
		s.b.backendFailed(u.be)
	}
	if closed {
		return
	}
	if abort {
		s.close()
		return
	}
	set := s.b.settings.Load()
	for _, r := range again {
		s.dispatch(set, r.idx, r.id)
	}
	for _, r := range giveUp {
		s.answerSlot(r.idx, r.id, answered(answerServFail, rcodeServFail))
	}
}

// backendFailed notes a failed TCP connection to be: new connections
// avoid it for tcpBackoff, and it counts towards passive health detection
// as a UDP timeout does.
func (b *Balancer) backendFailed(be *Backend) {
	be.tcpBackoffUntil.Store(time.Now().Add(tcpBackoff).UnixNano())
	n := be.consecutive.Add(1)
	if s := b.settings.Load(); s.PassiveMaxTimeouts > 0 && n == int64(s.PassiveMaxTimeouts) && b.passive != nil {
		b.passive(be.name, n)
	}
}
