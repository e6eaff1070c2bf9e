package balancer

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRetryOnTimeout: the first backend swallows queries; with UDPRetry
// the query is retried on the other one, the client gets exactly one
// answer, and the swallowed backend's late answer (none here) cannot
// reach the client because its slot is gone.
func TestRetryOnTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("TestRetryOnTimeout: takes 2 s (its dead backend answers after 2 s); run without -short")
	}
	dead := startFake(t, "dead")
	dead.delay.Store(int64(2 * time.Second)) // answers far too late
	alive := startFake(t, "alive")
	alive.delay.Store(int64(30 * time.Millisecond)) // so the first pick prefers "dead"
	var mu sync.Mutex
	var passive []string
	s := Settings{UDPTimeout: 150 * time.Millisecond, UDPRetry: true, PassiveMaxTimeouts: 3}
	listen := freeAddr(t)
	b, err := New(Options{Listen: listen1(listen), Settings: s, OnPassiveFailure: func(name string, n int64) {
		mu.Lock()
		passive = append(passive, name)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]BackendSpec{{Name: "dead", Addr: dead.addr, Weight: 1}, {Name: "alive", Addr: alive.addr, Weight: 1}}, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	// closed loop, one at a time: the tie-break alternates until "dead"
	// looks slow; every query must be answered, by "alive"
	c, err := net.Dial("udp", listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dc := &dns.Conn{Conn: c}
	for i := 0; i < 10; i++ {
		m := new(dns.Msg)
		m.SetQuestion("r.example.", dns.TypeTXT)
		dc.SetDeadline(time.Now().Add(time.Second))
		if err := dc.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		r, err := dc.ReadMsg()
		if err != nil {
			t.Fatalf("query %d lost: %v", i, err)
		}
		if got := r.Answer[0].(*dns.TXT).Txt[0]; got != "alive" || r.Id != m.Id {
			t.Fatalf("query %d answered by %s id %d/%d", i, got, r.Id, m.Id)
		}
	}
	// no second answer for any of them
	dc.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if r, err := dc.ReadMsg(); err == nil {
		t.Fatalf("client got a second answer: %v", r)
	}
	st := b.Backend("dead").stats()
	if st.Retried == 0 || st.Retried != st.Timeouts {
		t.Fatalf("dead: timeouts %d retried %d", st.Timeouts, st.Retried)
	}
	mu.Lock()
	defer mu.Unlock()
	if st.Timeouts >= 3 && (len(passive) != 1 || passive[0] != "dead") {
		t.Fatalf("passive failure callbacks %v after %d consecutive timeouts", passive, st.Timeouts)
	}
}

func listen1(a netip.AddrPort) []netip.AddrPort { return []netip.AddrPort{a} }

// TestAllDownRefuse: checked backends that are not up get nothing; with
// RefuseWhenAllDown the balancer answers REFUSED itself on UDP and TCP;
// fail-open (the default) serves from them anyway.
func TestAllDownRefuse(t *testing.T) {
	f := startFake(t, "one")
	s := Settings{RefuseWhenAllDown: true}
	listen := freeAddr(t)
	b, err := New(Options{Listen: listen1(listen), Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]BackendSpec{{Name: "one", Addr: f.addr, Weight: 1, Checked: true}}, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("x.example.", dns.TypeA)
		m.SetEdns0(1232, false)
		r, _, err := (&dns.Client{Net: network, Timeout: time.Second}).Exchange(m, listen.String())
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if r.Rcode != dns.RcodeRefused || !r.Response || r.Question[0].Name != "x.example." || len(r.Answer) != 0 {
			t.Fatalf("%s: want REFUSED for the same question, got %v", network, r)
		}
	}
	if f.hits.Load() != 0 {
		t.Fatal("a pending backend got a query in refuse mode")
	}
	// fail-open
	s.RefuseWhenAllDown = false
	if err := b.Apply([]BackendSpec{{Name: "one", Addr: f.addr, Weight: 1, Checked: true}}, s); err != nil {
		t.Fatal(err)
	}
	if r, err := ask(t, "udp", listen, "y.example."); err != nil || r.Answer[0].(*dns.TXT).Txt[0] != "one" {
		t.Fatalf("fail-open: %v %v", r, err)
	}
}
