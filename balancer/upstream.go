package balancer

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dnslb/dnslb/internal/dnswire"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// upstream is one UDP socket towards the backends, shared by every backend
// of its address family, with the in-flight table of the queries sent on
// it. Answers are matched on ID, source address and question, so a socket
// need not be connected to one backend; the number of sockets is fixed
// (Options.UpstreamSockets per family), however many backends there are.
type upstream struct {
	b       *Balancer
	sock    *udpSock
	table   *inflight
	in      *recvBatch
	out     *outbox
	readFn  func(fd uintptr) bool // u.readReady, made once: no allocation per read
	serveFn func(n int)           // u.serveBatch
	closed  atomic.Bool           // never set: upstream readers stop when the socket closes
	err     syscall.Errno
}

// upstreams holds the upstream sockets of each address family. A family's
// sockets are opened when its first backend is added.
type upstreams struct {
	mu   sync.Mutex
	v4   atomic.Pointer[[]*upstream]
	v6   atomic.Pointer[[]*upstream]
	rr   atomic.Uint32
	size int // sockets per family
}

func (us *upstreams) forFamily(family int) []*upstream {
	p := us.v4.Load()
	if family == unix.AF_INET6 {
		p = us.v6.Load()
	}
	if p == nil {
		return nil
	}
	return *p
}

// all returns every upstream socket.
func (us *upstreams) all() []*upstream {
	var out []*upstream
	for _, p := range []*[]*upstream{us.v4.Load(), us.v6.Load()} {
		if p != nil {
			out = append(out, *p...)
		}
	}
	return out
}

// ensureUpstreams opens the sockets of family if they are not open yet and
// starts their readers.
func (b *Balancer) ensureUpstreams(family int) error {
	us := &b.udpf.upstreams
	us.mu.Lock()
	defer us.mu.Unlock()
	if len(us.forFamily(family)) > 0 {
		return nil
	}
	list, err := b.openUpstreams(family)
	if err != nil {
		return err
	}
	if family == unix.AF_INET6 {
		us.v6.Store(&list)
	} else {
		us.v4.Store(&list)
	}
	for _, u := range list {
		b.workers.Add(1)
		go u.run()
	}
	return nil
}

// openUpstreams opens Options.UpstreamSockets sockets of family.
func (b *Balancer) openUpstreams(family int) ([]*upstream, error) {
	network, local := "udp4", &net.UDPAddr{IP: net.IPv4zero}
	if family == unix.AF_INET6 {
		network, local = "udp6", &net.UDPAddr{IP: net.IPv6unspecified}
	}
	var list []*upstream
	for i := 0; i < b.udpf.upstreams.size; i++ {
		conn, err := net.ListenUDP(network, local)
		if err != nil {
			for _, u := range list {
				u.sock.conn.Close()
			}
			return nil, fmt.Errorf("open upstream socket (%s): %w", network, err)
		}
		b.setBuffers(conn)
		noBroadcast(conn)
		sock, err := newUDPSock(conn, family == unix.AF_INET6)
		if err != nil {
			conn.Close()
			return nil, err
		}
		b.pool.seed++
		u := &upstream{b: b, sock: sock, table: newInflight(b.pool.seed * 0x9e3779b97f4a7c15), in: newRecvBatch(b.udpf.batch, 0)}
		u.out = newOutbox(b.udpf.batch, b)
		u.readFn, u.serveFn = u.readReady, u.serveBatch
		list = append(list, u)
	}
	return list, nil
}

// run reads answers until the socket is closed.
func (u *upstream) run() {
	defer u.b.workers.Done()
	for {
		err := u.sock.rc.Read(u.readFn)
		if err != nil && isClosed(err) {
			return
		}
		if err != nil || u.err != 0 {
			u.err = 0
			time.Sleep(time.Millisecond)
		}
	}
}

// readReady is the RawConn.Read callback (see recvBatch.drain). An
// upstream socket is read until it is closed, also while shutting down:
// the answers to the queries still in flight must get through.
func (u *upstream) readReady(fd uintptr) bool {
	return u.in.drain(fd, u.serveFn, &u.closed, &u.err)
}

// serveBatch relays the n answers of the last receive.
func (u *upstream) serveBatch(n int) {
	for i := 0; i < n; i++ {
		pkt, from, ok := u.in.datagram(i)
		if !ok {
			u.b.drop(dropTruncated)
			continue
		}
		u.relayAnswer(pkt, from)
	}
	u.out.flush()
}

// relayAnswer matches an answer from a backend to its query and queues it
// for the client with the original ID restored.
func (u *upstream) relayAnswer(pkt []byte, from *unix.RawSockaddrInet6) {
	b := u.b
	m, r := parseAnswer(pkt)
	if r != dropNone {
		b.drop(r)
		return
	}
	src := rawAddrPort(from)
	p, owner, ok := u.table.take(m.id, m.qhash, m.noQuestion, src)
	if !ok {
		// Late (timed out), duplicate or spoofed: counted against the
		// backend it claims to come from, if any.
		if owner == nil {
			owner = b.pool.byAddr(src)
		}
		if owner != nil {
			owner.unmatched.Add(1)
		}
		b.drop(dropAnswerUnmatched)
		return
	}
	be := p.be
	now := b.now()
	be.outstanding.Add(-1)
	be.lastAnswer.Store(now)
	if be.consecutive.Load() != 0 {
		be.consecutive.Store(0)
	}
	be.rcodes[m.rcode].Add(1)
	if m.noQuestion {
		be.noQuestion.Add(1)
	} else if p.qexact != m.qexact {
		be.caseChanged.Add(1)
	}
	latency := time.Duration(now - p.sent)
	be.observeLatency(latency)
	setID(pkt, p.origID)
	if p.ecs != dnswire.AddedNothing {
		// Take out what client_address: ecs added: the client sees the
		// answer it would have had without dnslb. A malformed answer
		// goes out as it came.
		pkt, _ = dnswire.StripECS(pkt, p.ecs)
	}
	if every := b.settings.Load().QueryLogEvery; every > 0 && b.ctr.queryLogN.Add(1)%uint64(every) == 0 {
		b.logQuery(pkt, m, &p.client, be, latency)
	}
	if l := b.rrl.limiter.Load(); l != nil {
		var send bool
		if pkt, send = b.limit(l, pkt, &m, p.client.addrPort().Addr()); !send {
			return
		}
	}
	u.out.add(p.front.sock, pkt, &p.client.raw, p.client.len, sendRef{})
}

// logQuery writes one sampled query-log line (log.query_sample).
func (b *Balancer) logQuery(pkt []byte, m message, client *sockaddr, be *Backend, latency time.Duration) {
	var q dns.Question
	if _, err := dnsUnpackQuestion(pkt, &q); err != nil {
		return
	}
	b.log.Info("query", "client", client.addrPort().String(), "qname", q.Name, "qtype", dns.TypeToString[q.Qtype],
		"backend", be.name, "rcode", RcodeName(int(m.rcode)), "latency_ms", float64(latency.Microseconds())/1000, "transport", "udp")
}

// noBroadcast clears SO_BROADCAST, which Go sets on every UDP socket: a
// backend address that turns out to be a broadcast address must fail
// (EACCES, counted as a send error), not flood the link.
func noBroadcast(conn *net.UDPConn) {
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 0) })
	}
}

// setBuffers asks for Options.SocketBuffer-byte receive and send buffers,
// beyond net.core.rmem_max/wmem_max when the process may (CAP_NET_ADMIN),
// and logs once when the kernel gave less.
func (b *Balancer) setBuffers(conn *net.UDPConn) {
	size := b.udpf.sockBuf
	if size <= 0 {
		return
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], size) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], size)
			}
		}
		// Linux reports twice what was granted (bookkeeping overhead).
		if got, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil && got/2 < size && !b.udpf.bufferWarned.Swap(true) {
			b.log.Warn("socket receive buffer smaller than tuning.socket_buffer (raise net.core.rmem_max or grant CAP_NET_ADMIN)", "want", size, "got", got/2)
		}
	})
}
