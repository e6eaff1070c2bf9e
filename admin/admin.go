package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is the JSON document served on /status.
type Status struct {
	Version         string            `json:"version"`
	StartedAt       time.Time         `json:"started_at"`
	ConfigFile      string            `json:"config_file"`
	ConfigHash      string            `json:"config_hash"`
	LastReload      time.Time         `json:"last_reload,omitzero"`
	LastReloadError string            `json:"last_reload_error,omitempty"`
	Listen          []string          `json:"listen"`
	TCPConnections  int64             `json:"tcp_connections"`
	Dropped         map[string]uint64 `json:"dropped"`
	// Answered counts the queries dnslb answered itself, by reason.
	Answered map[string]uint64 `json:"answered"`
	Backends []Backend         `json:"backends"`
	VRRP     []VRRP            `json:"vrrp,omitempty"`
	Notify   *Notify           `json:"notify,omitempty"`
	BGP      *BGP              `json:"bgp,omitempty"`
}

// BGP is the route announcer's part of Status.
type BGP struct {
	Mode     string       `json:"mode"` // vrrp, active or kernel
	LocalAS  uint32       `json:"local_as,omitempty"`
	RouterID string       `json:"router_id,omitempty"`
	Sessions []BGPSession `json:"sessions,omitempty"`
	Prefixes []BGPPrefix  `json:"prefixes"`
}

// BGPSession is one neighbour's session.
type BGPSession struct {
	Neighbor string    `json:"neighbor"`
	PeerAS   uint32    `json:"peer_as"`
	State    string    `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Since    time.Time `json:"since"`
	Received uint64    `json:"received_prefixes"` // ignored
}

// BGPPrefix is one VIP's host route.
type BGPPrefix struct {
	Prefix    string    `json:"prefix"`
	Announced bool      `json:"announced"`
	Reason    string    `json:"reason"` // why it is (not) announced
	Since     time.Time `json:"since"`
	Error     string    `json:"error,omitempty"` // the last failed announce/withdraw
}

// Notify is the NOTIFY duplication's line in Status.
type Notify struct {
	Received map[string]uint64 `json:"received"` // NOTIFYs seen, by result (copied, stranger, ...)
	Copies   map[string]uint64 `json:"copies"`   // copies sent, by backend
	Errors   map[string]uint64 `json:"errors"`   // copies that failed, by backend
	// Pending is, by backend, the zones whose notified serial it has not
	// been seen to serve; Oldest the age in seconds of the oldest.
	Pending map[string]int     `json:"pending"`
	Oldest  map[string]float64 `json:"oldest_pending_seconds"`
	// Resends, SOAQueries and GivenUp count, by backend, the copies sent
	// again to a backend that looked stuck, the SOA queries of
	// convergence tracking, and the zones given up on after every retry.
	Resends    map[string]uint64 `json:"resends,omitempty"`
	SOAQueries map[string]uint64 `json:"soa_queries,omitempty"`
	GivenUp    map[string]uint64 `json:"given_up,omitempty"`
	// Tracked is the (zone, backend) pairs tracked now, at most
	// MaxTracked (notify.max_tracked); Untracked counts the copies sent
	// untracked because the table was full.
	Tracked    int    `json:"tracked"`
	MaxTracked int    `json:"max_tracked"`
	Untracked  uint64 `json:"untracked"`
	// Convergence is the histogram of the time from a NOTIFY's copy to a
	// backend serving its serial.
	Convergence *Histogram `json:"convergence,omitempty"`
}

// Histogram is a cumulative histogram: Buckets[i] counts the samples up
// to LE seconds; Count is all of them (the +Inf bucket).
type Histogram struct {
	Buckets    []Bucket `json:"buckets"`
	Count      uint64   `json:"count"`
	SumSeconds float64  `json:"sum_seconds"`
}

// Bucket is one bucket of a Histogram.
type Bucket struct {
	LE    float64 `json:"le"` // upper bound, seconds
	Count uint64  `json:"count"`
}

// Quantile returns the upper bound of the bucket holding the q quantile
// (0 < q <= 1), and false when it lies above the last finite bound or
// there are no samples.
func (h *Histogram) Quantile(q float64) (float64, bool) {
	if h == nil || h.Count == 0 {
		return 0, false
	}
	need := uint64(q*float64(h.Count) + 0.5)
	need = max(need, 1)
	for _, b := range h.Buckets {
		if b.Count >= need {
			return b.LE, true
		}
	}
	return 0, false
}

// VRRP is one VRRP instance's line in Status.
type VRRP struct {
	Instance          string    `json:"instance"`
	Interface         string    `json:"interface"`
	Family            string    `json:"family"` // ipv4 or ipv6
	Sync              bool      `json:"sync"`   // moves with the node's sync group
	VRID              int       `json:"vrid"`
	State             string    `json:"state"` // init, backup, master, fault
	Priority          int       `json:"priority"`
	EffectivePriority int       `json:"effective_priority"` // after tracking
	Master            string    `json:"master,omitempty"`   // current master's address, "self" when this node
	MasterPriority    int       `json:"master_priority,omitempty"`
	AdvertInterval    string    `json:"advert_interval"`
	Since             time.Time `json:"since"`
	Reason            string    `json:"reason"`
	VIPs              []string  `json:"vips"`
}

// Backend is one backend's line in Status.
type Backend struct {
	Name           string            `json:"name"`
	Address        string            `json:"address"`
	State          string            `json:"state"`                   // admin state: active, drain, disabled; "removed" while draining after a reload
	Health         string            `json:"health"`                  // up, down or pending ("up" when not checked)
	HealthReason   string            `json:"health_reason,omitempty"` // why: the last state change's reason
	HealthSince    time.Time         `json:"health_since,omitzero"`
	LastProbe      string            `json:"last_probe,omitempty"` // the last probe's result, e.g. "answer NOERROR"
	Weight         int               `json:"weight"`
	Outstanding    int64             `json:"outstanding"`
	TCPConnections int64             `json:"tcp_connections"`
	Queries        uint64            `json:"queries"`
	Timeouts       uint64            `json:"timeouts"`
	Retried        uint64            `json:"retried"` // timed-out queries retried (on another backend, or on this one if it alone is answering)
	Unmatched      uint64            `json:"unmatched"`
	Responses      map[string]uint64 `json:"responses"`
	LatencyMS      float64           `json:"latency_ms"` // EWMA of UDP answer latency
	QPS            float64           `json:"qps"`        // queries per second over the last 10s
	P50MS          float64           `json:"p50_ms"`     // median UDP answer latency over the last 10s
	P99MS          float64           `json:"p99_ms"`     // 99th percentile over the last 10s
}

// Options configure a Server.
type Options struct {
	// Listen is the host:port to serve on.
	Listen string
	// Listener, if set, is served instead of binding Listen (a listener
	// handed over by the previous process in a graceful restart).
	Listener net.Listener
	// PProf serves net/http/pprof under /debug/pprof/ (admin.pprof).
	PProf bool
	// Token, when not empty, is required as "Authorization: Bearer
	// <token>" on every endpoint but /healthz (admin.token).
	Token string
	// SetState, if set, serves POST /backends/{name}/{drain,enable,disable}
	// and changes a backend's admin state at runtime; it returns
	// ErrNoBackend for an unknown name.
	SetState func(backend, state string) error
	// Gatherer provides /metrics; nil serves an empty page.
	Gatherer prometheus.Gatherer
	// Status builds the /status document.
	Status func() Status
	// Healthy reports whether /healthz answers 200.
	Healthy func() bool
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Server is the admin HTTP server.
type Server struct {
	o   Options
	srv *http.Server
	ln  net.Listener
}

// New returns a Server that is not listening yet.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.NewRegistry()
	}
	s := &Server{o: o}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /status", s.status)
	if o.SetState != nil {
		mux.HandleFunc("POST /backends/{name}/{action}", s.setState)
	}
	if o.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	// No WriteTimeout: a CPU profile streams for as long as it was asked to.
	var h http.Handler = mux
	if o.Token != "" {
		h = s.requireToken(mux)
	}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// Start binds the listen address and serves in the background.
func (s *Server) Start() error {
	ln, err := s.o.Listener, error(nil)
	if ln == nil {
		ln, err = net.Listen("tcp", s.o.Listen)
	}
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("admin.listen %s: address already in use", s.o.Listen)
		}
		return fmt.Errorf("admin.listen %s: %w", s.o.Listen, err)
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.o.Logger.Error("admin server stopped", "err", err)
		}
	}()
	s.o.Logger.Info("admin listening", "address", ln.Addr().String())
	return nil
}

// ListenerFile returns a duplicate of the listening socket, to hand to
// another process; the caller closes it.
func (s *Server) ListenerFile() (*os.File, error) {
	tl, ok := s.ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("admin listener is a %T", s.ln)
	}
	return tl.File()
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// ErrNoBackend is returned by Options.SetState for an unknown backend.
var ErrNoBackend = errors.New("no such backend")

// requireToken rejects requests without the bearer token, except for
// /healthz, which load balancers and systemd probe without credentials.
func (s *Server) requireToken(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.o.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if r.URL.Path != "/healthz" && subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dnslb"`)
			http.Error(w, "missing or wrong bearer token (admin.token)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// setState serves POST /backends/{name}/{drain|enable|disable}.
func (s *Server) setState(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	state, ok := map[string]string{"drain": "drain", "enable": "active", "disable": "disabled"}[action]
	if !ok {
		http.Error(w, fmt.Sprintf("unknown action %q (drain, enable or disable)", action), http.StatusBadRequest)
		return
	}
	if err := s.o.SetState(name, state); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNoBackend) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(StateChange{Backend: name, State: state})
}

// StateChange is the answer to a POST /backends/{name}/{action}.
type StateChange struct {
	Backend string `json:"backend"`
	State   string `json:"state"` // the admin state now: active, drain or disabled
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.o.Healthy != nil && !s.o.Healthy() {
		http.Error(w, "not serving", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	var st Status
	if s.o.Status != nil {
		st = s.o.Status()
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(st)
}
