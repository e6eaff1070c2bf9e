package balancer

import (
	"github.com/dnslb/dnslb/internal/health"
	"net/netip"
	"testing"
	"time"
)

func testPool(t *testing.T, specs ...BackendSpec) *pool {
	t.Helper()
	p := newPool()
	if _, err := p.apply(specs); err != nil {
		t.Fatal(err)
	}
	return p
}

func spec(name string, port uint16, weight int) BackendSpec {
	return BackendSpec{Name: name, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), Weight: weight}
}

func TestPickLeastOutstanding(t *testing.T) {
	p := testPool(t, spec("a", 1, 1), spec("b", 2, 1))
	a, b := p.list()[0], p.list()[1]
	a.outstanding.Store(5)
	b.outstanding.Store(2)
	for i := 0; i < 10; i++ {
		if got := pickU(p); got != b {
			t.Fatalf("picked %s, want b", got.name)
		}
	}
}

func TestPickWeighted(t *testing.T) {
	p := testPool(t, spec("a", 1, 3), spec("b", 2, 1))
	a, b := p.list()[0], p.list()[1]
	// a has 5/3 outstanding per weight, b 2/1: a wins
	a.outstanding.Store(5)
	b.outstanding.Store(2)
	if got := pickU(p); got != a {
		t.Fatalf("picked %s, want a", got.name)
	}
	a.tcpActive.Store(7)
	b.tcpActive.Store(2)
	if got := pickT(p); got != b {
		t.Fatalf("tcp picked %s, want b", got.name)
	}
}

func TestPickTiesRoundRobinThenLatency(t *testing.T) {
	p := testPool(t, spec("a", 1, 1), spec("b", 2, 1), spec("c", 3, 1))
	count := map[string]int{}
	for i := 0; i < 300; i++ {
		count[pickU(p).name]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if count[n] != 100 {
			t.Fatalf("equal backends not round-robin: %v", count)
		}
	}
	// b is clearly faster: it wins ties
	p.list()[0].latencyNS.Store(int64(5 * time.Millisecond))
	p.list()[1].latencyNS.Store(int64(1 * time.Millisecond))
	p.list()[2].latencyNS.Store(int64(5 * time.Millisecond))
	for i := 0; i < 10; i++ {
		if got := pickU(p); got.name != "b" {
			t.Fatalf("picked %s, want the faster b", got.name)
		}
	}
	// within the noise band (50% + 1ms) latency does not decide
	p.list()[1].latencyNS.Store(int64(4900 * time.Microsecond))
	count = map[string]int{}
	for i := 0; i < 300; i++ {
		count[pickU(p).name]++
	}
	if count["a"] == 0 || count["c"] == 0 {
		t.Fatalf("near-equal latencies should share: %v", count)
	}
}

func TestPickSkipsIneligible(t *testing.T) {
	p := testPool(t, spec("a", 1, 1), spec("b", 2, 1), spec("c", 3, 1))
	p.list()[0].admin.Store(uint32(Drain))
	p.list()[1].SetHealth(health.Down)
	for i := 0; i < 10; i++ {
		if got := pickU(p); got.name != "c" {
			t.Fatalf("picked %s", got.name)
		}
	}
	p.list()[2].admin.Store(uint32(Disabled))
	if got := pickU(p); got != nil {
		t.Fatalf("picked %s with nothing eligible", got.name)
	}
}

func TestApplyDiff(t *testing.T) {
	p := testPool(t, spec("a", 1, 1), spec("b", 2, 1))
	a := p.list()[0]
	res, err := p.apply([]BackendSpec{spec("a", 1, 5), spec("c", 3, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if p.list()[0] != a || a.weight.Load() != 5 {
		t.Fatal("existing backend not kept and updated in place")
	}
	if len(res.added) != 1 || res.added[0].name != "c" || len(res.retired) != 1 || res.retired[0].name != "b" {
		t.Fatalf("added %v retired %v", res.added, res.retired)
	}
	if !res.retired[0].removed.Load() || res.retired[0].eligible() {
		t.Fatal("retired backend still eligible")
	}
	if len(p.all()) != 3 {
		t.Fatalf("all() = %d, want 2 current + 1 retiring", len(p.all()))
	}
	// address change: retire the old one, add a new one under the same name
	res, err = p.apply([]BackendSpec{spec("a", 9, 5), spec("c", 3, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.added) != 1 || res.retired[0] != a {
		t.Fatalf("address change not handled: %+v", res)
	}
	if _, err := p.apply([]BackendSpec{spec("x", 1, 1), spec("x", 2, 1)}); err == nil {
		t.Fatal("duplicate names accepted")
	}
}

func pickU(p *pool) *Backend { be, _ := p.pickUDP(false); return be }
func pickT(p *pool) *Backend { be, _ := p.pickTCP(false); return be }

func TestPickHealthAndFailOpen(t *testing.T) {
	p := newPool()
	if _, err := p.apply([]BackendSpec{
		{Name: "a", Addr: netip.MustParseAddrPort("127.0.0.1:1"), Weight: 1, Checked: true},
		{Name: "b", Addr: netip.MustParseAddrPort("127.0.0.1:2"), Weight: 1, Checked: true},
	}); err != nil {
		t.Fatal(err)
	}
	a, b := p.list()[0], p.list()[1]
	if health.State(a.health.Load()) != health.Pending {
		t.Fatal("checked backend does not start pending")
	}
	// nothing up: refuse mode gets nil + allDown, fail-open gets a backend
	if be, allDown := p.pickUDP(false); be != nil || !allDown {
		t.Fatalf("refuse: got %v allDown=%v", be, allDown)
	}
	if be, allDown := p.pickUDP(true); be == nil || !allDown {
		t.Fatalf("fail-open: got %v allDown=%v", be, allDown)
	}
	b.SetHealth(health.Up)
	for i := 0; i < 5; i++ {
		if be, allDown := p.pickUDP(true); be != b || allDown {
			t.Fatalf("with b up: got %v allDown=%v", be.name, allDown)
		}
	}
	// a retry never goes back to the backend that timed out
	if be, _ := p.pick(outstandingLoad, true, b); be != a {
		t.Fatalf("pick except b = %v, want a (fail-open)", be)
	}
	if be, _ := p.pick(outstandingLoad, false, b); be != nil {
		t.Fatalf("pick except b, refuse = %v, want none", be.name)
	}
	// checks turned off on reload: trusted at once
	if _, err := p.apply([]BackendSpec{
		{Name: "a", Addr: netip.MustParseAddrPort("127.0.0.1:1"), Weight: 1},
		{Name: "b", Addr: netip.MustParseAddrPort("127.0.0.1:2"), Weight: 1, Checked: true},
	}); err != nil {
		t.Fatal(err)
	}
	if health.State(a.health.Load()) != health.Up {
		t.Fatal("unchecked backend not up")
	}
}

// TestRetryPrefersAnsweringBackend: a timed-out query's retry skips a
// backend that has gone quiet (its last event a timeout, or queries in
// flight and no answer since the cutoff) while another is answering, even
// when the quiet one has fewer outstanding; with none answering it falls
// back to the least-outstanding pick, and it never returns the failed one.
func TestRetryPrefersAnsweringBackend(t *testing.T) {
	p := testPool(t, spec("failed", 1, 1), spec("quiet", 2, 1), spec("live", 3, 1))
	failed, quiet, live := p.list()[0], p.list()[1], p.list()[2]
	const now, cutoff = int64(10 * time.Second), int64(10*time.Second - 50*time.Millisecond)
	live.outstanding.Store(9)
	live.lastAnswer.Store(now - int64(time.Millisecond))

	// Stalled, first query not yet timed out: in flight, no recent answer.
	quiet.outstanding.Store(2)
	quiet.lastAnswer.Store(now - int64(time.Second))
	if be := p.pickRetry(false, failed, cutoff); be != live {
		t.Fatalf("quiet with queries in flight: retry went to %s, want live", be.name)
	}
	// Its queries timed out, so it has fewest outstanding: still passed over.
	quiet.outstanding.Store(0)
	quiet.consecutive.Store(3)
	if be := p.pickRetry(false, failed, cutoff); be != live {
		t.Fatalf("quiet after timeouts: retry went to %s, want live", be.name)
	}
	// It answers again: least outstanding wins as before.
	quiet.consecutive.Store(0)
	quiet.lastAnswer.Store(now)
	if be := p.pickRetry(false, failed, cutoff); be != quiet {
		t.Fatalf("quiet answering again: retry went to %s, want quiet", be.name)
	}
	// An idle backend (nothing in flight, last event an answer) is answering.
	quiet.lastAnswer.Store(0)
	if be := p.pickRetry(false, failed, cutoff); be != quiet {
		t.Fatalf("idle: retry went to %s, want quiet", be.name)
	}
	// A timeout since its last answer does not count against a backend
	// that answered within the cutoff: it dropped a datagram, it did not
	// stop. Least outstanding wins between it and the idle one.
	live.consecutive.Store(1)
	live.outstanding.Store(0)
	quiet.outstanding.Store(5)
	quiet.lastAnswer.Store(now)
	if be := p.pickRetry(false, failed, cutoff); be != live {
		t.Fatalf("live after one timeout: retry went to %v, want live", be)
	}
	// No other backend answering, and the failed one answered within the
	// cutoff (Knot dropping a burst while both NSDs stall): back to it.
	live.lastAnswer.Store(cutoff - 1)
	quiet.consecutive.Store(1)
	quiet.outstanding.Store(0)
	quiet.lastAnswer.Store(cutoff - 1)
	failed.lastAnswer.Store(now)
	failed.consecutive.Store(4)
	if be := p.pickRetry(false, failed, cutoff); be != failed {
		t.Fatalf("only the failed backend answering: retry went to %v, want failed", be)
	}
	// ... but not when it is no longer eligible (drained).
	failed.admin.Store(uint32(Drain))
	if be := p.pickRetry(false, failed, cutoff); be == failed {
		t.Fatal("drained failed backend: the retry went back to it")
	}
	failed.admin.Store(uint32(Active))
	// None answering (the failed one quiet too): the plain pick, never the
	// failed backend.
	failed.lastAnswer.Store(cutoff - 1)
	live.outstanding.Store(9)
	failed.outstanding.Store(0)
	if be := p.pickRetry(false, failed, cutoff); be != quiet {
		t.Fatalf("none answering: retry went to %v, want quiet (least outstanding)", be)
	}
	if allocs := testing.AllocsPerRun(1000, func() { p.pickRetry(false, failed, cutoff) }); allocs != 0 {
		t.Fatalf("pickRetry allocates %.1f objects, want 0", allocs)
	}
}
