package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/balancer"
	"github.com/dnslb/dnslb/config"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/health"
	"github.com/dnslb/dnslb/notifydup"
	"github.com/dnslb/dnslb/rrl"
)

// daemon wires config, balancer and admin together and owns the signal
// handling and reloads.
type daemon struct {
	path     string
	log      *slog.Logger
	level    *slog.LevelVar
	registry *prometheus.Registry
	bal      *balancer.Balancer
	checker  *healthcheck.Checker
	vrrp     *vrrpSet                  // nil unless vrrp.enabled
	notify   *notifydup.Duplicator     // nil unless notify.enabled
	bgp      atomic.Pointer[bgpRunner] // nil unless bgp.enabled and started
	adm      *admin.Server
	admOpts  admin.Options
	recent   *recentStats // query rates and latency percentiles for /status
	started  time.Time
	serving  bool
	// handingOver is set when a stopping master has sent priority 0: it
	// keeps the VIPs, and copies NOTIFYs, until it stops.
	handingOver atomic.Bool
	inh         *inheritance // what a graceful restart handed over (empty otherwise)

	reloads    *prometheus.CounterVec
	configHash *prometheus.GaugeVec

	mu         sync.Mutex // guards the fields below (read by /status)
	cfg        *config.Config
	hash       string
	lastReload time.Time
	lastErr    string
}

// loadConfig reads and validates path and returns the config and the
// SHA-256 of the file.
func loadConfig(path string) (*config.Config, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("config %s: %w", path, err)
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	return cfg, hex.EncodeToString(sum[:]), nil
}

func newDaemon(path string, stderr io.Writer) (*daemon, error) {
	cfg, hash, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level)
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	d := &daemon{
		path: path, log: slog.New(h), level: level, registry: prometheus.NewRegistry(),
		started: time.Now(), cfg: cfg, hash: hash,
	}
	d.recent = &recentStats{snapshot: func() []balancer.BackendStats { return d.bal.Snapshot() }}
	if d.inh, err = inherit(); err != nil {
		return nil, err
	}
	if len(d.inh.listeners) > 0 {
		d.log.Info("graceful restart: taking over the previous process's sockets", "sockets", len(d.inh.listeners), "backends_with_health", len(d.inh.health))
	}
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnslb_config_reloads_total", Help: "Configuration reloads, by result (applied, refused).",
	}, []string{"result"})
	d.configHash = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dnslb_config_info", Help: "Always 1; the hash label is the SHA-256 of the running configuration file.",
	}, []string{"hash"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_build_info", Help: "Always 1; labelled with the dnslb version."}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	d.registry.MustRegister(d.reloads, d.configHash, build)
	d.configHash.WithLabelValues(hash).Set(1)
	d.reloads.WithLabelValues("applied")
	d.reloads.WithLabelValues("refused")

	d.checker, err = healthcheck.New(healthcheck.Options{
		OnChange: d.healthChanged, OnProbe: d.probed, Logger: d.log, Registerer: d.registry,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Notify.Enabled {
		if d.notify, err = d.newNotify(cfg); err != nil {
			return nil, err
		}
	}
	var notifier balancer.Notifier
	if d.notify != nil {
		notifier = notifyAdapter{d.notify}
	}
	d.bal, err = balancer.New(balancer.Options{
		Listen:          cfg.Listen,
		Settings:        settings(cfg),
		UDPWorkers:      cfg.Tuning.UDPWorkers,
		UpstreamSockets: cfg.Tuning.UpstreamSockets,
		BatchSize:       cfg.Tuning.BatchSize,
		SocketBuffer:    cfg.Tuning.SocketBuffer,
		Inherited:       d.inh.listeners,
		Logger:          d.log,
		Registerer:      d.registry,
		OnPassiveFailure: func(name string, n int64) {
			d.checker.PassiveFailure(name, fmt.Sprintf("%d consecutive timeouts or failed connections", n), d.current().HealthCheck.Passive.MaxDownPercent)
		},
		Notifier: notifier,
	})
	if err != nil {
		return nil, err
	}
	if err := d.bal.Apply(specs(cfg), settings(cfg)); err != nil {
		return nil, err
	}
	for name, st := range d.inh.health {
		if be := d.bal.Backend(name); be != nil && st != health.Pending {
			be.SetHealth(st)
		}
	}
	if specs := vrrpSpecs(cfg); len(specs) > 0 {
		d.vrrp = newVRRPSet(d, specs)
	}
	if cfg.Admin.Listen != "" {
		d.admOpts = admin.Options{
			Listen: cfg.Admin.Listen, Listener: d.inh.admin, PProf: cfg.Admin.PProf, Token: cfg.Admin.Token, SetState: d.setState,
			Gatherer: d.registry, Status: d.status, Logger: d.log,
			Healthy: func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.serving },
		}
		d.adm = admin.New(d.admOpts)
	}
	return d, nil
}

// setState changes a backend's admin state at runtime (dnslb drain, enable,
// disable through the admin API). It lasts until the next reload or
// restart, which apply the file's state again.
func (d *daemon) setState(name, state string) error {
	be := d.bal.Backend(name)
	if be == nil {
		return fmt.Errorf("%w %q (see backends[].name)", admin.ErrNoBackend, name)
	}
	var st balancer.AdminState
	switch state {
	case "active":
		st = balancer.Active
	case "drain":
		st = balancer.Drain
	case "disabled":
		st = balancer.Disabled
	default:
		return fmt.Errorf("unknown state %q", state)
	}
	from := be.AdminState()
	be.SetAdminState(st)
	d.log.Info("backend admin state changed through the admin API (until the next reload)", "backend", name, "from", from.String(), "to", st.String())
	return nil
}

// serve starts everything, handles signals, and returns after a shutdown.
func (d *daemon) serve() error {
	cfg := d.current()
	// Take the signals before binding anything: a SIGHUP that arrives
	// during start-up must not kill the process (its default action).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	if d.adm != nil {
		if err := d.adm.Start(); err != nil {
			return err
		}
		if ap, err := netip.ParseAddrPort(cfg.Admin.Listen); err == nil && !ap.Addr().IsLoopback() && cfg.Admin.Token == "" {
			d.log.Warn("admin.listen is not on loopback and admin.token is empty: anyone who reaches it can read the status and drain backends",
				"address", cfg.Admin.Listen)
		}
	}
	if err := d.bal.Start(); err != nil {
		return err
	}
	if d.notify != nil {
		if err := d.notify.Open(); err != nil {
			return err
		}
	}
	d.checker.Apply(d.initialTargets(cfg))
	stopRecent := make(chan struct{})
	defer close(stopRecent)
	go d.recent.run(stopRecent)
	d.mu.Lock()
	d.serving = true
	d.mu.Unlock()
	var vrrpErr <-chan error
	if d.vrrp != nil {
		if err := d.vrrp.start(vrrpSpecs(cfg)); err != nil {
			d.vrrp.stop()
			d.shutdown(false, nil)
			return err
		}
		d.updateTracking()
		vrrpErr = d.vrrp.errs
	}
	if err := d.startBGP(cfg); err != nil {
		d.shutdown(true, nil)
		return err
	}
	notifyErr := make(chan error, 1)
	nctx, stopNotify := context.WithCancel(context.Background())
	defer stopNotify()
	if d.notify != nil {
		go func() { notifyErr <- d.notify.Run(nctx) }()
	}
	d.notifySystemd("READY=1")
	if err := d.inh.signalReady(); err != nil {
		d.log.Warn("graceful restart: could not tell the previous process we serve; it stops after its timeout", "err", err)
	}
	d.log.Info("dnslb started", "version", version, "config", d.path, "hash", d.hash[:12],
		"listen", len(cfg.Listen), "backends", len(cfg.Backends),
		"udp_timeout", cfg.Timeouts.UDP.String(), "tcp_idle", cfg.Timeouts.TCPIdle.String(),
		"tcp_connections", cfg.Limits.TCPConnections, "tcp_connections_per_client", cfg.Limits.TCPConnectionsPerClient,
		"admin", cfg.Admin.Listen)

	watched := make(chan struct{}, 1)
	if cfg.ConfigWatch {
		wctx, stopWatch := context.WithCancel(context.Background())
		defer stopWatch()
		if err := watchConfig(wctx, d.path, watched, d.log); err != nil {
			d.log.Error("config_watch: cannot watch the configuration file; SIGHUP still reloads", "file", d.path, "err", err)
		}
	}
	for {
		select {
		case <-watched:
			d.reloadIfChanged()
		case err := <-vrrpErr:
			d.log.Error("vrrp stopped, shutting down", "err", err)
			d.shutdown(true, nil)
			return err
		case err := <-notifyErr:
			if err == nil {
				continue
			}
			d.log.Error("notify duplication stopped, shutting down", "err", err)
			d.shutdown(true, nil)
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload()
				continue
			}
			if sig == syscall.SIGUSR2 {
				pid, err := d.upgrade()
				if err != nil {
					d.log.Error("graceful restart failed, still serving", "err", err)
					continue
				}
				d.notifySystemd(fmt.Sprintf("MAINPID=%d", pid))
				d.log.Info("graceful restart: handed over to the new process; finishing in-flight queries, then exiting", "pid", pid)
				return d.shutdown(true, func() { d.stopNotify(stopNotify, notifyErr) })
			}
			d.notifySystemd("STOPPING=1")
			d.log.Info("shutting down: no new queries, finishing in-flight ones", "signal", sig.String())
			return d.shutdown(true, func() { d.stopNotify(stopNotify, notifyErr) })
		}
	}
}

// stopNotify stops notify duplication and waits (at most 3 s) until the
// NOTIFYs it accepted are copied and answered. From then on a NOTIFY gets
// no answer at all, so its primary sends it again, to the new master once
// VRRP has handed over: no NOTIFY is acknowledged and not copied.
func (d *daemon) stopNotify(cancel context.CancelFunc, done <-chan error) {
	cancel()
	if d.notify == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		d.log.Warn("notify duplication did not stop within 3s")
	}
}

// shutdownGrace bounds how long in-flight work may take at shutdown.
func (d *daemon) shutdownGrace() time.Duration {
	return d.current().Timeouts.UDP + 2*time.Second
}

// shutdown hands the VIPs over (VRRP) while NOTIFYs are still copied,
// then stops notify duplication (stopNotify, if given: what it accepted is
// copied and answered, later ones get no answer, so their primaries send
// them again to the new master), drains the data plane, then stops VRRP
// (which removes the VIPs) when stopVRRP.
func (d *daemon) shutdown(stopVRRP bool, stopNotify func()) error {
	d.mu.Lock()
	d.serving = false
	d.mu.Unlock()
	d.handOver()
	d.withdrawBGP()
	if stopNotify != nil {
		stopNotify()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.shutdownGrace())
	defer cancel()
	d.checker.Stop()
	err := d.bal.Shutdown(ctx)
	if err != nil {
		d.log.Warn("shutdown grace period over, closing the rest", "err", err)
	}
	d.stopBGP()
	if stopVRRP && d.vrrp != nil {
		d.vrrp.stop()
	}
	if d.adm != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		defer acancel()
		d.adm.Shutdown(actx)
	}
	d.log.Info("dnslb stopped")
	return nil
}

// reloadIfChanged reloads when the file's content differs from the
// running configuration's (config_watch also sees changes that rewrite the
// same bytes, e.g. a touch or chmod).
func (d *daemon) reloadIfChanged() {
	data, err := os.ReadFile(d.path)
	if err == nil {
		sum := sha256.Sum256(data)
		d.mu.Lock()
		same := hex.EncodeToString(sum[:]) == d.hash
		d.mu.Unlock()
		if same {
			return
		}
	}
	d.log.Info("config_watch: configuration file changed, reloading", "file", d.path)
	d.reload()
}

// notifySystemd tells systemd about a state change (Type=notify); see
// sdNotify.
func (d *daemon) notifySystemd(state string) {
	if err := sdNotify(state); err != nil {
		d.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// reload validates the file and applies it; on any problem the running
// configuration stays and every problem is logged on its own line.
func (d *daemon) reload() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	d.notifySystemd(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
	defer d.notifySystemd("READY=1")
	old := d.current()
	cfg, hash, err := loadConfig(d.path)
	if err == nil {
		if keys := config.RestartOnly(old, cfg); len(keys) > 0 {
			err = fmt.Errorf("%s: %s cannot change on reload (restart dnslb to apply)", d.path, strings.Join(keys, ", "))
		}
	}
	if err == nil {
		err = d.bal.Apply(specs(cfg), settings(cfg))
	}
	if err != nil {
		d.refuse(err)
		return
	}
	d.checker.Apply(targets(cfg))
	d.updateTracking()
	if d.notify != nil {
		d.notify.SetPolicy(notifyPolicy(cfg))
	}
	d.level.Set(cfg.Log.Level)
	ch := config.DiffBackends(old, cfg)
	d.mu.Lock()
	d.configHash.DeleteLabelValues(d.hash)
	d.cfg, d.hash, d.lastReload, d.lastErr = cfg, hash, time.Now(), ""
	d.mu.Unlock()
	d.configHash.WithLabelValues(hash).Set(1)
	if d.vrrp != nil {
		restart, err := d.vrrp.apply(vrrpSpecs(cfg))
		if err != nil {
			d.log.Error("vrrp: reload could not start an instance", "err", err)
		}
		for _, name := range restart {
			d.log.Warn("vrrp: an instance's interface, VRID, family or sync changed: it keeps running as it was; restart dnslb to apply", "instance", name)
		}
		d.updateTracking()
	}
	d.applyBGP(cfg)
	d.reloads.WithLabelValues("applied").Inc()
	d.log.Info("config reloaded", "hash", hash[:12], "added", ch.Added, "removed", ch.Removed, "changed", ch.Changed)
}

func (d *daemon) refuse(err error) {
	d.reloads.WithLabelValues("refused").Inc()
	var ce *config.Error
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			d.log.Error("reload refused, keeping the running config", "file", d.path, "key", p.Path, "problem", p.Msg)
		}
	} else {
		d.log.Error("reload refused, keeping the running config", "file", d.path, "err", err.Error())
	}
	d.mu.Lock()
	d.lastReload, d.lastErr = time.Now(), strings.ReplaceAll(err.Error(), "\n", "; ")
	d.mu.Unlock()
}

func (d *daemon) current() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// status builds the /status document.
func (d *daemon) status() admin.Status {
	d.mu.Lock()
	cfg, hash, lastReload, lastErr := d.cfg, d.hash, d.lastReload, d.lastErr
	d.mu.Unlock()
	st := admin.Status{
		Version: version, StartedAt: d.started, ConfigFile: d.path, ConfigHash: hash,
		LastReload: lastReload, LastReloadError: lastErr,
		TCPConnections: d.bal.TCPConnections(), Dropped: d.bal.Dropped(), Answered: d.bal.Answered(),
	}
	for _, a := range cfg.Listen {
		st.Listen = append(st.Listen, a.String())
	}
	if d.vrrp != nil {
		st.VRRP = d.vrrp.status()
	}
	st.BGP = d.bgpStatus()
	if d.notify != nil {
		ns := d.notify.Stats()
		st.Notify = &admin.Notify{
			Received: ns.Received,
			Copies:   ns.Copies,
			Errors:   ns.CopyErrors,
			Pending:  ns.Pending,
			Oldest:   map[string]float64{},
		}
		for name, age := range ns.Oldest {
			st.Notify.Oldest[name] = age.Seconds()
		}
		addNotifyTracking(st.Notify, ns)
	}
	health := d.checker.Status()
	for _, s := range d.bal.Snapshot() {
		state := s.State.String()
		if s.Removed {
			state = "removed"
		}
		resp := map[string]uint64{}
		for rc, n := range s.Responses {
			if n > 0 {
				resp[balancer.RcodeName(rc)] = n
			}
		}
		b := admin.Backend{
			Name: s.Name, Address: s.Addr.String(), State: state, Health: s.Health.String(), Weight: s.Weight, Retried: s.Retried,
			Outstanding: s.Outstanding, TCPConnections: s.TCPActive, Queries: s.Queries + s.TCPQueries,
			Timeouts: s.Timeouts, Unmatched: s.Unmatched, Responses: resp,
			LatencyMS:    float64(s.Latency.Microseconds()) / 1000,
			HealthReason: "not checked",
		}
		qps, p50, p99 := d.recent.backend(s.Name)
		b.QPS, b.P50MS, b.P99MS = qps, float64(p50.Microseconds())/1000, float64(p99.Microseconds())/1000
		if h, ok := health[s.Name]; ok && !s.Removed {
			b.Health, b.HealthReason, b.HealthSince, b.LastProbe = h.State.String(), h.Reason, h.Since, h.LastProbe
		}
		st.Backends = append(st.Backends, b)
	}
	return st
}

// healthChanged passes a health-check verdict to the data plane.
func (d *daemon) healthChanged(ch healthcheck.Change) {
	be := d.bal.Backend(ch.Backend)
	if be == nil {
		return
	}
	be.SetHealth(ch.To)
	d.updateTracking()
}

// probed feeds probe round-trip times into the latency average.
func (d *daemon) probed(name string, rtt time.Duration) {
	if be := d.bal.Backend(name); be != nil {
		be.ObserveProbe(rtt)
	}
}

// targets lists the backends to probe: every one whose checks are enabled,
// whatever its admin state (drained and disabled backends are probed too,
// so their health is known before they are put back).
// queryLogEvery turns log.query_sample into "one in N".
func queryLogEvery(sample float64) int {
	if sample <= 0 {
		return 0
	}
	return max(1, int(math.Round(1/sample)))
}

// initialTargets is targets with the health a graceful restart handed
// over as each backend's initial state.
func (d *daemon) initialTargets(cfg *config.Config) []healthcheck.Target {
	ts := targets(cfg)
	for i := range ts {
		ts[i].Initial = d.inh.health[ts[i].Name]
	}
	return ts
}

func targets(cfg *config.Config) []healthcheck.Target {
	var out []healthcheck.Target
	for _, b := range cfg.Backends {
		h := b.HealthCheck
		if !h.Enabled {
			continue
		}
		out = append(out, healthcheck.Target{Name: b.Name, Addr: b.Address, Check: healthcheck.Check{
			Name: h.Query.Name, Type: h.Query.Type, Class: h.Query.Class, RD: h.Query.RD,
			Rcodes: h.Expect.Rcodes, Authoritative: h.Expect.Authoritative, AnswerContains: h.Expect.AnswerContains,
			Transport: h.Transport, Interval: h.Interval, Timeout: h.Timeout, Rise: h.Rise, Fall: h.Fall,
			ProxyHeader: h.ProxyV2 == "self" && (b.ClientAddress == "proxy_v2" || b.ClientAddress == "proxy_v2_udp" && h.Transport == "udp"),
		}})
	}
	return out
}

func specs(cfg *config.Config) []balancer.BackendSpec {
	out := make([]balancer.BackendSpec, 0, len(cfg.Backends))
	for _, b := range cfg.Backends {
		st := balancer.Active
		switch b.State {
		case config.StateDrain:
			st = balancer.Drain
		case config.StateDisabled:
			st = balancer.Disabled
		}
		mode := balancer.ClientAddressNone
		switch b.ClientAddress {
		case "proxy_v2":
			mode = balancer.ClientAddressProxyV2
		case "proxy_v2_udp":
			mode = balancer.ClientAddressProxyV2UDP
		case "ecs":
			mode = balancer.ClientAddressECS
		}
		out = append(out, balancer.BackendSpec{Name: b.Name, Addr: b.Address, Weight: b.Weight, State: st, Checked: b.HealthCheck.Enabled, ClientAddress: mode})
	}
	return out
}

func settings(cfg *config.Config) balancer.Settings {
	return balancer.Settings{
		UDPTimeout:           cfg.Timeouts.UDP,
		TCPIdleTimeout:       cfg.Timeouts.TCPIdle,
		TCPReadTimeout:       cfg.Timeouts.TCPRead,
		TCPWriteTimeout:      cfg.Timeouts.TCPWrite,
		MaxTCPConns:          cfg.Limits.TCPConnections,
		MaxTCPConnsPerClient: cfg.Limits.TCPConnectionsPerClient,
		UDPRetry:             cfg.Timeouts.UDPRetry,
		RefuseWhenAllDown:    cfg.HealthCheck.Enabled && cfg.HealthCheck.AllDown == "refuse",
		PassiveMaxTimeouts:   passiveLimit(cfg),
		Allow:                cfg.ACL.Allow,
		Deny:                 cfg.ACL.Deny,
		QPSPerClient:         cfg.Limits.QPSPerClient,
		RefuseOverLimit:      cfg.Limits.OverLimit == "refuse",
		QueryLogEvery:        queryLogEvery(cfg.Log.QuerySample),
		ECS:                  balancer.ECSSettings{IPv4PrefixLen: cfg.ECS.IPv4PrefixLength, IPv6PrefixLen: cfg.ECS.IPv6PrefixLength, Override: cfg.ECS.Override},
		RRL: balancer.RRLSettings{Enabled: cfg.RRL.Enabled, Config: rrl.Config{
			ResponsesPerSecond: cfg.RRL.ResponsesPerSecond, NXDomainsPerSecond: cfg.RRL.NXDomainsPerSecond,
			ErrorsPerSecond: cfg.RRL.ErrorsPerSecond, AllPerSecond: cfg.RRL.AllPerSecond, Slip: cfg.RRL.Slip,
			Window: cfg.RRL.Window, IPv4PrefixLen: cfg.RRL.IPv4PrefixLength, IPv6PrefixLen: cfg.RRL.IPv6PrefixLength,
			Exempt: cfg.RRL.Exempt, LogOnly: cfg.RRL.LogOnly, TableSize: cfg.RRL.TableSize,
		}},
	}
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

// passiveLimit is the consecutive-timeout count that marks a backend down;
// passive detection needs active checks to bring the backend back.
func passiveLimit(cfg *config.Config) int {
	if !cfg.HealthCheck.Enabled {
		return 0
	}
	return cfg.HealthCheck.Passive.MaxConsecutiveTimeouts
}
