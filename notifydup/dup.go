package notifydup

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Backend is one copy target.
type Backend struct {
	Name string
	Addr netip.AddrPort
}

// Policy is the part of the options a reload may change.
type Policy struct {
	Primaries    []netip.Prefix // sources whose NOTIFYs are copied; others are refused
	MaxPerSecond int            // per primary address; default 10000
	// DedupWindow is how long a (zone, serial) that every backend was
	// seen to serve is remembered: a NOTIFY for it within the window is
	// answered without a copy. 0: always copy.
	DedupWindow time.Duration
	// Retries is how many times a copy is sent again to a backend that
	// looks stuck; 0 turns convergence tracking off.
	Retries int
	// Keys sign the answers to NOTIFYs signed with one of them.
	Keys []TSIGKey
	// TrackQPS bounds the SOA queries convergence tracking sends to one
	// backend per second; default DefaultTrackQPS.
	TrackQPS int
	// MaxTracked bounds the (zone, backend) pairs tracked at once, over
	// all backends; beyond it a copy is sent once and not tracked.
	// Default DefaultMaxTracked.
	MaxTracked int
	// CopyQPS paces the copies (first copies and re-sends) to each
	// backend; default DefaultCopyQPS. A NOTIFY is answered once its
	// copies are out, so a primary flushing a storm is slowed to this
	// pace instead of bursting into the secondaries' receive buffers.
	CopyQPS int
}

// DefaultCopyQPS is Policy.CopyQPS's default.
const DefaultCopyQPS = 200

// Options configure a Duplicator.
type Options struct {
	// Interface is where the copies leave (the VIP's interface): it is
	// checked at Open.
	Interface string
	Policy    Policy
	// Backends returns the current copy targets (called per NOTIFY).
	Backends func() []Backend
	// IsMaster reports whether this node holds vip, the address a NOTIFY
	// was sent to (the VRRP master of its instance); nil means always. A
	// node that does not copies nothing and answers nothing.
	IsMaster func(vip netip.Addr) bool
	// QuerySOA asks a backend for a zone's SOA serial (convergence
	// tracking); default: UDP queries from the balancer's own address,
	// one socket per backend with many queries in flight.
	QuerySOA   func(ctx context.Context, server netip.AddrPort, zone string) (uint32, error)
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	sender sender  // tests: replaces the real injector
	timing *timing // tests: a faster tracking schedule
}

// sender delivers one copy.
type sender interface {
	send(n *Notify, to netip.AddrPort) error
}

// Verdict is what Notify decided about one NOTIFY.
type Verdict uint8

const (
	// Ignore: no answer, so that the primary sends it again (not master,
	// over rate, queue full, stopping).
	Ignore Verdict = iota
	// Refuse: answer REFUSED (not from a primary, or malformed).
	Refuse
	// Accept: done is called once the copies have been sent.
	Accept
)

// key names a NOTIFY for dedup: the zone and the serial it announces
// (NOTIFYs without a serial are keyed by zone alone).
type key struct {
	zone      string
	serial    uint32
	hasSerial bool
}

// job is one NOTIFY waiting for its copies, with everyone to answer once
// they are sent.
type job struct {
	n       *Notify
	key     key
	waiters []func(answer []byte)
	at      time.Time // the first NOTIFY was received
}

// Duplicator copies NOTIFYs to every backend and tracks convergence.
type Duplicator struct {
	o      Options
	inj    *injector
	log    *slog.Logger
	m      *metrics
	policy atomic.Pointer[Policy]
	queue  chan *job
	trk    *tracker

	mu        sync.Mutex
	running   bool // between Run's start and its stop: Notify accepts only then
	limiters  map[netip.Addr]*rate.Limiter
	queued    map[key]*job
	confirmed map[key]time.Time        // every backend serves it, since
	pruned    time.Time                // confirmed was last pruned
	logLimit  map[string]*rate.Limiter // a warning per reason every 10 s at most
	copyPace  map[netip.AddrPort]*rate.Limiter
	stopping  bool // Run's context ended: the last copies go out unpaced
}

// queueLen is how many accepted NOTIFYs wait for their copies; beyond it
// NOTIFYs are ignored (and counted as "overload"), so that the primaries
// retry instead of being answered for copies that may never go out.
const queueLen = 16384

// New checks the options and returns a Duplicator that is not running.
func New(o Options) (*Duplicator, error) {
	if o.Backends == nil {
		return nil, errors.New("notifydup: no backend source")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	d := &Duplicator{o: o, log: o.Logger, m: m, queue: make(chan *job, queueLen),
		limiters: map[netip.Addr]*rate.Limiter{}, queued: map[key]*job{}, confirmed: map[key]time.Time{},
		logLimit: map[string]*rate.Limiter{}, copyPace: map[netip.AddrPort]*rate.Limiter{}}
	tm := defaultTiming
	if o.timing != nil {
		tm = *o.timing
	}
	d.trk = newTracker(d, tm)
	d.SetPolicy(o.Policy)
	return d, nil
}

// SetPolicy changes primaries, rate, dedup window, retries and keys
// (reload).
func (d *Duplicator) SetPolicy(p Policy) {
	if p.MaxPerSecond <= 0 {
		p.MaxPerSecond = 10000
	}
	if p.TrackQPS <= 0 {
		p.TrackQPS = DefaultTrackQPS
	}
	if p.MaxTracked <= 0 {
		p.MaxTracked = DefaultMaxTracked
	}
	if p.CopyQPS <= 0 {
		p.CopyQPS = DefaultCopyQPS
	}
	d.policy.Store(&p)
	d.trk.setRate(p.TrackQPS)
	d.mu.Lock()
	for _, l := range d.limiters {
		l.SetLimit(rate.Limit(p.MaxPerSecond))
		l.SetBurst(p.MaxPerSecond)
	}
	for _, l := range d.copyPace {
		l.SetLimit(rate.Limit(p.CopyQPS))
		l.SetBurst(copyBurst(p.CopyQPS))
	}
	d.mu.Unlock()
}

// Open creates the injector, so that permission and interface problems
// are reported at start-up. It needs CAP_NET_RAW.
func (d *Duplicator) Open() error {
	if d.o.sender != nil {
		return nil
	}
	inj, err := newInjector(d.o.Interface)
	if err != nil {
		return err
	}
	d.inj, d.o.sender = inj, inj
	return nil
}

// Run copies accepted NOTIFYs and tracks convergence until ctx is done.
// Then it stops accepting (Notify ignores), sends the copies of every
// NOTIFY already accepted and answers them, stops tracking and closes
// what Open opened.
func (d *Duplicator) Run(ctx context.Context) error {
	if d.o.sender == nil {
		return errors.New("notifydup: Run before Open")
	}
	d.mu.Lock()
	d.running = true
	d.mu.Unlock()
	d.trk.start(ctx)
	d.log.Info("notify duplication running", "interface", d.o.Interface)
	for {
		select {
		case j := <-d.queue:
			d.copyJob(j)
			continue
		case <-ctx.Done():
		}
		break
	}
	d.mu.Lock()
	d.running = false // no job is queued after this
	d.stopping = true
	d.mu.Unlock()
	for {
		select {
		case j := <-d.queue:
			d.copyJob(j)
			continue
		default:
		}
		break
	}
	d.trk.wait()
	for be, ns := range d.trk.takeHeld() {
		// The primaries were answered: send what the windows held, once.
		d.log.Info("notify copies held for a backend sent at stop", "backend", be.Name, "copies", len(ns))
		for _, n := range ns {
			d.copyTo(n, be)
		}
	}
	d.trk.closeClients()
	if d.inj != nil {
		d.inj.close()
	}
	return nil
}

// Notify decides about one NOTIFY (msg, which it does not keep) that src
// sent to dst. For Accept it calls done once the copies have been sent,
// with the signed answer, or nil for the plain one.
func (d *Duplicator) Notify(msg []byte, src, dst netip.AddrPort, done func(answer []byte)) Verdict {
	n, err := ParseMessage(msg, src, dst)
	if err != nil {
		d.count("malformed", nil, err.Error())
		return Refuse
	}
	p := d.policy.Load()
	if !fromPrimary(p.Primaries, n.Src.Addr().Unmap()) {
		d.count("stranger", n, "")
		return Refuse
	}
	if d.o.IsMaster != nil && !d.o.IsMaster(n.Dst.Addr()) {
		d.count("not_master", n, "")
		return Ignore
	}
	k := key{zone: n.Zone, serial: n.Serial, hasSerial: n.HasSerial}
	now := time.Now()
	// Asked before d.mu (the tracker takes d.mu under its own lock).
	tracked := k.hasSerial && p.DedupWindow > 0 && d.trk.tracking(k)
	d.mu.Lock()
	if !d.running {
		d.mu.Unlock()
		d.count("stopping", n, "")
		return Ignore
	}
	if !d.limiter(n.Src.Addr().Unmap(), p).AllowN(now, 1) {
		d.mu.Unlock()
		d.count("rate_limited", n, "")
		return Ignore
	}
	if j := d.queued[k]; j != nil {
		j.waiters = append(j.waiters, done) // its copy is about to go out
		d.mu.Unlock()
		d.m.received.WithLabelValues("duplicate").Inc()
		return Accept
	}
	if tracked {
		d.mu.Unlock()
		d.m.received.WithLabelValues("duplicate").Inc()
		go done(d.answer(n, p)) // copied, and tracked on every backend: re-sent where needed
		return Accept
	}
	if at, ok := d.confirmed[k]; ok && k.hasSerial && now.Sub(at) < p.DedupWindow {
		d.mu.Unlock()
		d.m.received.WithLabelValues("duplicate").Inc()
		go done(d.answer(n, p)) // every backend serves it: nothing to copy
		return Accept
	}
	j := &job{n: n, key: k, waiters: []func([]byte){done}, at: now}
	select {
	case d.queue <- j:
		d.queued[k] = j
		d.mu.Unlock()
		return Accept
	default:
		d.mu.Unlock()
		d.count("overload", n, "")
		return Ignore
	}
}

// limiter returns the rate limiter of one primary address (d.mu held).
// The addresses come from the configured primaries' prefixes only.
func (d *Duplicator) limiter(a netip.Addr, p *Policy) *rate.Limiter {
	l := d.limiters[a]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(p.MaxPerSecond), p.MaxPerSecond)
		d.limiters[a] = l
	}
	return l
}

// copyJob sends the copies of one NOTIFY, then answers everyone waiting
// for it, then starts tracking.
func (d *Duplicator) copyJob(j *job) {
	p := d.policy.Load()
	backends := d.o.Backends()
	d.forgetRemoved(backends)
	tracked := j.n.HasSerial && p.Retries > 0
	send, held := backends, []Backend(nil)
	if tracked {
		send, held = d.trk.hold(j.n, backends, p)
	}
	d.pace(send...)
	for _, be := range send {
		d.copyTo(j.n, be)
	}
	d.mu.Lock()
	delete(d.queued, j.key)
	waiters := j.waiters
	d.mu.Unlock()
	d.m.received.WithLabelValues("copied").Inc()
	d.log.Debug("notify copied", "primary", j.n.Src.String(), "zone", j.n.Zone, "serial", j.n.Serial, "backends", len(backends))
	answer := d.answer(j.n, p)
	for _, w := range waiters {
		w(answer)
	}
	d.m.ack.Observe(time.Since(j.at).Seconds())
	if tracked {
		d.trk.add(j.n, send, held, p)
	}
}

// answer is the signed answer to n when it is signed with a configured
// key (and verifies), else nil: the balancer's plain NOERROR.
func (d *Duplicator) answer(n *Notify, p *Policy) []byte {
	if !n.Signed || len(p.Keys) == 0 {
		return nil
	}
	if signed, ok := signedAnswer(n.Payload, p.Keys); ok {
		return signed
	}
	return nil
}

// confirm records that every backend serves k, for the dedup window.
func (d *Duplicator) confirm(k key) {
	p := d.policy.Load()
	if p.DedupWindow <= 0 {
		return
	}
	now := time.Now()
	d.mu.Lock()
	d.confirmed[k] = now
	// Entries older than the window are pruned at most once a window, so
	// the map holds what a window confirms, scanned once per window.
	if now.Sub(d.pruned) >= p.DedupWindow {
		d.pruned = now
		for c, at := range d.confirmed {
			if now.Sub(at) >= p.DedupWindow {
				delete(d.confirmed, c)
			}
		}
	}
	d.mu.Unlock()
}

// forget drops the dedup memory of k: a backend gave up on it, so a new
// NOTIFY for it is copied again.
func (d *Duplicator) forget(k key) {
	d.mu.Lock()
	delete(d.confirmed, k)
	d.mu.Unlock()
}

// copyBurst is how many copies a backend may get at once: 20 ms worth,
// at least one, so that a storm reaches it as a steady stream.
func copyBurst(qps int) int { return max(1, qps/50) }

// pace waits until each of backends may be sent one more first copy
// (Policy.CopyQPS; re-sends take what is left, see spareCopy); not while
// stopping, when the last accepted NOTIFYs go out at once.
func (d *Duplicator) pace(backends ...Backend) {
	p := d.policy.Load()
	now := time.Now()
	var wait time.Duration
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return
	}
	for _, be := range backends {
		wait = max(wait, d.copyLimiter(be, p).ReserveN(now, 1).DelayFrom(now))
	}
	d.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
}

// forgetRemoved drops the copy limiters of addresses no longer among
// backends (all of them: removed by a reload).
func (d *Duplicator) forgetRemoved(backends []Backend) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.copyPace) <= len(backends) {
		return
	}
	for a := range d.copyPace {
		if !slices.ContainsFunc(backends, func(be Backend) bool { return be.Addr == a }) {
			delete(d.copyPace, a)
		}
	}
}

// spareCopy reports whether be may be sent a copy outside copyJob (a
// re-send, or a copy the window held) now, taking a copy token if so:
// those never wait, so that they never delay first copies (and with them
// the primaries' answers). Always while stopping.
func (d *Duplicator) spareCopy(be Backend) bool {
	p := d.policy.Load()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return true
	}
	return d.copyLimiter(be, p).Allow()
}

// copyLimiter returns be's copy pace, made on first use (d.mu held).
func (d *Duplicator) copyLimiter(be Backend, p *Policy) *rate.Limiter {
	l := d.copyPace[be.Addr]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(p.CopyQPS), copyBurst(p.CopyQPS))
		d.copyPace[be.Addr] = l
	}
	return l
}

func (d *Duplicator) copyTo(n *Notify, be Backend) {
	if err := d.o.sender.send(n, be.Addr); err != nil {
		d.m.copyErrors.WithLabelValues(be.Name).Inc()
		d.logLimited("copy_error", "notify copy failed", "backend", be.Name, "err", err)
		return
	}
	d.m.copies.WithLabelValues(be.Name).Inc()
}

func fromPrimary(primaries []netip.Prefix, a netip.Addr) bool {
	for _, p := range primaries {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// count records a NOTIFY that was not copied, with a rate-limited log line.
func (d *Duplicator) count(result string, n *Notify, detail string) {
	d.m.received.WithLabelValues(result).Inc()
	args := []any{"result", result}
	if n != nil {
		args = append(args, "src", n.Src.String(), "zone", n.Zone)
	}
	if detail != "" {
		args = append(args, "detail", detail)
	}
	d.logLimited(result, "notify not copied", args...)
}

// logLimited logs at most one line per reason every 10 seconds.
func (d *Duplicator) logLimited(reason, msg string, args ...any) {
	d.mu.Lock()
	l := d.logLimit[reason]
	if l == nil {
		l = rate.NewLimiter(rate.Every(10*time.Second), 1)
		d.logLimit[reason] = l
	}
	d.mu.Unlock()
	if l.Allow() {
		d.log.Warn(msg, args...)
	}
}

// Stats are the Duplicator's counters, for the status page.
type Stats struct {
	// Received counts NOTIFYs by result (copied, duplicate, stranger,
	// rate_limited, malformed, not_master, overload, stopping).
	Received map[string]uint64
	// Copies and CopyErrors count copies per backend name; Resends the
	// copies sent again to a backend that looked stuck.
	Copies, CopyErrors, Resends map[string]uint64
	// Pending is, per backend name, the zones whose notified serial it
	// has not been seen to serve yet; Oldest the age of the oldest.
	Pending map[string]int
	Oldest  map[string]time.Duration
	// SOAQueries counts the tracking queries per backend; GivenUp the
	// zones a backend did not converge to after every re-send.
	SOAQueries, GivenUp map[string]uint64
	// Tracked is the (zone, backend) pairs tracked now, MaxTracked the
	// bound (notify.max_tracked), Untracked the copies not tracked
	// because the table was full.
	Tracked, MaxTracked int
	Untracked           uint64
	// Convergence is the histogram of the time from a NOTIFY's copy to a
	// backend serving its serial: cumulative counts per upper bound in
	// seconds (the last bound is +Inf).
	Convergence Histogram
}

// Histogram is a cumulative histogram.
type Histogram struct {
	Bounds []float64 // upper bounds, seconds; the last is +Inf
	Counts []uint64  // cumulative count per bound
	Count  uint64
	Sum    float64 // seconds
}

// Stats returns the current counters.
func (d *Duplicator) Stats() Stats {
	st := Stats{Received: counterValues(d.m.received), Copies: counterValues(d.m.copies), CopyErrors: counterValues(d.m.copyErrors),
		Resends: counterValues(d.m.resends), SOAQueries: counterValues(d.m.soaQueries), GivenUp: counterValues(d.m.givenUp),
		Untracked: counterValue(d.m.untracked), MaxTracked: d.policy.Load().MaxTracked}
	ts := d.trk.stats()
	st.Pending, st.Oldest, st.Tracked = ts.pending, ts.oldest, ts.tracked
	h := &st.Convergence
	h.Bounds, h.Counts, h.Count, h.Sum = histogramBuckets(d.m.converge)
	return st
}
