package balancer

import (
	"errors"
	"golang.org/x/sys/unix"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// tcpFrontend is one client-facing TCP listener.
type tcpFrontend struct {
	addr netip.AddrPort
	ln   *net.TCPListener
	done chan struct{} // closed when its accept loop returns
}

// maxTCPMessage is the largest DNS message on TCP plus its length prefix.
const maxTCPMessage = 2 + 65535

// msgBufs recycles TCP message buffers so that idle connections hold none.
var msgBufs = sync.Pool{New: func() any { b := make([]byte, maxTCPMessage); return &b }}

func (b *Balancer) acceptLoop(f *tcpFrontend) {
	defer b.workers.Done()
	defer close(f.done)
	for {
		c, err := f.ln.AcceptTCP()
		if err != nil {
			if b.stopping.Load() || isClosed(err) {
				return
			}
			// EMFILE and friends: back off instead of spinning.
			b.log.Warn("tcp accept failed", "address", f.addr.String(), "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		b.admitTCP(c, f)
	}
}

// admitTCP enforces the connection caps and starts a session.
func (b *Balancer) admitTCP(c *net.TCPConn, f *tcpFrontend) {
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	s := b.settings.Load()
	if !s.permitted(client) {
		c.Close()
		b.drop(dropACL)
		return
	}
	b.tcpMu.Lock()
	if b.tcpConns.Load() >= int64(s.MaxTCPConns) {
		b.tcpMu.Unlock()
		c.Close()
		b.drop(dropTCPLimit)
		b.logLimited(dropTCPLimit, "tcp connection limit reached, refusing connections", "limit", s.MaxTCPConns, "key", "limits.tcp_connections", "client", client.String())
		return
	}
	if b.perClient[client] >= s.MaxTCPConnsPerClient {
		b.tcpMu.Unlock()
		c.Close()
		b.drop(dropTCPClientLimit)
		b.logLimited(dropTCPClientLimit, "tcp per-client connection limit reached, refusing connections", "limit", s.MaxTCPConnsPerClient, "key", "limits.tcp_connections_per_client", "client", client.String())
		return
	}
	sess := &tcpSession{b: b, client: c, clientAddr: client, idle: s.TCPIdleTimeout, readLimit: s.TCPReadTimeout}
	sess.touch()
	b.perClient[client]++
	b.tcpConns.Add(1)
	b.sessions[sess] = struct{}{}
	b.sessionWG.Add(1)
	b.tcpMu.Unlock()
	go sess.run()
}

// tcpSession proxies one client connection to one backend connection.
type tcpSession struct {
	b          *Balancer
	client     *net.TCPConn
	clientAddr netip.Addr
	idle       time.Duration
	readLimit  time.Duration // a client message must arrive whole within this of its first byte
	lastActive atomic.Int64  // unix nanoseconds of the last byte either way

	draining     atomic.Bool // shutting down: stop at the next message boundary
	upstreamDone atomic.Bool // the backend closed its side cleanly

	mu       sync.Mutex
	upstream *net.TCPConn
	closed   bool
}

func (s *tcpSession) touch() { s.lastActive.Store(time.Now().UnixNano()) }

// drain makes the session stop reading client messages at the next
// message boundary (readMsg returns errDrained); the backend then answers
// what it was sent and the connection closes cleanly.
func (s *tcpSession) drain() {
	s.draining.Store(true)
	s.client.SetReadDeadline(time.Now()) // wake a read waiting for the next message
}

// finish ends the session. When draining, the client gets a FIN first and
// its side is read until it closes (at most a second): closing a socket
// with unread data would send a reset, and a client that sees a clean
// close retries a query it sent meanwhile on a new connection (RFC 7766).
func (s *tcpSession) finish() {
	if s.draining.Load() {
		s.client.CloseWrite()
		s.client.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, s.client)
	}
	s.close()
}

// close closes both connections; safe to call more than once.
func (s *tcpSession) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.client.Close()
	if s.upstream != nil {
		if !s.upstreamDone.Load() {
			// The backend has not closed its side: the session ends
			// abnormally (bad client, timeout). Reset the backend
			// connection instead of leaving a TIME_WAIT socket on one of
			// our ephemeral ports for a minute, so that abusive clients
			// cannot exhaust the ports towards the backends.
			s.upstream.SetLinger(0)
		}
		s.upstream.Close()
	}
}

func (s *tcpSession) release() {
	s.close()
	b := s.b
	b.tcpMu.Lock()
	if b.perClient[s.clientAddr]--; b.perClient[s.clientAddr] <= 0 {
		delete(b.perClient, s.clientAddr)
	}
	delete(b.sessions, s)
	b.tcpConns.Add(-1)
	b.tcpMu.Unlock()
	b.sessionWG.Done()
}

func (s *tcpSession) run() {
	defer s.release()
	b := s.b
	bufp := msgBufs.Get().(*[]byte)
	msg, err := s.readMsg(s.client, *bufp)
	if err != nil {
		msgBufs.Put(bufp)
		s.noteReadError(err)
		return
	}
	m, r := parseQuery(msg[2:])
	if r != dropNone {
		msgBufs.Put(bufp)
		b.drop(dropTCPMalformed)
		return
	}
	if set := b.settings.Load(); m.opcode == opcodeNotify && len(set.NotifyPrimaries) > 0 {
		s.serveNotifies(msg, m, bufp)
		return
	}
	be, up := s.connect(msg)
	if up == nil {
		msgBufs.Put(bufp)
		return
	}
	defer be.tcpActive.Add(-1)
	_, err = up.Write(msg)
	msgBufs.Put(bufp)
	if err != nil {
		return
	}
	be.tcpQueries.Add(1)

	done := make(chan struct{})
	go func() {
		defer close(done)
		s.pumpAnswers(be, up)
	}()
	clean := s.pumpQueries(be, up)
	if clean {
		// The client closed its side: let the backend finish answering.
		up.CloseWrite()
	} else {
		s.close()
	}
	<-done
}

// serveNotifies answers NOTIFYs on a connection that started with one (a
// primary notifying over TCP) without a backend: each is answered here and,
// from a primary, handed to OnTCPNotify to be copied to the backends. Any
// other message ends the connection.
func (s *tcpSession) serveNotifies(msg []byte, m message, bufp *[]byte) {
	b := s.b
	defer msgBufs.Put(bufp)
	local := s.client.LocalAddr().(*net.TCPAddr).AddrPort()
	remote := s.client.RemoteAddr().(*net.TCPAddr).AddrPort()
	for {
		ok := b.notifyAllowed(b.settings.Load(), remote.Addr())
		if ok && b.onNotify != nil {
			b.onNotify(append([]byte(nil), msg[2:]...), remote, local)
		}
		r := b.notifyReply(msg[2:], m, ok, b.settings.Load())
		out := make([]byte, 2+len(r))
		out[0], out[1] = byte(len(r)>>8), byte(len(r))
		copy(out[2:], r)
		if _, err := s.client.Write(out); err != nil {
			return
		}
		var err error
		msg, err = s.readMsg(s.client, *bufp)
		if err != nil {
			s.noteReadError(err)
			return
		}
		var r2 dropReason
		if m, r2 = parseQuery(msg[2:]); r2 != dropNone || m.opcode != opcodeNotify {
			b.drop(dropTCPMalformed)
			return
		}
	}
}

// connect picks a backend by least active connections and dials it,
// trying a second backend if the first refuses. first is the client's
// first message (with its length prefix), answered REFUSED when no backend
// is up and all_down is refuse.
func (s *tcpSession) connect(first []byte) (*Backend, *net.TCPConn) {
	b := s.b
	set := b.settings.Load()
	var tried *Backend
	for attempt := 0; attempt < 2; attempt++ {
		be, allDown := b.pool.pick(tcpLoad, !set.RefuseWhenAllDown, tried)
		if be == nil && allDown && set.RefuseWhenAllDown && tried == nil {
			m, _ := parseQuery(first[2:])
			r := refusal(first[2:], m)
			first[0], first[1] = byte(len(r)>>8), byte(len(r))
			s.client.Write(first[:2+len(r)])
			b.drop(dropAllDownRefused)
			return nil, nil
		}
		if be == nil {
			break
		}
		be.tcpActive.Add(1) // count before dialing so concurrent picks spread
		d := net.Dialer{Timeout: min(s.idle, 3*time.Second), Control: reuseAddr}
		c, err := d.Dial("tcp", be.addr.String())
		if err == nil {
			s.mu.Lock()
			s.upstream = c.(*net.TCPConn)
			closed := s.closed
			s.mu.Unlock()
			if closed {
				c.Close()
				be.tcpActive.Add(-1)
				return nil, nil
			}
			return be, c.(*net.TCPConn)
		}
		be.tcpActive.Add(-1)
		b.drop(dropTCPBackendConnect)
		b.logLimited(dropTCPBackendConnect, "tcp connect to backend failed", "backend", be.name, "err", err)
		tried = be
	}
	if tried == nil {
		b.drop(dropNoBackend)
	}
	return nil, nil
}

// pumpQueries forwards client messages to the backend, validating each. It
// returns true when the client closed its side cleanly.
func (s *tcpSession) pumpQueries(be *Backend, up *net.TCPConn) bool {
	for {
		bufp := msgBufs.Get().(*[]byte)
		msg, err := s.readMsg(s.client, *bufp)
		if err != nil {
			msgBufs.Put(bufp)
			s.noteReadError(err)
			return errors.Is(err, io.EOF) || errors.Is(err, errDrained)
		}
		if _, r := parseQuery(msg[2:]); r != dropNone {
			msgBufs.Put(bufp)
			s.b.drop(dropTCPMalformed)
			return false
		}
		_, err = up.Write(msg)
		msgBufs.Put(bufp)
		if err != nil {
			return false
		}
		be.tcpQueries.Add(1)
	}
}

// pumpAnswers forwards backend messages to the client, counting rcodes.
func (s *tcpSession) pumpAnswers(be *Backend, up *net.TCPConn) {
	defer s.finish()
	for {
		bufp := msgBufs.Get().(*[]byte)
		msg, err := s.readMsg(up, *bufp)
		if err != nil {
			msgBufs.Put(bufp)
			if errors.Is(err, io.EOF) {
				s.upstreamDone.Store(true) // the backend closed first: no TIME_WAIT here
			}
			return
		}
		if len(msg) >= 2+headerLen {
			be.rcodes[msg[2+3]&0x0f].Add(1)
		}
		_, err = s.client.Write(msg)
		msgBufs.Put(bufp)
		if err != nil {
			return
		}
	}
}

// reuseAddr sets SO_REUSEADDR on a backend connection's socket. Its
// TIME_WAIT (after a clean close, which dnslb starts) then does not keep a
// listener with SO_REUSEADDR from binding that ephemeral port.
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

// errPartial marks a connection that went idle in the middle of a message.
var errPartial = errors.New("idle in the middle of a message")

// errDrained ends a session at a message boundary while shutting down.
var errDrained = errors.New("draining")

// errSlow marks a client whose message did not arrive whole within
// timeouts.tcp_read of its first byte (slowloris).
var errSlow = errors.New("message not complete within timeouts.tcp_read")

// readMsg reads one length-prefixed message into buf and returns it with
// its prefix. The read deadline is the idle timeout counted from the last
// activity in either direction, so a long zone transfer is not cut because
// the client is silent. A message from the client must also arrive whole
// within readLimit of its first byte, so that a client trickling bytes
// cannot hold a connection (and its buffer) for ever.
func (s *tcpSession) readMsg(c *net.TCPConn, buf []byte) ([]byte, error) {
	var limit time.Time // zero until the first byte of a client message
	if err := s.readFull(c, buf[:2], true, &limit); err != nil {
		return nil, err
	}
	n := int(buf[0])<<8 | int(buf[1])
	if n < headerLen {
		return nil, errTooShort
	}
	if err := s.readFull(c, buf[2:2+n], false, &limit); err != nil {
		return nil, err
	}
	return buf[:2+n], nil
}

var errTooShort = errors.New("message shorter than a DNS header")

// readFull fills p. For the client connection, *limit is set when the
// message's first byte arrives and bounds the rest of it.
func (s *tcpSession) readFull(c *net.TCPConn, p []byte, atBoundary bool, limit *time.Time) error {
	got := 0
	fromClient := c == s.client && s.readLimit > 0
	for got < len(p) {
		deadline := time.Unix(0, s.lastActive.Load()).Add(s.idle)
		if fromClient && !limit.IsZero() && limit.Before(deadline) {
			deadline = *limit
		}
		drainNow := c == s.client && atBoundary && got == 0 && s.draining.Load()
		if drainNow {
			deadline = time.Now()
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return err
		}
		n, err := c.Read(p[got:])
		if n > 0 {
			if fromClient && limit.IsZero() {
				*limit = time.Now().Add(s.readLimit)
			}
			got += n
			s.touch()
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if c == s.client && atBoundary && got == 0 && s.draining.Load() {
				return errDrained
			}
			if fromClient && !limit.IsZero() && !time.Now().Before(*limit) {
				return errSlow
			}
			if time.Since(time.Unix(0, s.lastActive.Load())) < s.idle {
				continue // the other direction was busy
			}
			if got > 0 || !atBoundary {
				return errPartial
			}
			return err
		}
		if errors.Is(err, io.EOF) && (got > 0 || !atBoundary) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
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
				"key", "timeouts.tcp_read", "limit", s.readLimit.String(), "dropped_total", s.b.drops[dropTCPSlow].Load())
		}
	case errors.Is(err, errTooShort), errors.Is(err, io.ErrUnexpectedEOF):
		s.b.drop(dropTCPMalformed)
	}
}
