package balancer

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The TCP front: client connections are accepted here and served by a
// tcpSession each (tcpsession.go), which sends the queries over backend
// connections (tcpupstream.go). Framing (the two-byte length prefix, RFC
// 1035 4.2.2) and its timeouts live in this file.

// tcpFrontend is one client-facing TCP listener.
type tcpFrontend struct {
	addr netip.AddrPort
	ln   *net.TCPListener
	done chan struct{} // closed when its accept loop returns
}

// maxTCPMessage is the largest DNS message on TCP plus its length prefix.
const maxTCPMessage = 2 + 65535

// smallTCPMessage is the size of the buffers that keep a query for a
// re-send; larger queries (rare) take a maxTCPMessage buffer.
const smallTCPMessage = 2 + 1024

// Message buffers are recycled, so that idle connections hold none and
// nothing is allocated per message in steady state.
var (
	msgBufs   = sync.Pool{New: func() any { b := make([]byte, maxTCPMessage); return &b }}
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallTCPMessage); return &b }}
)

// keepBuf returns a pooled buffer holding a copy of msg (length prefix
// included); putBuf gives it back.
func keepBuf(msg []byte) *[]byte {
	pool := &smallBufs
	if len(msg)+64 > smallTCPMessage { // room for dnslb's own answer (OPT, cookie)
		pool = &msgBufs
	}
	bp := pool.Get().(*[]byte)
	copy(*bp, msg)
	return bp
}

// putLen writes a TCP message's two-byte length prefix.
func putLen(frame []byte, n int) { frame[0], frame[1] = byte(n>>8), byte(n) }

func putBuf(bp *[]byte) {
	if len(*bp) == smallTCPMessage {
		smallBufs.Put(bp)
	} else {
		msgBufs.Put(bp)
	}
}

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
		b.admitTCP(c)
	}
}

// admitTCP applies the ACL and the connection caps and starts a session.
func (b *Balancer) admitTCP(c *net.TCPConn) {
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	s := b.settings.Load()
	if !s.permitted(client) {
		c.Close()
		b.drop(dropACL)
		return
	}
	b.tcpf.mu.Lock()
	if b.tcpf.conns.Load() >= int64(s.MaxTCPConns) {
		b.tcpf.mu.Unlock()
		c.Close()
		b.drop(dropTCPLimit)
		b.logLimited(dropTCPLimit, "tcp connection limit reached, refusing connections", "limit", s.MaxTCPConns, "key", "limits.tcp_connections", "client", client.String())
		return
	}
	if b.tcpf.perClient[client] >= s.MaxTCPConnsPerClient {
		b.tcpf.mu.Unlock()
		c.Close()
		b.drop(dropTCPClientLimit)
		b.logLimited(dropTCPClientLimit, "tcp per-client connection limit reached, refusing connections", "limit", s.MaxTCPConnsPerClient, "key", "limits.tcp_connections_per_client", "client", client.String())
		return
	}
	sess := newTCPSession(b, c, client, s)
	b.tcpf.perClient[client]++
	b.tcpf.conns.Add(1)
	b.tcpf.sessions[sess] = struct{}{}
	b.sessionWG.Add(1)
	b.tcpf.mu.Unlock()
	go sess.run()
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

// errTooShort marks a length prefix smaller than a DNS header.
var errTooShort = errors.New("message shorter than a DNS header")

// framer reads length-prefixed messages from one connection with the
// session's timeouts.
type framer struct {
	c *net.TCPConn
	// deadline returns when a read at a message boundary gives up:
	// idle is the session's idle deadline.
	idle func() time.Time
	// waitMore reports, when the idle deadline passed at a boundary,
	// whether to keep waiting (the other direction is busy, or queries
	// are outstanding).
	waitMore func() bool
	// drain reports whether to stop at the next boundary (shutdown).
	drain func() bool
	// limit bounds a message from its first byte (client side); 0: none.
	limit  time.Duration
	active func() // called when bytes arrive
}

// read reads one message into buf and returns it with its prefix.
func (f *framer) read(buf []byte) ([]byte, error) {
	var limit time.Time // zero until the first byte of the message
	if err := f.fill(buf[:2], true, &limit); err != nil {
		return nil, err
	}
	n := int(buf[0])<<8 | int(buf[1])
	if n < headerLen {
		return nil, errTooShort
	}
	if err := f.fill(buf[2:2+n], false, &limit); err != nil {
		return nil, err
	}
	return buf[:2+n], nil
}

// fill fills p. *limit is set when the message's first byte arrives and
// bounds the rest of it.
func (f *framer) fill(p []byte, atBoundary bool, limit *time.Time) error {
	got := 0
	for got < len(p) {
		deadline := f.idle()
		if atBoundary && got == 0 && f.waitMore() {
			// answers are owed: the backend side times them out, so
			// look again within a second
			deadline = later(deadline, time.Now().Add(time.Second))
		}
		if f.limit > 0 && !limit.IsZero() && limit.Before(deadline) {
			deadline = *limit
		}
		draining := atBoundary && got == 0 && f.drain != nil && f.drain()
		if draining {
			deadline = time.Now()
		}
		if err := f.c.SetReadDeadline(deadline); err != nil {
			return err
		}
		n, err := f.c.Read(p[got:])
		if n > 0 {
			if f.limit > 0 && limit.IsZero() {
				*limit = time.Now().Add(f.limit)
			}
			got += n
			f.active()
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if atBoundary && got == 0 && f.drain != nil && f.drain() {
				return errDrained
			}
			if f.limit > 0 && !limit.IsZero() && !time.Now().Before(*limit) {
				return errSlow
			}
			if time.Now().Before(f.idle()) || (atBoundary && got == 0 && f.waitMore()) {
				continue // the other direction was busy, or answers are owed
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

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
