package healthcheck

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/dnslb/dnslb/internal/health"
)

// Target is one backend to check.
type Target struct {
	Name  string
	Addr  netip.AddrPort
	Check Check
	// Initial is the state a new target starts in: health.Pending (the zero
	// value), or health.Up or health.Down when it is known already (a graceful restart
	// hands the previous process's verdicts over).
	Initial health.State
}

// Change is one state transition.
type Change struct {
	Backend  string
	From, To health.State
	Reason   string
	// Failed is how many probes failed in a row (0 for passive changes).
	Failed int
	// Passive is true when live traffic, not a probe, caused the change.
	Passive bool
}

// Status is a target's current view, for /status.
type Status struct {
	State     health.State
	Reason    string // why it is in this state (last transition's reason)
	Since     time.Time
	LastProbe string // the last probe's reason, e.g. "answer NOERROR" or "timeout after 500ms"
	LastRTT   time.Duration
}

// Options configure a Checker. All fields are optional.
type Options struct {
	// OnChange is called for every state change, from the target's own
	// goroutine (or PassiveFailure's caller); it must not block.
	OnChange func(Change)
	// OnProbe receives each successful probe's round-trip time.
	OnProbe func(backend string, rtt time.Duration)
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives dnslb_healthcheck_probes_total.
	Registerer prometheus.Registerer

	exchange exchangeFunc // tests only
}

// Checker runs the checks of a set of targets.
type Checker struct {
	o           Options
	probes      *prometheus.CounterVec
	passiveHeld *prometheus.CounterVec
	heldLog     *rate.Limiter // one "kept up" line per 10 s
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	mu      sync.Mutex
	targets map[string]*target
}

// target is one backend's checking loop and state.
type target struct {
	Target
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	status Status
	ok     int // successes in a row
	failed int // failures in a row
}

// New returns a Checker with no targets.
func New(o Options) (*Checker, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.exchange == nil {
		o.exchange = exchange
	}
	c := &Checker{o: o, targets: map[string]*target{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.probes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnslb_healthcheck_probes_total",
		Help: "Health-check probes sent to a backend, by result (ok, timeout, error, malformed, mismatch, rcode, not_authoritative, missing_answer).",
	}, []string{"backend", "result"})
	c.passiveHeld = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnslb_healthcheck_passive_held_total",
		Help: "Passive failures (live-traffic timeouts) that took no backend down because health_check.passive.max_down_percent of the backends were down already.",
	}, []string{"backend"})
	c.heldLog = rate.NewLimiter(rate.Every(10*time.Second), 1)
	if o.Registerer != nil {
		for _, col := range []prometheus.Collector{c.probes, c.passiveHeld} {
			if err := o.Registerer.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// Apply makes the checked set match targets: new names start pending and
// are probed at once; removed names stop; a changed check restarts the
// loop but keeps the state unless the address changed (a new backend).
func (c *Checker) Apply(targets []Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := map[string]bool{}
	for _, t := range targets {
		keep[t.Name] = true
		t.Check = t.Check.withDefaults()
		old := c.targets[t.Name]
		if old != nil && old.Target.Addr == t.Addr && checksEqual(old.Check, t.Check) {
			continue
		}
		nt := &target{Target: t, status: Status{State: health.Pending, Reason: "new backend, waiting for checks", Since: time.Now()}}
		if t.Initial != health.Pending {
			nt.status.State, nt.status.Reason = t.Initial, "inherited from the previous process (graceful restart)"
		}
		if old != nil {
			c.stopTarget(old)
			if old.Addr == t.Addr {
				old.mu.Lock()
				nt.status, nt.ok, nt.failed = old.status, old.ok, old.failed
				old.mu.Unlock()
			}
		}
		c.targets[t.Name] = nt
		c.startTarget(nt)
	}
	for name, t := range c.targets {
		if !keep[name] {
			c.stopTarget(t)
			delete(c.targets, name)
			for _, r := range []Result{OK, Timeout, NetError, Malformed, Mismatch, BadRcode, NotAuthoritative, MissingAnswer} {
				c.probes.DeleteLabelValues(name, r.String())
			}
		}
	}
}

func checksEqual(a, b Check) bool {
	return slices.Equal(a.Rcodes, b.Rcodes) && a.Name == b.Name && a.Type == b.Type && a.Class == b.Class &&
		a.RD == b.RD && a.Authoritative == b.Authoritative && a.AnswerContains == b.AnswerContains &&
		a.Transport == b.Transport && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.Rise == b.Rise && a.Fall == b.Fall && a.ProxyHeader == b.ProxyHeader
}

func (c *Checker) startTarget(t *target) {
	ctx, cancel := context.WithCancel(c.ctx)
	t.stop, t.done = cancel, make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(t.done)
		c.loop(ctx, t)
	}()
}

func (c *Checker) stopTarget(t *target) {
	t.stop()
	<-t.done
}

// loop probes t until ctx ends: the first probe after a short random delay
// (so that many targets do not probe in step), then every interval ±10%.
func (c *Checker) loop(ctx context.Context, t *target) {
	wait := time.Duration(rand.Int64N(int64(t.Check.Interval)/10 + 1))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		o := probe(ctx, c.o.exchange, t.Check, t.Addr)
		if ctx.Err() != nil {
			return
		}
		c.record(t, o)
		timer.Reset(jitter(t.Check.Interval))
	}
}

// jitter returns d ± 10%.
func jitter(d time.Duration) time.Duration {
	span := int64(d) / 5
	if span <= 0 {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(rand.Int64N(span+1))
}

// record applies one probe outcome with rise/fall hysteresis.
func (c *Checker) record(t *target, o outcome) {
	c.probes.WithLabelValues(t.Name, o.result.String()).Inc()
	if o.result == OK && c.o.OnProbe != nil {
		c.o.OnProbe(t.Name, o.rtt)
	}
	t.mu.Lock()
	t.status.LastProbe, t.status.LastRTT = o.reason, o.rtt
	var ch *Change
	if o.result == OK {
		t.ok++
		t.failed = 0
		if t.status.State != health.Up && t.ok >= t.Check.Rise {
			ch = c.transition(t, health.Up, o.reason, 0, false)
		}
	} else {
		t.failed++
		t.ok = 0
		if t.status.State != health.Down && t.failed >= t.Check.Fall {
			ch = c.transition(t, health.Down, o.reason, t.failed, false)
		}
	}
	t.mu.Unlock()
	c.notify(ch)
}

// transition changes t's state; t.mu is held.
func (c *Checker) transition(t *target, to health.State, reason string, failed int, passive bool) *Change {
	ch := &Change{Backend: t.Name, From: t.status.State, To: to, Reason: reason, Failed: failed, Passive: passive}
	t.status.State, t.status.Reason, t.status.Since = to, reason, time.Now()
	return ch
}

func (c *Checker) notify(ch *Change) {
	if ch == nil {
		return
	}
	args := []any{"backend", ch.Backend, "from", ch.From.String(), "to", ch.To.String(), "reason", ch.Reason}
	if ch.Passive {
		args = append(args, "detection", "passive")
	} else if ch.To == health.Down {
		args = append(args, "probes_failed", ch.Failed)
	}
	if ch.To == health.Up {
		c.o.Logger.Info("backend state change", args...)
	} else {
		c.o.Logger.Warn("backend state change", args...)
	}
	if c.o.OnChange != nil {
		c.o.OnChange(*ch)
	}
}

// PassiveFailure takes a target down at once because live traffic showed
// it failing (e.g. consecutive timeouts); it needs `rise` successful probes
// to come back. Unknown names and targets already down are ignored.
//
// maxDownPercent caps it: while that share of the targets (at least
// one) is down already, for any reason, live traffic takes no further
// target down, and the call
// is counted in dnslb_healthcheck_passive_held_total instead. Timeouts
// under load are what overload looks like; taking an overloaded backend
// out moves its share onto the others, which then time out too, until
// every backend is down (a cascade). Probes still take down any target
// that stops answering them. maxDownPercent <= 0 or >= 100: no cap.
func (c *Checker) PassiveFailure(name, reason string, maxDownPercent int) {
	c.mu.Lock()
	t := c.targets[name]
	down, maxDown, total := 0, 0, len(c.targets)
	if t != nil && maxDownPercent > 0 && maxDownPercent < 100 {
		maxDown = max(1, total*maxDownPercent/100)
		for _, o := range c.targets {
			o.mu.Lock()
			if o.status.State == health.Down {
				down++
			}
			o.mu.Unlock()
		}
	}
	c.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	var ch *Change
	held := false
	switch {
	case t.status.State == health.Down:
	case maxDown > 0 && down >= maxDown:
		held = true
	default:
		t.ok = 0
		ch = c.transition(t, health.Down, reason, 0, true)
	}
	t.mu.Unlock()
	if held {
		c.passiveHeld.WithLabelValues(name).Inc()
		if c.heldLog.Allow() {
			c.o.Logger.Warn("backend kept up despite live-traffic failures: too many backends down already",
				"backend", name, "reason", reason, "down", down, "of", total, "max_down_percent", maxDownPercent)
		}
	}
	c.notify(ch)
}

// Status returns every target's status by name.
func (c *Checker) Status() map[string]Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Status, len(c.targets))
	for name, t := range c.targets {
		t.mu.Lock()
		out[name] = t.status
		t.mu.Unlock()
	}
	return out
}

// Names returns the checked targets' names, sorted.
func (c *Checker) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.targets))
	for n := range c.targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stop ends every check and waits for the loops to return.
func (c *Checker) Stop() {
	c.cancel()
	c.wg.Wait()
}
