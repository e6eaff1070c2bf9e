package balancer

import (
	"bytes"
	"encoding/binary"
	"github.com/dnslb/dnslb/internal/health"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// scriptedTCP is a deliberately misbehaving TCP backend: every connection
// is handed to serve with helpers to read and write framed messages. It
// listens on the port of a UDP socket that is never read, so it can stand
// in BackendSpecs like any backend.
type scriptedTCP struct {
	addr  netip.AddrPort
	conns chan struct{} // one value per accepted connection
}

func startScriptedTCP(t *testing.T, serve func(c *tcpPeer)) *scriptedTCP {
	t.Helper()
	ln, pc := listenBoth(t)
	t.Cleanup(func() { pc.Close() })
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	st := &scriptedTCP{addr: addr, conns: make(chan struct{}, 100)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case st.conns <- struct{}{}:
			default:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(&tcpPeer{t: t, c: c})
			}()
		}
	}()
	return st
}

// tcpPeer reads and writes framed DNS messages on one connection.
type tcpPeer struct {
	t *testing.T
	c net.Conn
}

// read returns the next message, or nil when the connection ends.
func (p *tcpPeer) read() *dns.Msg {
	p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var l [2]byte
	if _, err := io.ReadFull(p.c, l[:]); err != nil {
		return nil
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(p.c, b); err != nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		p.t.Errorf("peer read: %v", err)
		return nil
	}
	return m
}

func (p *tcpPeer) write(m *dns.Msg) {
	b, err := m.Pack()
	if err != nil {
		p.t.Errorf("peer pack: %v", err)
		return
	}
	p.writeRaw(b)
}

func (p *tcpPeer) writeRaw(b []byte) {
	out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	p.c.Write(append(out, b...))
}

// reply is the answer a good server gives: a TXT record naming who.
func reply(q *dns.Msg, who string) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	r.Answer = append(r.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{who}})
	return r
}

// startTCPBalancer starts a balancer in front of these backends (name ->
// address) with short timeouts, so that failures show quickly.
func startTCPBalancer(t *testing.T, s Settings, backends map[string]netip.AddrPort) (*Balancer, netip.AddrPort) {
	t.Helper()
	if s.TCPIdleTimeout == 0 {
		s.TCPIdleTimeout = 2 * time.Second
	}
	var specs []BackendSpec
	for name, a := range backends {
		specs = append(specs, BackendSpec{Name: name, Addr: a, Weight: 1})
	}
	return startSpecs(t, s, specs...)
}

// tcpClient is a client connection that pipelines queries.
type tcpClient struct {
	t    *testing.T
	conn *dns.Conn
}

func dialTCP(t *testing.T, lb netip.AddrPort) *tcpClient {
	t.Helper()
	c, err := dns.Dial("tcp", lb.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpClient{t: t, conn: c}
}

func (c *tcpClient) send(name string, qtype uint16, id uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	if err := c.conn.WriteMsg(m); err != nil {
		c.t.Fatalf("write %s: %v", name, err)
	}
	return m
}

// recv returns the next answer, or nil and the error.
func (c *tcpClient) recv() (*dns.Msg, error) {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c.conn.ReadMsg()
}

// TestTCPAnswersChecked (class 1): an answer that does not belong to an
// outstanding query of the connection (wrong ID, name, type, QR=0, a
// second answer) is never relayed; the backend connection is closed and
// the query sent again, here to a good backend, so the client still gets
// the right answer on the same connection.
func TestTCPAnswersChecked(t *testing.T) {
	cases := map[string]func(q *dns.Msg) []*dns.Msg{
		"wrong id": func(q *dns.Msg) []*dns.Msg { r := reply(q, "bad"); r.Id++; return []*dns.Msg{r} },
		"wrong name": func(q *dns.Msg) []*dns.Msg {
			r := reply(q, "bad")
			r.Question[0].Name = "other.example."
			return []*dns.Msg{r}
		},
		"wrong type": func(q *dns.Msg) []*dns.Msg {
			r := reply(q, "bad")
			r.Question[0].Qtype = dns.TypeMX
			return []*dns.Msg{r}
		},
		"qr=0": func(q *dns.Msg) []*dns.Msg { r := reply(q, "bad"); r.Response = false; return []*dns.Msg{r} },
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			bad := startScriptedTCP(t, func(p *tcpPeer) {
				for q := p.read(); q != nil; q = p.read() {
					for _, r := range answer(q) {
						p.write(r)
					}
				}
			})
			good := startFake(t, "good")
			// "good" is pending (checked, no verdict yet): only the
			// re-send, which avoids "bad", falls back to it (fail-open)
			b, lb := startSpecs(t, Settings{TCPIdleTimeout: 2 * time.Second},
				BackendSpec{Name: "bad", Addr: bad.addr, Weight: 1}, BackendSpec{Name: "good", Addr: good.addr, Weight: 1, Checked: true})
			c := dialTCP(t, lb)
			c.send("q.example.", dns.TypeTXT, 7)
			r, err := c.recv()
			if err != nil {
				t.Fatal(err)
			}
			if r.Id != 7 || len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "good" || r.Question[0].Name != "q.example." {
				t.Fatalf("got %v, want the good backend's answer", r)
			}
			if n := b.Dropped()["tcp_answer_mismatch"]; n != 1 {
				t.Fatalf("tcp_answer_mismatch = %d, want 1", n)
			}
			// the client's connection is still good
			c.send("again.example.", dns.TypeTXT, 8)
			if r, err := c.recv(); err != nil || r.Id != 8 {
				t.Fatalf("second query on the connection: %v %v", r, err)
			}
		})
	}
}

// TestTCPSecondAnswerNotRelayed: a backend that answers one query twice
// has its second answer dropped and its connection closed; the client sees
// exactly one answer.
func TestTCPSecondAnswerNotRelayed(t *testing.T) {
	be := startScriptedTCP(t, func(p *tcpPeer) {
		for q := p.read(); q != nil; q = p.read() {
			p.write(reply(q, "first"))
			p.write(reply(q, "second"))
		}
	})
	b, lb := startTCPBalancer(t, Settings{}, map[string]netip.AddrPort{"twice": be.addr})
	c := dialTCP(t, lb)
	c.send("q.example.", dns.TypeTXT, 1)
	r, err := c.recv()
	if err != nil || r.Answer[0].(*dns.TXT).Txt[0] != "first" {
		t.Fatalf("first answer: %v %v", r, err)
	}
	c.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if r, err := c.conn.ReadMsg(); err == nil {
		t.Fatalf("a second answer was relayed: %v", r)
	}
	if n := b.Dropped()["tcp_answer_mismatch"]; n != 1 {
		t.Fatalf("tcp_answer_mismatch = %d, want 1", n)
	}
}

// TestTCPPipelinedOutOfOrder: 20 pipelined queries answered by the backend
// in reverse order all reach the client, each with its own ID and
// question.
func TestTCPPipelinedOutOfOrder(t *testing.T) {
	const n = 20
	be := startScriptedTCP(t, func(p *tcpPeer) {
		var qs []*dns.Msg
		for len(qs) < n {
			q := p.read()
			if q == nil {
				return
			}
			qs = append(qs, q)
		}
		for i := len(qs) - 1; i >= 0; i-- {
			p.write(reply(qs[i], qs[i].Question[0].Name))
		}
		for q := p.read(); q != nil; q = p.read() {
		}
	})
	_, lb := startTCPBalancer(t, Settings{}, map[string]netip.AddrPort{"rev": be.addr})
	c := dialTCP(t, lb)
	want := map[uint16]string{}
	for i := 0; i < n; i++ {
		q := c.send(strings.Repeat("a", i+1)+".example.", dns.TypeTXT, uint16(1000+i))
		want[q.Id] = q.Question[0].Name
	}
	for i := 0; i < n; i++ {
		r, err := c.recv()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if name, ok := want[r.Id]; !ok || r.Question[0].Name != name || r.Answer[0].(*dns.TXT).Txt[0] != name {
			t.Fatalf("answer %v does not match its query", r)
		}
		delete(want, r.Id)
	}
}

// TestTCPBackendClosesAfterEachAnswer (class 3): a backend that closes the
// connection after every answer loses none of the queries pipelined
// meanwhile: they are sent again on new connections.
func TestTCPBackendClosesAfterEachAnswer(t *testing.T) {
	be := startScriptedTCP(t, func(p *tcpPeer) {
		if q := p.read(); q != nil {
			time.Sleep(20 * time.Millisecond) // let the pipelined ones arrive
			p.write(reply(q, "once"))
		}
	})
	b, lb := startTCPBalancer(t, Settings{}, map[string]netip.AddrPort{"once": be.addr})
	c := dialTCP(t, lb)
	for i := 0; i < 5; i++ {
		c.send("q.example.", dns.TypeTXT, uint16(i))
	}
	seen := map[uint16]bool{}
	for i := 0; i < 5; i++ {
		r, err := c.recv()
		if err != nil {
			t.Fatalf("answer %d: %v (got %v)", i, err, seen)
		}
		seen[r.Id] = true
	}
	if len(seen) != 5 {
		t.Fatalf("answers for %v, want 5 distinct", seen)
	}
	if n := b.Answered()["backend_failed"]; n != 0 {
		t.Fatalf("%d queries given up on a backend that answered each", n)
	}
}

// TestTCPMalformedAfterValid (class 3): a malformed message after valid
// ones does not lose the answers still in flight: they are relayed, then
// FORMERR, then the connection closes.
func TestTCPMalformedAfterValid(t *testing.T) {
	be := startScriptedTCP(t, func(p *tcpPeer) {
		var qs []*dns.Msg
		for q := p.read(); q != nil; q = p.read() {
			qs = append(qs, q)
			if len(qs) == 3 {
				time.Sleep(100 * time.Millisecond) // answer after the bad message arrived
				for _, q := range qs {
					p.write(reply(q, "ok"))
				}
			}
		}
	})
	_, lb := startTCPBalancer(t, Settings{}, map[string]netip.AddrPort{"slow": be.addr})
	c := dialTCP(t, lb)
	for i := 0; i < 3; i++ {
		c.send("q.example.", dns.TypeTXT, uint16(10+i))
	}
	bad := []byte{0, 99, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, 'x'} // question cut short
	c.conn.Conn.Write(append([]byte{0, byte(len(bad))}, bad...))
	// answers on TCP may come in any order (RFC 7766 7): FORMERR is sent
	// at once, the three answers when the backend has them
	got := map[int]int{}
	for {
		r, err := c.recv()
		if err != nil {
			break
		}
		got[r.Rcode]++
	}
	if got[dns.RcodeSuccess] != 3 || got[dns.RcodeFormatError] != 1 || len(got) != 2 {
		t.Fatalf("got rcodes %v, want 3 NOERROR and 1 FORMERR, then close", got)
	}
}

// TestTCPSelfAnswerKeepsConnection (class 3): after dnslb answers a query
// itself (all backends down, refuse), the next query on the same
// connection is served once a backend is up.
func TestTCPSelfAnswerKeepsConnection(t *testing.T) {
	f := startFake(t, "one")
	s := Settings{RefuseWhenAllDown: true}
	b, lb := startSpecs(t, s, BackendSpec{Name: "one", Addr: f.addr, Weight: 1, Checked: true})
	c := dialTCP(t, lb)
	c.send("a.example.", dns.TypeTXT, 1)
	if r, err := c.recv(); err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("all down: %v %v", r, err)
	}
	b.Backend("one").SetHealth(health.Up)
	c.send("b.example.", dns.TypeTXT, 2)
	if r, err := c.recv(); err != nil || r.Rcode != dns.RcodeSuccess || r.Answer[0].(*dns.TXT).Txt[0] != "one" {
		t.Fatalf("after recovery, same connection: %v %v", r, err)
	}
}

// TestTCPWriteTimeout (class 4): a client that sends queries but never
// reads is closed after timeouts.tcp_write and frees its backend
// connection.
func TestTCPWriteTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a second; run without -short")
	}
	// big answers fill the socket buffers quickly
	txt := strings.Repeat("x", 250)
	be := startScriptedTCP(t, func(p *tcpPeer) {
		for q := p.read(); q != nil; q = p.read() {
			r := reply(q, txt)
			for i := 0; i < 200; i++ {
				r.Answer = append(r.Answer, r.Answer[0])
			}
			p.write(r)
		}
	})
	b, lb := startTCPBalancer(t, Settings{TCPWriteTimeout: 300 * time.Millisecond, TCPIdleTimeout: 5 * time.Second},
		map[string]netip.AddrPort{"big": be.addr})
	raw, err := net.Dial("tcp", lb.String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(4096)
	q := packQuery(t, "q.example.", dns.TypeTXT, nil)
	frame := append([]byte{0, byte(len(q))}, q...)
	deadline := time.Now().Add(10 * time.Second)
	for b.Dropped()["tcp_write_timeout"] == 0 && time.Now().Before(deadline) {
		raw.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		raw.Write(frame)
	}
	if b.Dropped()["tcp_write_timeout"] != 1 {
		t.Fatal("a client that never reads was not closed")
	}
	waitFor(t, func() bool { return b.TCPConnections() == 0 && b.Backend("big").tcpActive.Load() == 0 }, "client and backend connections closed")
}

// TestTCPCaseChangedRelayed (class 6): a backend answering with the
// question in another letter case is relayed (as dnsdist does) and counted.
func TestTCPCaseChangedRelayed(t *testing.T) {
	be := startScriptedTCP(t, func(p *tcpPeer) {
		for q := p.read(); q != nil; q = p.read() {
			r := reply(q, "lower")
			r.Question[0].Name = strings.ToLower(q.Question[0].Name)
			p.write(r)
		}
	})
	b, lb := startTCPBalancer(t, Settings{}, map[string]netip.AddrPort{"lower": be.addr})
	c := dialTCP(t, lb)
	c.send("MiXeD.ExAmPlE.", dns.TypeTXT, 3)
	r, err := c.recv()
	if err != nil || r.Id != 3 || r.Answer[0].(*dns.TXT).Txt[0] != "lower" {
		t.Fatalf("case-changed answer not relayed: %v %v", r, err)
	}
	if n := b.Backend("lower").caseChanged.Load(); n != 1 {
		t.Fatalf("case changed = %d, want 1", n)
	}
}

// TestTCPRetryOnAnotherBackend (class 7): a backend that accepts the
// connection and closes it without answering fails the query over to the
// other backend; new connections avoid it for a while.
func TestTCPRetryOnAnotherBackend(t *testing.T) {
	dead := startScriptedTCP(t, func(p *tcpPeer) { p.read() }) // reads the query, closes
	good := startFake(t, "good")
	b, lb := startSpecs(t, Settings{TCPIdleTimeout: 2 * time.Second},
		BackendSpec{Name: "dead", Addr: dead.addr, Weight: 1000}, BackendSpec{Name: "good", Addr: good.addr, Weight: 1})
	for i := 0; i < 3; i++ {
		c := dialTCP(t, lb)
		c.send("q.example.", dns.TypeTXT, uint16(i))
		r, err := c.recv()
		if err != nil || r.Answer[0].(*dns.TXT).Txt[0] != "good" {
			t.Fatalf("query %d: %v %v", i, r, err)
		}
	}
	if n := len(dead.conns); n != 1 {
		t.Fatalf("the dead backend got %d connections, want 1 (then backoff)", n)
	}
	if n := b.Backend("dead").retried.Load(); n != 1 {
		t.Fatalf("retried = %d, want 1", n)
	}
}

// TestTCPServFailAfterTwoFailures: when every backend fails the query, the
// client gets SERVFAIL instead of waiting for ever.
func TestTCPServFailAfterTwoFailures(t *testing.T) {
	d1 := startScriptedTCP(t, func(p *tcpPeer) { p.read() })
	d2 := startScriptedTCP(t, func(p *tcpPeer) { p.read() })
	b, lb := startTCPBalancer(t, Settings{}, map[string]netip.AddrPort{"d1": d1.addr, "d2": d2.addr})
	c := dialTCP(t, lb)
	c.send("q.example.", dns.TypeTXT, 9)
	r, err := c.recv()
	if err != nil || r.Rcode != dns.RcodeServerFailure || r.Id != 9 {
		t.Fatalf("got %v %v, want SERVFAIL", r, err)
	}
	if n := b.Answered()["backend_failed"]; n != 1 {
		t.Fatalf("answered backend_failed = %d", n)
	}
}

// TestTCPZoneTransferEnds (class 1): an AXFR stream is relayed up to its
// closing SOA; a message the backend sends after it is not.
func TestTCPZoneTransferEnds(t *testing.T) {
	soa, _ := dns.NewRR("example. 300 IN SOA ns.example. h.example. 7 1 1 1 1")
	a, _ := dns.NewRR("www.example. 300 IN A 192.0.2.1")
	be := startScriptedTCP(t, func(p *tcpPeer) {
		q := p.read()
		if q == nil {
			return
		}
		for i, rrs := range [][]dns.RR{{soa, a}, {a, a}, {a, soa}, {a}} { // the last is after the end
			r := new(dns.Msg)
			r.SetReply(q)
			r.Answer = rrs
			if i > 0 {
				r.Question = nil // allowed after the first message (RFC 5936 2.2.1); NSD does it
			}
			p.write(r)
		}
		p.read()
	})
	b, lb := startTCPBalancer(t, Settings{}, map[string]netip.AddrPort{"xfr": be.addr})
	tr := new(dns.Transfer)
	m := new(dns.Msg)
	m.SetAxfr("example.")
	env, err := tr.In(m, lb.String())
	if err != nil {
		t.Fatal(err)
	}
	var rrs int
	for e := range env {
		if e.Error != nil {
			t.Fatal(e.Error)
		}
		rrs += len(e.RR)
	}
	if rrs != 6 {
		t.Fatalf("transfer of %d records, want 6", rrs)
	}
	waitFor(t, func() bool { return b.Dropped()["tcp_answer_mismatch"] == 1 }, "the message after the closing SOA dropped")
}

// TestXFREnd: the end of AXFR and IXFR streams, message by message.
func TestXFREnd(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	soa := func(serial string) dns.RR {
		return rr("example. 300 IN SOA ns.example. h.example. " + serial + " 1 1 1 1")
	}
	a := rr("www.example. 300 IN A 192.0.2.1")
	tests := []struct {
		name  string
		qtype uint16
		msgs  [][]dns.RR
		done  []bool // after each message
	}{
		{"axfr in one", dns.TypeAXFR, [][]dns.RR{{soa("5"), a, soa("5")}}, []bool{true}},
		{"axfr in three", dns.TypeAXFR, [][]dns.RR{{soa("5"), a}, {a}, {a, soa("5")}}, []bool{false, false, true}},
		{"ixfr up to date", dns.TypeIXFR, [][]dns.RR{{soa("5")}}, []bool{true}},
		{"ixfr axfr-style", dns.TypeIXFR, [][]dns.RR{{soa("5"), a}, {a, soa("5")}}, []bool{false, true}},
		{"ixfr incremental", dns.TypeIXFR, [][]dns.RR{{soa("5"), soa("3"), a, soa("4")}, {a, soa("4"), a, soa("5")}, {a, soa("5")}}, []bool{false, false, true}},
		{"refusal", dns.TypeAXFR, [][]dns.RR{{}}, []bool{true}},
		{"not a transfer", dns.TypeAXFR, [][]dns.RR{{a}}, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := xfr{qtype: tt.qtype}
			for i, rrs := range tt.msgs {
				m := new(dns.Msg)
				m.SetQuestion("example.", tt.qtype)
				m.Response = true
				m.Answer = rrs
				b, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				am, r := parseAnswer(b)
				if r != dropNone {
					t.Fatal(r)
				}
				if got := x.feed(b, am.qend); got != tt.done[i] {
					t.Fatalf("after message %d: done = %v, want %v", i, got, tt.done[i])
				}
			}
		})
	}
}

// TestSelfAnswersCarryOPT (class 2): every answer dnslb makes itself to a
// query with an OPT record has one (RFC 6891 6.1.1), over UDP and TCP: the
// all-down REFUSED here, the NOTIFY answers in notify_test.go; an EDNS
// version 1 query gets BADVERS, and a COOKIE is answered with a server
// cookie (RFC 7873).
func TestSelfAnswersCarryOPT(t *testing.T) {
	f := startFake(t, "one")
	s := Settings{RefuseWhenAllDown: true}
	_, lb := startSpecs(t, s, BackendSpec{Name: "one", Addr: f.addr, Weight: 1, Checked: true})
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}
	cases := []struct {
		name    string
		build   func(*dns.Msg)
		rcode   int
		cookie  bool
		version uint8
	}{
		{"refused", func(m *dns.Msg) {}, dns.RcodeRefused, false, 0},
		{"refused with cookie", func(m *dns.Msg) { m.IsEdns0().Option = append(m.IsEdns0().Option, cookie) }, dns.RcodeRefused, true, 0},
		{"badvers", func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }, dns.RcodeBadVers, false, 0},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range cases {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				m := new(dns.Msg)
				m.SetQuestion("x.example.", dns.TypeA)
				m.SetEdns0(4096, true)
				tc.build(m)
				r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, lb.String())
				if err != nil {
					t.Fatal(err)
				}
				o := r.IsEdns0()
				if o == nil {
					t.Fatalf("no OPT in %v", r)
				}
				if r.Rcode != tc.rcode || o.Version() != 0 || !o.Do() || o.UDPSize() != ednsUDPSize {
					t.Fatalf("rcode %s, version %d, DO %v, size %d", dns.RcodeToString[r.Rcode], o.Version(), o.Do(), o.UDPSize())
				}
				var got *dns.EDNS0_COOKIE
				for _, opt := range o.Option {
					if c, ok := opt.(*dns.EDNS0_COOKIE); ok {
						got = c
					}
				}
				if tc.cookie != (got != nil) {
					t.Fatalf("cookie %v, want one: %v", got, tc.cookie)
				}
				if got != nil && (len(got.Cookie) != 2*24 || !strings.HasPrefix(got.Cookie, cookie.Cookie)) {
					t.Fatalf("cookie %s: want the client cookie and a 16-byte server cookie", got.Cookie)
				}
			})
		}
	}
}

// TestCookieOnlyQueryAnswered (class 2): a query with no question and a
// COOKIE option (RFC 7873 5.4) gets NOERROR with a server cookie.
func TestCookieOnlyQueryAnswered(t *testing.T) {
	f := startFake(t, "one")
	_, lb := startBalancer(t, Settings{}, f)
	m := new(dns.Msg)
	m.Id = 77
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "a1a2a3a4a5a6a7a8"})
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		c, err := net.Dial(network, lb.String())
		if err != nil {
			t.Fatal(err)
		}
		out := b
		if network == "tcp" {
			out = append([]byte{0, byte(len(b))}, b...)
		}
		c.Write(out)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if network == "tcp" {
			buf, n = buf[2:], n-2
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if r.Id != 77 || r.Rcode != dns.RcodeSuccess || len(r.Question) != 0 || r.IsEdns0() == nil {
			t.Fatalf("%s: %v", network, r)
		}
		ck, _ := r.IsEdns0().Option[0].(*dns.EDNS0_COOKIE)
		if ck == nil || !strings.HasPrefix(ck.Cookie, "a1a2a3a4a5a6a7a8") || len(ck.Cookie) != 48 {
			t.Fatalf("%s: cookie %v", network, r.IsEdns0())
		}
	}
	if f.hits.Load() != 0 {
		t.Fatal("a COOKIE-only query reached the backend")
	}
}

// TestSelfAnswerAllocatesNothing: dnslb's own answer (REFUSED with OPT
// and cookie) is built in place.
func TestSelfAnswerAllocatesNothing(t *testing.T) {
	b, err := New(Options{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")}})
	if err != nil {
		t.Fatal(err)
	}
	q := packQuery(t, "x.example.", dns.TypeA, func(m *dns.Msg) {
		m.SetEdns0(4096, true)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	})
	buf := make([]byte, 0, 4096)
	client := netip.MustParseAddr("192.0.2.1")
	var r []byte
	n := testing.AllocsPerRun(100, func() {
		pkt := append(buf[:0], q...)
		m, _ := parseQuery(pkt)
		r = b.selfAnswer(pkt, m, rcodeRefused, false, client)
	})
	if n != 0 {
		t.Fatalf("%v allocations per answer", n)
	}
	if !bytes.Equal(r[:2], q[:2]) {
		t.Fatal("ID changed")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUDPCaseChangedRelayed (class 6): over UDP too, an answer whose
// question differs from the query's in letter case only is relayed and
// counted.
func TestUDPCaseChangedRelayed(t *testing.T) {
	be := rawBackend(t, "lower", func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		q := new(dns.Msg)
		if q.Unpack(pkt) != nil {
			return
		}
		r := reply(q, "lower")
		r.Question[0].Name = strings.ToLower(q.Question[0].Name)
		b, _ := r.Pack()
		pc.WriteToUDPAddrPort(b, from)
	})
	b, lb := startBalancer(t, Settings{}, be)
	m := new(dns.Msg)
	m.SetQuestion("WwW.ExAmPlE.", dns.TypeTXT)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, lb.String())
	if err != nil || r.Answer[0].(*dns.TXT).Txt[0] != "lower" {
		t.Fatalf("case-changed UDP answer: %v %v", r, err)
	}
	if n := b.Backend("lower").caseChanged.Load(); n != 1 {
		t.Fatalf("case changed = %d, want 1", n)
	}
}

// refusedNoQuestion is an error answer without a question section, as
// Unbound's access-control refuse sends it.
func refusedNoQuestion(q *dns.Msg, rcode int) *dns.Msg {
	r := new(dns.Msg)
	r.SetRcode(q, rcode)
	r.Question = nil
	return r
}

// TestTCPErrorAnswerWithoutQuestion: a REFUSED without a question is
// relayed (matched by ID) and the connection stays; a NOERROR without one
// is a mismatch.
func TestTCPErrorAnswerWithoutQuestion(t *testing.T) {
	be := startScriptedTCP(t, func(p *tcpPeer) {
		for q := p.read(); q != nil; q = p.read() {
			p.write(refusedNoQuestion(q, dns.RcodeRefused))
		}
	})
	b, lb := startTCPBalancer(t, Settings{}, map[string]netip.AddrPort{"unbound": be.addr})
	c := dialTCP(t, lb)
	for id := uint16(1); id <= 2; id++ {
		c.send("q.example.", dns.TypeTXT, id)
		r, err := c.recv()
		if err != nil || r.Id != id || r.Rcode != dns.RcodeRefused || len(r.Question) != 0 {
			t.Fatalf("query %d: %v %v, want REFUSED without question", id, r, err)
		}
	}
	if n := b.Dropped()["tcp_answer_mismatch"]; n != 0 {
		t.Fatalf("tcp_answer_mismatch = %d, want 0", n)
	}
	if s := b.Snapshot()[0]; s.NoQuestion != 2 {
		t.Fatalf("NoQuestion = %d, want 2", s.NoQuestion)
	}
}
