package healthcheck

import (
	"github.com/dnslb/dnslb/internal/health"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// server is a configurable DNS server for probes: it can answer normally,
// with another rcode, without AA, with garbage, with a wrong ID, or not at all.
type server struct {
	addr  netip.AddrPort
	mode  atomic.Value // string
	count atomic.Int64
}

func startServer(t *testing.T) *server {
	t.Helper()
	// UDP and TCP on one port: a random UDP port's TCP twin may be taken
	// by another test's socket, so try again with another.
	var pc *net.UDPConn
	var ln net.Listener
	for i := 0; ln == nil; i++ {
		var err error
		if pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if i == 50 {
				t.Fatalf("no port free for both UDP and TCP: %v", err)
			}
		}
	}
	s := &server{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	s.mode.Store("ok")
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		s.count.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = append(m.Answer, &dns.SOA{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
			Ns: "ns1.example.test.", Mbox: "hostmaster.example.test.", Serial: 7})
		switch s.mode.Load().(string) {
		case "silent":
			return
		case "refused":
			m.Rcode, m.Authoritative, m.Answer = dns.RcodeRefused, false, nil
		case "lame":
			m.Authoritative = false
		case "garbage":
			w.Write([]byte{0xde, 0xad, 0xbe, 0xef})
			return
		case "wrongid":
			m.Id++
		case "otherq":
			m.Question[0].Name = "other.test."
		}
		w.WriteMsg(m)
	})
	us := &dns.Server{PacketConn: pc, Handler: h}
	ts := &dns.Server{Listener: ln, Handler: h}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return s
}

type recorder struct {
	mu      sync.Mutex
	changes []Change
	rtts    int
}

func (r *recorder) onChange(c Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

func (r *recorder) last() (Change, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changes) == 0 {
		return Change{}, 0
	}
	return r.changes[len(r.changes)-1], len(r.changes)
}

func (r *recorder) waitFor(t *testing.T, to health.State, within time.Duration) Change {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, _ := r.last(); c.To == to && c.Backend != "" {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, n := r.last()
	t.Fatalf("no change to %v within %v (last of %d: %+v)", to, within, n, c)
	return Change{}
}

func fastCheck() Check {
	return Check{Name: "example.test", Type: dns.TypeSOA, Authoritative: true, Interval: 20 * time.Millisecond, Timeout: 50 * time.Millisecond, Rise: 2, Fall: 3}
}

func newChecker(t *testing.T, rec *recorder) *Checker {
	t.Helper()
	c, err := New(Options{OnChange: rec.onChange, OnProbe: func(string, time.Duration) {
		rec.mu.Lock()
		rec.rtts++
		rec.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func TestRiseFallAndReasons(t *testing.T) {
	srv := startServer(t)
	rec := &recorder{}
	c := newChecker(t, rec)
	c.Apply([]Target{{Name: "ns1", Addr: srv.addr, Check: fastCheck()}})
	if st := c.Status()["ns1"]; st.State != health.Pending {
		t.Fatalf("new target %v, want pending", st.State)
	}
	up := rec.waitFor(t, health.Up, time.Second)
	if up.From != health.Pending {
		t.Fatalf("first change %+v", up)
	}
	for _, tc := range []struct {
		mode, reason string
	}{
		{"refused", "rcode REFUSED, want NOERROR"},
		{"lame", "answer not authoritative"},
		{"silent", "timeout after 50ms"},
		{"garbage", "malformed answer"},
		{"wrongid", "answer ID"},
		{"otherq", "another question"},
	} {
		srv.mode.Store(tc.mode)
		down := rec.waitFor(t, health.Down, 2*time.Second)
		if !strings.Contains(down.Reason, tc.reason) || down.Failed != 3 {
			t.Errorf("%s: down with reason %q after %d failures, want %q after 3", tc.mode, down.Reason, down.Failed, tc.reason)
		}
		srv.mode.Store("ok")
		rec.waitFor(t, health.Up, 2*time.Second)
	}
	if rec.rtts == 0 {
		t.Error("no probe RTT reported")
	}
}

func TestTCPTransportAndAnswerContains(t *testing.T) {
	srv := startServer(t)
	rec := &recorder{}
	c := newChecker(t, rec)
	chk := fastCheck()
	chk.Transport = "tcp"
	chk.AnswerContains = "hostmaster.example.test."
	c.Apply([]Target{{Name: "ns1", Addr: srv.addr, Check: chk}})
	rec.waitFor(t, health.Up, time.Second)
	chk.AnswerContains = "not-there"
	c.Apply([]Target{{Name: "ns1", Addr: srv.addr, Check: chk}})
	down := rec.waitFor(t, health.Down, time.Second)
	if !strings.Contains(down.Reason, `no answer record contains "not-there"`) {
		t.Fatalf("reason %q", down.Reason)
	}
}

func TestPassiveFailureNeedsRise(t *testing.T) {
	srv := startServer(t)
	rec := &recorder{}
	c := newChecker(t, rec)
	chk := fastCheck()
	chk.Interval = 200 * time.Millisecond
	c.Apply([]Target{{Name: "ns1", Addr: srv.addr, Check: chk}})
	rec.waitFor(t, health.Up, 2*time.Second)
	c.PassiveFailure("ns1", "5 consecutive timeouts", 0)
	ch, _ := rec.last()
	if ch.To != health.Down || !ch.Passive || ch.Reason != "5 consecutive timeouts" {
		t.Fatalf("passive change %+v", ch)
	}
	start := time.Now()
	rec.waitFor(t, health.Up, 2*time.Second)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("back up after %v: should need rise=2 probes at 200ms interval", d)
	}
	c.PassiveFailure("unknown", "x", 0) // ignored
}

func TestApplyRemovesAndKeepsState(t *testing.T) {
	srv := startServer(t)
	rec := &recorder{}
	c := newChecker(t, rec)
	c.Apply([]Target{{Name: "ns1", Addr: srv.addr, Check: fastCheck()}})
	rec.waitFor(t, health.Up, time.Second)
	// a changed check keeps the state
	chk := fastCheck()
	chk.Fall = 5
	c.Apply([]Target{{Name: "ns1", Addr: srv.addr, Check: chk}})
	if st := c.Status()["ns1"]; st.State != health.Up {
		t.Fatalf("state after check change: %v", st.State)
	}
	c.Apply(nil)
	if len(c.Names()) != 0 {
		t.Fatalf("targets left: %v", c.Names())
	}
	n := srv.count.Load()
	time.Sleep(100 * time.Millisecond)
	if srv.count.Load() != n {
		t.Fatal("removed target still probed")
	}
}

func TestJitter(t *testing.T) {
	for i := 0; i < 1000; i++ {
		if j := jitter(time.Second); j < 900*time.Millisecond || j > 1100*time.Millisecond {
			t.Fatalf("jitter %v outside ±10%%", j)
		}
	}
}

// FuzzJudge: any bytes as a probe answer give a result and never a panic;
// only a real match is OK. Seed corpus: testdata/fuzz/FuzzJudge.
func FuzzJudge(f *testing.F) {
	chk := fastCheck().withDefaults()
	q := newQuery(chk)
	q.Id = 4242
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	good, _ := r.Pack()
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:13])
	f.Fuzz(func(t *testing.T, raw []byte) {
		o := judge(chk, q, raw)
		if o.reason == "" {
			t.Fatal("empty reason")
		}
		if o.result == OK {
			m := new(dns.Msg)
			if m.Unpack(raw) != nil || m.Id != q.Id || !m.Authoritative || m.Rcode != dns.RcodeSuccess {
				t.Fatalf("accepted a bad answer: %v", m)
			}
		}
	})
}

// TestPassiveFailureCapped: live-traffic failures take no more than
// max_down_percent of the targets down (at least one); probes are not
// capped, and 100 (or 0) turns the cap off.
func TestPassiveFailureCapped(t *testing.T) {
	srv := startServer(t)
	rec := &recorder{}
	c := newChecker(t, rec)
	chk := fastCheck()
	chk.Interval = time.Hour // no probe brings a target back during the test
	var targets []Target
	for _, n := range []string{"a", "b", "c"} {
		targets = append(targets, Target{Name: n, Addr: srv.addr, Check: chk, Initial: health.Up})
	}
	c.Apply(targets)
	state := func(n string) health.State { return c.Status()[n].State }
	c.PassiveFailure("a", "5 consecutive timeouts", 50)
	if state("a") != health.Down {
		t.Fatalf("a: %v, want down (1 of 3 allowed at 50%%)", state("a"))
	}
	c.PassiveFailure("b", "5 consecutive timeouts", 50)
	if state("b") != health.Up {
		t.Fatalf("b: %v, want kept up (a is down: 50%% of 3 allows 1)", state("b"))
	}
	if got := testutil.ToFloat64(c.passiveHeld.WithLabelValues("b")); got != 1 {
		t.Fatalf("passive_held{b} = %v, want 1", got)
	}
	c.PassiveFailure("b", "5 consecutive timeouts", 100)
	if state("b") != health.Down {
		t.Fatalf("b: %v, want down with the cap off", state("b"))
	}
}
