package integration

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// The protocol-conformance classes, against real servers; the scripted
// misbehaving backend of each class is in balancer/tcp_test.go.

// randomCase applies 0x20 letter-case randomisation (RFC 5452 style).
func randomCase(rng *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && rng.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// TestTCPPipelinedWithClosingBackends (classes 1, 3, 6): NSD set to close
// each TCP connection after one answer (tcp-query-count: 1) sits behind
// dnslb. One client connection pipelines 50 queries with 0x20-randomised
// names; every answer comes back matched to its query (ID, name, type)
// and the connection is still open for one more.
func TestTCPPipelinedWithClosingBackends(t *testing.T) {
	requirePeers(t)
	a := testpeer.StartNSD(t, testpeer.NSDOptions{Name: "ns1", Addr: testpeer.FreePort(t, netip.MustParseAddr("127.0.0.11")), TCPQueryCount: 1})
	b := testpeer.StartNSD(t, testpeer.NSDOptions{Name: "ns2", Addr: testpeer.FreePort(t, netip.MustParseAddr("127.0.0.12")), TCPQueryCount: 1})
	v4 := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	l := startLB(t, nil, lbConfig([]netip.AddrPort{v4}, adm, [][2]string{{"ns1", a.Addr.String()}, {"ns2", b.Addr.String()}}, ""), v4, adm)

	c, err := dns.Dial("tcp", l.listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(7, 11))
	names := []string{"www.example.test.", "mx.example.test.", "nope.example.test.", "whoami.example.test."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT}
	sent := map[uint16]dns.Question{}
	for i := 0; i < 50; i++ {
		m := new(dns.Msg)
		m.SetQuestion(randomCase(rng, names[i%len(names)]), types[i%len(types)])
		m.Id = uint16(1000 + i)
		sent[m.Id] = m.Question[0]
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	for len(sent) > 0 {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		r, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("%d answers missing: %v", len(sent), err)
		}
		q, ok := sent[r.Id]
		if !ok || !strings.EqualFold(r.Question[0].Name, q.Name) || r.Question[0].Qtype != q.Qtype {
			t.Fatalf("answer %d %v matches no query", r.Id, r.Question)
		}
		delete(sent, r.Id)
	}
	m := question("www.example.test.", dns.TypeA)
	if err := c.WriteMsg(m); err != nil {
		t.Fatalf("the connection did not survive: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r, err := c.ReadMsg(); err != nil || r.Id != m.Id {
		t.Fatalf("one more query: %v %v", r, err)
	}
	if st := l.status(); st.Dropped["tcp_answer_mismatch"] != 0 {
		t.Fatalf("mismatches: %v", st.Dropped)
	}
}

// TestIXFRThroughBalancer (class 1): an incremental IXFR from a Knot
// primary with a journal, and an AXFR, stream through dnslb completely,
// and the connection carries one more query after each.
func TestIXFRThroughBalancer(t *testing.T) {
	requirePeers(t)
	testpeer.RequireTool(t, "knotd")
	zone := testpeer.ZoneSpec{Name: "ixfr.test.", Serial: 1, Records: "a 300 IN A 192.0.2.1\n"}
	k := testpeer.StartKnot(t, testpeer.KnotOptions{Name: "knot", Addr: netip.MustParseAddrPort("127.0.0.13:0"),
		Zones: []testpeer.ZoneSpec{zone}, Primary: true, Journal: true})
	k.SetSerial(t, "ixfr.test.", 2)
	k.SetSerial(t, "ixfr.test.", 3)
	v4 := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	l := startLB(t, nil, lbConfig([]netip.AddrPort{v4}, adm, [][2]string{{"knot", k.Addr.String()}}, ""), v4, adm)

	c, err := dns.Dial("tcp", l.listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ixfr := new(dns.Msg)
	ixfr.SetIxfr("ixfr.test.", 1, "ns1.ixfr.test.", "hostmaster.ixfr.test.")
	axfr := new(dns.Msg)
	axfr.SetAxfr("ixfr.test.")
	for _, q := range []*dns.Msg{ixfr, axfr} {
		if err := c.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		var rrs []dns.RR
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			r, err := c.ReadMsg()
			if err != nil {
				t.Fatalf("%s: %v after %d records", dns.TypeToString[q.Question[0].Qtype], err, len(rrs))
			}
			if r.Id != q.Id || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s: %v", dns.TypeToString[q.Question[0].Qtype], r)
			}
			rrs = append(rrs, r.Answer...)
			if n := len(rrs); n > 1 && rrs[n-1].Header().Rrtype == dns.TypeSOA && rrs[n-1].(*dns.SOA).Serial == 3 &&
				(q.Question[0].Qtype == dns.TypeAXFR || soaCount(rrs, 3) == 3) {
				break
			}
		}
		t.Logf("%s: %d records", dns.TypeToString[q.Question[0].Qtype], len(rrs))
		if q == ixfr && (len(rrs) < 4 || rrs[1].Header().Rrtype != dns.TypeSOA) {
			t.Fatalf("IXFR was not incremental: %v", rrs)
		}
	}
	m := question("ixfr.test.", dns.TypeSOA)
	c.WriteMsg(m)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r, err := c.ReadMsg(); err != nil || r.Id != m.Id || len(r.Answer) != 1 {
		t.Fatalf("query after the transfers: %v %v", r, err)
	}
}

func soaCount(rrs []dns.RR, serial uint32) int {
	n := 0
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SOA); ok && s.Serial == serial {
			n++
		}
	}
	return n
}

// TestSelfAnswersWithRealClients (class 2): with every backend down and
// all_down: refuse, dig and kdig (EDNS, COOKIE) get REFUSED with an OPT
// record and a server cookie over UDP and TCP; a COOKIE-only query gets
// NOERROR.
func TestSelfAnswersWithRealClients(t *testing.T) {
	requirePeers(t)
	testpeer.RequireTool(t, "dig")
	testpeer.RequireTool(t, "kdig")
	v4 := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	dead := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.14"))
	cfg := lbConfig([]netip.AddrPort{v4}, adm, [][2]string{{"dead", dead.String()}},
		"health_check:\n  enabled: true\n  query: {name: example.test.}\n  interval: 200ms\n  timeout: 100ms\n  all_down: refuse\n")
	l := startLB(t, nil, cfg, v4, adm)
	port := fmt.Sprint(l.listen.Port())
	for _, tcp := range []string{"+notcp", "+tcp"} {
		out, err := exec.Command("dig", "-p", port, "@"+v4.Addr().String(), "www.example.test", "A", "+edns=0", "+cookie", tcp, "+time=2", "+tries=1").CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", tcp, err, out)
		}
		s := string(out)
		if !strings.Contains(s, "status: REFUSED") || !strings.Contains(s, "OPT PSEUDOSECTION") || !strings.Contains(s, "COOKIE:") {
			t.Fatalf("dig %s: want REFUSED with OPT and COOKIE:\n%s", tcp, s)
		}
		if strings.Contains(s, "COOKIE: ") && strings.Contains(s, "(bad)") {
			t.Fatalf("dig %s judged the cookie bad:\n%s", tcp, s)
		}
	}
	out, err := exec.Command("kdig", "-p", port, "@"+v4.Addr().String(), "www.example.test", "A", "+edns=1", "+tcp", "+time=2").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "BADVERS") {
		t.Fatalf("kdig +edns=1: want BADVERS: %v\n%s", err, out)
	}
	// a COOKIE-only query: no question (dig +qr shows what it sent)
	m := new(dns.Msg)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}
	m.Id = dns.Id()
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, l.listen.String())
	if err != nil || r.Rcode != dns.RcodeSuccess || r.IsEdns0() == nil {
		t.Fatalf("COOKIE-only query: %v %v", r, err)
	}
}

// waitUntil polls cond every 10ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTCPClientThatNeverReads (class 4): a client that sends queries for
// big answers and never reads is closed after timeouts.tcp_write, and its
// backend connection with it; other clients are served throughout.
func TestTCPClientThatNeverReads(t *testing.T) {
	l, _, _, _ := startPairWith(t, "timeouts:\n  tcp_write: 500ms\n", nil)
	raw, err := net.Dial("tcp", l.listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(4096)
	q := question("big.example.test.", dns.TypeTXT)
	q.SetEdns0(4096, false)
	b, _ := q.Pack()
	frame := append([]byte{0, byte(len(b))}, b...)
	deadline := time.Now().Add(20 * time.Second)
	var closed bool
	for !closed && time.Now().Before(deadline) {
		raw.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := raw.Write(frame); err != nil && !isTimeout(err) {
			closed = true
		}
		if l.status().Dropped["tcp_write_timeout"] > 0 {
			closed = true
		}
	}
	if !closed {
		t.Fatal("a client that never reads was not closed within 20s")
	}
	if r := exchange(t, "tcp", l.listen, question("www.example.test.", dns.TypeA)); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("another client: %v", r)
	}
	waitUntil(t, 5*time.Second, "backend TCP connections closed", func() bool {
		for _, be := range l.status().Backends {
			if be.TCPConnections != 0 {
				return false
			}
		}
		return true
	})
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestTCPBackendKilledUnderLoad (class 7): 6 clients keep TCP connections
// busy (some reconnecting for every query) while one of the two NSD
// backends is SIGKILLed: no query fails; the ones in flight on the dead
// backend are sent again to the other.
func TestTCPBackendKilledUnderLoad(t *testing.T) {
	l, a, _, _ := startPairWith(t, "", nil)
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var c *dns.Conn
			for n := 0; n < 3000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if c == nil || i%2 == 1 { // odd clients: a new connection per query
					if c != nil {
						c.Close()
					}
					var err error
					if c, err = dns.Dial("tcp", l.listen.String()); err != nil {
						failed.Add(1)
						mu.Lock()
						firstErr = err
						mu.Unlock()
						c = nil
						continue
					}
				}
				m := question("www.example.test.", dns.TypeA)
				c.SetDeadline(time.Now().Add(3 * time.Second))
				err := c.WriteMsg(m)
				var r *dns.Msg
				if err == nil {
					r, err = c.ReadMsg()
				}
				if err != nil || r.Id != m.Id || r.Rcode != dns.RcodeSuccess {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("client %d: %v %v", i, r, err)
					}
					mu.Unlock()
					c.Close()
					c = nil
					continue
				}
				ok.Add(1)
			}
			if c != nil {
				c.Close()
			}
		}(i)
	}
	time.Sleep(500 * time.Millisecond)
	a.Kill(t)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	st := l.status()
	for _, be := range st.Backends {
		t.Logf("backend %s: %d queries, %d sent again after a failure", be.Name, be.Queries, be.Retried)
	}
	t.Logf("%d TCP queries answered, %d failed; tcp_backend_connect failures %d, answered by dnslb %v",
		ok.Load(), failed.Load(), st.Dropped["tcp_backend_connect"], st.Answered)
	if failed.Load() != 0 {
		t.Fatalf("%d TCP queries failed around the backend's death: %v", failed.Load(), firstErr)
	}
}
