package main

import (
	"context"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/balancer"
	"github.com/dnslb/dnslb/bgp"
	"github.com/dnslb/dnslb/config"
	"github.com/dnslb/dnslb/internal/health"
)

// bgpRunner announces the listen addresses while the node is fit to
// serve them (bgp.enabled): it judges every VIP on each health or VRRP
// change (and every second, which also retries failed calls) and feeds
// the verdicts to a bgp.Announcer, whose routes go to an embedded BGP
// speaker (modes vrrp and active) or to the kernel (mode kernel). In
// mode active it also puts the VIPs on bgp.interface, in mode kernel
// local routes for them (no addresses: see bgp.AddLocalRoutes).
type bgpRunner struct {
	d        *daemon
	mode     string // vrrp, active or kernel
	iface    string
	proto    int            // mode kernel: the routes' protocol
	prefixes []netip.Prefix // one host route per listen address
	speaker  *bgp.Speaker   // nil in mode kernel
	ann      *bgp.Announcer
	kick     chan struct{}
	stopping atomic.Bool
	cancel   context.CancelFunc
	done     chan struct{}
}

// bgpPrefixes returns the host route of every listen address, once.
func bgpPrefixes(cfg *config.Config) []netip.Prefix {
	var out []netip.Prefix
	for _, ap := range cfg.Listen {
		if p := bgp.HostRoute(ap.Addr()); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// bgpAttrs returns the path attributes bgp configures.
func bgpAttrs(cfg *config.Config) bgp.Attrs {
	a := bgp.Attrs{MED: uint32(cfg.BGP.MED)}
	for _, c := range cfg.BGP.Communities {
		if v, err := config.Community(c); err == nil {
			a.Communities = append(a.Communities, v)
		}
	}
	for _, nh := range cfg.BGP.NextHop {
		if nh.Is4() {
			a.NextHop4 = nh
		} else {
			a.NextHop6 = nh
		}
	}
	return a
}

// bgpNeighbors returns the neighbours bgp configures.
func bgpNeighbors(cfg *config.Config) []bgp.Neighbor {
	var out []bgp.Neighbor
	for _, n := range cfg.BGP.Neighbors {
		out = append(out, bgp.Neighbor{Address: n.Address, PeerAS: uint32(n.PeerAS), Port: uint16(n.Port), Password: n.Password,
			Multihop: uint8(n.Multihop), HoldTime: n.HoldTime, Passive: n.Passive})
	}
	return out
}

// startBGP starts announcing when bgp.enabled: the VIPs go on
// bgp.interface (modes active, kernel), the speaker connects to the
// neighbours, and the first verdicts are applied.
func (d *daemon) startBGP(cfg *config.Config) error {
	if !cfg.BGP.Enabled {
		return nil
	}
	b := &bgpRunner{d: d, mode: cfg.EffectiveMode(), iface: cfg.BGP.Interface, proto: cfg.BGP.RouteProtocol,
		prefixes: bgpPrefixes(cfg), kick: make(chan struct{}, 1), done: make(chan struct{})}
	var routes bgp.Routes
	switch b.mode {
	case "active":
		if err := bgp.AddLocal(b.iface, b.prefixes); err != nil {
			return err
		}
	case "kernel": // routes, not addresses: see bgp.AddLocalRoutes
		if err := bgp.AddLocalRoutes(b.iface, b.proto, b.prefixes); err != nil {
			return err
		}
	}
	if b.mode == "kernel" {
		k, err := bgp.NewKernel(b.iface, cfg.BGP.RouteProtocol)
		if err != nil {
			return err
		}
		for _, p := range b.prefixes { // a route a crashed process left
			_ = k.Withdraw(context.Background(), p)
		}
		routes = k
	} else {
		listen := 0
		if slices.ContainsFunc(cfg.BGP.Neighbors, func(n config.BGPNeighbor) bool { return n.Passive }) {
			listen = 179
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sp, err := bgp.NewSpeaker(ctx, bgp.SpeakerOptions{LocalAS: uint32(cfg.BGP.LocalAS), RouterID: cfg.BGP.RouterID,
			ListenPort: listen, Logger: d.log, Registerer: d.registry})
		if err != nil {
			return err
		}
		if err := sp.SetNeighbors(ctx, bgpNeighbors(cfg)); err != nil {
			sp.Stop()
			return err
		}
		b.speaker, routes = sp, sp
	}
	b.ann = bgp.New(bgp.Options{Routes: routes, Attrs: bgpAttrs(cfg), Logger: d.log, Registerer: d.registry})
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	d.bgp.Store(b)
	b.evaluate(ctx)
	go b.run(ctx)
	d.log.Info("bgp started", "mode", b.mode, "local_as", cfg.BGP.LocalAS, "router_id", cfg.BGP.RouterID.String(),
		"neighbors", len(cfg.BGP.Neighbors), "prefixes", prefixList(b.prefixes))
	return nil
}

// run re-judges on every kick and every second.
func (b *bgpRunner) run(ctx context.Context) {
	defer close(b.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		case <-t.C:
		}
		b.evaluate(ctx)
	}
}

// evaluate judges every VIP and applies the verdicts.
func (b *bgpRunner) evaluate(ctx context.Context) {
	cfg := b.d.current()
	healthy := 0
	for _, s := range b.d.bal.Snapshot() {
		if !s.Removed && s.State == balancer.Active && s.Health == health.Up {
			healthy++
		}
	}
	vrrpDecides := b.mode == "vrrp" || b.mode == "kernel" && b.d.vrrp != nil
	verdicts := make(map[netip.Prefix]bgp.Verdict, len(b.prefixes))
	for _, p := range b.prefixes {
		in := bgp.Input{Healthy: healthy, MinHealthy: cfg.BGP.MinHealthyBackends, VRRP: vrrpDecides, Stopping: b.stopping.Load()}
		if vrrpDecides && b.d.vrrp != nil {
			in.Instance, in.State = b.d.vrrpInstanceOf(p.Addr())
		}
		verdicts[p] = bgp.Judge(in)
	}
	b.ann.Update(ctx, verdicts)
}

// vrrpInstanceOf returns the name and state of the VRRP instance that
// holds vip, "" when none does.
func (d *daemon) vrrpInstanceOf(vip netip.Addr) (name, state string) {
	for _, ri := range d.vrrp.instances() {
		for _, p := range ri.spec.Options.VIPs {
			if p.Addr() == vip {
				return ri.spec.Name, ri.in.Status().State.String()
			}
		}
	}
	return "", ""
}

// bgpKick asks for a new judgement now (a health or VRRP change).
func (d *daemon) bgpKick() {
	if b := d.bgp.Load(); b != nil {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// applyBGP applies a reload: neighbours added, removed or changed in
// place, attributes re-announced; no other session is reset.
func (d *daemon) applyBGP(cfg *config.Config) {
	b := d.bgp.Load()
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b.speaker != nil {
		if err := b.speaker.SetNeighbors(ctx, bgpNeighbors(cfg)); err != nil {
			d.log.Error("bgp: reload could not apply every neighbor", "err", err)
		}
	}
	b.ann.SetAttrs(ctx, bgpAttrs(cfg))
	d.bgpKick()
}

// withdrawBGP withdraws every route at shutdown and keeps serving for
// bgp.withdraw_delay, while the routers move the clients elsewhere.
func (d *daemon) withdrawBGP() {
	b := d.bgp.Load()
	if b == nil {
		return
	}
	was := b.ann.Announced()
	b.stopping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.ann.WithdrawAll(ctx, "shutting down")
	if delay := d.current().BGP.WithdrawDelay; was && delay > 0 {
		d.log.Info("bgp: routes withdrawn, serving while the routers converge", "wait", delay.String())
		time.Sleep(delay)
	}
}

// stopBGP closes the sessions and takes the VIPs off bgp.interface.
func (d *daemon) stopBGP() {
	b := d.bgp.Load()
	if b == nil {
		return
	}
	b.stopping.Store(true)
	b.cancel()
	<-b.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.ann.WithdrawAll(ctx, "shutting down")
	if b.speaker != nil {
		b.speaker.Stop()
	}
	var err error
	switch b.mode {
	case "active":
		err = bgp.RemoveLocal(b.iface, b.prefixes)
	case "kernel":
		err = bgp.RemoveLocalRoutes(b.iface, b.proto, b.prefixes)
	}
	if err != nil {
		d.log.Warn("bgp: could not remove the VIPs from their interface", "err", err)
	}
}

// bgpStatus is the /status view of the announcer, nil without bgp.
func (d *daemon) bgpStatus() *admin.BGP {
	b := d.bgp.Load()
	if b == nil {
		return nil
	}
	cfg := d.current()
	st := &admin.BGP{Mode: b.mode}
	if b.speaker != nil {
		st.LocalAS, st.RouterID = uint32(cfg.BGP.LocalAS), cfg.BGP.RouterID.String()
		for _, s := range b.speaker.Sessions() {
			st.Sessions = append(st.Sessions, admin.BGPSession{Neighbor: s.Neighbor.String(), PeerAS: s.PeerAS, State: s.State,
				Since: s.Since, Received: s.Received})
		}
	}
	for _, p := range b.ann.Status() {
		st.Prefixes = append(st.Prefixes, admin.BGPPrefix{Prefix: p.Prefix.String(), Announced: p.Announced, Reason: p.Verdict.Reason,
			Since: p.Since, Error: p.Err})
	}
	return st
}
