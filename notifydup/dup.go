package notifydup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/prometheus/client_golang/prometheus"
)

// Backend is one copy target.
type Backend struct {
	Name string
	Addr netip.AddrPort
}

// Policy is the part of the options a reload may change.
type Policy struct {
	Primaries    []netip.Prefix // sources whose NOTIFYs are copied
	MaxPerSecond int            // per primary; default 1000
	DedupWindow  time.Duration  // same (primary, zone, serial) copied once within this; 0 = off
	Retries      int            // convergence re-sends per backend; 0 = no tracking
}

// Options configure a Duplicator.
type Options struct {
	Interface string       // where NOTIFYs to the VIPs arrive
	VIPs      []netip.Addr // NOTIFYs to these addresses (port 53) are captured
	Policy    Policy
	// Backends returns the current copy targets (called per NOTIFY).
	Backends func() []Backend
	// IsMaster reports whether this node holds the VIPs (VRRP); nil means
	// always. Only the master copies.
	IsMaster func() bool
	// QuerySOA asks a backend for a zone's SOA serial (convergence
	// tracking); default: a UDP query from the balancer's own address.
	QuerySOA   func(ctx context.Context, server netip.AddrPort, zone string) (uint32, error)
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	sender sender // tests: replaces the real injector
}

// sender delivers one copy.
type sender interface {
	send(n *Notify, to netip.AddrPort) error
}

// Duplicator captures NOTIFYs and copies them to every backend.
type Duplicator struct {
	o      Options
	tp     *afpacket.TPacket // capture socket, from Open
	inj    *injector
	log    *slog.Logger
	m      *metrics
	policy atomic.Pointer[Policy]

	mu       sync.Mutex
	buckets  map[netip.Addr]*bucket
	seen     map[dedupKey]time.Time
	tracking int // convergence trackers running
	wg       sync.WaitGroup
	ctx      context.Context
	logLast  map[string]time.Time // rate-limited drop logs, by reason
}

type dedupKey struct {
	primary   netip.Addr
	zone      string
	serial    uint32
	hasSerial bool
}

// queueLen is how many captured NOTIFYs wait for copying before new ones
// are dropped (and counted as "overload").
const queueLen = 16384

// maxTrackers bounds concurrent convergence trackers (a burst of NOTIFYs
// for many zones): beyond it NOTIFYs are still copied, just not tracked.
const maxTrackers = 4096

// New checks the options and returns a Duplicator that is not running.
func New(o Options) (*Duplicator, error) {
	if o.Interface == "" {
		return nil, errors.New("notifydup: no interface")
	}
	if len(o.VIPs) == 0 {
		return nil, errors.New("notifydup: no VIP to watch")
	}
	if o.Backends == nil {
		return nil, errors.New("notifydup: no backend source")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QuerySOA == nil {
		o.QuerySOA = querySOA
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	d := &Duplicator{o: o, log: o.Logger, m: m, buckets: map[netip.Addr]*bucket{}, seen: map[dedupKey]time.Time{},
		logLast: map[string]time.Time{}, ctx: context.Background()}
	d.SetPolicy(o.Policy)
	return d, nil
}

// SetPolicy changes primaries, rate, dedup window and retries (reload).
func (d *Duplicator) SetPolicy(p Policy) {
	if p.MaxPerSecond <= 0 {
		p.MaxPerSecond = 1000
	}
	d.policy.Store(&p)
}

// Open creates the capture socket (AF_PACKET with the BPF filter) and the
// injector, so that permission and interface problems are reported at
// start-up. It needs CAP_NET_RAW.
func (d *Duplicator) Open() error {
	prog, err := Filter(d.o.VIPs)
	if err != nil {
		return fmt.Errorf("notifydup: filter: %w", err)
	}
	tp, err := afpacket.NewTPacket(afpacket.OptInterface(d.o.Interface), afpacket.OptPollTimeout(100*time.Millisecond),
		afpacket.OptFrameSize(1<<16), afpacket.OptBlockSize(1<<18), afpacket.OptNumBlocks(64),
		afpacket.OptBlockTimeout(5*time.Millisecond))
	if err != nil {
		return fmt.Errorf("notify.interface %s: open AF_PACKET socket: %w (needs CAP_NET_RAW)", d.o.Interface, err)
	}
	if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return fmt.Errorf("notify.interface %s: attach BPF filter: %w", d.o.Interface, err)
	}
	if d.o.sender == nil {
		inj, err := newInjector(d.o.Interface)
		if err != nil {
			tp.Close()
			return err
		}
		d.inj = inj
		d.o.sender = inj
	}
	d.tp = tp
	return nil
}

// Run captures until ctx is done, then closes what Open opened. Open must
// have succeeded.
func (d *Duplicator) Run(ctx context.Context) error {
	if d.tp == nil {
		return errors.New("notifydup: Run before Open")
	}
	tp := d.tp
	defer tp.Close()
	if d.inj != nil {
		defer d.inj.close()
	}
	d.mu.Lock()
	d.ctx = ctx
	d.mu.Unlock()
	// Capture and copying are decoupled so that a burst is buffered
	// here, not dropped by the kernel while copies are being sent.
	queue := make(chan *Notify, queueLen)
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		for n := range queue {
			d.Handle(n)
		}
	}()
	d.log.Info("notify duplication running", "interface", d.o.Interface, "vips", fmt.Sprint(d.o.VIPs))
	var lastDrops uint
	for ctx.Err() == nil {
		data, _, err := tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) || errors.Is(err, afpacket.ErrPoll) {
				_, st, serr := tp.SocketStats()
				if serr == nil && st.Drops() > lastDrops {
					d.m.captureDrops.Add(float64(st.Drops() - lastDrops))
					lastDrops = st.Drops()
				}
				continue
			}
			if ctx.Err() != nil {
				break
			}
			d.log.Warn("notifydup: capture error", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		n, err := ParseFrame(data)
		if err != nil {
			d.count("malformed", nil, err.Error())
			continue
		}
		select {
		case queue <- n:
		default:
			d.count("overload", n, "")
		}
	}
	close(queue)
	<-handled
	d.wg.Wait()
	return nil
}

// Handle copies one NOTIFY (captured, or received over TCP by the
// balancer) to every backend, after the master, primary, rate and dedup
// checks.
func (d *Duplicator) Handle(n *Notify) {
	p := d.policy.Load()
	if d.o.IsMaster != nil && !d.o.IsMaster() {
		d.count("not_master", n, "")
		return
	}
	src := n.Src.Addr().Unmap()
	if !fromPrimary(p.Primaries, src) {
		d.count("stranger", n, "")
		return
	}
	now := time.Now()
	d.mu.Lock()
	b := d.buckets[src]
	if b == nil {
		b = &bucket{tokens: float64(p.MaxPerSecond), last: now}
		d.buckets[src] = b
	}
	if !b.take(now, float64(p.MaxPerSecond)) {
		d.mu.Unlock()
		d.count("rate_limited", n, "")
		return
	}
	if p.DedupWindow > 0 {
		key := dedupKey{primary: src, zone: n.Zone, serial: n.Serial, hasSerial: n.HasSerial}
		if at, ok := d.seen[key]; ok && now.Sub(at) < p.DedupWindow {
			d.mu.Unlock()
			d.count("duplicate", n, "")
			return
		}
		d.seen[key] = now
		if len(d.seen) > 65536 {
			d.pruneLocked(now, p.DedupWindow)
		}
	}
	d.mu.Unlock()

	backends := d.o.Backends()
	for _, be := range backends {
		d.copyTo(n, be)
	}
	d.m.received.WithLabelValues("copied").Inc()
	d.log.Debug("notify copied", "primary", n.Src.String(), "zone", n.Zone, "serial", n.Serial, "backends", len(backends))
	if n.HasSerial && p.Retries > 0 {
		d.track(n, backends, p.Retries)
	}
}

func (d *Duplicator) copyTo(n *Notify, be Backend) {
	s := d.o.sender
	if s == nil {
		return
	}
	if err := s.send(n, be.Addr); err != nil {
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

func (d *Duplicator) pruneLocked(now time.Time, window time.Duration) {
	for k, at := range d.seen {
		if now.Sub(at) >= window {
			delete(d.seen, k)
		}
	}
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
	last := d.logLast[reason]
	now := time.Now()
	if now.Sub(last) < 10*time.Second {
		d.mu.Unlock()
		return
	}
	d.logLast[reason] = now
	d.mu.Unlock()
	d.log.Warn(msg, args...)
}

// bucket is a token bucket for one primary.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, rate float64) bool {
	b.tokens = min(rate, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// metrics are the dnslb_notify_* series.
type metrics struct {
	received     *prometheus.CounterVec
	copies       *prometheus.CounterVec
	copyErrors   *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	converge     prometheus.Histogram
	captureDrops prometheus.Counter
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_received_total",
			Help: "NOTIFYs seen, by result: copied, stranger, rate_limited, duplicate, malformed, not_master, overload."}, []string{"result"}),
		copies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_copies_total",
			Help: "NOTIFY copies sent to a backend (first copies and convergence re-sends)."}, []string{"backend"}),
		copyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_copy_errors_total",
			Help: "NOTIFY copies that could not be sent to a backend."}, []string{"backend"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_notify_serial_lag",
			Help: "How far a backend's SOA serial is behind the last NOTIFY's, while it has not converged."}, []string{"backend", "zone"}),
		converge: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dnslb_notify_convergence_seconds",
			Help:    "Time from a NOTIFY to a backend serving its serial.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60}}),
		captureDrops: prometheus.NewCounter(prometheus.CounterOpts{Name: "dnslb_notify_capture_drops_total",
			Help: "Frames the kernel dropped from the NOTIFY capture ring."}),
	}
	for _, res := range []string{"copied", "stranger", "rate_limited", "duplicate", "malformed", "not_master", "overload"} {
		m.received.WithLabelValues(res)
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.received, m.copies, m.copyErrors, m.lag, m.converge, m.captureDrops} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("notifydup: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
