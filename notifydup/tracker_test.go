package notifydup

import (
	"container/heap"
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMaxTracked: beyond notify.max_tracked pairs a copy is still sent,
// once, but not tracked (counted as untracked); a NOTIFY for an untracked
// (zone, serial) is copied again, one for a tracked one is not.
func TestMaxTracked(t *testing.T) {
	never := func(context.Context, netip.AddrPort, string) (uint32, error) { return 0, nil } // nobody converges
	td := newTestDup(t, Policy{Primaries: primaries(), Retries: 20, DedupWindow: time.Minute, MaxTracked: 5, TrackQPS: 10}, never)
	var a answers
	for i := range 4 { // 8 pairs: 5 tracked, 3 not
		td.Notify(packNotify(t, fmt.Sprintf("z%d.test.", i), 7), primary, vip, a.done(td.fs))
	}
	waitFor(t, func() bool { return a.n() == 4 }, "all answered")
	if n := testutil.ToFloat64(td.m.untracked); n != 3 {
		t.Fatalf("untracked = %v, want 3", n)
	}
	st := td.Stats()
	if st.Tracked != 5 || st.MaxTracked != 5 || st.Untracked != 3 {
		t.Fatalf("stats tracked %d/%d untracked %d, want 5/5 and 3", st.Tracked, st.MaxTracked, st.Untracked)
	}
	if got := testutil.ToFloat64(td.m.tracked); got != 5 {
		t.Fatalf("dnslb_notify_tracked_pairs = %v", got)
	}
	dup, copied := td.m.received.WithLabelValues("duplicate"), td.m.received.WithLabelValues("copied")
	// z0 is tracked on both backends: a re-notify is answered, not copied.
	td.Notify(packNotify(t, "z0.test.", 7), primary, vip, a.done(td.fs))
	waitFor(t, func() bool { return a.n() == 5 }, "re-notify of a tracked zone answered")
	if testutil.ToFloat64(dup) != 1 || testutil.ToFloat64(copied) != 4 {
		t.Fatalf("re-notify of a tracked (zone, serial): duplicate %v, copied %v; want 1 and 4", testutil.ToFloat64(dup), testutil.ToFloat64(copied))
	}
	// z3 is tracked on no backend: copied again.
	td.Notify(packNotify(t, "z3.test.", 7), primary, vip, a.done(td.fs))
	waitFor(t, func() bool { return testutil.ToFloat64(copied) == 5 }, "re-notify of an untracked zone copied")
}

// TestOvertakenResent: a backend that keeps converging zones notified
// after one it lost gets that one again at its next check, without
// waiting for the backend to stall.
func TestOvertakenResent(t *testing.T) {
	soa := newSOAScript()
	var stop atomic.Bool
	td := newTestDup(t, Policy{Primaries: primaries(), Retries: 3}, soa.query)
	var a answers
	td.Notify(packNotify(t, "lost.test.", 9), primary, vip, a.done(td.fs))
	soa.set(be1.Addr, "lost.test.", 9)
	time.Sleep(2 * fastTiming.stallAfter)
	// s2 converges a zone notified later every few milliseconds: it
	// never stalls, but it overtook lost.test.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load() && i < 4000; i++ {
			z := fmt.Sprintf("later%d.test.", i)
			soa.set(be1.Addr, z, 9)
			soa.set(be2.Addr, z, 9)
			td.Notify(packNotify(t, z, 9), primary, vip, func([]byte) {})
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitFor(t, func() bool { return testutil.ToFloat64(td.m.resends.WithLabelValues("s2")) >= 1 }, "lost.test. re-sent to s2")
	stop.Store(true)
	wg.Wait()
	if n := testutil.ToFloat64(td.m.resends.WithLabelValues("s1")); n != 0 {
		t.Fatalf("s1, which converged everything, got %v re-sends", n)
	}
}

// TestTrackQPS: the SOA queries to one backend are paced at TrackQPS.
func TestTrackQPS(t *testing.T) {
	var mu sync.Mutex
	asked := map[netip.AddrPort]int{}
	slow := func(_ context.Context, s netip.AddrPort, _ string) (uint32, error) {
		mu.Lock()
		asked[s]++
		mu.Unlock()
		return 0, nil
	}
	td := newTestDup(t, Policy{Primaries: primaries(), Retries: 20, TrackQPS: 100}, slow)
	for i := range 500 {
		td.Notify(packNotify(t, fmt.Sprintf("q%d.test.", i), 3), primary, vip, func([]byte) {})
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	start := asked[be1.Addr]
	mu.Unlock()
	time.Sleep(time.Second)
	mu.Lock()
	n := asked[be1.Addr] - start
	mu.Unlock()
	if n < 70 || n > 130 {
		t.Fatalf("%d SOA queries to s1 in 1s at track_qps 100", n)
	}
}

// TestTrackedPairMemory measures what one tracked (zone, backend) pair
// costs, and keeps entryBytes (the figure the docs quote) honest.
func TestTrackedPairMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MB")
	}
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &Duplicator{m: m}
	p := &Policy{MaxTracked: 1 << 30, TrackQPS: 1}
	d.policy.Store(p)
	tr := newTracker(d, fastTiming)
	tr.noWorkers = true // only the table
	const zones, backends = 100000, 3
	var bes []Backend
	for i := range backends {
		bes = append(bes, Backend{Name: fmt.Sprint("b", i), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 53)})
	}
	notes := make([]*Notify, zones)
	for i := range notes {
		notes[i] = &Notify{Zone: fmt.Sprintf("z%06d.example.", i), Serial: 2, HasSerial: true}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for _, n := range notes {
		tr.add(n, bes, nil, p)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := float64(m1.HeapAlloc-m0.HeapAlloc) / (zones * backends)
	t.Logf("%.0f bytes per tracked pair (%d zones x %d backends, NOTIFYs not counted)", per, zones, backends)
	if per > entryBytes {
		t.Errorf("%.0f bytes per pair, more than entryBytes %d", per, entryBytes)
	}
	runtime.KeepAlive(tr)
	runtime.KeepAlive(notes)
}

// TestWindowFollowsConfirmTime: a backend that confirms copies soon
// keeps the base window and the short re-send margins; one that confirms
// them a reload cycle later (an NSD secondary) gets a window and margins
// spanning that cycle, up to the bound.
func TestWindowFollowsConfirmTime(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &Duplicator{m: m}
	p := &Policy{MaxTracked: 1 << 20, TrackQPS: 1, CopyQPS: 100}
	d.policy.Store(p)
	tm := fastTiming
	tm.window = time.Second // 100 copies at least, 400 at most
	tr := newTracker(d, tm)
	tr.noWorkers = true
	be := Backend{Name: "b", Addr: netip.MustParseAddrPort("10.0.0.1:53")}
	// confirm runs n zones through the table, each confirmed after
	// took, as the worker would.
	seq := 0
	confirm := func(n int, took time.Duration) {
		for range n {
			seq++
			tr.add(&Notify{Zone: fmt.Sprintf("z%d.test.", seq), Serial: 2, HasSerial: true}, []Backend{be}, nil, p)
			tr.mu.Lock()
			bt := tr.bes[be.Addr]
			e := heap.Pop(&bt.due).(*entry)
			e.inFlight = true
			e.copied = tr.now() - int64(took)
			tr.mu.Unlock()
			tr.check(bt, e, 2, 2, nil)
		}
	}
	window := func() int {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.copyWindow(tr.bes[be.Addr], p)
	}
	if w := tr.copyWindow(nil, p); w != 100 {
		t.Fatalf("window before any backend: %d, want 100", w)
	}
	// behind, for a zone copied 5 s ago, with the backend's last
	// progress and newest converged copy that long after it.
	behind := func(progressAgo, overtakenBy time.Duration) (stalled, overtaken bool) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		bt := tr.bes[be.Addr]
		now := tr.now()
		e := &entry{copied: now - int64(5*time.Second)}
		bt.lastProgress, bt.newestConverged = now-int64(progressAgo), e.copied+int64(overtakenBy)
		return tr.behind(bt, e, now)
	}
	confirm(2000, 50*time.Millisecond)
	if w := window(); w != 100 {
		t.Fatalf("confirming in 50 ms: window %d, want the base 100", w)
	}
	// stallAfter 80 ms, overtaken by 5 x that: a backend confirming each
	// copy on its own is re-sent to soon.
	if st, ov := behind(200*time.Millisecond, 500*time.Millisecond); !st || !ov {
		t.Fatalf("confirming in 50 ms: 200 ms without progress stalled=%v, overtaken by 500 ms %v; want both", st, ov)
	}
	confirm(4000, time.Second)
	if w := window(); w < 240 || w > 250 {
		t.Fatalf("confirming in 1 s: window %d, want about 250 (2.5 s of copies)", w)
	}
	// A backend confirming in batches ~2.5 s apart finishes a batch in
	// any order and converges nothing between batches.
	if st, ov := behind(2*time.Second, 2*time.Second); st || ov {
		t.Fatalf("confirming in 1 s: 2 s without progress stalled=%v, overtaken by 2 s %v; want neither", st, ov)
	}
	if st, ov := behind(3*time.Second, 3*time.Second); !st || !ov {
		t.Fatalf("confirming in 1 s: 3 s without progress stalled=%v, overtaken by 3 s %v; want both", st, ov)
	}
	confirm(4000, 10*time.Second)
	if w := window(); w != 400 {
		t.Fatalf("confirming in 10 s: window %d, want the bound 400", w)
	}
	tr.mu.Lock()
	tr.updateGauges(tr.bes[be.Addr])
	tr.mu.Unlock()
	if g := testutil.ToFloat64(m.window.WithLabelValues("b")); g != 400 {
		t.Fatalf("dnslb_notify_copy_window = %v, want 400", g)
	}
}
