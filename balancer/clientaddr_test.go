package balancer

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	proxyproto "github.com/pires/go-proxyproto"
)

// seen records what backends received, for the client_address tests.
type seen struct {
	mu      sync.Mutex
	headers []*proxyproto.Header // nil entries: a query without a header
	subnets []string             // "" entries: a query without ECS
}

func (s *seen) add(h *proxyproto.Header, subnet string) {
	s.mu.Lock()
	s.headers = append(s.headers, h)
	s.subnets = append(s.subnets, subnet)
	s.mu.Unlock()
}

func (s *seen) last() (*proxyproto.Header, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.headers) == 0 {
		return nil, ""
	}
	return s.headers[len(s.headers)-1], s.subnets[len(s.subnets)-1]
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.headers)
}

// splitProxy parses a PROXY v2 header at the start of b with the
// reference parser (go-proxyproto), if there is one, and returns it with
// the rest.
func splitProxy(t *testing.T, b []byte) (*proxyproto.Header, []byte) {
	if !bytes.HasPrefix(b, []byte("\r\n\r\n\x00\r\nQUIT\n")) {
		return nil, b
	}
	r := bufio.NewReader(bytes.NewReader(b))
	h, err := proxyproto.Read(r)
	if err != nil {
		t.Errorf("backend: PROXY header: %v", err)
		return nil, nil
	}
	rest := make([]byte, r.Buffered())
	r.Read(rest)
	return h, rest
}

// subnetOf returns the query's ECS option as "address/bits", or "".
func ecsOf(m *dns.Msg) (*dns.EDNS0_SUBNET, string) {
	o := m.IsEdns0()
	if o == nil {
		return nil, ""
	}
	for _, e := range o.Option {
		if s, ok := e.(*dns.EDNS0_SUBNET); ok {
			return s, netip.PrefixFrom(netip.MustParseAddr(s.Address.String()).Unmap(), int(s.SourceNetmask)).String()
		}
	}
	return nil, ""
}

// echoReply answers q the way an ECS-aware server does (PowerDNS with
// edns-subnet-processing): the query's ECS option comes back with a scope.
func echoReply(q *dns.Msg, who string) *dns.Msg {
	r := reply(q, who)
	if o := q.IsEdns0(); o != nil {
		r.SetEdns0(1232, false)
		if s, _ := ecsOf(q); s != nil {
			e := *s
			e.SourceScope = s.SourceNetmask
			r.IsEdns0().Option = append(r.IsEdns0().Option, &e)
		}
	}
	return r
}

// recordingBackend is a UDP backend that records the PROXY header and ECS
// option of every query and answers with echoReply (unless mute).
func recordingBackend(t *testing.T, name string, mute bool) (*fakeBackend, *seen) {
	s := &seen{}
	f := rawBackend(t, name, func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		h, msg := splitProxy(t, pkt)
		q := new(dns.Msg)
		if err := q.Unpack(msg); err != nil {
			t.Errorf("backend %s: query does not unpack after the PROXY header: %v", name, err)
			return
		}
		_, subnet := ecsOf(q)
		s.add(h, subnet)
		if mute {
			return
		}
		b, _ := echoReply(q, name).Pack()
		pc.WriteToUDPAddrPort(b, from)
	})
	return f, s
}

// udpClient is a client socket whose own address the test knows.
func udpClient(t *testing.T, lb netip.AddrPort) (*net.UDPConn, netip.AddrPort) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(lb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func exchangeOn(t *testing.T, c *net.UDPConn, q *dns.Msg) *dns.Msg {
	t.Helper()
	b, _ := q.Pack()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer to %s: %v", q.Question[0].Name, err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if r.Id != q.Id {
		t.Fatalf("answer id %d, want %d", r.Id, q.Id)
	}
	return r
}

// TestUDPProxyV2: a proxy_v2 backend gets every UDP query behind a PROXY
// v2 header naming the client and the VIP it reached (as go-proxyproto
// reads it); the answer, plain DNS, reaches the client unchanged.
func TestUDPProxyV2(t *testing.T) {
	be, got := recordingBackend(t, "p", false)
	_, lb := startSpecs(t, Settings{}, BackendSpec{Name: "p", Addr: be.addr, Weight: 1, ClientAddress: ClientAddressProxyV2})
	c, self := udpClient(t, lb)
	q := new(dns.Msg).SetQuestion("www.example.test.", dns.TypeTXT)
	r := exchangeOn(t, c, q)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "p" {
		t.Fatalf("answer %v", r)
	}
	h, _ := got.last()
	if h == nil {
		t.Fatal("no PROXY header")
	}
	if h.Command != proxyproto.PROXY || h.TransportProtocol != proxyproto.UDPv4 ||
		h.SourceAddr.String() != self.String() || h.DestinationAddr.String() != lb.String() {
		t.Fatalf("header %v %v %v → %v, want PROXY UDPv4 %v → %v", h.Command, h.TransportProtocol, h.SourceAddr, h.DestinationAddr, self, lb)
	}
}

// TestTCPProxyV2: over TCP the header comes once, at the start of the
// backend connection, before the first query; later queries on the same
// connection follow as plain framed messages.
func TestTCPProxyV2(t *testing.T) {
	var mu sync.Mutex
	var headers []*proxyproto.Header
	st := startScriptedTCP(t, func(p *tcpPeer) {
		br := bufio.NewReader(p.c)
		h, err := proxyproto.Read(br)
		if err != nil {
			t.Errorf("backend: PROXY header: %v", err)
			return
		}
		mu.Lock()
		headers = append(headers, h)
		mu.Unlock()
		p.c = &bufferedConn{Conn: p.c, r: br}
		for q := p.read(); q != nil; q = p.read() {
			p.write(reply(q, "p"))
		}
	})
	_, lb := startSpecs(t, Settings{TCPIdleTimeout: 2 * time.Second}, BackendSpec{Name: "p", Addr: st.addr, Weight: 1, ClientAddress: ClientAddressProxyV2})
	c := dialTCP(t, lb)
	for i := uint16(1); i <= 3; i++ {
		c.send("q.example.test.", dns.TypeTXT, i)
		if r, err := c.recv(); err != nil || r.Id != i {
			t.Fatalf("answer %d: %v %v", i, r, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	self := c.conn.LocalAddr().String()
	if len(headers) != 1 || headers[0].TransportProtocol != proxyproto.TCPv4 ||
		headers[0].SourceAddr.String() != self || headers[0].DestinationAddr.String() != lb.String() {
		t.Fatalf("headers %v, want one TCPv4 %s → %s", headers, self, lb)
	}
}

// bufferedConn reads through the bufio.Reader that parsed the header.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// TestECS: an ecs backend sees the client's /24; the client's answer
// carries no trace of it: no OPT when the query had none, an OPT without
// ECS when it had one. A client's own ECS is kept, or replaced with
// override (and then the answer's, which describes dnslb's subnet, is
// taken out).
func TestECS(t *testing.T) {
	be, got := recordingBackend(t, "e", false)
	b, lb := startSpecs(t, Settings{}, BackendSpec{Name: "e", Addr: be.addr, Weight: 1, ClientAddress: ClientAddressECS})
	c, _ := udpClient(t, lb)
	own := func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 16, Address: net.IPv4(10, 1, 0, 0)})
	}
	cases := []struct {
		name       string
		edit       func(*dns.Msg)
		override   bool
		backendGot string
		answerOPT  bool
		answerECS  string
	}{
		{"no edns", nil, false, "127.0.0.0/24", false, ""},
		{"edns", func(m *dns.Msg) { m.SetEdns0(1232, true) }, false, "127.0.0.0/24", true, ""},
		{"own ecs", own, false, "10.1.0.0/16", true, "10.1.0.0/16"},
		{"own ecs overridden", own, true, "127.0.0.0/24", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := *b.settings.Load()
			s.ECS.Override = tc.override
			b.settings.Store(&s)
			q := new(dns.Msg).SetQuestion("www.example.test.", dns.TypeTXT)
			if tc.edit != nil {
				tc.edit(q)
			}
			r := exchangeOn(t, c, q)
			if _, subnet := got.last(); subnet != tc.backendGot {
				t.Errorf("backend saw %q, want %q", subnet, tc.backendGot)
			}
			if (r.IsEdns0() != nil) != tc.answerOPT {
				t.Errorf("answer has OPT %v, want %v:\n%v", r.IsEdns0() != nil, tc.answerOPT, r)
			}
			if _, subnet := ecsOf(r); subnet != tc.answerECS {
				t.Errorf("answer ECS %q, want %q", subnet, tc.answerECS)
			}
		})
	}
}

// TestTCPECS: over TCP each query gets the option and each answer loses
// it again.
func TestTCPECS(t *testing.T) {
	var mu sync.Mutex
	var subnets []string
	st := startScriptedTCP(t, func(p *tcpPeer) {
		for q := p.read(); q != nil; q = p.read() {
			_, s := ecsOf(q)
			mu.Lock()
			subnets = append(subnets, s)
			mu.Unlock()
			p.write(echoReply(q, "e"))
		}
	})
	_, lb := startSpecs(t, Settings{TCPIdleTimeout: 2 * time.Second}, BackendSpec{Name: "e", Addr: st.addr, Weight: 1, ClientAddress: ClientAddressECS})
	c := dialTCP(t, lb)
	for i := uint16(1); i <= 2; i++ {
		c.send("q.example.test.", dns.TypeTXT, i)
		r, err := c.recv()
		if err != nil || r.Id != i || r.IsEdns0() != nil || len(r.Answer) != 1 {
			t.Fatalf("answer %d: %v %v", i, r, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(subnets) != 2 || subnets[0] != "127.0.0.0/24" || subnets[1] != "127.0.0.0/24" {
		t.Fatalf("backend saw %q", subnets)
	}
}

// TestModesMixedAndReloaded: a retry after a timeout on a proxy_v2
// backend goes to an ecs backend framed for it (no header, an ECS
// option), and Apply changes a backend's mode for the next query.
func TestModesMixedAndReloaded(t *testing.T) {
	mute, muteSeen := recordingBackend(t, "mute", true)
	good, goodSeen := recordingBackend(t, "good", false)
	specs := []BackendSpec{
		{Name: "mute", Addr: mute.addr, Weight: 1, ClientAddress: ClientAddressProxyV2},
		{Name: "good", Addr: good.addr, Weight: 1, ClientAddress: ClientAddressECS},
	}
	s := Settings{UDPRetry: true, UDPTimeout: 150 * time.Millisecond}
	b, lb := startSpecs(t, s, specs...)
	c, _ := udpClient(t, lb)
	for i := 0; i < 10 && muteSeen.count() == 0; i++ { // picks rotate among equals
		exchangeOn(t, c, new(dns.Msg).SetQuestion("www.example.test.", dns.TypeTXT))
	}
	if muteSeen.count() == 0 {
		t.Fatal("no query went to the mute backend: the retry path was not taken")
	}
	muteSeen.mu.Lock()
	for i, h := range muteSeen.headers {
		if h == nil || muteSeen.subnets[i] != "" {
			t.Errorf("proxy_v2 backend query %d: header %v, ECS %q", i, h, muteSeen.subnets[i])
		}
	}
	muteSeen.mu.Unlock()
	goodSeen.mu.Lock()
	for i, h := range goodSeen.headers {
		if h != nil || goodSeen.subnets[i] != "127.0.0.0/24" {
			t.Errorf("ecs backend query %d: header %v, ECS %q", i, h, goodSeen.subnets[i])
		}
	}
	goodSeen.mu.Unlock()

	// reload: the good backend alone, now proxy_v2
	if err := b.Apply([]BackendSpec{{Name: "good", Addr: good.addr, Weight: 1, ClientAddress: ClientAddressProxyV2}}, s); err != nil {
		t.Fatal(err)
	}
	exchangeOn(t, c, new(dns.Msg).SetQuestion("www.example.test.", dns.TypeTXT))
	if h, subnet := goodSeen.last(); h == nil || subnet != "" {
		t.Fatalf("after reload: header %v, ECS %q; want a header and no ECS", h, subnet)
	}
}

// TestProxyV2UDPOnly: client_address: proxy_v2_udp puts the header on UDP
// queries and not on TCP connections (Knot 3.2 takes it over UDP only).
func TestProxyV2UDPOnly(t *testing.T) {
	var mu sync.Mutex
	var first []byte
	st := startScriptedTCP(t, func(p *tcpPeer) {
		br := bufio.NewReader(p.c)
		p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := br.Peek(12)
		if err != nil {
			return
		}
		mu.Lock()
		first = append([]byte(nil), b...)
		mu.Unlock()
		p.c = &bufferedConn{Conn: p.c, r: br}
		for q := p.read(); q != nil; q = p.read() {
			p.write(reply(q, "p"))
		}
	})
	_, lb := startSpecs(t, Settings{TCPIdleTimeout: 2 * time.Second}, BackendSpec{Name: "p", Addr: st.addr, Weight: 1, ClientAddress: ClientAddressProxyV2UDP})
	c := dialTCP(t, lb)
	c.send("q.example.test.", dns.TypeTXT, 1)
	if r, err := c.recv(); err != nil || r.Id != 1 {
		t.Fatalf("tcp answer: %v %v", r, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if bytes.HasPrefix(first, []byte("\r\n\r\n\x00\r\nQUIT\n")) {
		t.Fatalf("a PROXY header on the TCP connection: % x", first)
	}
	// UDP: the datagram starts with a header, as for proxy_v2
	frame := make([]byte, udpHeadroom+64)
	q := packQuery(t, "x.example.", dns.TypeA, nil)
	copy(frame[udpHeadroom:], q)
	client, dst := netip.MustParseAddrPort("192.0.2.7:5353"), netip.MustParseAddrPort("198.51.100.53:53")
	d, _ := frameUDP(frame, len(q), ClientAddressProxyV2UDP, -1, client, dst, nil)
	h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(d)))
	if err != nil || h.SourceAddr.String() != client.String() || h.TransportProtocol != proxyproto.UDPv4 {
		t.Fatalf("udp header %v, %v", h, err)
	}
	if !bytes.Equal(d[len(d)-len(q):], q) {
		t.Fatal("udp query changed behind the header")
	}
}
