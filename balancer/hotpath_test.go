package balancer

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// hotPath wires a UDP worker, one upstream socket and a client by hand,
// with no goroutines, so that one UDP round trip through the worker's and
// the upstream socket's read callbacks can be measured for allocations.
type hotPath struct {
	b        *Balancer
	w        *udpWorker
	u        *upstream
	wfd, ufd uintptr
	client   *net.UDPConn
	backend  *net.UDPConn
	query    []byte
	cbuf     []byte
	bbuf     []byte
}

// newHotPath wires the path for a backend with client_address mode.
func newHotPath(t testing.TB, mode ClientAddress) *hotPath {
	backend, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	listen := netip.MustParseAddrPort("127.0.0.1:0")
	b, err := New(Options{Listen: []netip.AddrPort{listen}, UDPWorkers: 1, UpstreamSockets: 1, Settings: Settings{UDPRetry: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.apply([]BackendSpec{{Name: "be", Addr: backend.LocalAddr().(*net.UDPAddr).AddrPort(), Weight: 1, ClientAddress: mode}}); err != nil {
		t.Fatal(err)
	}
	ups, err := b.openUpstreams(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	b.udpf.upstreams.v4.Store(&ups)
	fc, err := listenUDP(listen, false)
	if err != nil {
		t.Fatal(err)
	}
	sock, err := newUDPSock(fc, false)
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.DialUDP("udp", nil, fc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	h := &hotPath{
		b: b, w: b.newUDPWorker(listen, sock), u: ups[0],
		client: client, backend: backend,
		query: packQuery(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false) }),
		cbuf:  make([]byte, 4096), bbuf: make([]byte, 4096),
	}
	h.wfd, h.ufd = rawFD(t, h.w.sock), rawFD(t, h.u.sock)
	t.Cleanup(func() {
		backend.Close()
		fc.Close()
		client.Close()
		ups[0].sock.conn.Close()
	})
	return h
}

func rawFD(t testing.TB, s *udpSock) uintptr {
	var fd uintptr
	if err := s.rc.Control(func(f uintptr) { fd = f }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// round sends one query from the client through the balancer to the
// backend, answers it, and relays the answer back to the client. Loopback
// delivers a datagram before the send returns, so the read callbacks find
// it queued.
func (h *hotPath) round(t testing.TB) {
	if _, err := h.client.Write(h.query); err != nil {
		t.Fatal(err)
	}
	if h.w.readReady(h.wfd) {
		t.Fatalf("worker read stopped: %v", h.w.err)
	}
	n, from, err := h.backend.ReadFromUDPAddrPort(h.bbuf)
	if err != nil {
		t.Fatal(err)
	}
	msg := h.bbuf[:n]
	if n >= 16 && string(msg[:12]) == "\r\n\r\n\x00\r\nQUIT\n" {
		msg = msg[16+int(msg[14])<<8|int(msg[15]):] // a PROXY v2 header
	}
	msg[2] |= 0x80 // QR: the query turned into its own answer (with the ECS option, if any)
	if _, err := h.backend.WriteToUDPAddrPort(msg, from); err != nil {
		t.Fatal(err)
	}
	if h.u.readReady(h.ufd) {
		t.Fatalf("upstream read stopped: %v", h.u.err)
	}
	n, err = h.client.Read(h.cbuf)
	if err != nil || n != len(h.query) || h.cbuf[0] != h.query[0] || h.cbuf[1] != h.query[1] {
		t.Fatalf("client got %d bytes (err %v), id %x%x want %x%x", n, err, h.cbuf[0], h.cbuf[1], h.query[0], h.query[1])
	}
}

// TestHotPathAllocatesNothing proves the steady-state UDP path (recvmmsg
// the query, parse, pick, track, sendmmsg it upstream, recvmmsg the answer,
// match, sendmmsg it to the client) allocates nothing.
// The PROXY v2 header and the ECS option (client_address) are added in
// place, and the ECS option taken out of the answer in place: no mode
// allocates.
func TestHotPathAllocatesNothing(t *testing.T) {
	for _, mode := range []ClientAddress{ClientAddressNone, ClientAddressProxyV2, ClientAddressProxyV2UDP, ClientAddressECS} {
		t.Run(mode.String(), func(t *testing.T) {
			h := newHotPath(t, mode)
			for i := 0; i < 200; i++ { // warm up: the in-flight table's first growth
				h.round(t)
			}
			if allocs := testing.AllocsPerRun(2000, func() { h.round(t) }); allocs != 0 {
				t.Fatalf("UDP round trip allocates %.2f objects per query, want 0", allocs)
			}
		})
	}
}

// BenchmarkUDPRoundTrip measures one query's way through the balancer,
// including the four loopback socket operations it needs, per
// client_address mode.
func BenchmarkUDPRoundTrip(b *testing.B) {
	for _, mode := range []ClientAddress{ClientAddressNone, ClientAddressProxyV2, ClientAddressProxyV2UDP, ClientAddressECS} {
		b.Run(mode.String(), func(b *testing.B) {
			h := newHotPath(b, mode)
			b.ReportAllocs()
			for b.Loop() {
				h.round(b)
			}
		})
	}
}

// BenchmarkParseQuery measures header and question parsing alone.
func BenchmarkParseQuery(b *testing.B) {
	q := packQuery(b, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false) })
	b.ReportAllocs()
	for b.Loop() {
		if _, r := parseQuery(q); r != dropNone {
			b.Fatal(r)
		}
	}
}

// BenchmarkPick measures a least-connection pick among 8 backends.
func BenchmarkPick(b *testing.B) {
	p := newPool()
	var specs []BackendSpec
	for i := 0; i < 8; i++ {
		specs = append(specs, BackendSpec{Name: string(rune('a' + i)), Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(1000+i)), Weight: 1 + i%3})
	}
	if _, err := p.apply(specs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if be, _ := p.pickUDP(true); be == nil {
			b.Fatal("no pick")
		}
	}
}

// BenchmarkBalancerParallel measures a whole running Balancer (one UDP
// worker per GOMAXPROCS, SO_REUSEPORT) in front of two echo backends, with
// 4×GOMAXPROCS closed-loop clients; compare -cpu 1,2,4 to see how the data
// path scales with cores. Clients and backends share the CPUs with it.
func BenchmarkBalancerParallel(b *testing.B) {
	var specs []BackendSpec
	for i := 0; i < 2; i++ {
		be, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		go func() { // echo every query back as its own answer
			buf := make([]byte, 4096)
			for {
				n, from, err := be.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				buf[2] |= 0x80
				_, _ = be.WriteToUDPAddrPort(buf[:n], from)
			}
		}()
		specs = append(specs, BackendSpec{Name: string(rune('a' + i)), Addr: be.LocalAddr().(*net.UDPAddr).AddrPort(), Weight: 1})
	}
	probe, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		b.Fatal(err)
	}
	listen := probe.LocalAddr().(*net.UDPAddr).AddrPort()
	probe.Close()
	bal, err := New(Options{Listen: []netip.AddrPort{listen}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := bal.Apply(specs, Settings{}); err != nil {
		b.Fatal(err)
	}
	if err := bal.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = bal.Shutdown(ctx)
	}()
	query := packQuery(b, "www.example.test.", dns.TypeA, nil)
	var lost atomic.Int64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	defer func() { b.ReportMetric(float64(lost.Load()), "lost") }()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(listen))
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for pb.Next() {
			if _, err := c.Write(query); err != nil {
				b.Error(err)
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(buf); err != nil {
				// a lost answer (a socket buffer overflowing on a busy
				// machine): reported as the "lost" metric, not a failure
				lost.Add(1)
			}
		}
	})
}

// TestHotPathWithACLAndRateLimitAllocatesNothing: the client ACL and the
// per-client rate limiter add no allocation either.
func TestHotPathWithACLAndRateLimitAllocatesNothing(t *testing.T) {
	h := newHotPath(t, ClientAddressNone)
	s := *h.b.settings.Load()
	s.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	s.Deny = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	s.QPSPerClient = 1000000
	h.b.settings.Store(&s)
	for i := 0; i < 200; i++ {
		h.round(t)
	}
	if allocs := testing.AllocsPerRun(2000, func() { h.round(t) }); allocs != 0 {
		t.Fatalf("UDP round trip with ACL and rate limit allocates %.2f objects per query, want 0", allocs)
	}
	if d := h.b.Dropped(); d["acl_denied"]+d["rate_limited"] != 0 {
		t.Fatalf("dropped %v", d)
	}
}
