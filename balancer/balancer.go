package balancer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Settings are the tunables that a reload may change.
type Settings struct {
	// UDPTimeout is how long a UDP query waits for its answer before its
	// in-flight slot is freed and a timeout is counted. Default 1s.
	UDPTimeout time.Duration
	// TCPIdleTimeout closes a TCP connection with no traffic either way
	// for this long. Default 10s.
	TCPIdleTimeout time.Duration
	// TCPReadTimeout closes a client TCP connection whose message does not
	// arrive whole within this long of its first byte (slowloris).
	// Default 2s.
	TCPReadTimeout time.Duration
	// TCPWriteTimeout closes a client TCP connection that does not take
	// an answer within this long (a client that sends but never reads
	// would hold its buffers and a backend connection). Default 5s.
	TCPWriteTimeout time.Duration
	// MaxTCPConns caps concurrent client TCP connections. Default 10000.
	MaxTCPConns int
	// MaxTCPConnsPerClient caps concurrent TCP connections from one client
	// address. Default 100.
	MaxTCPConnsPerClient int
	// UDPRetry retries a timed-out UDP query once, on a backend that is
	// answering (pool.pickRetry: another one by preference; the client gets
	// at most one answer). Zero value: off.
	UDPRetry bool
	// RefuseWhenAllDown answers REFUSED when backends exist but none is up.
	// The zero value is fail-open: then every usable backend is picked from
	// regardless of health (as dnsdist does).
	RefuseWhenAllDown bool
	// PassiveMaxTimeouts is how many consecutive UDP timeouts of one backend
	// call Options.OnPassiveFailure. Zero disables passive detection.
	PassiveMaxTimeouts int
	// Allow and Deny are the client ACL: a client in a Deny prefix, or not
	// in a non-empty Allow list, gets no answer over UDP and has its TCP
	// connections closed.
	Allow, Deny []netip.Prefix
	// QPSPerClient limits the UDP queries served per second to one client
	// address (bursts of up to one second's worth); 0 disables it.
	QPSPerClient int
	// RefuseOverLimit answers REFUSED to a query over QPSPerClient instead
	// of dropping it.
	RefuseOverLimit bool
	// QueryLogEvery logs one answered UDP query in this many (client,
	// question, backend, rcode, latency) at info; 0 logs none.
	QueryLogEvery int
	// ECS is the prefix that backends with client_address: ecs are sent.
	ECS ECSSettings
	// RRL is response rate limiting of UDP answers.
	RRL RRLSettings
}

func (s Settings) withDefaults() Settings {
	if s.UDPTimeout <= 0 {
		s.UDPTimeout = time.Second
	}
	if s.TCPIdleTimeout <= 0 {
		s.TCPIdleTimeout = 10 * time.Second
	}
	if s.TCPReadTimeout <= 0 {
		s.TCPReadTimeout = 2 * time.Second
	}
	if s.TCPWriteTimeout <= 0 {
		s.TCPWriteTimeout = 5 * time.Second
	}
	if s.MaxTCPConns <= 0 {
		s.MaxTCPConns = 10000
	}
	if s.MaxTCPConnsPerClient <= 0 {
		s.MaxTCPConnsPerClient = 100
	}
	s.ECS = s.ECS.withDefaults()
	return s
}

// Options configure a Balancer. The zero value of every field but Listen
// is a safe default.
type Options struct {
	// Listen are the addresses served over UDP and TCP (the VIPs).
	Listen []netip.AddrPort
	// Settings are the initial tunables; see Apply to change them.
	Settings Settings
	// UDPWorkers is the number of UDP sockets (SO_REUSEPORT) and reader
	// goroutines per listen address. Default runtime.GOMAXPROCS(0).
	UDPWorkers int
	// UpstreamSockets is the number of UDP sockets towards the backends per
	// address family, shared by all backends, each with its own reader and
	// in-flight table of up to 4096 queries. Default 4.
	UpstreamSockets int
	// BatchSize is how many datagrams one recvmmsg/sendmmsg call moves at
	// most. Default 32.
	BatchSize int
	// SocketBuffer is the receive and send buffer size in bytes asked for
	// every UDP socket. Default 4 MiB.
	SocketBuffer int
	// Inherited are listening sockets handed over by the previous process
	// (graceful restart): Start uses them for their addresses instead of
	// binding, so no query queued in them is lost. The balancer takes
	// ownership of the files; ones whose address is not listened on are
	// closed.
	Inherited []ListenerFile
	// Logger receives state changes and limit warnings; default slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives the balancer's Prometheus metrics.
	Registerer prometheus.Registerer
	// OnPassiveFailure, if set, is called (from the timeout sweeper) when a
	// backend reaches Settings.PassiveMaxTimeouts consecutive timeouts.
	OnPassiveFailure func(backend string, consecutive int64)
	// Notifier, if set, takes every NOTIFY (UDP and TCP) instead of its
	// being forwarded to one backend: notify duplication.
	Notifier Notifier
}

// Balancer is the data plane: frontends, backend pool and query tracking.
// Create it with New, give it backends with Apply, then Start it; Shutdown
// stops it.
type Balancer struct {
	listen   []netip.AddrPort
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	pool     *pool
	epoch    time.Time
	passive  func(backend string, consecutive int64)
	notifier Notifier
	ctr      counters
	adm      admissionState
	udpf     udpFront
	tcpf     tcpFront
	rrl      *responseLimit

	inherited []ListenerFile
	started   atomic.Bool
	stopping  atomic.Bool
	stop      chan struct{}
	workers   sync.WaitGroup // frontend and upstream readers, sweeper
	sessionWG sync.WaitGroup // TCP sessions and retire watchers
}

// counters are the balancer's own counts, read by the metrics collector
// and the status page.
type counters struct {
	drops          [numDropReasons]atomic.Uint64
	answers        [numAnswerKinds]atomic.Uint64 // dnslb's own answers, by reason
	notifies       [2]atomic.Uint64              // NOTIFYs answered: [0] NOERROR, [1] REFUSED
	signedNotifies atomic.Uint64                 // NOERROR answers signed with TSIG
	queryLogN      atomic.Uint64                 // answered UDP queries, for QueryLogEvery
	logLimit       [numDropReasons]*rate.Limiter // a warning per reason every 10 s at most
}

// admissionState is what admission keeps between messages.
type admissionState struct {
	limiter      *clientLimiter // allocated on first use of QPSPerClient
	limiterOnce  sync.Once
	cookieSecret [16]byte // keys the server cookies of dnslb's own answers
}

// udpFront is the UDP side: listening sockets and their workers, the
// upstream sockets, and the sweeper's scratch space.
type udpFront struct {
	workersPer   int // sockets per listen address
	batch        int
	sockBuf      int
	bufferWarned atomic.Bool
	upstreams    upstreams
	sockets      []*udpWorker
	expired      []pending
}

// tcpFront is the TCP side: listeners and the client sessions.
type tcpFront struct {
	listeners []*tcpFrontend
	conns     atomic.Int64
	mu        sync.Mutex
	perClient map[netip.Addr]int
	sessions  map[*tcpSession]struct{}
}

// New returns a Balancer that is not serving yet.
func New(o Options) (*Balancer, error) {
	if len(o.Listen) == 0 {
		return nil, errors.New("balancer: no listen address")
	}
	if o.UDPWorkers <= 0 {
		o.UDPWorkers = runtime.GOMAXPROCS(0)
	}
	if o.UpstreamSockets <= 0 {
		o.UpstreamSockets = 4
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 32
	}
	if o.SocketBuffer <= 0 {
		o.SocketBuffer = 4 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	b := &Balancer{
		listen:    append([]netip.AddrPort(nil), o.Listen...),
		log:       o.Logger,
		pool:      newPool(),
		inherited: o.Inherited,
		udpf:      udpFront{workersPer: o.UDPWorkers, batch: o.BatchSize, sockBuf: o.SocketBuffer},
		tcpf:      tcpFront{perClient: map[netip.Addr]int{}, sessions: map[*tcpSession]struct{}{}},
		epoch:     time.Now(),
		stop:      make(chan struct{}),
		passive:   o.OnPassiveFailure,
		notifier:  o.Notifier,
		rrl:       newResponseLimit(),
	}
	for i := range b.ctr.logLimit {
		b.ctr.logLimit[i] = rate.NewLimiter(rate.Every(10*time.Second), 1)
	}
	if _, err := rand.Read(b.adm.cookieSecret[:]); err != nil {
		return nil, fmt.Errorf("balancer: cookie secret: %w", err)
	}
	b.udpf.upstreams.size = o.UpstreamSockets
	s := o.Settings.withDefaults()
	b.rrl.apply(s.RRL)
	b.settings.Store(&s)
	if o.Registerer != nil {
		if err := o.Registerer.Register(&collector{b: b}); err != nil {
			return nil, fmt.Errorf("balancer: register metrics: %w", err)
		}
	}
	return b, nil
}

// now returns monotonic nanoseconds since the balancer was created.
func (b *Balancer) now() int64 { return int64(time.Since(b.epoch)) }

func (b *Balancer) drop(r dropReason) { b.ctr.drops[r].Add(1) }

// Apply makes the backend set and settings match the arguments. New
// backends start receiving queries at once; removed ones get nothing new
// and are forgotten once their in-flight queries are answered or timed out,
// so no query is lost. It fails without changing anything when the upstream
// sockets for a new backend's address family cannot be opened.
func (b *Balancer) Apply(specs []BackendSpec, s Settings) error {
	if b.stopping.Load() {
		return errors.New("balancer: shutting down")
	}
	for _, spec := range specs {
		if err := b.ensureUpstreams(familyOf(spec.Addr)); err != nil {
			return fmt.Errorf("backend %s (%s): %w", spec.Name, spec.Addr, err)
		}
	}
	res, err := b.pool.apply(specs)
	if err != nil {
		return err
	}
	s = s.withDefaults()
	b.rrl.apply(s.RRL)
	b.settings.Store(&s)
	for _, be := range res.added {
		b.log.Info("backend added", "backend", be.name, "address", be.addr.String(), "weight", be.weight.Load(), "state", AdminState(be.admin.Load()).String())
	}
	for _, be := range res.retired {
		b.log.Info("backend removed, draining", "backend", be.name, "address", be.addr.String(), "outstanding", be.outstanding.Load())
		b.sessionWG.Add(1)
		go b.retire(be)
	}
	return nil
}

// retire waits until a removed backend has no query in flight (the sweeper
// guarantees that within the UDP timeout), then forgets it.
func (b *Balancer) retire(be *Backend) {
	defer b.sessionWG.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for be.outstanding.Load() > 0 {
		select {
		case <-t.C:
		case <-b.stop:
		}
		if b.stopping.Load() && be.outstanding.Load() > 0 {
			break
		}
	}
	b.pool.finishRetired(be)
	b.log.Info("backend drained and closed", "backend", be.name, "address", be.addr.String())
}

// Start binds every listen address (UDP and TCP) and starts serving. It
// binds everything before serving anything, so a failure leaves nothing
// open.
func (b *Balancer) Start() error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("balancer: already started")
	}
	// TCP first: its listener has no SO_REUSEPORT, so a second instance on
	// the same address fails here, before its UDP sockets (which do share
	// the port) could take a share of the queries.
	defer b.closeUnusedInherited()
	for _, a := range b.listen {
		ln, err := b.inheritedTCP(a)
		if err == nil && ln == nil {
			ln, err = listenTCP(a)
		}
		if err != nil {
			b.closeFrontends()
			return err
		}
		b.tcpf.listeners = append(b.tcpf.listeners, &tcpFrontend{addr: a, ln: ln, done: make(chan struct{})})
	}
	for _, a := range b.listen {
		inherited, err := b.inheritedUDP(a)
		if err != nil {
			for _, uc := range inherited {
				uc.Close()
			}
			b.closeFrontends()
			return err
		}
		for i := 0; i < max(len(inherited), b.udpf.workersPer); i++ {
			var uc *net.UDPConn
			if i < len(inherited) {
				uc = inherited[i]
			} else if len(inherited) > 0 {
				break // the previous process's sockets, as many as it had
			} else if uc, err = listenUDP(a, b.udpf.workersPer > 1); err != nil {
				b.closeFrontends()
				return err
			}
			b.setBuffers(uc)
			sock, err := newUDPSock(uc, isV6(a))
			if err != nil {
				uc.Close()
				b.closeFrontends()
				return err
			}
			b.udpf.sockets = append(b.udpf.sockets, b.newUDPWorker(a, sock))
		}
	}
	for _, w := range b.udpf.sockets {
		b.workers.Add(1)
		go w.run()
	}
	for _, f := range b.tcpf.listeners {
		b.workers.Add(1)
		go b.acceptLoop(f)
	}
	b.workers.Add(1)
	go b.sweepLoop()
	for _, a := range b.listen {
		b.log.Info("serving", "address", a.String(), "transports", "udp,tcp", "udp_workers", b.udpf.workersPer)
	}
	return nil
}

// closeUnusedInherited closes inherited sockets whose address is no
// longer listened on (inheritedTCP and inheritedUDP close the ones used).
func (b *Balancer) closeUnusedInherited() {
	for _, lf := range b.inherited {
		lf.File.Close() // a second Close of a used file just fails
	}
	b.inherited = nil
}

func (b *Balancer) closeFrontends() {
	for _, w := range b.udpf.sockets {
		w.sock.conn.Close()
	}
	for _, f := range b.tcpf.listeners {
		f.ln.Close()
	}
}

// Shutdown stops accepting queries and connections, waits (until ctx is
// done) for in-flight UDP queries to be answered or time out and for TCP
// connections to finish, then closes everything. A TCP connection is
// closed at its next message boundary once the answers to the queries it
// already sent have been relayed, so no query on it is cut.
func (b *Balancer) Shutdown(ctx context.Context) error {
	if !b.stopping.CompareAndSwap(false, true) {
		return nil
	}
	// Stop reading new UDP queries but keep the sockets open for answers.
	past := time.Unix(1, 0)
	for _, w := range b.udpf.sockets {
		w.sock.conn.SetReadDeadline(past)
	}
	for _, f := range b.tcpf.listeners {
		f.ln.Close()
	}
	// TCP sessions end at their next message boundary: the client's
	// queries so far are answered, then it sees the connection close.
	b.tcpf.mu.Lock()
	for s := range b.tcpf.sessions {
		s.drain()
	}
	b.tcpf.mu.Unlock()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var err error
wait:
	for b.outstanding() > 0 || b.tcpf.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("balancer: shutdown: %d queries and %d TCP connections still open: %w", b.outstanding(), b.tcpf.conns.Load(), ctx.Err())
			break wait
		case <-t.C:
		}
	}
	b.tcpf.mu.Lock()
	for s := range b.tcpf.sessions {
		s.close()
	}
	b.tcpf.mu.Unlock()
	close(b.stop)
	for _, w := range b.udpf.sockets {
		w.sock.conn.Close()
	}
	for _, u := range b.udpf.upstreams.all() {
		u.sock.conn.Close()
	}
	b.sessionWG.Wait()
	b.workers.Wait()
	return err
}

func (b *Balancer) outstanding() int64 {
	var n int64
	for _, be := range b.pool.all() {
		n += be.outstanding.Load()
	}
	return n
}

// Snapshot returns the state and counters of every backend, configured
// ones first in configuration order, then removed ones still draining.
func (b *Balancer) Snapshot() []BackendStats {
	all := b.pool.all()
	out := make([]BackendStats, len(all))
	for i, be := range all {
		out[i] = be.stats()
	}
	return out
}

// Backend returns the configured backend with this name, or nil.
func (b *Balancer) Backend(name string) *Backend { return b.pool.byName(name) }

// Dropped returns how many packets were dropped, by reason label.
func (b *Balancer) Dropped() map[string]uint64 {
	m := map[string]uint64{}
	for r := dropReason(1); r < numDropReasons; r++ {
		m[r.String()] = b.ctr.drops[r].Load()
	}
	return m
}

// Answered returns how many queries dnslb answered itself, by reason
// label (all_down, over_limit, notify, ...).
func (b *Balancer) Answered() map[string]uint64 {
	m := map[string]uint64{}
	for k := answerKind(0); k < numAnswerKinds; k++ {
		m[k.String()] = b.ctr.answers[k].Load()
	}
	return m
}

// TCPConnections returns the number of open client TCP connections.
func (b *Balancer) TCPConnections() int64 { return b.tcpf.conns.Load() }

// logDue reports whether a warning for reason r may be logged now: at
// most one per reason every 10 seconds. Checking it first keeps the
// arguments of a suppressed line from being built.
func (b *Balancer) logDue(r dropReason) bool { return b.ctr.logLimit[r].Allow() }

// logLimited logs at most one warning per reason every 10 seconds.
func (b *Balancer) logLimited(r dropReason, msg string, args ...any) {
	if !b.logDue(r) {
		return
	}
	args = append(args, "reason", r.String(), "dropped_total", b.ctr.drops[r].Load())
	b.log.Warn(msg, args...)
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
