package balancer

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// hotPath wires a frontend, one backend socket and a client by hand, with
// no goroutines, so that one UDP round trip through forwardQuery and
// relayAnswer can be measured for allocations.
type hotPath struct {
	b       *Balancer
	f       *udpFrontend
	u       *upstream
	client  *net.UDPConn
	backend *net.UDPConn
	query   []byte
	cbuf    []byte
	bbuf    []byte
}

func newHotPath(t testing.TB) *hotPath {
	backend, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	listen := netip.MustParseAddrPort("127.0.0.1:0")
	b, err := New(Options{Listen: []netip.AddrPort{listen}, UpstreamSockets: 1, Settings: Settings{UDPRetry: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.apply([]BackendSpec{{Name: "be", Addr: backend.LocalAddr().(*net.UDPAddr).AddrPort(), Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	fc, err := listenUDP(listen)
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.DialUDP("udp", nil, fc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	h := &hotPath{
		b: b, f: &udpFrontend{b: b, conn: fc, buf: make([]byte, 65535)}, u: b.pool.list()[0].ups[0],
		client: client, backend: backend,
		query: packQuery(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false) }),
		cbuf:  make([]byte, 4096), bbuf: make([]byte, 4096),
	}
	t.Cleanup(func() {
		backend.Close()
		fc.Close()
		client.Close()
		closeAll(b.pool.list())
	})
	return h
}

// round sends one query from the client through the balancer to the
// backend, answers it, and relays the answer back to the client.
func (h *hotPath) round(t testing.TB) {
	if _, err := h.client.Write(h.query); err != nil {
		t.Fatal(err)
	}
	if err := h.f.serveOne(); err != nil {
		t.Fatal(err)
	}
	n, from, err := h.backend.ReadFromUDPAddrPort(h.bbuf)
	if err != nil {
		t.Fatal(err)
	}
	h.bbuf[2] |= 0x80 // QR: the query turned into its own answer
	if _, err := h.backend.WriteToUDPAddrPort(h.bbuf[:n], from); err != nil {
		t.Fatal(err)
	}
	n, err = h.u.conn.Read(h.u.buf)
	if err != nil {
		t.Fatal(err)
	}
	h.b.relayAnswer(h.u, h.u.buf[:n])
	n, err = h.client.Read(h.cbuf)
	if err != nil || n != len(h.query) || h.cbuf[0] != h.query[0] || h.cbuf[1] != h.query[1] {
		t.Fatalf("client got %d bytes (err %v), id %x%x want %x%x", n, err, h.cbuf[0], h.cbuf[1], h.query[0], h.query[1])
	}
}

// TestHotPathAllocatesNothing proves the steady-state UDP path (read query,
// parse, pick, track, forward, read answer, match, relay) allocates nothing.
func TestHotPathAllocatesNothing(t *testing.T) {
	h := newHotPath(t)
	for i := 0; i < 200; i++ { // warm up: the in-flight table's first growth
		h.round(t)
	}
	if allocs := testing.AllocsPerRun(2000, func() { h.round(t) }); allocs != 0 {
		t.Fatalf("UDP round trip allocates %.2f objects per query, want 0", allocs)
	}
}

// BenchmarkUDPRoundTrip measures one query's way through the balancer,
// including the four loopback socket operations it needs.
func BenchmarkUDPRoundTrip(b *testing.B) {
	h := newHotPath(b)
	b.ReportAllocs()
	for b.Loop() {
		h.round(b)
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
	p := newPool(1)
	var specs []BackendSpec
	for i := 0; i < 8; i++ {
		specs = append(specs, BackendSpec{Name: string(rune('a' + i)), Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(1000+i)), Weight: 1 + i%3})
	}
	if _, err := p.apply(specs); err != nil {
		b.Fatal(err)
	}
	defer closeAll(p.list())
	b.ReportAllocs()
	for b.Loop() {
		if be, _ := p.pickUDP(true); be == nil {
			b.Fatal("no pick")
		}
	}
}
