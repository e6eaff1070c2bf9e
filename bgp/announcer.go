package bgp

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Attrs are the path attributes every announced route carries.
type Attrs struct {
	// Communities are RFC 1997 communities, as 32-bit values.
	Communities []uint32
	// MED is the multi-exit discriminator.
	MED uint32
	// NextHop4 and NextHop6 are the next hops of the IPv4 and IPv6
	// routes; the zero Addr means each session's local address.
	NextHop4, NextHop6 netip.Addr
}

// equal reports whether a and b are the same attributes.
func (a Attrs) equal(b Attrs) bool {
	return slices.Equal(a.Communities, b.Communities) && a.MED == b.MED && a.NextHop4 == b.NextHop4 && a.NextHop6 == b.NextHop6
}

// Routes is where announcements go: a BGP speaker ([Speaker]) or the
// kernel's routing table ([Kernel]). Announce replaces a route already
// announced (new attributes); Withdraw of a route not announced is not an
// error.
type Routes interface {
	Announce(ctx context.Context, prefix netip.Prefix, a Attrs) error
	Withdraw(ctx context.Context, prefix netip.Prefix) error
}

// Options configure an [Announcer].
type Options struct {
	// Routes receives the announcements. Required.
	Routes Routes
	// Attrs are the initial attributes (see [Announcer.SetAttrs]).
	Attrs Attrs
	// Logger gets one line per announce and withdraw; nil discards.
	Logger *slog.Logger
	// Registerer gets dnslb_bgp_announced and
	// dnslb_bgp_route_changes_total; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// PrefixStatus is one VIP's state, for /status.
type PrefixStatus struct {
	Prefix    netip.Prefix
	Announced bool
	Verdict   Verdict
	Since     time.Time // when Announced last changed
	Err       string    // the last failure to announce or withdraw, "" after a success
}

// Announcer keeps the routes of a set of VIPs in line with their
// verdicts: Update announces the fit ones and withdraws the others, once
// per change. A call that fails is retried by the next Update. It is safe
// for concurrent use.
type Announcer struct {
	routes  Routes
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	mu       sync.Mutex
	attrs    Attrs
	prefixes map[netip.Prefix]*PrefixStatus
}

// New returns an Announcer with nothing announced.
func New(o Options) *Announcer {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Announcer{routes: o.Routes, log: o.Logger, now: o.Now, metrics: newMetrics(o.Registerer),
		attrs: o.Attrs, prefixes: map[netip.Prefix]*PrefixStatus{}}
}

// Update applies verdicts, one per VIP: a fit VIP is announced unless it
// is, an unfit one withdrawn if it is. A VIP that has no verdict any more
// (a reload removed it) is withdrawn and forgotten. It returns the number
// of calls that failed.
func (a *Announcer) Update(ctx context.Context, verdicts map[netip.Prefix]Verdict) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	failed := 0
	for _, p := range slices.SortedFunc(maps.Keys(a.prefixes), comparePrefix) {
		if _, ok := verdicts[p]; !ok {
			st := a.prefixes[p]
			if st.Announced && !a.change(ctx, st, Verdict{Reason: "no longer configured"}) {
				failed++
				continue
			}
			delete(a.prefixes, p)
			a.metrics.announced.DeleteLabelValues(p.String())
		}
	}
	for _, p := range slices.SortedFunc(maps.Keys(verdicts), comparePrefix) {
		v := verdicts[p]
		st := a.prefixes[p]
		if st == nil {
			st = &PrefixStatus{Prefix: p, Since: a.now()}
			a.prefixes[p] = st
			a.metrics.announced.WithLabelValues(p.String()).Set(0)
		}
		if st.Announced == v.Fit && st.Err == "" {
			st.Verdict = v // the reason may change while the decision holds
			continue
		}
		if !a.change(ctx, st, v) {
			failed++
		}
	}
	return failed
}

// change announces or withdraws st's prefix as v says, logs it and
// reports whether it worked. a.mu is held.
func (a *Announcer) change(ctx context.Context, st *PrefixStatus, v Verdict) bool {
	var err error
	action := "withdraw"
	if v.Fit {
		action = "announce"
		err = a.routes.Announce(ctx, st.Prefix, a.attrs)
	} else {
		err = a.routes.Withdraw(ctx, st.Prefix)
	}
	st.Verdict = v
	if err != nil {
		if st.Err != err.Error() {
			a.log.Error("bgp: "+action+" failed, retrying", "prefix", st.Prefix.String(), "reason", v.Reason, "err", err)
		}
		st.Err = err.Error()
		a.metrics.failures.WithLabelValues(action).Inc()
		return false
	}
	st.Err = ""
	if st.Announced != v.Fit {
		st.Announced, st.Since = v.Fit, a.now()
		a.metrics.changes.WithLabelValues(action).Inc()
		msg := "bgp: withdrawn"
		if v.Fit {
			msg = "bgp: announced"
		}
		a.log.Info(msg, "prefix", st.Prefix.String(), "reason", v.Reason)
	}
	if v.Fit {
		a.metrics.announced.WithLabelValues(st.Prefix.String()).Set(1)
	} else {
		a.metrics.announced.WithLabelValues(st.Prefix.String()).Set(0)
	}
	return true
}

// SetAttrs changes the attributes of the routes and announces the
// announced ones again with them (a reload: no session is reset). It
// returns the number of calls that failed.
func (a *Announcer) SetAttrs(ctx context.Context, at Attrs) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.attrs.equal(at) {
		return 0
	}
	a.attrs = at
	failed := 0
	for _, p := range slices.SortedFunc(maps.Keys(a.prefixes), comparePrefix) {
		st := a.prefixes[p]
		if !st.Announced {
			continue
		}
		if err := a.routes.Announce(ctx, p, at); err != nil {
			st.Err = err.Error()
			failed++
			continue
		}
		a.log.Info("bgp: announced again with new attributes", "prefix", p.String(), "med", at.MED, "communities", len(at.Communities))
	}
	return failed
}

// WithdrawAll withdraws every announced VIP with reason (a shutdown) and
// returns the number of calls that failed.
func (a *Announcer) WithdrawAll(ctx context.Context, reason string) int {
	a.mu.Lock()
	vs := make(map[netip.Prefix]Verdict, len(a.prefixes))
	for p := range a.prefixes {
		vs[p] = Verdict{Reason: reason}
	}
	a.mu.Unlock()
	return a.Update(ctx, vs)
}

// Announced reports whether any VIP is announced.
func (a *Announcer) Announced() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, st := range a.prefixes {
		if st.Announced {
			return true
		}
	}
	return false
}

// Status returns every VIP's state, in address order.
func (a *Announcer) Status() []PrefixStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]PrefixStatus, 0, len(a.prefixes))
	for _, p := range slices.SortedFunc(maps.Keys(a.prefixes), comparePrefix) {
		out = append(out, *a.prefixes[p])
	}
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// HostRoute returns the host route of addr: a /32 or /128.
func HostRoute(addr netip.Addr) netip.Prefix {
	return netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
}
