package notifydup

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// Convergence tracking: one worker per backend checks the SOA of the
// zones notified to it, earliest due first, at most Policy.TrackQPS
// queries a second with a bounded number in flight, until the backend
// serves each notified serial. Entries are kept for at most
// Policy.MaxTracked (zone, backend) pairs over all backends; beyond that a
// copy is sent once and not tracked (counted, logged).
//
// A copy is sent again only when the backend looks stuck on that zone:
// it answers with the zone's old serial (a backend that does not answer
// is down or overloaded: it gets no copy, and the check rate backs off), its last copy is older than the re-send
// gap (firstResend, doubling with every re-send), and either the backend
// has converged no zone for stallAfter plus a round of checks (down,
// restarted, or it lost a burst of copies) or it has converged a zone
// whose copy went out well after this one's (it overtook this zone: the
// copy or the transfer was lost; see overtakeFactor). For a backend that
// confirms in batches, a reload apart, both margins are at least that
// cycle (see behind). A secondary working through a bulk change in
// order (BIND takes about 10 s for 200 zones at its default
// serial-query-rate) keeps converging zones and overtakes none by much,
// so it is not sent copies it would only queue ("refresh in progress,
// refresh check queued"); one that lost copies in a storm gets just those
// again, as soon as they are checked, without waiting for the storm to
// end.
//
// Copies are also held back per backend: one with a window of copies
// (copy_qps x its cycle, at least timing.window) it has not been seen to
// serve (it stopped applying them, as an
// NSD does while a reload hands over) gets no more; they wait here, in
// order, and go out at the copy pace as it confirms zones. The primary's
// answer does not wait for them.
type timing struct {
	// firstCheck is when a zone's SOA is first asked; later checks back
	// off by doubling up to maxCheckGap.
	firstCheck, maxCheckGap time.Duration
	// firstResend is the earliest a copy is sent again: later than a
	// healthy secondary takes to refresh one zone. Each re-send of the
	// same zone waits twice as long as the one before.
	firstResend time.Duration
	// stallAfter is how long a backend must have converged no zone to
	// look stuck; overtakeFactor times it, how far a converged zone's
	// copy must be ahead of a zone's to have overtaken it.
	stallAfter time.Duration
	// queryTimeout bounds one SOA query.
	queryTimeout time.Duration
	// unanswered is how long a backend must have answered no SOA check
	// before a zone whose check goes unanswered is given up on.
	unanswered time.Duration
	// window is how much copy pace a backend may have unconfirmed at
	// least: it holds copy_qps x window copies it has not been seen to
	// serve (more if it takes longer to confirm, see copyWindow), and
	// further copies wait in the tracker.
	window time.Duration
}

// defaultTiming is the tracking schedule; tests shorten it.
var defaultTiming = timing{firstCheck: 250 * time.Millisecond, maxCheckGap: 4 * time.Second,
	firstResend: time.Second, stallAfter: 2 * time.Second, queryTimeout: time.Second, unanswered: 10 * time.Minute, window: 20 * time.Second}

// Defaults of Policy.TrackQPS and Policy.MaxTracked.
const (
	DefaultTrackQPS   = 1000
	DefaultMaxTracked = 1000000
)

// inFlight is how many SOA queries one backend may have outstanding: at
// qps queries a second, enough for answers taking 50 ms.
func inFlightLimit(qps int) int { return min(1024, max(16, qps/20)) }

// entry is one zone a backend has not been seen to serve the notified
// serial of. Times are monotonic nanoseconds since the tracker started
// (see tracker.now), to keep an entry small: the tracking table holds up
// to MaxTracked of them.
type entry struct {
	n          *Notify // shared by the backends' entries of one NOTIFY
	copied     int64   // the last copy (first or re-send)
	since      int64   // the first copy of this serial
	due        int64   // the next SOA check
	gap        int32   // current check gap, milliseconds
	idx        int32   // in the heap; -1 while a check is in flight
	resends    uint8
	inFlight   bool
	held       bool   // its copy waits for the window (not in the heap)
	prev, next *entry // the backend's list in order of since, oldest first
}

// entryBytes is what one tracked pair costs, measured by
// TestTrackedPairMemory (entry, map slot, heap slot; the NOTIFY, shared
// by the backends, not included).
const entryBytes = 160

// backendTrack is the tracking state of one backend.
type backendTrack struct {
	be           Backend
	zones        map[string]*entry
	due          entryHeap
	head, tail   *entry // oldest and newest by since
	wake         chan struct{}
	lastProgress int64
	lastAnswer   int64 // the last SOA check it answered
	// newestConverged is the copy time of the latest-copied zone seen
	// converged: a zone copied stallAfter before it was overtaken.
	newestConverged int64
	lim             *rate.Limiter
	// rate is the limiter's current rate: track_qps, halved on each
	// unanswered check (an overloaded backend drops queries: tracking
	// yields to its clients), raised again by track_qps/50 per answer.
	rate        float64
	lastBackoff int64
	gaugesAt    int64         // the pending and oldest gauges were last set
	sem         chan struct{} // SOA queries in flight
	soa         *soaClient    // nil until the first query, or with Options.QuerySOA
	running     bool
	soaQueries  uint64
	// held are the entries whose copy waits for the window, oldest
	// first; an entry no longer held (dropped, replaced) is skipped.
	// nHeld counts those still held.
	held  []*entry
	nHeld int
	// confirmAvg is the mean time from a copy to its confirmation
	// (exponentially weighted, 1/confirmWeight per zone), nanoseconds;
	// 0 until the first. It sizes the window (copyWindow).
	confirmAvg int64
}

// tracker holds the per-backend state.
type tracker struct {
	d       *Duplicator
	tm      timing
	epoch   time.Time
	ctx     context.Context
	mu      sync.Mutex
	bes     map[netip.AddrPort]*backendTrack
	total   int
	qps     int                // the limiters' rate
	waiting map[key]*waitState // backends that have not converged to the key yet
	wg      sync.WaitGroup
	// noWorkers: tests of the table alone start no worker.
	noWorkers bool
}

// waitState is how many backends are still to serve a (zone, serial), and
// whether every backend it was copied to is tracked (none was beyond
// MaxTracked).
type waitState struct {
	n   int32
	all bool
}

func newTracker(d *Duplicator, tm timing) *tracker {
	if tm.queryTimeout <= 0 {
		tm.queryTimeout = time.Second
	}
	if tm.window <= 0 {
		tm.window = defaultTiming.window
	}
	if tm.unanswered <= 0 {
		tm.unanswered = defaultTiming.unanswered
	}
	return &tracker{d: d, tm: tm, epoch: time.Now(), ctx: context.Background(), bes: map[netip.AddrPort]*backendTrack{}, waiting: map[key]*waitState{}}
}

// now is the tracker's clock: monotonic nanoseconds since it started.
func (t *tracker) now() int64 { return int64(time.Since(t.epoch)) }

// start makes the workers run until ctx is done.
func (t *tracker) start(ctx context.Context) {
	t.mu.Lock()
	t.ctx = ctx
	t.mu.Unlock()
}

// wait waits for the workers to stop (after the context ended).
func (t *tracker) wait() { t.wg.Wait() }

// setRate applies a new TrackQPS to every backend's limiter.
func (t *tracker) setRate(qps int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if qps == t.qps {
		return
	}
	t.qps = qps
	for _, bt := range t.bes {
		bt.rate = float64(qps)
		bt.lim.SetLimit(rate.Limit(qps))
		bt.lim.SetBurst(max(1, qps/10))
	}
}

// hold splits backends into those to copy n to now and those whose copy
// is to wait in the tracker: a backend with a full window (copyWindow),
// or with copies already waiting (they go first, in order). Only a copy
// the tracker can hold waits: never while stopping or with the table
// full, and never a newer serial of a zone already copied.
func (t *tracker) hold(n *Notify, backends []Backend, p *Policy) (send, held []Backend) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx.Err() != nil || t.total >= p.MaxTracked {
		return backends, nil
	}
	for _, be := range backends {
		bt := t.bes[be.Addr]
		var e *entry
		if bt != nil {
			e = bt.zones[n.Zone]
		}
		switch {
		case bt == nil, e != nil && !e.held:
			send = append(send, be)
		case e != nil || bt.nHeld > 0 || len(bt.zones)-bt.nHeld >= t.copyWindow(bt, p):
			held = append(held, be)
		default:
			send = append(send, be)
		}
	}
	return send, held
}

// copyWindow is how many copies bt may have unconfirmed (t.mu held):
// copy_qps x its cycle, at least timing.window worth. A
// secondary that serves transfers only when a reload hands over (NSD)
// confirms in batches, one reload cycle apart: a window shorter than
// its cycle would leave it idle for the rest of each cycle, since it
// only gets copies while the window has room.
func (t *tracker) copyWindow(bt *backendTrack, p *Policy) int {
	w := t.tm.window
	if bt != nil {
		w = max(w, t.cycle(bt))
	}
	return max(1, int(float64(p.CopyQPS)*w.Seconds()))
}

// cycle is how far apart bt confirms its batches of zones, as far as
// its mean time to confirm tells (t.mu held): cycleConfirmFactor/2
// times that, at most maxCycleFactor x timing.window. A backend that
// confirms each copy on its own has a short one.
func (t *tracker) cycle(bt *backendTrack) time.Duration {
	return min(time.Duration(bt.confirmAvg)*cycleConfirmFactor/2, t.tm.maxCycle())
}

// maxCycle is the longest cycle a backend's window may span.
func (tm timing) maxCycle() time.Duration { return maxCycleFactor * tm.window }

// cycleConfirmFactor/2 is how many mean confirmation times a backend's
// cycle spans: a batch confirmed once a cycle has a mean of about half
// the cycle, so 5/2 is the cycle and a quarter more.
const cycleConfirmFactor = 5

// cycleConfirmMultiple is cycleConfirmFactor/2 as a number (2.5), for the
// metric's help text and the docs that quote it.
const cycleConfirmMultiple = cycleConfirmFactor / 2.0

// maxCycleFactor bounds a cycle at this many times timing.window (80 s),
// more than the 75-s reload cycle of an NSD secondary with 400,000 zones
// on a 2-core machine (docs/performance.md); it keeps a secondary whose
// reload hangs from being fed more than a few windows.
const maxCycleFactor = 4

// confirmWeight: each confirmation moves a backend's mean confirmation
// time by 1/confirmWeight of the difference, so the mean follows a few
// hundred zones: about one reload's batch at the least.
const confirmWeight = 256

// add tracks the NOTIFY n, just copied to backends; its copies to held
// wait for their backends' windows.
func (t *tracker) add(n *Notify, backends, held []Backend, p *Policy) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addLocked(n, backends, false, p)
	t.addLocked(n, held, true, p)
}

// addLocked is add for one group of backends (t.mu held).
func (t *tracker) addLocked(n *Notify, backends []Backend, held bool, p *Policy) {
	now := t.now()
	first := int64(t.tm.firstCheck)
	k := key{zone: n.Zone, serial: n.Serial, hasSerial: true}
	if t.ctx.Err() != nil || len(backends) == 0 {
		return
	}
	ws := t.waiting[k]
	if ws == nil {
		ws = &waitState{all: true}
		t.waiting[k] = ws
	}
	for _, be := range backends {
		bt := t.bes[be.Addr]
		if bt == nil {
			qps := p.TrackQPS
			t.qps = qps
			bt = &backendTrack{be: be, zones: map[string]*entry{}, wake: make(chan struct{}, 1), lastProgress: now, lastAnswer: now,
				lim: rate.NewLimiter(rate.Limit(qps), max(1, qps/10)), rate: float64(qps), sem: make(chan struct{}, inFlightLimit(qps))}
			t.bes[be.Addr] = bt
		}
		bt.be = be
		if e := bt.zones[n.Zone]; e != nil {
			if serialGE(e.n.Serial, n.Serial) && e.n.Serial != n.Serial {
				continue // already tracking a newer serial
			}
			if e.n.Serial != n.Serial { // a newer serial
				t.release(key{zone: e.n.Zone, serial: e.n.Serial, hasSerial: true})
				ws.n++
				e.since = now
				bt.unlink(e)
				bt.append(e)
			}
			if e.held { // still waiting: the copy, when it goes, carries n
				e.n = n
				continue
			}
			// a newer serial, or the same one notified again: start over
			e.n, e.copied, e.resends, e.gap = n, now, 0, int32(t.tm.firstCheck/time.Millisecond)
			e.due = now + first
			if !e.inFlight {
				heap.Fix(&bt.due, int(e.idx))
			}
			continue
		}
		if t.total >= p.MaxTracked {
			ws.all = false
			t.d.m.untracked.Inc()
			t.d.logLimited("untracked", "notify tracking table full (notify.max_tracked): copy sent once, not tracked", "backend", be.Name, "zone", n.Zone, "max_tracked", p.MaxTracked)
			continue
		}
		if len(bt.zones) == 0 {
			bt.lastProgress = now // a backend idle until now is not stuck
		}
		e := &entry{n: n, copied: now, since: now, due: now + first, gap: int32(t.tm.firstCheck / time.Millisecond)}
		bt.zones[n.Zone] = e
		bt.append(e)
		if held {
			e.held, e.idx = true, -1
			bt.held = append(bt.held, e)
			bt.nHeld++
		} else {
			heap.Push(&bt.due, e)
		}
		t.total++
		ws.n++
		if !bt.running && !t.noWorkers {
			bt.running = true
			t.wg.Add(1)
			go t.work(bt)
		}
		select {
		case bt.wake <- struct{}{}:
		default:
		}
	}
	if ws.n == 0 {
		delete(t.waiting, k)
	}
	t.d.m.tracked.Set(float64(t.total))
}

// tracking reports whether k is being tracked on every backend it was
// copied to: then a NOTIFY for it again needs no copy, since the tracker
// re-sends to any backend that needs one.
func (t *tracker) tracking(k key) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ws := t.waiting[k]
	return ws != nil && ws.all
}

// append puts e at the newest end of bt's list (t.mu held).
func (bt *backendTrack) append(e *entry) {
	e.prev, e.next = bt.tail, nil
	if bt.tail != nil {
		bt.tail.next = e
	} else {
		bt.head = e
	}
	bt.tail = e
}

// unlink takes e out of bt's list (t.mu held).
func (bt *backendTrack) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		bt.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		bt.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// drop stops tracking e (t.mu held).
func (t *tracker) drop(bt *backendTrack, e *entry) {
	delete(bt.zones, e.n.Zone)
	bt.unlink(e)
	if e.held {
		e.held = false
		bt.nHeld--
	}
	if !e.inFlight && e.idx >= 0 {
		heap.Remove(&bt.due, int(e.idx))
	}
	t.total--
	t.release(key{zone: e.n.Zone, serial: e.n.Serial, hasSerial: true})
	t.d.m.tracked.Set(float64(t.total))
}

// release notes that one backend is done with k (t.mu held); when none
// is left waiting, every backend serves it.
func (t *tracker) release(k key) {
	if ws := t.waiting[k]; ws != nil {
		if ws.n--; ws.n <= 0 {
			delete(t.waiting, k)
		}
	}
}

// work is the worker of one backend: it exits when the backend has
// nothing left to track or the context ends. Each check waits for the
// backend's limiter and a free in-flight slot, then runs on its own
// goroutine.
func (t *tracker) work(bt *backendTrack) {
	defer t.wg.Done()
	t.mu.Lock()
	ctx := t.ctx
	t.mu.Unlock()
	var checks sync.WaitGroup
	defer checks.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		t.mu.Lock()
		if len(bt.zones) == 0 || ctx.Err() != nil {
			bt.running = false
			t.updateGauges(bt)
			t.mu.Unlock()
			return
		}
		out, again := t.releaseHeld(bt)
		if len(out) > 0 {
			be := bt.be
			t.mu.Unlock()
			for _, n := range out {
				t.d.copyTo(n, be)
			}
			continue
		}
		if again > 0 { // held copies wait for the copy pace only
			timer.Reset(again)
		}
		if len(bt.due) == 0 { // every entry is being checked
			t.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-bt.wake:
			case <-timer.C:
			}
			continue
		}
		e := bt.due[0]
		wait := time.Duration(e.due - t.now())
		if wait > 0 {
			t.updateGauges(bt)
			t.mu.Unlock()
			if again > 0 {
				wait = min(wait, again)
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
			case <-bt.wake:
			case <-timer.C:
			}
			continue
		}
		heap.Pop(&bt.due)
		e.inFlight = true
		zone, serial, be := e.n.Zone, e.n.Serial, bt.be
		t.mu.Unlock()

		if bt.lim.Wait(ctx) != nil {
			t.requeue(bt, e)
			continue
		}
		select {
		case bt.sem <- struct{}{}:
		case <-ctx.Done():
			t.requeue(bt, e)
			continue
		}
		t.d.m.soaQueries.WithLabelValues(be.Name).Inc()
		checks.Add(1)
		go func() {
			defer checks.Done()
			qctx, cancel := context.WithTimeout(ctx, t.tm.queryTimeout)
			got, err := t.querySOA(qctx, bt, be.Addr, zone)
			cancel()
			<-bt.sem
			t.check(bt, e, serial, got, err)
			select {
			case bt.wake <- struct{}{}:
			default:
			}
		}()
	}
}

// releaseHeld takes the held copies bt's window and copy pace allow now,
// oldest first, and starts tracking them (t.mu held). again > 0 when
// copies still wait only for the pace: try again after that long.
func (t *tracker) releaseHeld(bt *backendTrack) (out []*Notify, again time.Duration) {
	if bt.nHeld == 0 {
		bt.held = bt.held[:0]
		return nil, 0
	}
	p := t.d.policy.Load()
	window := t.copyWindow(bt, p)
	now := t.now()
	for len(bt.held) > 0 && len(bt.zones)-bt.nHeld < window {
		e := bt.held[0]
		if !e.held || bt.zones[e.n.Zone] != e {
			bt.held[0] = nil
			bt.held = bt.held[1:]
			continue
		}
		if !t.d.spareCopy(bt.be) {
			return out, time.Second / time.Duration(max(1, p.CopyQPS))
		}
		bt.held[0] = nil
		bt.held = bt.held[1:]
		e.held = false
		bt.nHeld--
		e.copied, e.due, e.gap = now, now+int64(t.tm.firstCheck), int32(t.tm.firstCheck/time.Millisecond)
		heap.Push(&bt.due, e)
		out = append(out, e.n)
	}
	return out, 0
}

// takeHeld returns, per backend, the copies still held, and forgets
// them: Run sends them when it stops, after the workers.
func (t *tracker) takeHeld() map[Backend][]*Notify {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[Backend][]*Notify{}
	for _, bt := range t.bes {
		for _, e := range bt.held {
			if e.held && bt.zones[e.n.Zone] == e {
				out[bt.be] = append(out[bt.be], e.n)
				e.held = false
			}
		}
		bt.held, bt.nHeld = nil, 0
	}
	return out
}

// querySOA asks be for zone's serial: with Options.QuerySOA if set,
// else on the backend's own client (opened on first use).
func (t *tracker) querySOA(ctx context.Context, bt *backendTrack, be netip.AddrPort, zone string) (uint32, error) {
	if t.d.o.QuerySOA != nil {
		return t.d.o.QuerySOA(ctx, be, zone)
	}
	t.mu.Lock()
	c := bt.soa
	if c == nil || bt.be.Addr != be {
		if c != nil {
			c.close()
		}
		var err error
		if c, err = newSOAClient(be); err != nil {
			t.mu.Unlock()
			return 0, err
		}
		bt.soa = c
	}
	t.mu.Unlock()
	return c.query(ctx, zone)
}

// closeClients closes the SOA clients (after the workers stopped).
func (t *tracker) closeClients() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, bt := range t.bes {
		if bt.soa != nil {
			bt.soa.close()
			bt.soa = nil
		}
	}
}

// requeue puts e back on the heap, unchecked (t.mu not held).
func (t *tracker) requeue(bt *backendTrack, e *entry) {
	t.mu.Lock()
	e.inFlight = false
	if bt.zones[e.n.Zone] == e {
		heap.Push(&bt.due, e)
	}
	t.mu.Unlock()
}

// resendGap is how old the last copy must be before re-send number
// resends+1: firstResend, doubling.
func (t *tracker) resendGap(resends uint8) int64 {
	return int64(t.tm.firstResend) << min(resends, 16)
}

// check acts on one SOA answer for e.
func (t *tracker) check(bt *backendTrack, e *entry, asked, got uint32, err error) {
	now := t.now()
	t.mu.Lock()
	t.adapt(bt, err)
	if err == nil {
		bt.lastAnswer = now
	}
	if now-bt.gaugesAt >= int64(100*time.Millisecond) { // a busy worker never waits: refresh here
		bt.gaugesAt = now
		t.updateGauges(bt)
	}
	e.inFlight = false
	if bt.zones[e.n.Zone] != e {
		t.mu.Unlock()
		return // dropped meanwhile
	}
	if err == nil && serialGE(got, e.n.Serial) {
		k := key{zone: e.n.Zone, serial: e.n.Serial, hasSerial: true}
		e.idx = -1
		t.drop(bt, e)
		done := t.waiting[k] == nil
		bt.lastProgress = now
		bt.newestConverged = max(bt.newestConverged, e.copied)
		bt.noteConfirmed(now - e.copied)
		t.mu.Unlock()
		t.d.m.converge.Observe(time.Duration(now - e.since).Seconds())
		if done {
			t.d.confirm(k)
		}
		return
	}
	if asked != e.n.Serial {
		// notified again meanwhile: check the new serial on schedule
		heap.Push(&bt.due, e)
		t.mu.Unlock()
		return
	}
	p := t.d.policy.Load()
	be := bt.be
	// Only an answer with the old serial counts: a backend that does not
	// answer is down or overloaded, and a copy would be lost or add to
	// its load; it is given up on after timing.unanswered.
	aged := now-e.copied >= t.resendGap(e.resends)
	stalled, overtaken := t.behind(bt, e, now)
	stuck := err == nil && aged && (stalled || overtaken)
	// A check that went unanswered gives the zone up only when the
	// backend has answered none for that long (a backend whose socket
	// overflows now and then still answers most).
	if err != nil && now-bt.lastAnswer >= int64(t.tm.unanswered) && now-e.copied >= int64(t.tm.unanswered) {
		stuck, e.resends = true, uint8(min(255, p.Retries))
	}
	var resend *Notify
	switch {
	case stuck && int(e.resends) < p.Retries && !t.d.spareCopy(be):
		// Re-sends use only the copy pace first copies leave over: in a
		// storm they wait, and the zone is checked again later.
		e.gap = int32(min(2*time.Duration(e.gap)*time.Millisecond, t.tm.maxCheckGap) / time.Millisecond)
		t.d.m.resendsDeferred.WithLabelValues(be.Name).Inc()
	case stuck && int(e.resends) < p.Retries:
		e.resends++
		e.copied = now
		e.gap = int32(t.tm.firstCheck / time.Millisecond)
		resend = e.n
		if !overtaken {
			// A backend converging nothing at all (down, or its primary
			// slow) gets one probe per stall period, not every pending
			// zone at once, nor each zone's retries in a row.
			bt.lastProgress = now
		}
	case stuck:
		e.idx = -1
		t.drop(bt, e)
		t.mu.Unlock()
		t.d.forget(key{zone: e.n.Zone, serial: e.n.Serial, hasSerial: true})
		t.d.m.givenUp.WithLabelValues(be.Name).Inc()
		msg := "no answer"
		if err == nil {
			msg = fmt.Sprintf("serial %d", got)
		}
		t.d.logLimited("give_up:"+be.Name, "backend did not reach the notified serial, giving up", "backend", be.Name, "zone", e.n.Zone,
			"serial", e.n.Serial, "has", msg, "resends", e.resends, "after", time.Duration(now-e.since).Round(time.Millisecond).String())
		return
	default:
		e.gap = int32(min(2*time.Duration(e.gap)*time.Millisecond, t.tm.maxCheckGap) / time.Millisecond)
	}
	e.due = now + int64(time.Duration(e.gap)*time.Millisecond)
	heap.Push(&bt.due, e)
	t.mu.Unlock()
	if resend != nil {
		t.d.m.resends.WithLabelValues(be.Name).Inc()
		t.d.copyTo(resend, be)
	}
}

// behind reports whether bt looks stalled (it has converged no zone for
// a while) or has overtaken e (it converged a zone copied well after e's
// copy), either of which makes e worth a re-send (t.mu held).
//
// Progress can only be seen as fast as the zones are checked: with many
// pending, a full round of checks takes pending/rate (the current, maybe
// backed-off rate), so a backend looks stalled only after that much
// more. A backend that confirms in batches (see copyWindow) converges
// nothing between batches and finishes the zones of one batch in any
// order, so both margins are at least its cycle.
func (t *tracker) behind(bt *backendTrack, e *entry, now int64) (stalled, overtaken bool) {
	stall, cycle := int64(t.tm.stallAfter), int64(t.cycle(bt))
	round := int64(float64(len(bt.zones)-bt.nHeld) / max(1, bt.rate) * float64(time.Second))
	stalled = now-bt.lastProgress >= max(stall, cycle)+round
	overtaken = bt.newestConverged-e.copied >= max(overtakeFactor*stall, cycle)
	return stalled, overtaken
}

// noteConfirmed adds one copy's time to confirmation to bt's mean
// (t.mu held).
func (bt *backendTrack) noteConfirmed(d int64) {
	if bt.confirmAvg == 0 {
		bt.confirmAvg = max(1, d)
		return
	}
	bt.confirmAvg += (d - bt.confirmAvg) / confirmWeight
}

// overtakeFactor: a zone is overtaken when a zone copied overtakeFactor
// x stallAfter after it converged first. Busy secondaries finish zones
// somewhat out of order (retried SOA queries, parallel transfers): a
// smaller margin re-sends zones they are still working on.
const overtakeFactor = 5

// minTrackQPS is the least a backend's tracking rate backs off to.
const minTrackQPS = 10

// adapt moves bt's tracking rate after a check (t.mu held): halved when
// the query went unanswered, at most once per 100 ms, up by 2% of
// track_qps per answer, within [minTrackQPS, track_qps].
func (t *tracker) adapt(bt *backendTrack, err error) {
	top := float64(max(1, t.qps))
	r := bt.rate
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		if now := t.now(); now-bt.lastBackoff >= int64(100*time.Millisecond) {
			bt.lastBackoff = now
			r = max(min(minTrackQPS, top), r/2)
		}
	case err == nil:
		r = min(top, r+top/50)
	}
	if r != bt.rate {
		bt.rate = r
		bt.lim.SetLimit(rate.Limit(r))
		bt.lim.SetBurst(max(1, int(r/10)))
		t.d.m.trackRate.WithLabelValues(bt.be.Name).Set(r)
	}
}

// updateGauges sets the backend's pending count and oldest age (t.mu
// held).
func (t *tracker) updateGauges(bt *backendTrack) {
	t.d.m.pending.WithLabelValues(bt.be.Name).Set(float64(len(bt.zones)))
	t.d.m.held.WithLabelValues(bt.be.Name).Set(float64(bt.nHeld))
	t.d.m.window.WithLabelValues(bt.be.Name).Set(float64(t.copyWindow(bt, t.d.policy.Load())))
	t.d.m.oldest.WithLabelValues(bt.be.Name).Set(t.oldest(bt).Seconds())
}

// oldest is the age of bt's oldest pending serial (t.mu held).
func (t *tracker) oldest(bt *backendTrack) time.Duration {
	if bt.head == nil {
		return 0
	}
	return time.Duration(t.now() - bt.head.since)
}

// trackStats is the tracker's part of Stats.
type trackStats struct {
	pending map[string]int
	oldest  map[string]time.Duration
	tracked int
}

// stats returns, per backend name, the zones not converged yet and the
// age of the oldest, and the pairs tracked in all.
func (t *tracker) stats() trackStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := trackStats{pending: map[string]int{}, oldest: map[string]time.Duration{}, tracked: t.total}
	for _, bt := range t.bes {
		st.pending[bt.be.Name] = len(bt.zones)
		st.oldest[bt.be.Name] = t.oldest(bt)
	}
	return st
}

// pending returns, per backend name, the zones not converged yet and the
// age of the oldest.
func (t *tracker) pending() (map[string]int, map[string]time.Duration) {
	st := t.stats()
	return st.pending, st.oldest
}

// entryHeap orders entries by due time.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = int32(i), int32(j)
}
func (h *entryHeap) Push(x any) { e := x.(*entry); e.idx = int32(len(*h)); *h = append(*h, e) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// serialGE compares SOA serials with RFC 1982 arithmetic: a >= b.
func serialGE(a, b uint32) bool { return int32(a-b) >= 0 }

// querySOA asks server for zone's SOA serial over UDP from the balancer's
// own address.
func querySOA(ctx context.Context, server netip.AddrPort, zone string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	c := &dns.Client{Net: "udp"}
	r, _, err := c.ExchangeContext(ctx, m, server.String())
	if err != nil {
		return 0, err
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("no SOA for %s from %s (rcode %s)", zone, server, dns.RcodeToString[r.Rcode])
}
