package notifydup

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// fakeSender records the copies instead of injecting them; block, if set,
// holds every send until it is closed.
type fakeSender struct {
	mu     sync.Mutex
	copies map[netip.AddrPort]int
	zones  map[netip.AddrPort][]string
	block  chan struct{}
}

func (f *fakeSender) send(n *Notify, to netip.AddrPort) error {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.copies[to]++
	f.zones[to] = append(f.zones[to], n.Zone)
	return nil
}

func (f *fakeSender) count(to netip.AddrPort) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.copies[to]
}

var (
	be1 = Backend{Name: "s1", Addr: netip.MustParseAddrPort("10.78.0.11:53")}
	be2 = Backend{Name: "s2", Addr: netip.MustParseAddrPort("10.78.0.12:53")}
	vip = netip.MustParseAddrPort("10.78.0.53:53")
)

// fastTiming makes tracking tests take milliseconds.
var fastTiming = timing{firstCheck: 5 * time.Millisecond, maxCheckGap: 20 * time.Millisecond,
	firstResend: 40 * time.Millisecond, stallAfter: 80 * time.Millisecond, queryTimeout: time.Second}

type testDup struct {
	*Duplicator
	fs     *fakeSender
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// newTestDup starts a Duplicator (Run) with a fake sender; soa answers the
// tracking queries (nil: tracking finds every backend current).
func newTestDup(t *testing.T, p Policy, soa func(context.Context, netip.AddrPort, string) (uint32, error)) *testDup {
	t.Helper()
	return newTestDupTiming(t, p, soa, fastTiming)
}

// newTestDupTiming is newTestDup with its own tracking schedule.
func newTestDupTiming(t *testing.T, p Policy, soa func(context.Context, netip.AddrPort, string) (uint32, error), tm timing) *testDup {
	t.Helper()
	if soa == nil {
		soa = func(context.Context, netip.AddrPort, string) (uint32, error) { return 1 << 31, nil }
	}
	fs := &fakeSender{copies: map[netip.AddrPort]int{}, zones: map[netip.AddrPort][]string{}}
	reg := prometheus.NewRegistry()
	if p.TrackQPS == 0 {
		p.TrackQPS = 10000
	}
	if p.MaxTracked == 0 {
		p.MaxTracked = 1000
	}
	if p.CopyQPS == 0 {
		p.CopyQPS = 100000
	}
	d, err := New(Options{Interface: "eth0", Policy: p, Backends: func() []Backend { return []Backend{be1, be2} },
		QuerySOA: soa, Registerer: reg, sender: fs, timing: &tm})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td := &testDup{Duplicator: d, fs: fs, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.Run(ctx) }()
	waitFor(t, func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.running }, "Run started")
	t.Cleanup(td.stop)
	return td
}

func (td *testDup) stop() {
	td.cancel()
	<-td.done
	td.done <- nil // a second stop returns at once
}

// packNotify packs a NOTIFY for zone, with the SOA serial when serial > 0.
func packNotify(t testing.TB, zone string, serial uint32) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetNotify(zone)
	if serial > 0 {
		m.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns." + zone, Mbox: "h." + zone, Serial: serial}}
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answers collects the done calls of one NOTIFY.
type answers struct {
	mu    sync.Mutex
	calls int
	at    []int // copies made when done was called
}

func (a *answers) done(fs *fakeSender) func([]byte) {
	return func([]byte) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls++
		a.at = append(a.at, fs.count(be1.Addr)+fs.count(be2.Addr))
	}
}

func (a *answers) n() int { a.mu.Lock(); defer a.mu.Unlock(); return a.calls }

var primary = netip.MustParseAddrPort("10.78.0.2:4000")

func primaries() []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix("10.78.0.0/29")} }

// TestNotifyVerdicts: strangers and malformed NOTIFYs are refused; not
// master, over rate and stopped are ignored (no answer: the primary
// retries); accepted ones are answered only after every copy is sent.
func TestNotifyVerdicts(t *testing.T) {
	td := newTestDup(t, Policy{Primaries: primaries(), MaxPerSecond: 2}, nil)
	var a answers
	if v := td.Notify(packNotify(t, "a.test.", 5), primary, vip, a.done(td.fs)); v != Accept {
		t.Fatalf("primary: %v", v)
	}
	waitFor(t, func() bool { return a.n() == 1 }, "answer")
	if a.at[0] != 2 {
		t.Fatalf("answered after %d copies, want both", a.at[0])
	}
	if v := td.Notify(packNotify(t, "a.test.", 5), netip.MustParseAddrPort("192.0.2.9:4000"), vip, a.done(td.fs)); v != Refuse {
		t.Fatalf("stranger: %v", v)
	}
	if v := td.Notify([]byte{1, 2, 3}, primary, vip, a.done(td.fs)); v != Refuse {
		t.Fatalf("malformed: %v", v)
	}
	// the rate (2/s, burst 2): one token spent above
	td.Notify(packNotify(t, "b.test.", 1), primary, vip, a.done(td.fs))
	if v := td.Notify(packNotify(t, "c.test.", 1), primary, vip, a.done(td.fs)); v != Ignore {
		t.Fatalf("over rate: %v", v)
	}
	td.o.IsMaster = func(netip.Addr) bool { return false }
	if v := td.Notify(packNotify(t, "d.test.", 1), primary, vip, a.done(td.fs)); v != Ignore {
		t.Fatalf("not master: %v", v)
	}
	td.o.IsMaster = nil
	td.stop()
	if v := td.Notify(packNotify(t, "e.test.", 1), primary, vip, a.done(td.fs)); v != Ignore {
		t.Fatalf("stopped: %v", v)
	}
	for res, want := range map[string]float64{"copied": 2, "stranger": 1, "malformed": 1, "rate_limited": 1, "not_master": 1, "stopping": 1} {
		if got := testutil.ToFloat64(td.m.received.WithLabelValues(res)); got != want {
			t.Errorf("received{result=%s} = %v, want %v", res, got, want)
		}
	}
}

// TestStopSendsWhatWasAccepted: NOTIFYs accepted before a stop are copied
// and answered by it, even when the copies are slow; none is answered
// without its copies.
func TestStopSendsWhatWasAccepted(t *testing.T) {
	td := newTestDup(t, Policy{Primaries: primaries()}, nil)
	td.fs.block = make(chan struct{})
	var a answers
	for i := 0; i < 5; i++ {
		if v := td.Notify(packNotify(t, dns.Fqdn(string(rune('a'+i))+".test"), 1), primary, vip, a.done(td.fs)); v != Accept {
			t.Fatal(v)
		}
	}
	stopped := make(chan struct{})
	go func() { td.stop(); close(stopped) }()
	time.Sleep(20 * time.Millisecond)
	if a.n() != 0 {
		t.Fatal("answered before any copy was sent")
	}
	close(td.fs.block)
	<-stopped
	if a.n() != 5 || td.fs.count(be1.Addr) != 5 || td.fs.count(be2.Addr) != 5 {
		t.Fatalf("after stop: %d answers, copies %v; want 5 and 5 each", a.n(), td.fs.copies)
	}
	for i, at := range a.at {
		if at < 2*(i+1) {
			t.Fatalf("answer %d came after %d copies", i, at)
		}
	}
}

// TestDedupByState: a NOTIFY for a (zone, serial) whose copy is queued
// shares it; once every backend serves it, one within the dedup window is
// answered without a copy; with tracking off (retries 0) nothing is known
// and a re-notify is copied again, so a secondary that lacks the serial
// gets it.
func TestDedupByState(t *testing.T) {
	t.Run("tracked", func(t *testing.T) {
		td := newTestDup(t, Policy{Primaries: primaries(), DedupWindow: time.Minute, Retries: 3}, nil)
		var a answers
		td.fs.block = make(chan struct{})
		td.Notify(packNotify(t, "a.test.", 5), primary, vip, a.done(td.fs))
		td.Notify(packNotify(t, "a.test.", 5), netip.MustParseAddrPort("10.78.0.2:4001"), vip, a.done(td.fs))
		close(td.fs.block)
		waitFor(t, func() bool { return a.n() == 2 }, "both answered")
		if c := td.fs.count(be1.Addr); c != 1 {
			t.Fatalf("queued duplicate copied: %d copies", c)
		}
		waitFor(t, func() bool { td.mu.Lock(); defer td.mu.Unlock(); return len(td.confirmed) == 1 }, "every backend serves it")
		td.Notify(packNotify(t, "a.test.", 5), primary, vip, a.done(td.fs))
		waitFor(t, func() bool { return a.n() == 3 }, "answer to the re-notify")
		if c := td.fs.count(be1.Addr); c != 1 {
			t.Fatalf("a re-notify of a serial every backend serves was copied: %d", c)
		}
		td.Notify(packNotify(t, "a.test.", 6), primary, vip, a.done(td.fs))
		waitFor(t, func() bool { return td.fs.count(be1.Addr) == 2 }, "a new serial copied")
	})
	t.Run("untracked", func(t *testing.T) {
		td := newTestDup(t, Policy{Primaries: primaries(), DedupWindow: time.Minute, Retries: 0}, nil)
		var a answers
		td.Notify(packNotify(t, "a.test.", 5), primary, vip, a.done(td.fs))
		waitFor(t, func() bool { return a.n() == 1 }, "first answer")
		td.Notify(packNotify(t, "a.test.", 5), primary, vip, a.done(td.fs))
		waitFor(t, func() bool { return a.n() == 2 && td.fs.count(be1.Addr) == 2 }, "the re-notify copied again")
	})
}

// soaScript answers tracking queries from a table: serial per (backend,
// zone), changed by the test.
type soaScript struct {
	mu     sync.Mutex
	serial map[netip.AddrPort]map[string]uint32
	asked  map[netip.AddrPort]int
}

func newSOAScript() *soaScript {
	return &soaScript{serial: map[netip.AddrPort]map[string]uint32{be1.Addr: {}, be2.Addr: {}}, asked: map[netip.AddrPort]int{}}
}

func (s *soaScript) query(_ context.Context, server netip.AddrPort, zone string) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked[server]++
	return s.serial[server][zone], nil
}

func (s *soaScript) set(be netip.AddrPort, zone string, serial uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serial[be][zone] = serial
}

// TestResendOnlyWhenStuck: s1 works through 30 zones slowly but steadily
// (one every 5 ms, so it always shows progress): it gets no re-send. s2
// serves all at once but lost the copy of one zone: once it has stalled,
// that zone alone is sent again, and when s2 then serves it the tracking
// ends with every backend confirmed.
func TestResendOnlyWhenStuck(t *testing.T) {
	soa := newSOAScript()
	// stallAfter 1 s: s1 converges a zone every 5 ms, and a busy machine
	// must not make a late step look like a stall.
	tm := fastTiming
	tm.stallAfter = time.Second
	td := newTestDupTiming(t, Policy{Primaries: primaries(), Retries: 3, MaxPerSecond: 1000}, soa.query, tm)
	var a answers
	const zones = 30
	for i := 0; i < zones; i++ {
		zone := dns.Fqdn("z" + string(rune('a'+i)) + ".test")
		if i != 7 {
			soa.set(be2.Addr, zone, 5)
		}
		td.Notify(packNotify(t, zone, 5), primary, vip, a.done(td.fs))
	}
	go func() {
		for i := 0; i < zones; i++ {
			time.Sleep(5 * time.Millisecond)
			soa.set(be1.Addr, dns.Fqdn("z"+string(rune('a'+i))+".test"), 5)
		}
	}()
	waitFor(t, func() bool { return testutil.ToFloat64(td.m.resends.WithLabelValues("s2")) >= 1 }, "s2 gets the lost zone again")
	soa.set(be2.Addr, "zh.test.", 5)
	waitFor(t, func() bool {
		p, _ := td.trk.pending()
		return p["s1"] == 0 && p["s2"] == 0
	}, "both converge")
	if n := testutil.ToFloat64(td.m.resends.WithLabelValues("s1")); n != 0 {
		t.Fatalf("s1, busy but progressing, got %v re-sends", n)
	}
	td.fs.mu.Lock()
	var resent []string
	for _, z := range td.fs.zones[be2.Addr][zones:] {
		resent = append(resent, z)
	}
	td.fs.mu.Unlock()
	for _, z := range resent {
		if z != "zh.test." {
			t.Fatalf("s2 got %s again, which it served", z)
		}
	}
	mfs, _ := td.reg.Gather()
	problems, _ := promlint.NewWithMetricFamilies(mfs).Lint()
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestGiveUpForgets: a backend that never serves the serial is sent the
// copy Retries times more, then given up on; a new NOTIFY for the same
// serial is then copied again (not deduplicated).
func TestGiveUpForgets(t *testing.T) {
	soa := newSOAScript()
	soa.set(be1.Addr, "a.test.", 5)
	td := newTestDup(t, Policy{Primaries: primaries(), Retries: 2, DedupWindow: time.Minute}, soa.query)
	var a answers
	td.Notify(packNotify(t, "a.test.", 5), primary, vip, a.done(td.fs))
	waitFor(t, func() bool { p, _ := td.trk.pending(); return p["s2"] == 0 && td.fs.count(be2.Addr) == 3 }, "two re-sends, then given up")
	td.Notify(packNotify(t, "a.test.", 5), primary, vip, a.done(td.fs))
	waitFor(t, func() bool { return td.fs.count(be2.Addr) == 4 }, "copied again after giving up")
}

func TestSerialArithmetic(t *testing.T) {
	for _, tc := range []struct {
		a, b uint32
		ge   bool
	}{{5, 5, true}, {6, 5, true}, {4, 5, false}, {1, 0xfffffff0, true}, {0xfffffff0, 1, false}} {
		if serialGE(tc.a, tc.b) != tc.ge {
			t.Errorf("serialGE(%d, %d) != %v", tc.a, tc.b, tc.ge)
		}
	}
}

// TestSignedAnswer: a NOTIFY signed with a configured key gets a signed
// answer that verifies with the request's MAC; an unknown key gets the
// plain answer (nil).
func TestSignedAnswer(t *testing.T) {
	const name, secret = "notify-key.", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
	td := newTestDup(t, Policy{Primaries: primaries(), Keys: []TSIGKey{{Name: name, Algorithm: dns.HmacSHA256, Secret: secret}}}, nil)
	for _, keyName := range []string{name, "other-key."} {
		m := new(dns.Msg)
		m.SetNotify("a.test.")
		m.SetEdns0(1232, false)
		m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
		req, mac, err := dns.TsigGenerate(m, secret, "", false)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		if v := td.Notify(req, primary, vip, func(a []byte) { got <- a }); v != Accept {
			t.Fatal(v)
		}
		answer := <-got
		if keyName != name {
			if answer != nil {
				t.Fatal("an unknown key got a signed answer")
			}
			continue
		}
		if err := dns.TsigVerify(answer, secret, mac, false); err != nil {
			t.Fatalf("signed answer does not verify: %v", err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(answer); err != nil || r.Id != m.Id || !r.Authoritative || r.IsEdns0() == nil {
			t.Fatalf("signed answer %v %v", r, err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestCopiesPaced: copies to each backend go out at no more than
// copy_qps (after a burst of 20 ms worth), and each NOTIFY is answered
// only once its copies are out, so the primary is slowed to that pace.
// Only a lower bound on the time is checked: a busy machine is slower.
func TestCopiesPaced(t *testing.T) {
	td := newTestDup(t, Policy{Primaries: primaries(), CopyQPS: 100}, nil)
	var a answers
	const n = 22 // burst 2, then 20 at 100/s: at least 200 ms
	start := time.Now()
	for i := range n {
		if v := td.Notify(packNotify(t, fmt.Sprintf("z%d.test.", i), 1), primary, vip, a.done(td.fs)); v != Accept {
			t.Fatalf("notify %d: %v", i, v)
		}
	}
	waitFor(t, func() bool { return a.n() == n }, "every answer")
	if took := time.Since(start); took < 190*time.Millisecond {
		t.Fatalf("%d NOTIFYs copied and answered in %v: copy_qps 100 allows no less than 200ms", n, took)
	}
	for i, at := range a.at {
		if at < 2*(i+1) {
			t.Fatalf("answer %d came after %d copies, before its own were out", i, at)
		}
	}
}

// TestResendsUseSparePace: a re-send never waits for the copy pace; it
// goes only when first copies left a token, so a storm's first copies
// (and the primaries' answers) are never delayed by re-sends.
func TestResendsUseSparePace(t *testing.T) {
	td := newTestDup(t, Policy{Primaries: primaries(), CopyQPS: 1}, nil) // burst 1
	if !td.spareCopy(be2) {
		t.Fatal("an idle backend has no spare copy pace")
	}
	td.pace(be1) // a first copy takes the only token
	if td.spareCopy(be1) {
		t.Fatal("a re-send took pace a first copy had used")
	}
}

// TestCopyPaceForgetsRemovedBackends: a backend removed by a reload
// leaves no copy limiter behind.
func TestCopyPaceForgetsRemovedBackends(t *testing.T) {
	td := newTestDup(t, Policy{Primaries: primaries()}, nil)
	td.pace(be1, be2)
	td.forgetRemoved([]Backend{be1})
	td.mu.Lock()
	defer td.mu.Unlock()
	if _, kept := td.copyPace[be2.Addr]; kept || len(td.copyPace) != 1 {
		t.Fatalf("copy limiters after be2 left: %v", slices.Collect(maps.Keys(td.copyPace)))
	}
}

// TestCopiesHeldByWindow: a backend that confirms nothing gets
// copy_qps x window copies and no more; the rest wait, the primary is
// answered anyway, and they go out in order once it confirms zones.
func TestCopiesHeldByWindow(t *testing.T) {
	var open atomic.Bool // s1 starts serving what it was sent
	soa := func(_ context.Context, s netip.AddrPort, _ string) (uint32, error) {
		if s == be1.Addr && !open.Load() {
			return 4, nil
		}
		return 5, nil
	}
	tm := fastTiming
	tm.window = 100 * time.Millisecond // x copy_qps 100: 10 copies
	tm.stallAfter = time.Minute        // no re-sends in this test
	td := newTestDupTiming(t, Policy{Primaries: primaries(), Retries: 3, CopyQPS: 100}, soa, tm)
	var a answers
	const zones = 30
	var want []string
	for i := range zones {
		z := fmt.Sprintf("w%02d.test.", i)
		want = append(want, z)
		if v := td.Notify(packNotify(t, z, 5), primary, vip, a.done(td.fs)); v != Accept {
			t.Fatalf("notify %d: %v", i, v)
		}
	}
	waitFor(t, func() bool { return a.n() == zones }, "every NOTIFY answered while s1's copies wait")
	if got := td.fs.count(be1.Addr); got != 10 {
		t.Fatalf("s1, confirming nothing, got %d copies: want the window's 10", got)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(td.m.held.WithLabelValues("s1")) == zones-10 }, "20 copies held for s1")
	open.Store(true)
	waitFor(t, func() bool { p, _ := td.trk.pending(); return p["s1"] == 0 }, "s1 converges on the held zones too")
	td.fs.mu.Lock()
	got := slices.Clone(td.fs.zones[be1.Addr])
	td.fs.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("s1 got copies %v, want each zone once, in order", got)
	}
	if h := testutil.ToFloat64(td.m.held.WithLabelValues("s1")); h != 0 {
		t.Fatalf("held gauge %v after s1 converged", h)
	}
}

// TestHeldCopiesSentAtStop: copies still held when the duplicator stops
// are sent then, once: the primaries were answered for them.
func TestHeldCopiesSentAtStop(t *testing.T) {
	soa := func(_ context.Context, s netip.AddrPort, _ string) (uint32, error) {
		if s == be1.Addr {
			return 4, nil
		}
		return 5, nil
	}
	tm := fastTiming
	tm.window = 100 * time.Millisecond
	tm.stallAfter = time.Minute
	td := newTestDupTiming(t, Policy{Primaries: primaries(), Retries: 3, CopyQPS: 100}, soa, tm)
	var a answers
	for i := range 25 {
		td.Notify(packNotify(t, fmt.Sprintf("s%02d.test.", i), 5), primary, vip, a.done(td.fs))
	}
	waitFor(t, func() bool { return a.n() == 25 }, "every NOTIFY answered")
	td.stop()
	if got := td.fs.count(be1.Addr); got != 25 {
		t.Fatalf("s1 got %d copies by the stop, want 25", got)
	}
}

// TestUnansweredGiveUpNeedsSilentBackend: a zone whose checks go
// unanswered is given up on only once the backend answers no check at
// all for timing.unanswered, not while it answers others.
func TestUnansweredGiveUpNeedsSilentBackend(t *testing.T) {
	var silent atomic.Bool
	soa := func(_ context.Context, s netip.AddrPort, zone string) (uint32, error) {
		switch {
		case s != be1.Addr:
			return 5, nil
		case silent.Load(), zone == "mute.test.":
			return 0, context.DeadlineExceeded
		default:
			return 4, nil // slow.test.: answers, still the old serial
		}
	}
	tm := fastTiming
	tm.unanswered = time.Second
	tm.stallAfter = time.Minute // no re-sends of slow.test.
	td := newTestDupTiming(t, Policy{Primaries: primaries(), Retries: 3}, soa, tm)
	for _, z := range []string{"slow.test.", "mute.test."} {
		td.Notify(packNotify(t, z, 5), primary, vip, func([]byte) {})
	}
	time.Sleep(tm.unanswered * 3 / 2)
	if n := testutil.ToFloat64(td.m.givenUp.WithLabelValues("s1")); n != 0 {
		t.Fatalf("%v zones given up on s1 while it answered checks", n)
	}
	silent.Store(true)
	waitFor(t, func() bool { return testutil.ToFloat64(td.m.givenUp.WithLabelValues("s1")) == 2 }, "both zones given up once s1 answers nothing")
}
