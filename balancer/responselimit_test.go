package balancer

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/dnslb/dnslb/rrl"
	"github.com/miekg/dns"
)

// floodFrom sends n queries for name from a client socket bound to src,
// then reads answers until every query is accounted for: answered whole,
// truncated (a slip), or counted as dropped by b (or 10s pass). It
// returns how many came whole and how many truncated, and how long
// sending took.
func floodFrom(t *testing.T, b *Balancer, src netip.Addr, lb netip.AddrPort, name string, n int) (full, tc int, took time.Duration) {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(lb))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(1 << 20)
	dropped := func() int {
		n := 0
		for _, byAction := range b.RRL().Limited {
			n += int(byAction["dropped"])
		}
		return n
	}
	before := dropped()
	q := new(dns.Msg).SetQuestion(name, dns.TypeTXT)
	start := time.Now()
	for i := 0; i < n; i++ {
		q.Id = uint16(i + 1)
		b, _ := q.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	took = time.Since(start)
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for full+tc+dropped()-before < n && time.Now().Before(deadline) {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		k, err := c.Read(buf)
		if err != nil {
			continue
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatal(err)
		}
		if r.Truncated {
			if len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 || len(r.Question) != 1 {
				t.Fatalf("slip carries more than the question: %v", r)
			}
			tc++
		} else {
			full++
		}
	}
	return full, tc, took
}

// TestRRL: one client prefix flooding one name gets its rate (plus the
// one-second burst) of answers, every slip-th limited one as TC=1 and the
// rest dropped, while another prefix is served in full; TCP is never
// limited. The bound allows for however long sending took.
func TestRRL(t *testing.T) {
	const rate, n = 5, 60
	be := startFake(t, "a")
	s := Settings{RRL: RRLSettings{Enabled: true, Config: rrl.Config{ResponsesPerSecond: rate, Slip: 2, IPv4PrefixLen: 32}}}
	b, lb := startBalancer(t, s, be)
	full, tc, took := floodFrom(t, b, netip.MustParseAddr("127.0.0.1"), lb, "flood.example.test.", n)
	most := int(float64(rate)*(took.Seconds()+1)) + 1 // the burst, and what the time taken earned
	if full < rate || full > most {
		t.Fatalf("flooding prefix got %d answers in %v, want %d..%d", full, took, rate, most)
	}
	limited := n - full
	if tc != limited/2 {
		t.Fatalf("%d limited answers, %d slipped; want every 2nd (%d)", limited, tc, limited/2)
	}
	st := b.RRL()
	if got := st.Limited["positive"]; got["dropped"]+got["slipped"] != uint64(limited) || got["slipped"] != uint64(tc) {
		t.Fatalf("counters %v, want %d limited, %d slipped", got, limited, tc)
	}
	if st.TableBytes == 0 {
		t.Fatal("table size not reported")
	}
	// another prefix: its own accounts
	if full, tc, _ := floodFrom(t, b, netip.MustParseAddr("127.0.0.2"), lb, "other.example.test.", rate); full != rate || tc != 0 {
		t.Fatalf("other prefix got %d answers, %d slips; want %d, 0", full, tc, rate)
	}
	// TCP: never limited
	for i := 0; i < 2*rate; i++ {
		if r, err := ask(t, "tcp", lb, "flood.example.test."); err != nil || r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("TCP query %d: %v %v", i, r, err)
		}
	}
}

// TestRRLLogOnlyAndExempt: log_only counts but sends; exempt prefixes
// are not even counted; a reload that turns rrl off stops limiting.
func TestRRLLogOnlyAndExempt(t *testing.T) {
	be := startFake(t, "a")
	s := Settings{RRL: RRLSettings{Enabled: true, Config: rrl.Config{ResponsesPerSecond: 2, Slip: 2, IPv4PrefixLen: 32, LogOnly: true,
		Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}}}}
	b, lb := startBalancer(t, s, be)
	if full, tc, _ := floodFrom(t, b, netip.MustParseAddr("127.0.0.1"), lb, "x.example.test.", 20); full != 20 || tc != 0 {
		t.Fatalf("log_only: %d answers, %d slips; want 20, 0", full, tc)
	}
	if n := b.RRL().Limited["positive"]["log_only"]; n == 0 {
		t.Fatal("log_only counted nothing")
	}
	s.RRL.LogOnly = false
	if err := b.Apply([]BackendSpec{{Name: "a", Addr: be.addr, Weight: 1}}, s); err != nil {
		t.Fatal(err)
	}
	before := b.RRL().Limited["positive"]
	if full, _, _ := floodFrom(t, b, netip.MustParseAddr("127.0.0.3"), lb, "x.example.test.", 20); full != 20 {
		t.Fatalf("exempt prefix got %d of 20", full)
	}
	if after := b.RRL().Limited["positive"]; after["dropped"] != before["dropped"] || after["slipped"] != before["slipped"] {
		t.Fatalf("exempt prefix counted: %v → %v", before, after)
	}
	s.RRL.Enabled = false
	if err := b.Apply([]BackendSpec{{Name: "a", Addr: be.addr, Weight: 1}}, s); err != nil {
		t.Fatal(err)
	}
	if full, _, _ := floodFrom(t, b, netip.MustParseAddr("127.0.0.1"), lb, "x.example.test.", 20); full != 20 {
		t.Fatalf("rrl off: %d of 20 answered", full)
	}
}

// TestRRLClassify: NXDOMAIN and NODATA answers are accounted per zone
// (the owner of the authority section's SOA), so random names share one
// account; positive answers per name and type; ANY and errors per prefix.
func TestRRLClassify(t *testing.T) {
	r := newResponseLimit()
	answer := func(name string, qtype uint16, rcode int, soaZone string, withAnswer bool) (rrl.Class, uint64) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Response, m.Rcode = true, rcode
		if withAnswer {
			a, _ := dns.NewRR(name + " 300 IN TXT x")
			m.Answer = append(m.Answer, a)
		}
		if soaZone != "" {
			soa, _ := dns.NewRR(soaZone + " 300 IN SOA ns." + soaZone + " h." + soaZone + " 1 2 3 4 5")
			m.Ns = append(m.Ns, soa)
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		msg, drop := parseAnswer(b)
		if drop != dropNone {
			t.Fatal(drop)
		}
		return r.classify(b, &msg)
	}
	c1, k1 := answer("a1.example.test.", dns.TypeA, dns.RcodeNameError, "example.test.", false)
	c2, k2 := answer("zz9.EXAMPLE.test.", dns.TypeAAAA, dns.RcodeNameError, "Example.Test.", false)
	if c1 != rrl.NXDomain || c2 != rrl.NXDomain || k1 != k2 {
		t.Fatalf("NXDOMAIN: %v %x, %v %x; want one zone account", c1, k1, c2, k2)
	}
	c3, k3 := answer("b.example.test.", dns.TypeMX, dns.RcodeSuccess, "example.test.", false)
	if c3 != rrl.Positive || k3 != k1 {
		t.Fatalf("NODATA: %v %x, want positive on the zone's key %x", c3, k3, k1)
	}
	c4, k4 := answer("a.example.test.", dns.TypeTXT, dns.RcodeSuccess, "", true)
	c5, k5 := answer("b.example.test.", dns.TypeTXT, dns.RcodeSuccess, "", true)
	if c4 != rrl.Positive || c5 != rrl.Positive || k4 == k5 {
		t.Fatalf("positive: %v %x, %v %x; want distinct accounts", c4, k4, c5, k5)
	}
	if c, _ := answer("a.example.test.", dns.TypeANY, dns.RcodeSuccess, "", true); c != rrl.Any {
		t.Fatalf("ANY: %v", c)
	}
	if c, _ := answer("a.example.test.", dns.TypeA, dns.RcodeRefused, "", false); c != rrl.Error {
		t.Fatalf("REFUSED: %v", c)
	}
}

// TestHotPathWithRRLAllocatesNothing: deciding, counting and slipping
// allocate nothing.
func TestHotPathWithRRLAllocatesNothing(t *testing.T) {
	h := newHotPath(t, ClientAddressNone)
	s := *h.b.settings.Load()
	s.RRL = RRLSettings{Enabled: true, Config: rrl.Config{ResponsesPerSecond: 1000000, Slip: 1}}
	h.b.rrl.apply(s.RRL)
	h.b.settings.Store(&s)
	for i := 0; i < 200; i++ {
		h.round(t)
	}
	if allocs := testing.AllocsPerRun(2000, func() { h.round(t) }); allocs != 0 {
		t.Fatalf("UDP round trip with rrl allocates %.2f objects per query, want 0", allocs)
	}
}
