package balancer

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestPermitted(t *testing.T) {
	p := netip.MustParsePrefix
	s := Settings{Allow: []netip.Prefix{p("192.0.2.0/24"), p("2001:db8::/32")}, Deny: []netip.Prefix{p("192.0.2.66/32")}}
	for addr, want := range map[string]bool{
		"192.0.2.1": true, "192.0.2.66": false, "198.51.100.1": false,
		"2001:db8::53": true, "2001:db9::53": false, "::ffff:192.0.2.1": true,
	} {
		if got := s.permitted(netip.MustParseAddr(addr)); got != want {
			t.Errorf("permitted(%s) = %v, want %v", addr, got, want)
		}
	}
	var open Settings
	if !open.permitted(netip.MustParseAddr("203.0.113.9")) {
		t.Error("empty ACL refused a client")
	}
	denyOnly := Settings{Deny: []netip.Prefix{p("10.0.0.0/8")}}
	if denyOnly.permitted(netip.MustParseAddr("10.1.2.3")) || !denyOnly.permitted(netip.MustParseAddr("11.1.2.3")) {
		t.Error("deny-only ACL wrong")
	}
}

// TestClientLimiter: a client gets a burst of qps queries, then one per
// 1/qps; other clients are not affected.
func TestClientLimiter(t *testing.T) {
	var l clientLimiter
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	const qps = 10
	now := int64(time.Hour)
	n := 0
	for i := 0; i < 100; i++ {
		if l.allow(a, now, qps) {
			n++
		}
	}
	if n != qps {
		t.Fatalf("burst: %d allowed, want %d", n, qps)
	}
	if !l.allow(b, now, qps) {
		t.Fatal("another client was limited")
	}
	if l.allow(a, now+int64(50*time.Millisecond), qps) {
		t.Fatal("allowed before 1/qps passed")
	}
	if !l.allow(a, now+int64(100*time.Millisecond), qps) {
		t.Fatal("not allowed after 1/qps")
	}
	// Over 10 seconds at 100 queries per second, about qps per second pass.
	n = 0
	for i := 0; i < 1000; i++ {
		if l.allow(a, now+int64(time.Second)+int64(i)*int64(10*time.Millisecond), qps) {
			n++
		}
	}
	if n < 10*qps-1 || n > 10*qps+qps {
		t.Fatalf("sustained: %d allowed in 10s, want about %d", n, 10*qps)
	}
}

// TestClientLimiterManyClients: more clients than slots never block a
// fresh client for long; the table just forgets the oldest.
func TestClientLimiterManyClients(t *testing.T) {
	var l clientLimiter
	now := int64(time.Hour)
	for i := 0; i < 200000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !l.allow(a, now, 5) {
			t.Fatalf("client %d refused its first query", i)
		}
	}
}

// askFrom sends one query from the local address from and returns the
// answer, or nil when none came within the timeout.
func askFrom(t *testing.T, network string, from netip.Addr, server netip.AddrPort, id uint16) *dns.Msg {
	t.Helper()
	return askWithin(t, network, from, server, id, 3*time.Second)
}

// askNone asks like askFrom where no answer is expected: it waits only
// 300ms (an answer, if any, would be quicker).
func askNone(t *testing.T, network string, from netip.Addr, server netip.AddrPort, id uint16) *dns.Msg {
	t.Helper()
	return askWithin(t, network, from, server, id, 300*time.Millisecond)
}

func askWithin(t *testing.T, network string, from netip.Addr, server netip.AddrPort, id uint16, timeout time.Duration) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: timeout}
	if network == "udp" {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: from.AsSlice()}}
	} else {
		c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	m.Id = id
	r, _, err := c.Exchange(m, server.String())
	if err != nil {
		return nil
	}
	return r
}

// TestACLOverUDPAndTCP: a denied client (127.0.0.2) gets nothing on UDP and
// a closed connection on TCP; an allowed one (127.0.0.1) is served.
func TestACLOverUDPAndTCP(t *testing.T) {
	f := startFake(t, "one")
	b, lb := startBalancer(t, Settings{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}, f)
	ok, denied := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	for _, network := range []string{"udp", "tcp"} {
		if r := askFrom(t, network, ok, lb, 1); r == nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: allowed client not served: %v", network, r)
		}
		if r := askNone(t, network, denied, lb, 2); r != nil {
			t.Fatalf("%s: denied client got %v", network, r)
		}
	}
	if got := b.Dropped()["acl_denied"]; got != 2 {
		t.Fatalf("acl_denied = %d, want 2 (one UDP query, one TCP connection)", got)
	}
	if f.hits.Load() != 2 {
		t.Fatalf("backend saw %d queries, want 2", f.hits.Load())
	}
}

// TestRateLimitPerClient: with qps_per_client 5 and refuse, a client that
// sends 20 queries at once gets 5 answers from the backend and 15 REFUSED
// from the balancer; another client is not affected; with drop, the excess
// gets no answer.
func TestRateLimitPerClient(t *testing.T) {
	f := startFake(t, "one")
	s := Settings{QPSPerClient: 5, RefuseOverLimit: true}
	b, lb := startBalancer(t, s, f)
	a1, a2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.3")
	rcodes := map[int]int{}
	start := time.Now()
	for i := 0; i < 20; i++ {
		r := askFrom(t, "udp", a1, lb, uint16(i))
		if r == nil {
			t.Fatalf("query %d: no answer", i)
		}
		rcodes[r.Rcode]++
	}
	// the burst, plus what the time taken refilled (a busy machine is slow)
	most := 5 + int(time.Since(start).Seconds()*5) + 1
	if rcodes[dns.RcodeSuccess] < 5 || rcodes[dns.RcodeSuccess] > most || rcodes[dns.RcodeRefused]+rcodes[dns.RcodeSuccess] != 20 {
		t.Fatalf("rcodes %v, want 5..%d NOERROR and the rest REFUSED", rcodes, most)
	}
	if r := askFrom(t, "udp", a2, lb, 99); r == nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("other client: %v", r)
	}
	if got := b.Answered()["over_limit"]; got != uint64(rcodes[dns.RcodeRefused]) {
		t.Fatalf("answered over_limit = %d, want %d", got, rcodes[dns.RcodeRefused])
	}
	s.RefuseOverLimit = false
	if err := b.Apply([]BackendSpec{{Name: f.name, Addr: f.addr, Weight: 1}}, s); err != nil {
		t.Fatal(err)
	}
	if r := askNone(t, "udp", a1, lb, 100); r != nil && r.Rcode != dns.RcodeSuccess {
		t.Fatalf("drop mode answered %v", r)
	}
	if b.Dropped()["rate_limited"] == 0 && b.Answered()["over_limit"] == uint64(rcodes[dns.RcodeRefused]) {
		// the bucket may have refilled one token; one more query is over
		if r := askNone(t, "udp", a1, lb, 101); r != nil {
			t.Fatalf("drop mode answered %v", r)
		}
	}
	if b.Dropped()["rate_limited"] == 0 {
		t.Fatal("nothing counted as rate_limited in drop mode")
	}
}

// BenchmarkClientLimiter measures one rate-limit decision.
func BenchmarkClientLimiter(b *testing.B) {
	var l clientLimiter
	a := netip.MustParseAddr("192.0.2.1")
	now := int64(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		now += 1000
		l.allow(a, now, 1000000)
	}
}

// TestTCPSlowloris: a client that trickles a message (one byte every
// 100ms) is closed once timeouts.tcp_read has passed since the message's
// first byte, long before the idle timeout; a client that pauses between
// whole messages is not.
func TestTCPSlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("TestTCPSlowloris: takes 1.3 s (a client trickling a byte per 100 ms); run without -short")
	}
	f := startFake(t, "one")
	b, lb := startBalancer(t, Settings{TCPReadTimeout: 300 * time.Millisecond, TCPIdleTimeout: 5 * time.Second}, f)
	q := packQuery(t, "www.example.test.", dns.TypeA, nil)
	msg := append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)

	c, err := net.Dial("tcp", lb.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	closedAfter := time.Duration(0)
	for i := 0; i < len(msg) && closedAfter == 0; i++ { // bounded: one message, ~4s at most
		if _, err := c.Write(msg[i : i+1]); err != nil {
			closedAfter = time.Since(start)
			break
		}
		time.Sleep(100 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closedAfter = time.Since(start)
		}
	}
	if closedAfter == 0 || closedAfter > 2*time.Second {
		t.Fatalf("trickling client closed after %v, want about 300ms", closedAfter)
	}
	t.Logf("trickling client closed %v after its first byte", closedAfter.Round(time.Millisecond))
	if got := b.Dropped()["tcp_slow"]; got != 1 {
		t.Fatalf("tcp_slow = %d, want 1", got)
	}

	// whole messages with pauses longer than tcp_read between them: served
	conn, err := dns.Dial("tcp", lb.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 2; i++ {
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if r, err := conn.ReadMsg(); err != nil || r.Id != m.Id {
			t.Fatalf("message %d: %v %v", i, r, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
