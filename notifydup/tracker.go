package notifydup

import (
	"container/heap"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// Convergence tracking: one worker per backend polls the SOA of the zones
// notified to it, earliest due first, at most trackQPS queries a second,
// until the backend serves each notified serial. A copy is sent again only
// when the backend looks stuck: the zone's serial is still old, the copy
// is older than firstResend, and the backend has converged no zone for
// stallAfter. A secondary working through a bulk change (BIND takes about
// 10 s for 200 zones at its default serial-query-rate) keeps converging
// zones, so it is not sent copies it would only queue ("refresh in
// progress, refresh check queued"); one that lost a copy, or was down,
// stops converging and gets it again.
type timing struct {
	// trackQPS bounds the SOA queries to one backend per second.
	trackQPS float64
	// firstCheck is when a zone's SOA is first asked; later checks back
	// off by doubling up to maxCheckGap.
	firstCheck, maxCheckGap time.Duration
	// firstResend is the earliest a copy is sent again: later than a
	// healthy secondary takes to refresh one zone.
	firstResend time.Duration
	// stallAfter is how long a backend must have converged no zone to
	// look stuck.
	stallAfter time.Duration
	// maxTracked bounds the zones tracked over all backends; beyond it
	// copies are sent once and not tracked.
	maxTracked int
}

// defaultTiming is the tracking schedule; tests shorten it.
var defaultTiming = timing{trackQPS: 200, firstCheck: 250 * time.Millisecond, maxCheckGap: 4 * time.Second,
	firstResend: time.Second, stallAfter: 2 * time.Second, maxTracked: 100000}

// entry is one zone a backend has not been seen to serve the notified
// serial of.
type entry struct {
	n        *Notify
	key      key
	copied   time.Time // the last copy (first or re-send)
	since    time.Time // the first copy of this serial
	due      time.Time // the next SOA check
	gap      time.Duration
	resends  int
	idx      int // in the heap
	inFlight bool
}

// backendTrack is the tracking state of one backend.
type backendTrack struct {
	be           Backend
	zones        map[string]*entry
	due          entryHeap
	wake         chan struct{}
	lastProgress time.Time
	lim          *rate.Limiter
	running      bool
}

// tracker holds the per-backend state.
type tracker struct {
	d       *Duplicator
	tm      timing
	ctx     context.Context
	mu      sync.Mutex
	bes     map[netip.AddrPort]*backendTrack
	total   int
	waiting map[key]int // backends that have not converged to the key yet
	wg      sync.WaitGroup
}

func newTracker(d *Duplicator, tm timing) *tracker {
	return &tracker{d: d, tm: tm, ctx: context.Background(), bes: map[netip.AddrPort]*backendTrack{}, waiting: map[key]int{}}
}

// start makes the workers run until ctx is done.
func (t *tracker) start(ctx context.Context) {
	t.mu.Lock()
	t.ctx = ctx
	t.mu.Unlock()
}

// wait waits for the workers to stop (after the context ended).
func (t *tracker) wait() { t.wg.Wait() }

// add tracks the NOTIFY n, just copied to backends.
func (t *tracker) add(n *Notify, backends []Backend) {
	now := time.Now()
	k := key{zone: n.Zone, serial: n.Serial, hasSerial: true}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx.Err() != nil {
		return
	}
	for _, be := range backends {
		bt := t.bes[be.Addr]
		if bt == nil {
			bt = &backendTrack{be: be, zones: map[string]*entry{}, wake: make(chan struct{}, 1),
				lastProgress: now, lim: rate.NewLimiter(rate.Limit(t.tm.trackQPS), max(1, int(t.tm.trackQPS/10)))}
			t.bes[be.Addr] = bt
		}
		bt.be = be
		if e := bt.zones[n.Zone]; e != nil {
			if serialGE(e.n.Serial, n.Serial) && e.n.Serial != n.Serial {
				continue // already tracking a newer serial
			}
			if e.key != k { // a newer serial
				t.release(e.key)
				t.waiting[k]++
				e.since = now
			}
			// a newer serial, or the same one notified again: start over
			e.n, e.key, e.copied, e.resends, e.gap = n, k, now, 0, t.tm.firstCheck
			e.due = now.Add(t.tm.firstCheck)
			if !e.inFlight {
				heap.Fix(&bt.due, e.idx)
			}
			continue
		}
		if t.total >= t.tm.maxTracked {
			t.d.m.untracked.Inc()
			t.d.logLimited("untracked", "notify tracking table full: copy sent once, not tracked", "backend", be.Name, "zone", n.Zone, "max", t.tm.maxTracked)
			continue
		}
		if len(bt.zones) == 0 {
			bt.lastProgress = now // a backend idle until now is not stuck
		}
		e := &entry{n: n, key: k, copied: now, since: now, due: now.Add(t.tm.firstCheck), gap: t.tm.firstCheck}
		bt.zones[n.Zone] = e
		heap.Push(&bt.due, e)
		t.total++
		t.waiting[k]++
		t.d.m.pending.WithLabelValues(be.Name).Set(float64(len(bt.zones)))
		if !bt.running {
			bt.running = true
			t.wg.Add(1)
			go t.work(bt)
		}
		select {
		case bt.wake <- struct{}{}:
		default:
		}
	}
}

// release notes that one backend is done with k (t.mu held); when none
// is left waiting, every backend serves it.
func (t *tracker) release(k key) {
	if t.waiting[k]--; t.waiting[k] <= 0 {
		delete(t.waiting, k)
	}
}

// work is the worker of one backend: it exits when the backend has
// nothing left to track or the context ends.
func (t *tracker) work(bt *backendTrack) {
	defer t.wg.Done()
	t.mu.Lock()
	ctx := t.ctx
	t.mu.Unlock()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		t.mu.Lock()
		if len(bt.zones) == 0 || ctx.Err() != nil {
			bt.running = false
			t.d.m.pending.WithLabelValues(bt.be.Name).Set(float64(len(bt.zones)))
			t.d.m.oldest.WithLabelValues(bt.be.Name).Set(0)
			t.mu.Unlock()
			return
		}
		e := bt.due[0]
		wait := time.Until(e.due)
		if wait > 0 {
			t.mu.Unlock()
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
		zone, serial := e.n.Zone, e.n.Serial
		t.mu.Unlock()

		if bt.lim.Wait(ctx) != nil {
			t.mu.Lock()
			e.inFlight = false
			heap.Push(&bt.due, e)
			t.mu.Unlock()
			continue
		}
		t.d.m.soaQueries.WithLabelValues(bt.be.Name).Inc()
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		got, err := t.d.o.QuerySOA(qctx, bt.be.Addr, zone)
		cancel()
		t.check(bt, e, serial, got, err)
	}
}

// check acts on one SOA answer for e.
func (t *tracker) check(bt *backendTrack, e *entry, asked, got uint32, err error) {
	now := time.Now()
	t.mu.Lock()
	e.inFlight = false
	if bt.zones[e.n.Zone] != e {
		t.mu.Unlock()
		return // dropped meanwhile
	}
	if err == nil && serialGE(got, e.n.Serial) {
		delete(bt.zones, e.n.Zone)
		t.total--
		t.release(e.key)
		done := t.waiting[e.key] == 0
		bt.lastProgress = now
		t.updateGauges(bt, now)
		t.mu.Unlock()
		t.d.m.converge.Observe(now.Sub(e.since).Seconds())
		if done {
			t.d.confirm(e.key)
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
	stuck := now.Sub(e.copied) >= t.tm.firstResend && now.Sub(bt.lastProgress) >= t.tm.stallAfter
	var resend *Notify
	switch {
	case stuck && e.resends < p.Retries:
		e.resends++
		e.copied = now
		e.gap = t.tm.firstCheck
		resend = e.n
		bt.lastProgress = now // give the re-sent copy a stall period of its own
	case stuck:
		delete(bt.zones, e.n.Zone)
		t.total--
		t.release(e.key)
		t.updateGauges(bt, now)
		t.mu.Unlock()
		t.d.forget(e.key)
		msg := "no answer"
		if err == nil {
			msg = fmt.Sprintf("serial %d", got)
		}
		t.d.log.Warn("backend did not reach the notified serial, giving up", "backend", bt.be.Name, "zone", e.n.Zone,
			"serial", e.n.Serial, "has", msg, "resends", e.resends, "after", now.Sub(e.since).Round(time.Millisecond).String())
		return
	default:
		e.gap = min(2*e.gap, t.tm.maxCheckGap)
	}
	e.due = now.Add(e.gap)
	heap.Push(&bt.due, e)
	t.updateGauges(bt, now)
	t.mu.Unlock()
	if resend != nil {
		t.d.m.resends.WithLabelValues(bt.be.Name).Inc()
		t.d.copyTo(resend, bt.be)
	}
}

// updateGauges sets the backend's pending count and oldest age (t.mu
// held). The oldest is found by a scan only when the heap is small, else
// approximated by the heap's earliest due entry.
func (t *tracker) updateGauges(bt *backendTrack, now time.Time) {
	t.d.m.pending.WithLabelValues(bt.be.Name).Set(float64(len(bt.zones)))
	t.d.m.oldest.WithLabelValues(bt.be.Name).Set(oldest(bt, now).Seconds())
}

func oldest(bt *backendTrack, now time.Time) time.Duration {
	var old time.Duration
	if len(bt.zones) > 1024 {
		if len(bt.due) > 0 {
			return now.Sub(bt.due[0].since)
		}
		return 0
	}
	for _, e := range bt.zones {
		old = max(old, now.Sub(e.since))
	}
	return old
}

// pending returns, per backend name, the zones not converged yet and the
// age of the oldest.
func (t *tracker) pending() (map[string]int, map[string]time.Duration) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	n, o := map[string]int{}, map[string]time.Duration{}
	for _, bt := range t.bes {
		n[bt.be.Name] = len(bt.zones)
		o[bt.be.Name] = oldest(bt, now)
	}
	return n, o
}

// entryHeap orders entries by due time.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) { e := x.(*entry); e.idx = len(*h); *h = append(*h, e) }
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
