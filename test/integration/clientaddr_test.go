package integration

// backends[].client_address measured against real servers (issue 16):
// Knot 3.2, PowerDNS Authoritative 4.7 and Unbound 1.17 behind dnslb with
// proxy_v2, PowerDNS with ecs, and what the health probes need. Each test
// builds a LAN of namespaces:
//
//	lb  10.77.0.1/24 (backend side; the source of everything dnslb sends
//	    to the backends), 10.88.0.1/16 and fd88::1/48: the VIPs
//	    10.88.0.1:53 and [fd88::1]:53
//	cl  the clients: X 10.88.1.10, Y 10.88.2.20 (both /16),
//	    V6 fd88:0:0:1234::10/48
//	kn  Knot     10.77.0.11:53
//	pd  PowerDNS 10.77.0.12:53
//	ub  Unbound  10.77.0.13:53
//
// The clients have no route to the backends and the backends none to the
// clients: whatever a backend learns of a client it learns from dnslb.
// The backends' own behaviour (what each does with a header, without
// one, with a LOCAL header) is measured by the testpeer tests
// (TestKnotProxyAllowlist, TestPDNSProxyProtocol,
// TestUnboundProxyProtocol); docs/proxy-backends.md has both.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/dnslb/dnslb/internal/testpeer"
)

var (
	caLB      = netip.MustParseAddr("10.77.0.1")
	caVIP     = netip.MustParseAddrPort("10.88.0.1:53")
	caVIP6    = netip.MustParseAddrPort("[fd88::1]:53")
	caX       = netip.MustParseAddr("10.88.1.10")
	caY       = netip.MustParseAddr("10.88.2.20")
	caV6      = netip.MustParseAddr("fd88:0:0:1234::10")
	caZ       = netip.MustParseAddr("10.88.3.30") // TestClientAddrUnboundACL only
	caKnot    = netip.MustParseAddrPort("10.77.0.11:53")
	caPDNS    = netip.MustParseAddrPort("10.77.0.12:53")
	caUnbound = netip.MustParseAddrPort("10.77.0.13:53")
	caAdmin   = "127.0.0.1:9053"
	// caLBOnly is proxy-allowlist, proxy-protocol-from and the like:
	// dnslb's backend-side address alone.
	caLBOnly = []netip.Prefix{netip.PrefixFrom(caLB, 32)}
)

// caQueryTimeout bounds one client query through dnslb: more than
// dnslb's own timeouts.udp (1s) and its one retry.
const caQueryTimeout = 3 * time.Second

// caSite is the LAN above; backend hosts exist only if asked for.
type caSite struct {
	lb, cl     *testpeer.NetNS
	kn, pd, ub *testpeer.NetNS
}

// newCASite builds the LAN with the backend hosts named in backends
// ("kn", "pd", "ub").
func newCASite(t *testing.T, prefix string, backends ...string) *caSite {
	t.Helper()
	testpeer.RequireRoot(t)
	lan := testpeer.NewLAN(t, prefix)
	s := &caSite{
		lb: lan.AddHost(t, "lb", netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("10.88.0.1/16"), netip.MustParsePrefix("fd88::1/48")),
		cl: lan.AddHost(t, "cl", netip.MustParsePrefix("10.88.1.10/16"), netip.MustParsePrefix("10.88.2.20/16"), netip.MustParsePrefix("fd88:0:0:1234::10/48")),
	}
	for _, b := range backends {
		switch b {
		case "kn":
			s.kn = lan.AddHost(t, "kn", netip.PrefixFrom(caKnot.Addr(), 24))
		case "pd":
			s.pd = lan.AddHost(t, "pd", netip.PrefixFrom(caPDNS.Addr(), 24))
		case "ub":
			s.ub = lan.AddHost(t, "ub", netip.PrefixFrom(caUnbound.Addr(), 24))
		default:
			t.Fatalf("newCASite: unknown backend host %q", b)
		}
	}
	return s
}

// caBackend is one backends[] item of caConfig.
type caBackend struct {
	name, mode  string // client_address
	addr        netip.AddrPort
	healthProxy string // backends[].health_check.proxy_v2; "" leaves the global value
}

// caConfig renders dnslb's config: both VIPs, the backends, health checks
// of SOA example.test. every 300ms (rise 2, fall 2), extra appended.
func caConfig(backends []caBackend, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen:\n  - %q\n  - %q\nbackends:\n", caVIP.String(), caVIP6.String())
	for _, be := range backends {
		fmt.Fprintf(&b, "  - name: %s\n    address: %q\n    client_address: %s\n", be.name, be.addr.String(), be.mode)
		if be.healthProxy != "" {
			fmt.Fprintf(&b, "    health_check:\n      proxy_v2: %s\n", be.healthProxy)
		}
	}
	fmt.Fprintf(&b, `admin:
  listen: %q
log:
  level: debug
timeouts:
  udp: 1s
health_check:
  query: {name: example.test., type: SOA}
  expect: {rcodes: [NOERROR], authoritative: true}
  interval: 300ms
  timeout: 250ms
  rise: 2
  fall: 2
`, caAdmin)
	b.WriteString(extra)
	return b.String()
}

// startCALB starts dnslb in the lb host and waits until every backend is
// up.
func (s *caSite) startCALB(t *testing.T, cfg string, backends ...string) *lb {
	t.Helper()
	l := startLB(t, s.lb, cfg, caVIP, caAdmin)
	for _, b := range backends {
		l.waitHealth(b, "up", 10*time.Second)
	}
	return l
}

// stopLB stops dnslb (SIGTERM) and waits for it.
func stopLB(l *lb) {
	l.signal(unix.SIGTERM)
	l.waitExit(15 * time.Second)
}

// query sends name/qtype from client src (in the cl host) to the VIP of
// src's family over network, with EDNS (buffer 1232) if edns, and
// returns the answer or the error (wrapping testpeer.ErrNoAnswer if
// nothing came).
func (s *caSite) query(src netip.Addr, network, name string, qtype uint16, edns bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	return s.exchange(src, network, m)
}

func (s *caSite) exchange(src netip.Addr, network string, m *dns.Msg) (*dns.Msg, error) {
	vip := caVIP
	if src.Is6() {
		vip = caVIP6
	}
	return testpeer.ExchangeFrom(s.cl, src, vip, network, testpeer.NoProxyHeader, m, caQueryTimeout)
}

// mustQuery is query failing the test on an error or an rcode other
// than want.
func (s *caSite) mustQuery(t *testing.T, src netip.Addr, network, name string, qtype uint16, edns bool, want int) *dns.Msg {
	t.Helper()
	r, err := s.query(src, network, name, qtype, edns)
	if err != nil {
		t.Fatalf("%s %s %s from %v through dnslb: %v", network, name, dns.TypeToString[qtype], src, err)
	}
	if r.Rcode != want {
		t.Fatalf("%s %s %s from %v through dnslb: %s, want %s:\n%v", network, name, dns.TypeToString[qtype], src,
			dns.RcodeToString[r.Rcode], dns.RcodeToString[want], r)
	}
	return r
}

// answerAddr returns the first A or AAAA address of r's answer.
func answerAddr(r *dns.Msg) netip.Addr {
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(rr.A.To4())
			return a
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(rr.AAAA)
			return a
		}
	}
	return netip.Addr{}
}

// caZone is example.test. with a wildcard (every name answers A
// 192.0.2.99) and h0..h1499 (an AXFR of several messages).
func caZone() testpeer.ZoneSpec {
	var b strings.Builder
	b.WriteString("www\tIN\tA\t192.0.2.1\n*\tIN\tA\t192.0.2.99\n")
	for i := range 1500 {
		fmt.Fprintf(&b, "h%d\tIN\tA\t198.18.%d.%d\n", i, i/256, i%256)
	}
	return testpeer.ZoneSpec{Name: "example.test.", Serial: 2026120201, Records: b.String()}
}

// TestClientAddrKnotProxyUDP: Knot 3.2 with proxy-allowlist of dnslb's
// address, behind client_address: proxy_v2_udp, sees each client's own
// address over UDP (mod-whoami answers the address Knot took: Knot 3.2
// logs no client addresses). Over TCP Knot 3.2 takes no PROXY header, so
// proxy_v2_udp sends none there: TCP clients are answered (Knot sees
// dnslb) and the backend stays up.
func TestClientAddrKnotProxyUDP(t *testing.T) {
	testpeer.RequireTool(t, "knotd")
	s := newCASite(t, "cak", "kn")
	testpeer.StartKnot(t, testpeer.KnotOptions{Name: "knot", Addr: caKnot, NetNS: s.kn, Primary: true,
		Zones: []testpeer.ZoneSpec{{Name: "example.test."}}, ProxyAllowlist: caLBOnly, Whoami: true})
	l := s.startCALB(t, caConfig([]caBackend{{name: "knot", mode: "proxy_v2_udp", addr: caKnot}}, ""), "knot")

	// Without dnslb's header Knot sees dnslb: the control.
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeA)
	r, err := testpeer.ExchangeFrom(s.lb, caLB, caKnot, "udp", testpeer.NoProxyHeader, m, caQueryTimeout)
	if err != nil || answerAddr(r) != caLB {
		t.Fatalf("plain query from dnslb's host to Knot: %v %v, want whoami %v", r, err, caLB)
	}
	for _, c := range []struct {
		src   netip.Addr
		qtype uint16
		edns  bool
	}{
		{caX, dns.TypeA, false}, {caY, dns.TypeA, true}, {caV6, dns.TypeAAAA, false}, {caX, dns.TypeA, true},
	} {
		r := s.mustQuery(t, c.src, "udp", "example.test.", c.qtype, c.edns, dns.RcodeSuccess)
		if got := answerAddr(r); got != c.src {
			t.Errorf("udp from %v (edns %v): Knot saw %v, want the client's own address", c.src, c.edns, got)
		} else {
			t.Logf("udp from %v (edns %v): Knot saw %v", c.src, c.edns, got)
		}
	}
	st := l.backendStatus("knot")
	t.Logf("knot: health %s, last probe %q, queries %d, timeouts %d", st.Health, st.LastProbe, st.Queries, st.Timeouts)

	// TCP: Knot 3.2 closes a connection that starts with a PROXY header
	// (TestKnotProxyAllowlist), so the backend is proxy_v2_udp: TCP
	// queries carry no header and are answered, Knot seeing dnslb's
	// address, and they leave the backend up.
	for range 6 {
		r, err = s.query(caX, "tcp", "example.test.", dns.TypeA, false)
		if err != nil || r.Rcode != dns.RcodeSuccess || answerAddr(r) != caLB {
			t.Fatalf("tcp from %v through dnslb to a proxy_v2_udp Knot: %v %v; want NOERROR, Knot seeing dnslb %v", caX, r, err, caLB)
		}
	}
	t.Logf("tcp from %v through dnslb: answered, Knot saw dnslb's %v (no header over TCP)", caX, caLB)
	st = l.backendStatus("knot")
	if lines := l.logLines("to=down"); len(lines) > 0 || st.Health != "up" {
		t.Errorf("knot after 6 TCP queries: health %s; state changes %q", st.Health, lines)
	}
}

// TestClientAddrPowerDNSProxy: PowerDNS 4.7 with proxy-protocol-from
// dnslb's address sees each client's own address over UDP and TCP (one
// header per backend connection, never mixed between clients), and its
// AXFR ACL (allow-axfr-ips: X only) applies to the client: X's AXFR
// through dnslb completes, Y's is refused.
func TestClientAddrPowerDNSProxy(t *testing.T) {
	s := newCASite(t, "cap", "pd")
	p := testpeer.StartPDNS(t, testpeer.PDNSOptions{Name: "pdns", Addr: caPDNS, NetNS: s.pd,
		Zones: []testpeer.ZoneSpec{caZone()}, ProxyFrom: caLBOnly, AllowAXFR: []netip.Prefix{netip.PrefixFrom(caX, 32)}})
	s.startCALB(t, caConfig([]caBackend{{name: "pdns", mode: "proxy_v2", addr: caPDNS}}, ""), "pdns")

	// UDP, one query per client.
	for _, c := range []struct {
		label string
		src   netip.Addr
	}{{"x-udp", caX}, {"y-udp", caY}, {"v6-udp", caV6}} {
		r := s.mustQuery(t, c.src, "udp", c.label+".example.test.", dns.TypeA, false, dns.RcodeSuccess)
		if answerAddr(r) != netip.MustParseAddr("192.0.2.99") {
			t.Errorf("%s: answer %v", c.label, r.Answer)
		}
	}
	// TCP: a connection per client, two queries each, interleaved.
	cx, cy := s.tcpConn(t, caX), s.tcpConn(t, caY)
	for i, c := range []struct {
		label string
		conn  *dns.Conn
	}{{"x-tcp1", cx}, {"y-tcp1", cy}, {"x-tcp2", cx}, {"y-tcp2", cy}} {
		m := new(dns.Msg)
		m.SetQuestion(c.label+".example.test.", dns.TypeA)
		m.Id = uint16(100 + i)
		if err := c.conn.WriteMsg(m); err != nil {
			t.Fatalf("%s: write: %v", c.label, err)
		}
		r, err := c.conn.ReadMsg()
		if err != nil || r.Rcode != dns.RcodeSuccess || answerAddr(r) != netip.MustParseAddr("192.0.2.99") {
			t.Fatalf("%s over TCP through dnslb: %v %v", c.label, r, err)
		}
	}
	want := map[string]struct {
		client netip.Addr
		tcp    bool
	}{
		"x-udp": {caX, false}, "y-udp": {caY, false}, "v6-udp": {caV6, false},
		"x-tcp1": {caX, true}, "x-tcp2": {caX, true}, "y-tcp1": {caY, true}, "y-tcp2": {caY, true},
	}
	for label, w := range want {
		qs := p.QueriesFor(label+".example.test", dns.TypeA)
		if len(qs) != 1 {
			t.Errorf("%s: PowerDNS logged %d queries, want 1: %v", label, len(qs), qs)
			continue
		}
		q := qs[0]
		t.Logf("PowerDNS log: %s", strings.TrimSpace(q.Line))
		if q.Remote != caLB || q.Proxied != w.client || q.TCP != w.tcp {
			t.Errorf("%s: PowerDNS saw remote %v, proxied client %v, tcp %v; want %v, %v, %v", label, q.Remote, q.Proxied, q.TCP, caLB, w.client, w.tcp)
		}
	}

	// AXFR over TCP through dnslb: the ACL sees the client.
	res, err := testpeer.TransferFrom(s.cl, caX, caVIP, testpeer.NoProxyHeader, "example.test.", 20*time.Second)
	if err != nil || !res.Complete("example.test.") || len(res.Records) != 1507 {
		t.Errorf("AXFR from X through dnslb: %v; %d messages, %d records (want 1507: 1506 and the closing SOA), complete %v", err, res.Messages, len(res.Records), res.Complete("example.test."))
	} else {
		t.Logf("AXFR from X through dnslb: %d messages, %d records, complete", res.Messages, len(res.Records))
	}
	res, err = testpeer.TransferFrom(s.cl, caY, caVIP, testpeer.NoProxyHeader, "example.test.", 20*time.Second)
	if err != nil || res.Rcode != dns.RcodeNotAuth {
		t.Errorf("AXFR from Y through dnslb: %v, rcode %s; want NOTAUTH (PowerDNS: not in allow-axfr-ips)", err, dns.RcodeToString[res.Rcode])
	}
	var xfrs []string
	for _, x := range p.AXFRLog() {
		xfrs = append(xfrs, x.Client+": "+x.Event)
	}
	t.Logf("PowerDNS AXFR log:\n%s", strings.Join(xfrs, "\n"))
	for _, w := range []string{
		fmt.Sprintf("%v(%v): AXFR finished", caLB, caX),
		fmt.Sprintf("%v(%v): failed: client may not request AXFR", caLB, caY),
	} {
		if !containsString(xfrs, w) {
			t.Errorf("PowerDNS AXFR log lacks %q", w)
		}
	}
}

// tcpConn opens a TCP connection from src (in the cl host) to the VIP.
func (s *caSite) tcpConn(t *testing.T, src netip.Addr) *dns.Conn {
	t.Helper()
	var c *dns.Conn
	s.cl.Do(t, func() {
		d := net.Dialer{Timeout: caQueryTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
		nc, err := d.Dial("tcp", caVIP.String())
		if err != nil {
			t.Fatalf("dial %v from %v: %v", caVIP, src, err)
		}
		c = &dns.Conn{Conn: nc}
	})
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func containsString(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// TestClientAddrUnboundACL: Unbound 1.17 on a proxy-protocol-port, with
// access-control allowing the clients' /16 and dnslb, refusing Y, and Z
// in a view whose zones refuse. Through dnslb X (and V6) is answered,
// Unbound refuses Y and Z by their own addresses (its log names them),
// and both get REFUSED. Y's REFUSED from access-control carries no
// question section: dnslb relays it (matched by ID and source), and a
// burst of them leaves the backend up.
func TestClientAddrUnboundACL(t *testing.T) {
	s := newCASite(t, "cau", "ub")
	s.cl.Run(t, "ip", "addr", "add", caZ.String()+"/16", "dev", "eth0")
	acl := func(p, action string) testpeer.UnboundACL {
		return testpeer.UnboundACL{Prefix: netip.MustParsePrefix(p), Action: action}
	}
	u := testpeer.StartUnbound(t, testpeer.UnboundOptions{Name: "unbound", Addr: caUnbound, NetNS: s.ub, ProxyProtocol: true,
		Zones: []testpeer.ZoneSpec{{Name: "example.test.", Records: "www\tIN\tA\t192.0.2.1"}},
		AccessControl: []testpeer.UnboundACL{
			acl("0.0.0.0/0", "refuse"), acl("::/0", "refuse"),
			acl("10.77.0.1/32", "allow"), // dnslb: the sender, and its health probes' client
			acl("10.88.0.0/16", "allow"), acl("fd88::/48", "allow"),
			acl(caY.String()+"/32", "refuse"),
		},
		RefuseView: []netip.Prefix{netip.PrefixFrom(caZ, 32)}})
	l := s.startCALB(t, caConfig([]caBackend{{name: "unbound", mode: "proxy_v2", addr: caUnbound}}, ""), "unbound")

	for _, c := range []struct {
		src     netip.Addr
		network string
		rcode   int
	}{
		{caX, "udp", dns.RcodeSuccess}, {caX, "tcp", dns.RcodeSuccess}, {caV6, "udp", dns.RcodeSuccess},
		{caZ, "udp", dns.RcodeRefused}, {caZ, "tcp", dns.RcodeRefused},
	} {
		r := s.mustQuery(t, c.src, c.network, "www.example.test.", dns.TypeA, false, c.rcode)
		if c.rcode == dns.RcodeSuccess && answerAddr(r) != netip.MustParseAddr("192.0.2.1") {
			t.Errorf("%s from %v: answer %v", c.network, c.src, r.Answer)
		}
		t.Logf("%s from %v through dnslb: %s %v", c.network, c.src, dns.RcodeToString[r.Rcode], r.Answer)
	}

	// Y: refused by access-control. Never served; REFUSED is what it
	// should get.
	yGot := map[string]string{}
	for _, network := range []string{"udp", "tcp"} {
		r, err := s.query(caY, network, "www.example.test.", dns.TypeA, false)
		switch {
		case err == nil && r.Rcode == dns.RcodeRefused:
			yGot[network] = "REFUSED"
		case err == nil && (r.Rcode == dns.RcodeSuccess || len(r.Answer) > 0):
			t.Errorf("%s from Y %v through dnslb: %s %v: Unbound refuses Y, yet it was served", network, caY, dns.RcodeToString[r.Rcode], r.Answer)
		case err == nil:
			yGot[network] = dns.RcodeToString[r.Rcode]
		case errors.Is(err, testpeer.ErrNoAnswer):
			yGot[network] = "no answer"
		default:
			t.Errorf("%s from Y %v through dnslb: %v", network, caY, err)
		}
	}
	t.Logf("from Y (access-control refuse) through dnslb: udp %s, tcp %s", yGot["udp"], yGot["tcp"])
	// Unbound 1.17 answers an access-control refuse with QDCOUNT 0: dnslb
	// relays such an error answer, matched by ID and source
	// (balancer/wire.go parseAnswer), so Y gets REFUSED on both
	// transports...
	if yGot["udp"] != "REFUSED" || yGot["tcp"] != "REFUSED" {
		t.Errorf("Y (refused by access-control) got udp %s, tcp %s through dnslb, want REFUSED", yGot["udp"], yGot["tcp"])
	}
	// ... and a burst from Y alone is answered, so passive health sees no
	// timeout and keeps the backend up.
	var burst []chan error
	for range 5 {
		ch := make(chan error, 1)
		burst = append(burst, ch)
		go func() {
			r, err := s.query(caY, "udp", "www.example.test.", dns.TypeA, false)
			if err == nil && r.Rcode != dns.RcodeRefused {
				err = fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
			}
			ch <- err
		}()
	}
	for _, ch := range burst {
		if err := <-ch; err != nil {
			t.Errorf("burst from Y: %v, want REFUSED", err)
		}
	}
	if lines := l.logLines("to=down"); len(lines) > 0 {
		t.Errorf("refused client Y took the backend down:\n%s", strings.Join(lines, "\n"))
	}

	replies := map[netip.Addr][]string{}
	for _, q := range u.QueryLog() {
		if q.Rcode != "" {
			replies[q.Client] = append(replies[q.Client], q.Name+" "+q.Rcode)
		}
	}
	for _, w := range []struct {
		client netip.Addr
		reply  string
	}{
		{caX, "www.example.test. NOERROR"}, {caV6, "www.example.test. NOERROR"},
		{caY, "null REFUSED"}, {caZ, "www.example.test. REFUSED"},
		{caLB, "example.test. NOERROR"}, // the health probes
	} {
		if !containsString(replies[w.client], w.reply) {
			t.Errorf("Unbound's log: no reply %q to %v; replies by client: %v", w.reply, w.client, replies)
		}
	}
	st := l.backendStatus("unbound")
	t.Logf("unbound: health %s, last probe %q, queries %d, timeouts %d, unmatched %d, responses %v", st.Health, st.LastProbe, st.Queries, st.Timeouts, st.Unmatched, st.Responses)
	m := l.metricsIn(t)
	var names []string
	for k, v := range m {
		if v != 0 && (strings.Contains(k, "drop") || strings.Contains(k, "unmatched") || strings.Contains(k, "timeout")) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		t.Logf("metric %s %v", k, m[k])
	}
}

// TestClientAddrECSPowerDNS: PowerDNS 4.7 with edns-subnet-processing
// behind client_address: ecs. (a) The backend sees each client's /24
// (/56 for IPv6): in the queries captured on its interface and in its
// query log. (b) What the client gets back: no OPT at all if its query
// had none, its OPT without ECS if it sent EDNS without ECS, its own
// ECS echoed if it sent one (dnslb leaves a client's own option alone).
func TestClientAddrECSPowerDNS(t *testing.T) {
	s := newCASite(t, "cae", "pd")
	p := testpeer.StartPDNS(t, testpeer.PDNSOptions{Name: "pdns", Addr: caPDNS, NetNS: s.pd,
		Zones: []testpeer.ZoneSpec{caZone()}, ECS: true})
	s.startCALB(t, caConfig([]caBackend{{name: "pdns", mode: "ecs", addr: caPDNS}}, ""), "pdns")
	capture := s.pd.Capture(t, "eth0", "port 53")

	own := netip.MustParsePrefix("192.0.2.0/24")
	type want struct {
		ecs        netip.Prefix // what the backend must see
		answerOPT  bool         // the answer has an OPT record
		answerECS  netip.Prefix // the ECS option in the answer (invalid: none)
		backendUDP uint16       // the OPT's UDP size in the query the backend got (0: not checked)
	}
	cases := []struct {
		label   string
		src     netip.Addr
		network string
		edns    bool
		ecs     netip.Prefix // the client's own ECS option
		want    want
	}{
		{"x-noopt", caX, "udp", false, netip.Prefix{}, want{netip.MustParsePrefix("10.88.1.0/24"), false, netip.Prefix{}, 512}},
		{"x-edns", caX, "udp", true, netip.Prefix{}, want{netip.MustParsePrefix("10.88.1.0/24"), true, netip.Prefix{}, 1232}},
		{"y-noopt", caY, "udp", false, netip.Prefix{}, want{netip.MustParsePrefix("10.88.2.0/24"), false, netip.Prefix{}, 512}},
		{"x-own-ecs", caX, "udp", true, own, want{own, true, own, 1232}},
		{"v6-edns", caV6, "udp", true, netip.Prefix{}, want{netip.MustParsePrefix("fd88:0:0:1200::/56"), true, netip.Prefix{}, 1232}},
		{"v6-noopt", caV6, "udp", false, netip.Prefix{}, want{netip.MustParsePrefix("fd88:0:0:1200::/56"), false, netip.Prefix{}, 512}},
		{"y-tcp-noopt", caY, "tcp", false, netip.Prefix{}, want{netip.MustParsePrefix("10.88.2.0/24"), false, netip.Prefix{}, 0}},
		{"x-tcp-edns", caX, "tcp", true, netip.Prefix{}, want{netip.MustParsePrefix("10.88.1.0/24"), true, netip.Prefix{}, 0}},
	}
	for _, c := range cases {
		m := new(dns.Msg)
		m.SetQuestion(c.label+".example.test.", dns.TypeA)
		if c.edns {
			m.SetEdns0(1232, false)
		}
		if c.ecs.IsValid() {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1,
				SourceNetmask: uint8(c.ecs.Bits()), Address: c.ecs.Addr().AsSlice()})
		}
		r, err := s.exchange(c.src, c.network, m)
		if err != nil {
			t.Errorf("%s: %v", c.label, err)
			continue
		}
		if r.Rcode != dns.RcodeSuccess || answerAddr(r) != netip.MustParseAddr("192.0.2.99") {
			t.Errorf("%s: %s %v", c.label, dns.RcodeToString[r.Rcode], r.Answer)
		}
		opt := r.IsEdns0()
		gotECS := msgECS(r)
		t.Logf("%-12s %s from %v (edns %v, own ecs %v): answer OPT %v, ECS %v", c.label, c.network, c.src, c.edns, c.ecs, opt != nil, gotECS)
		if (opt != nil) != c.want.answerOPT {
			t.Errorf("%s: answer has OPT %v, want %v:\n%v", c.label, opt != nil, c.want.answerOPT, r)
		}
		if gotECS != c.want.answerECS {
			t.Errorf("%s: answer's ECS %v, want %v:\n%v", c.label, gotECS, c.want.answerECS, r)
		}
	}

	// (a) in PowerDNS's log ...
	for _, c := range cases {
		qs := p.QueriesFor(c.label+".example.test", dns.TypeA)
		if len(qs) != 1 {
			t.Errorf("%s: PowerDNS logged %d queries, want 1: %v", c.label, len(qs), qs)
			continue
		}
		t.Logf("PowerDNS log: %s", strings.TrimSpace(qs[0].Line))
		if qs[0].ECS != c.want.ecs || qs[0].Remote != caLB {
			t.Errorf("%s: PowerDNS saw ECS %v from %v, want %v from %v", c.label, qs[0].ECS, qs[0].Remote, c.want.ecs, caLB)
		}
	}
	// ... and on the wire.
	seen := map[string]bool{}
	for _, cm := range testpeer.DNSMessages(testpeer.ReadPackets(t, capture.Stop(t))) {
		if cm.Msg.Response || len(cm.Msg.Question) != 1 || cm.Dst != caPDNS {
			continue
		}
		label, ok := strings.CutSuffix(cm.Msg.Question[0].Name, ".example.test.")
		if !ok {
			continue
		}
		for _, c := range cases {
			if c.label != label {
				continue
			}
			seen[label] = true
			got := msgECS(cm.Msg)
			size := uint16(0)
			if o := cm.Msg.IsEdns0(); o != nil {
				size = o.UDPSize()
			}
			t.Logf("captured: %s %v > %v %s: ECS %v, OPT UDP size %d", cm.Transport, cm.Src, cm.Dst, label, got, size)
			if cm.Src.Addr() != caLB || got != c.want.ecs {
				t.Errorf("%s: the query PowerDNS got came from %v with ECS %v, want from %v with %v", label, cm.Src, got, caLB, c.want.ecs)
			}
			if c.want.backendUDP != 0 && size != c.want.backendUDP {
				t.Errorf("%s: the query PowerDNS got has OPT UDP size %d, want %d", label, size, c.want.backendUDP)
			}
		}
	}
	for _, c := range cases {
		if !seen[c.label] {
			t.Errorf("%s: query not found in the capture on PowerDNS's interface", c.label)
		}
	}
}

// msgECS returns the subnet of m's ECS option, or an invalid prefix.
func msgECS(m *dns.Msg) netip.Prefix {
	opt := m.IsEdns0()
	if opt == nil {
		return netip.Prefix{}
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok {
			a, ok := netip.AddrFromSlice(e.Address)
			if !ok {
				return netip.Prefix{}
			}
			if e.Family == 1 {
				a = a.Unmap()
			}
			return netip.PrefixFrom(a, int(e.SourceNetmask)).Masked()
		}
	}
	return netip.Prefix{}
}

// TestClientAddrHealthProbes: with health_check.proxy_v2: self (the
// default) the probes of Knot, PowerDNS and Unbound behind proxy_v2
// carry a PROXY header naming dnslb's probe socket, and all three are
// up; the backends' logs show dnslb as the probes' client. With none
// (no header) Knot stays up (it takes plain queries from an allowlisted
// source), PowerDNS and Unbound go down (they drop a query without a
// header from a source that must send one).
func TestClientAddrHealthProbes(t *testing.T) {
	testpeer.RequireTool(t, "knotd")
	s := newCASite(t, "cah", "kn", "pd", "ub")
	testpeer.StartKnot(t, testpeer.KnotOptions{Name: "knot", Addr: caKnot, NetNS: s.kn, Primary: true,
		Zones: []testpeer.ZoneSpec{{Name: "example.test."}}, ProxyAllowlist: caLBOnly, Whoami: true})
	p := testpeer.StartPDNS(t, testpeer.PDNSOptions{Name: "pdns", Addr: caPDNS, NetNS: s.pd,
		Zones: []testpeer.ZoneSpec{{Name: "example.test."}}, ProxyFrom: caLBOnly})
	u := testpeer.StartUnbound(t, testpeer.UnboundOptions{Name: "unbound", Addr: caUnbound, NetNS: s.ub, ProxyProtocol: true,
		Zones: []testpeer.ZoneSpec{{Name: "example.test."}},
		AccessControl: []testpeer.UnboundACL{
			{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Action: "refuse"},
			{Prefix: netip.PrefixFrom(caLB, 32), Action: "allow"},
			{Prefix: netip.MustParsePrefix("10.88.0.0/16"), Action: "allow"},
		}})
	backends := []caBackend{
		{name: "knot", mode: "proxy_v2", addr: caKnot},
		{name: "pdns", mode: "proxy_v2", addr: caPDNS},
		{name: "unbound", mode: "proxy_v2", addr: caUnbound},
	}

	// self (the default): all up.
	l := s.startCALB(t, caConfig(backends, ""), "knot", "pdns", "unbound")
	for _, b := range []string{"knot", "pdns", "unbound"} {
		st := l.backendStatus(b)
		t.Logf("proxy_v2 self: %s %s, last probe %q", b, st.Health, st.LastProbe)
	}
	var probes []testpeer.PDNSQuery
	for _, q := range p.QueriesFor("example.test", dns.TypeSOA) {
		if q.Remote == caPDNS.Addr() {
			continue // StartPDNS's own readiness probes
		}
		probes = append(probes, q)
		if q.Remote != caLB || q.Proxied != caLB {
			t.Errorf("PowerDNS probe from %v for client %v, want a PROXY header naming dnslb's own %v: %s", q.Remote, q.Proxied, caLB, q.Line)
		}
	}
	if len(probes) == 0 {
		t.Fatalf("PowerDNS logged no SOA probe from dnslb")
	}
	t.Logf("PowerDNS: %d probes, e.g. %s", len(probes), strings.TrimSpace(probes[0].Line))
	ur := u.Replies(caLB)
	if len(ur) == 0 {
		t.Errorf("Unbound logged no probe answered to dnslb's %v:\n%v", caLB, u.QueryLog())
	} else {
		t.Logf("Unbound: %d probes, e.g. %s", len(ur), strings.TrimSpace(ur[0].Line))
	}
	// Client queries are answered, whichever backend takes them.
	for range 6 {
		s.mustQuery(t, caX, "udp", "example.test.", dns.TypeSOA, false, dns.RcodeSuccess)
	}
	stopLB(l)

	// none: Knot up, PowerDNS and Unbound down.
	// none, set per backend (backends[].health_check overrides the
	// global section key by key).
	for i := range backends {
		backends[i].healthProxy = "none"
	}
	l = startLB(t, s.lb, caConfig(backends, ""), caVIP, caAdmin)
	l.waitHealth("knot", "up", 10*time.Second)
	l.waitHealth("pdns", "down", 10*time.Second)
	l.waitHealth("unbound", "down", 10*time.Second)
	for _, b := range []string{"knot", "pdns", "unbound"} {
		st := l.backendStatus(b)
		t.Logf("proxy_v2 none: %s %s (%s), last probe %q", b, st.Health, st.HealthReason, st.LastProbe)
	}
	if !strings.Contains(u.Log(), "could not match PROXYv2 header") {
		t.Errorf("Unbound's log does not show the header-less probes")
	}
	stopLB(l)
}
