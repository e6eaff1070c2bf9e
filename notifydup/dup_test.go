package notifydup

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// fakeSender records the copies instead of injecting them.
type fakeSender struct {
	mu     sync.Mutex
	copies map[netip.AddrPort]int
}

func (f *fakeSender) send(n *Notify, to netip.AddrPort) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.copies[to]++
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
)

func newTestDup(t *testing.T, p Policy, soa func(context.Context, netip.AddrPort, string) (uint32, error)) (*Duplicator, *fakeSender, *prometheus.Registry) {
	t.Helper()
	fs := &fakeSender{copies: map[netip.AddrPort]int{}}
	reg := prometheus.NewRegistry()
	d, err := New(Options{Interface: "eth0", VIPs: []netip.Addr{netip.MustParseAddr("10.78.0.53")}, Policy: p,
		Backends: func() []Backend { return []Backend{be1, be2} }, QuerySOA: soa, Registerer: reg, sender: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.wg.Wait)
	return d, fs, reg
}

func notify(src string, zone string, serial uint32) *Notify {
	return &Notify{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort("10.78.0.53:53"), Zone: zone, Serial: serial, HasSerial: serial != 0}
}

func TestHandlePolicy(t *testing.T) {
	d, fs, _ := newTestDup(t, Policy{Primaries: []netip.Prefix{netip.MustParsePrefix("10.78.0.0/29")}, MaxPerSecond: 3, DedupWindow: time.Minute}, nil)
	d.Handle(notify("10.78.0.2:4000", "a.test.", 5))
	if fs.count(be1.Addr) != 1 || fs.count(be2.Addr) != 1 {
		t.Fatalf("copies %v", fs.copies)
	}
	// same zone and serial again, even with another source port and ID: deduped
	d.Handle(notify("10.78.0.2:4001", "a.test.", 5))
	// a stranger: never copied
	d.Handle(notify("10.78.0.99:4000", "a.test.", 6))
	if fs.count(be1.Addr) != 1 {
		t.Fatalf("duplicate or stranger copied: %v", fs.copies)
	}
	// a new serial is copied; then the rate limit (3/s, one token spent on the duplicate) holds
	d.Handle(notify("10.78.0.2:4000", "a.test.", 6))
	d.Handle(notify("10.78.0.2:4000", "b.test.", 1))
	d.Handle(notify("10.78.0.2:4000", "c.test.", 1))
	if fs.count(be1.Addr) != 2 {
		t.Fatalf("rate limit: %d copies, want 2", fs.count(be1.Addr))
	}
	for res, want := range map[string]float64{"copied": 2, "duplicate": 1, "stranger": 1, "rate_limited": 2} {
		if got := testutil.ToFloat64(d.m.received.WithLabelValues(res)); got != want {
			t.Errorf("received{result=%s} = %v, want %v", res, got, want)
		}
	}
}

func TestOnlyMasterCopies(t *testing.T) {
	d, fs, _ := newTestDup(t, Policy{Primaries: []netip.Prefix{netip.MustParsePrefix("10.78.0.2/32")}}, nil)
	d.o.IsMaster = func() bool { return false }
	d.Handle(notify("10.78.0.2:4000", "a.test.", 5))
	if fs.count(be1.Addr) != 0 || testutil.ToFloat64(d.m.received.WithLabelValues("not_master")) != 1 {
		t.Fatal("a backup node copied a NOTIFY")
	}
}

// TestConvergenceResends: s2 answers an old serial twice, then the new one:
// it gets the copy again until it converges; s1 is current at once.
func TestConvergenceResends(t *testing.T) {
	if testing.Short() {
		t.Skip("TestConvergenceResends: takes 1.8 s (waits out the re-check intervals until s2 converges); run without -short")
	}
	var mu sync.Mutex
	asked := map[netip.AddrPort]int{}
	soa := func(_ context.Context, server netip.AddrPort, zone string) (uint32, error) {
		mu.Lock()
		defer mu.Unlock()
		asked[server]++
		if server == be2.Addr && asked[server] <= 2 {
			return 4, nil
		}
		return 5, nil
	}
	d, fs, reg := newTestDup(t, Policy{Primaries: []netip.Prefix{netip.MustParsePrefix("10.78.0.2/32")}, Retries: 5}, soa)
	d.Handle(notify("10.78.0.2:4000", "a.test.", 5))
	d.wg.Wait()
	if fs.count(be1.Addr) != 1 || fs.count(be2.Addr) != 3 {
		t.Fatalf("copies s1=%d s2=%d, want 1 and 3", fs.count(be1.Addr), fs.count(be2.Addr))
	}
	if n := testutil.CollectAndCount(d.m.lag); n != 0 {
		t.Fatalf("%d lag series left after convergence", n)
	}
	if n := testutil.CollectAndCount(d.m.converge); n != 1 {
		t.Fatal("no convergence time recorded")
	}
	mfs, _ := reg.Gather()
	problems, _ := promlint.NewWithMetricFamilies(mfs).Lint()
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
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
