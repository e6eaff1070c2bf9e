package main

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/balancer"
	"github.com/dnslb/dnslb/config"
	"github.com/dnslb/dnslb/internal/health"
	"github.com/dnslb/dnslb/vrrp"
)

// newVRRP opens the VRRP socket and builds the instance for cfg.VRRP.
func (d *daemon) newVRRP(cfg *config.Config) (*vrrp.Instance, error) {
	v := cfg.VRRP
	v6 := v.VIPs[0].Addr().Is6()
	conn, err := vrrp.Listen(v.Interface, v6, v.VIPs)
	if err != nil {
		return nil, err
	}
	var nalocal = conn.LocalAddr()
	lifetime := vipLifetime(v.AdvertInterval)
	ann, err := vrrp.NewNetlinkAnnouncer(v.Interface, nalocal, lifetime)
	if err != nil {
		conn.Close()
		return nil, err
	}
	mode := vrrp.ChecksumPseudoHeader
	if v.ChecksumMode == "rfc9568" {
		mode = vrrp.ChecksumRFC9568
	}
	in, err := vrrp.New(vrrp.Options{
		VRID: uint8(v.VRID), Priority: uint8(v.Priority), Version: uint8(v.Version), Interval: v.AdvertInterval,
		Preempt: v.Preempt, PreemptDelay: v.PreemptDelay, VIPs: v.VIPs, Peers: v.Peers, ChecksumMode: mode,
		AuthPass: v.AuthPass, GARPRepeat: v.GARPRepeat, GARPDelay: v.GARPDelay, GARPRefresh: v.GARPRefresh,
		TrackWeight: v.Track.Weight, VIPRefresh: lifetime / 4,
		Conn: conn, Announcer: ann, Logger: d.log, Registerer: d.registry,
		OnTransition: func(from, to vrrp.State, reason string) { d.vrrpTransition(v.Notify, to) },
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return in, nil
}

// vipLifetime is the lifetime the VIPs are added with: four advert
// intervals, at least 2 s (the kernel counts whole seconds and removes an
// expired address within about a second). The master renews it every
// quarter; if the process dies, the kernel removes the VIPs by itself
// within the lifetime, so a dead node stops answering for them (with ICMP
// port unreachable, which primaries take as final) soon after the backup
// has taken over. `dnslb release` (ExecStopPost) removes them at once.
func vipLifetime(advert time.Duration) time.Duration {
	return max(2*time.Second, (4*advert+time.Second-1)/time.Second*time.Second)
}

// vrrpTransition runs the notify script, if any, with the new state.
func (d *daemon) vrrpTransition(script string, to vrrp.State) {
	if script == "" {
		return
	}
	state := to.String()
	if to == vrrp.Initialize {
		state = "stopped"
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, script, state).CombinedOutput()
		if err != nil {
			d.log.Warn("vrrp notify script failed", "script", script, "state", state, "err", err, "output", string(out))
			return
		}
		d.log.Info("vrrp notify script ran", "script", script, "state", state)
	}()
}

// updateTracking tells VRRP whether enough backends are up to serve.
func (d *daemon) updateTracking() {
	if d.vrrp == nil {
		return
	}
	min := d.current().VRRP.Track.MinHealthyBackends
	if min <= 0 {
		d.vrrp.SetTracking(true)
		return
	}
	healthy := 0
	for _, s := range d.bal.Snapshot() {
		if !s.Removed && s.State == balancer.Active && s.Health == health.Up {
			healthy++
		}
	}
	d.vrrp.SetTracking(healthy >= min)
}

// handOver makes the peer master before we stop serving: a priority-0
// advert now, while this node keeps the VIPs and answers, then a short wait
// so the peer's gratuitous ARPs move the clients.
func (d *daemon) handOver() {
	if d.vrrp == nil || d.vrrp.Status().State != vrrp.Master {
		return
	}
	d.handingOver.Store(true) // still copies NOTIFYs: it holds the VIPs until it stops
	d.vrrp.Resign()
	wait := min(d.current().VRRP.AdvertInterval+100*time.Millisecond, time.Second)
	d.log.Info("vrrp: priority 0 sent, serving while the peer takes over", "wait", wait.String())
	time.Sleep(wait)
}

func vrrpStatus(in *vrrp.Instance) *admin.VRRP {
	if in == nil {
		return nil
	}
	s := in.Status()
	return &admin.VRRP{VRID: int(s.VRID), State: s.State.String(), Priority: int(s.Priority), EffectivePriority: int(s.EffectivePriority),
		Master: s.Master, MasterPriority: int(s.MasterPriority), AdvertInterval: s.AdvertInterval.String(),
		Since: s.Since, Reason: s.Reason, VIPs: s.VIPs}
}

// releaseVIPs removes vips from iface (dnslb release).
func releaseVIPs(iface string, vips []netip.Prefix) error {
	ann, err := vrrp.NewNetlinkAnnouncer(iface, netip.Addr{}, 0)
	if err != nil {
		return err
	}
	return ann.RemoveVIPs(vips)
}

func prefixList(ps []netip.Prefix) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}
