package balancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeBackend is a miekg/dns server answering every question with a TXT
// record naming itself. Real servers (NSD) are used by the integration
// tests; this one lets unit tests control delay and misbehaviour.
type fakeBackend struct {
	name  string
	addr  netip.AddrPort
	delay atomic.Int64
	hits  atomic.Int64
}

func startFake(t *testing.T, name string) *fakeBackend {
	t.Helper()
	ln, pc := listenBoth(t)
	pc.SetReadBuffer(4 << 20)
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	f := &fakeBackend{name: name, addr: addr}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		f.hits.Add(1)
		if d := f.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0}, Txt: []string{name}})
		w.WriteMsg(m)
	})
	us := &dns.Server{PacketConn: pc, Handler: h}
	ts := &dns.Server{Listener: ln, Handler: h}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return f
}

// rawBackend is a UDP backend on 127.0.0.1 named name that hands every
// datagram it receives to serve, in its own goroutine, until the test ends.
// Tests use it to send answers a real server never would.
func rawBackend(t *testing.T, name string, serve func(pc *net.UDPConn, pkt []byte, from netip.AddrPort)) *fakeBackend {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			serve(pc, buf[:n], from)
		}
	}()
	return &fakeBackend{name: name, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
}

func freeAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, pc := listenBoth(t)
	a := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	ln.Close()
	pc.Close()
	return a
}

// listenBoth listens on TCP and UDP on the same free loopback port. The
// TCP port comes first, from the kernel: a port picked for UDP could be
// an ephemeral port of one of the many TCP connections tests open.
func listenBoth(t *testing.T) (net.Listener, *net.UDPConn) {
	t.Helper()
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ln.Addr().(*net.TCPAddr).AddrPort()))
		if err == nil {
			return ln, pc
		}
		ln.Close()
	}
	t.Fatal("no port free for both TCP and UDP")
	return nil, nil
}

func startBalancer(t *testing.T, s Settings, backends ...*fakeBackend) (*Balancer, netip.AddrPort) {
	t.Helper()
	var specs []BackendSpec
	for _, f := range backends {
		specs = append(specs, BackendSpec{Name: f.name, Addr: f.addr, Weight: 1})
	}
	return startSpecs(t, s, specs...)
}

// startSpecs starts a Balancer on a free loopback port with these backends
// and shuts it down when the test ends.
func startSpecs(t *testing.T, s Settings, specs ...BackendSpec) (*Balancer, netip.AddrPort) {
	t.Helper()
	var b *Balancer
	var listen netip.AddrPort
	for attempt := 0; ; attempt++ {
		listen = freeAddr(t)
		var err error
		if b, err = New(Options{Listen: []netip.AddrPort{listen}, Settings: s}); err != nil {
			t.Fatal(err)
		}
		if err := b.Apply(specs, s); err != nil {
			t.Fatal(err)
		}
		err = b.Start()
		if err == nil {
			break
		}
		// the port was taken between freeAddr and Start: another one
		b.Shutdown(context.Background())
		if attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return b, listen
}

func ask(t testing.TB, net string, server netip.AddrPort, name string) (*dns.Msg, error) {
	c := &dns.Client{Net: net, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	r, _, err := c.Exchange(m, server.String())
	return r, err
}

func TestUDPAndTCPRelay(t *testing.T) {
	f := startFake(t, "one")
	_, lb := startBalancer(t, Settings{}, f)
	for _, network := range []string{"udp", "tcp"} {
		r, err := ask(t, network, lb, "x.example.")
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "one" {
			t.Fatalf("%s: answer %v", network, r)
		}
	}
}

func TestConcurrentQueriesNoneLostOrMixed(t *testing.T) {
	a, b := startFake(t, "a"), startFake(t, "b")
	bal, lb := startBalancer(t, Settings{}, a, b)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	// 64 clients at a time: enough to interleave, few enough that a busy
	// machine (-race, other tests) answers each within the client timeout
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("q%d.example.", i)
			r, err := ask(t, "udp", lb, name)
			if err != nil {
				errs <- err
				return
			}
			if r.Question[0].Name != name || len(r.Answer) != 1 || r.Answer[0].Header().Name != name {
				errs <- fmt.Errorf("query %s got answer for %v", name, r.Question)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Errorf("not balanced: a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
	for _, s := range bal.Snapshot() {
		if s.Outstanding != 0 {
			t.Errorf("%s outstanding %d after all answers", s.Name, s.Outstanding)
		}
	}
}

func TestSlowBackendGetsLess(t *testing.T) {
	// The slow backend is very slow (300 ms), so that the contrast holds
	// on a loaded machine, where the fast one answers in milliseconds to
	// tens of milliseconds rather than microseconds.
	fast, slow := startFake(t, "fast"), startFake(t, "slow")
	slow.delay.Store(int64(300 * time.Millisecond))
	_, lb := startBalancer(t, Settings{}, fast, slow)
	// 16 clients in closed loops, 2 s at most
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < 200 && time.Now().Before(deadline); i++ {
				ask(t, "udp", lb, fmt.Sprintf("c%d-%d.example.", c, i))
			}
		}(c)
	}
	wg.Wait()
	f, s := fast.hits.Load(), slow.hits.Load()
	t.Logf("fast=%d slow=%d", f, s)
	if s*3 > f {
		t.Fatalf("slow backend got %d queries vs fast %d; want under 1/3", s, f)
	}
}

func TestTimeoutFreesSlot(t *testing.T) {
	f := startFake(t, "slow")
	f.delay.Store(int64(400 * time.Millisecond))
	bal, lb := startBalancer(t, Settings{UDPTimeout: 100 * time.Millisecond}, f)
	c := &dns.Client{Net: "udp", Timeout: 700 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("late.example.", dns.TypeTXT)
	if _, _, err := c.Exchange(m, lb.String()); err == nil {
		t.Fatal("late answer was relayed after the timeout freed its slot")
	}
	s := bal.Snapshot()[0]
	if s.Timeouts != 1 || s.Outstanding != 0 || s.Unmatched != 1 {
		t.Fatalf("timeouts=%d outstanding=%d unmatched=%d, want 1 0 1", s.Timeouts, s.Outstanding, s.Unmatched)
	}
}

// TestWrongAnswersDropped sends answers that do not match from the
// backend's own address: wrong ID, wrong question, not a response.
func TestWrongAnswersDropped(t *testing.T) {
	be := rawBackend(t, "liar", func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		q := new(dns.Msg)
		if q.Unpack(pkt) != nil {
			return
		}
		r1 := new(dns.Msg)
		r1.SetReply(q)
		r1.Id ^= 0x0101
		r2 := new(dns.Msg)
		r2.SetReply(q)
		r2.Question[0].Name = "other.example."
		for _, m := range []*dns.Msg{r1, r2, q.Copy()} {
			b, _ := m.Pack()
			pc.WriteToUDPAddrPort(b, from)
		}
		pc.WriteToUDPAddrPort([]byte{1, 2, 3}, from)
	})
	bal, lb := startBalancer(t, Settings{UDPTimeout: 300 * time.Millisecond}, be)
	c := &dns.Client{Net: "udp", Timeout: 600 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("x.example.", dns.TypeA)
	if r, _, err := c.Exchange(m, lb.String()); err == nil {
		t.Fatalf("a wrong answer was relayed: %v", r)
	}
	d := bal.Dropped()
	if d["answer_unmatched"] != 2 || d["answer_malformed"] != 2 {
		t.Fatalf("dropped %v", d)
	}
}

func TestMalformedQueriesDropped(t *testing.T) {
	f := startFake(t, "one")
	bal, lb := startBalancer(t, Settings{TCPIdleTimeout: 300 * time.Millisecond}, f)
	c, err := net.Dial("udp", lb.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good := packQuery(t, "x.example.", dns.TypeA, nil)
	resp := packQuery(t, "x.example.", dns.TypeA, func(m *dns.Msg) { m.Response = true })
	noq := packQuery(t, "x.example.", dns.TypeA, func(m *dns.Msg) { m.Question = nil })
	for _, p := range [][]byte{good[:5], resp, noq} {
		c.Write(p)
	}
	// garbage on TCP, then a length prefix and a stall
	tc, err := net.Dial("tcp", lb.String())
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte{0, 20, 'g', 'a', 'r', 'b', 'a', 'g', 'e', '-', 'g', 'a', 'r', 'b', 'a', 'g', 'e', '!', '!', '!', '!', '!'})
	tc.SetReadDeadline(time.Now().Add(2 * time.Second))
	// a query-shaped header gets FORMERR (a TCP client is no spoofed
	// source), then the connection closes
	formerr, err := io.ReadAll(tc)
	if err != nil {
		t.Fatalf("garbage connection not closed: %v", err)
	}
	if len(formerr) != 2+headerLen || formerr[2+3]&0x0f != rcodeFormErr || formerr[2+2]&0x80 == 0 {
		t.Fatalf("garbage got %x, want a header-only FORMERR answer", formerr)
	}
	stall, _ := net.Dial("tcp", lb.String())
	stall.Write([]byte{0, 40, 1, 2})
	stall.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := stall.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("stalled connection not closed: %v", err)
	}
	// still serving
	if _, err := ask(t, "udp", lb, "after.example."); err != nil {
		t.Fatal(err)
	}
	d := bal.Dropped()
	want := map[string]uint64{"short": 1, "response_as_query": 1, "qdcount": 1, "tcp_timeout": 1}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("dropped[%s] = %d, want %d (all: %v)", k, d[k], v, d)
		}
	}
	if n := bal.Answered()["formerr"]; n != 1 {
		t.Errorf("answered formerr = %d, want 1", n)
	}
}

func TestTCPConnectionLimits(t *testing.T) {
	f := startFake(t, "one")
	bal, lb := startBalancer(t, Settings{MaxTCPConns: 4, MaxTCPConnsPerClient: 2}, f)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", lb.String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// the third from the same address is closed at once
	conns[2].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[2].Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection from one client was served")
	}
	if got := bal.Dropped()["tcp_client_limit"]; got != 1 {
		t.Fatalf("tcp_client_limit = %d", got)
	}
	if !strings.Contains(fmt.Sprint(bal.TCPConnections()), "2") {
		t.Fatalf("tcp connections = %d, want 2", bal.TCPConnections())
	}
}

func TestReloadKeepsInflight(t *testing.T) {
	a, b := startFake(t, "a"), startFake(t, "b")
	a.delay.Store(int64(200 * time.Millisecond))
	bal, lb := startBalancer(t, Settings{}, a)
	done := make(chan error, 1)
	go func() {
		_, err := ask(t, "udp", lb, "inflight.example.")
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	// a is removed while its query is in flight
	if err := bal.Apply([]BackendSpec{{Name: "b", Addr: b.addr, Weight: 1}}, Settings{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight query lost on reload: %v", err)
	}
	r, err := ask(t, "udp", lb, "next.example.")
	if err != nil || r.Answer[0].(*dns.TXT).Txt[0] != "b" {
		t.Fatalf("after reload: %v %v", r, err)
	}
}

// TestShutdownFinishesInflight: a query in flight when Shutdown starts is
// still answered; a query sent after it is not read.
func TestShutdownFinishesInflight(t *testing.T) {
	f := startFake(t, "slow")
	f.delay.Store(int64(300 * time.Millisecond))
	listen := freeAddr(t)
	b, err := New(Options{Listen: []netip.AddrPort{listen}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]BackendSpec{{Name: "slow", Addr: f.addr, Weight: 1}}, Settings{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		_, err := ask(t, "udp", listen, "inflight.example.")
		answered <- err
	}()
	for b.outstanding() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("in-flight query lost at shutdown: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("shutdown returned after %v, before the in-flight answer", d)
	}
}

// TestTCPLimitLogged: hitting the cap logs one line naming the config key.
func TestTCPLimitLogged(t *testing.T) {
	f := startFake(t, "one")
	var logs strings.Builder
	var mu sync.Mutex
	listen := freeAddr(t)
	b, err := New(Options{Listen: []netip.AddrPort{listen}, Logger: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := Settings{MaxTCPConns: 1, MaxTCPConnsPerClient: 1}
	if err := b.Apply([]BackendSpec{{Name: "one", Addr: f.addr, Weight: 1}}, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	c1, _ := net.Dial("tcp", listen.String())
	defer c1.Close()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", listen.String())
		if err == nil {
			c.SetReadDeadline(time.Now().Add(time.Second))
			c.Read(make([]byte, 1))
			c.Close()
		}
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, "connection limit reached"); n != 1 {
		t.Fatalf("want exactly one (rate-limited) log line, got %d:\n%s", n, out)
	}
	if !strings.Contains(out, "limits.tcp_connections") {
		t.Fatalf("log line does not name the config key:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// TestSendErrorUndone: a query the kernel refuses to send (here to port
// 0 on loopback: EINVAL, nothing is sent) is counted as a send error and its in-flight entry freed, so the
// backend's outstanding count does not leak.
func TestSendErrorUndone(t *testing.T) {
	b, listen := startSpecs(t, Settings{UDPRetry: true}, BackendSpec{Name: "port0", Addr: netip.MustParseAddrPort("127.0.0.1:0"), Weight: 1})
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(listen))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := packQuery(t, "www.example.test.", dns.TypeA, nil)
	for i := 0; i < 3; i++ {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
	}
	be := b.Backend("port0")
	for deadline := time.Now().Add(2 * time.Second); b.Dropped()["send_error"] < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := b.Dropped()["send_error"]; got != 3 {
		t.Fatalf("send_error drops = %d, want 3", got)
	}
	if be.sendErrors.Load() != 3 || be.outstanding.Load() != 0 || be.queries.Load() != 0 {
		t.Fatalf("sendErrors=%d outstanding=%d queries=%d, want 3 0 0", be.sendErrors.Load(), be.outstanding.Load(), be.queries.Load())
	}
}

// TestAnswerFromWrongSourceDropped: upstream sockets are shared and not
// connected, so the source check is dnslb's own. An answer with the right
// upstream ID and question that comes from another address (a spoofer on
// 127.0.0.2 that copied the query) is not relayed; the real backend's
// answer, sent after it, is.
func TestAnswerFromWrongSourceDropped(t *testing.T) {
	spoofer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer spoofer.Close()
	txt := func(q *dns.Msg, text string) []byte {
		r := new(dns.Msg)
		r.SetReply(q)
		r.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{text}}}
		b, _ := r.Pack()
		return b
	}
	be := rawBackend(t, "real", func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		q := new(dns.Msg)
		if q.Unpack(pkt) != nil {
			return
		}
		// the spoofer answers first, with everything right but its address
		spoofer.WriteToUDPAddrPort(txt(q, "spoofed"), from)
		time.Sleep(20 * time.Millisecond)
		pc.WriteToUDPAddrPort(txt(q, "real"), from)
	})
	bal, lb := startBalancer(t, Settings{UDPTimeout: time.Second}, be)
	r, err := ask(t, "udp", lb, "x.example.")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "real" {
		t.Fatalf("relayed %v, want the real backend's answer", r.Answer)
	}
	if d := bal.Dropped(); d["answer_unmatched"] != 1 {
		t.Fatalf("dropped %v, want the spoofed answer counted as answer_unmatched", d)
	}
}

// TestShutdownDrainsTCPAtMessageBoundaries: clients that keep a TCP
// connection busy with one query after another get an answer to every
// query they sent before the shutdown, and then a clean close (EOF), never
// a reset; a query that crossed the close gets EOF too, which tells the
// client to retry it elsewhere.
func TestShutdownDrainsTCPAtMessageBoundaries(t *testing.T) {
	f := startFake(t, "one")
	f.delay.Store(int64(2 * time.Millisecond))
	listen := freeAddr(t)
	b, err := New(Options{Listen: []netip.AddrPort{listen}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]BackendSpec{{Name: f.name, Addr: f.addr, Weight: 1}}, Settings{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		answered, cut int
		err           error
	}
	results := make(chan result, 4)
	for c := 0; c < 4; c++ {
		go func() {
			var r result
			conn, err := dns.Dial("tcp", listen.String())
			if err != nil {
				r.err = err
				results <- r
				return
			}
			defer conn.Close()
			for i := 0; i < 10000; i++ { // bounded; ends at the close
				m := new(dns.Msg)
				m.SetQuestion("x.example.", dns.TypeTXT)
				if err := conn.WriteMsg(m); err != nil {
					r.err = err
					break
				}
				conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				a, err := conn.ReadMsg()
				if err != nil {
					if errors.Is(err, io.EOF) {
						r.cut++ // clean close while this query was in the socket
					} else {
						r.err = err
					}
					break
				}
				if a.Id != m.Id {
					r.err = fmt.Errorf("answer %d for query %d", a.Id, m.Id)
					break
				}
				r.answered++
			}
			results <- r
		}()
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 4; c++ {
		r := <-results
		t.Logf("client %d: %d answered, %d cut by a clean close, err %v", c, r.answered, r.cut, r.err)
		if r.err != nil || r.answered == 0 || r.cut > 1 {
			t.Fatalf("client %d: %+v (want answers, at most one query cut by a clean close, no error)", c, r)
		}
	}
}

// TestQueryLogSampled: with QueryLogEvery 2, every second answered query
// is logged once, with its client, question, backend, rcode and latency.
func TestQueryLogSampled(t *testing.T) {
	f := startFake(t, "one")
	var buf syncLog
	listen := freeAddr(t)
	b, err := New(Options{Listen: []netip.AddrPort{listen}, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := Settings{QueryLogEvery: 2}
	if err := b.Apply([]BackendSpec{{Name: f.name, Addr: f.addr, Weight: 1}}, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	for i := 0; i < 10; i++ {
		if _, err := ask(t, "udp", listen, "q.example."); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Count(buf.String(), "msg=query ")
	if lines != 5 {
		t.Fatalf("%d query lines for 10 queries, want 5:\n%s", lines, buf.String())
	}
	for _, want := range []string{"client=127.0.0.1:", "qname=q.example.", "qtype=TXT", "backend=one", "rcode=NOERROR", "latency_ms=", "transport=udp"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("query line lacks %q:\n%s", want, buf.String())
		}
	}
}

// syncLog is a goroutine-safe log sink.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestErrorAnswerWithoutQuestion: over UDP a REFUSED (or SERVFAIL) without
// a question is matched by ID and source and relayed, without a timeout
// that passive health would count; a NOERROR without a question is still
// malformed.
func TestErrorAnswerWithoutQuestion(t *testing.T) {
	be := rawBackend(t, "unbound", func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		q := new(dns.Msg)
		if q.Unpack(pkt) != nil {
			return
		}
		rcode := dns.RcodeRefused
		switch q.Question[0].Name {
		case "servfail.example.":
			rcode = dns.RcodeServerFailure
		case "noerror.example.":
			rcode = dns.RcodeSuccess
		}
		r := new(dns.Msg)
		r.SetRcode(q, rcode)
		r.Question = nil
		b, _ := r.Pack()
		pc.WriteToUDPAddrPort(b, from)
	})
	bal, lb := startBalancer(t, Settings{UDPTimeout: 300 * time.Millisecond}, be)
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	for name, want := range map[string]int{"refused.example.": dns.RcodeRefused, "servfail.example.": dns.RcodeServerFailure} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := c.Exchange(m, lb.String())
		if err != nil || r.Id != m.Id || r.Rcode != want {
			t.Fatalf("%s: %v %v, want rcode %d", name, r, err, want)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("noerror.example.", dns.TypeA)
	c.Timeout = 600 * time.Millisecond
	if r, _, err := c.Exchange(m, lb.String()); err == nil {
		t.Fatalf("a NOERROR without question was relayed: %v", r)
	}
	s := bal.Snapshot()[0]
	if s.NoQuestion != 2 || s.Timeouts != 1 || bal.Dropped()["answer_malformed"] != 1 {
		t.Fatalf("no_question=%d timeouts=%d dropped %v, want 2, 1 and answer_malformed 1", s.NoQuestion, s.Timeouts, bal.Dropped())
	}
}
