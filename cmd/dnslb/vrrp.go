package main

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dnslb/dnslb/balancer"
	"github.com/dnslb/dnslb/config"
	"github.com/dnslb/dnslb/internal/health"
	"github.com/dnslb/dnslb/vrrp"
)

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

// updateTracking tells VRRP whether enough backends are up to serve.
func (d *daemon) updateTracking() {
	d.bgpKick()
	if d.vrrp == nil {
		return
	}
	min := d.current().VRRP.Track.MinHealthyBackends
	if min <= 0 {
		d.vrrp.setTracking(true)
		return
	}
	healthy := 0
	for _, s := range d.bal.Snapshot() {
		if !s.Removed && s.State == balancer.Active && s.Health == health.Up {
			healthy++
		}
	}
	d.vrrp.setTracking(healthy >= min)
}

// handOver makes the peers master before we stop serving: a priority-0
// advert for every master instance now, while this node keeps the VIPs
// and answers, then a short wait so the peers' gratuitous ARPs move the
// clients.
func (d *daemon) handOver() {
	if d.vrrp == nil {
		return
	}
	d.handingOver.Store(true) // still copies NOTIFYs: it holds the VIPs until it stops
	wait, any := d.vrrp.resign()
	if !any {
		return
	}
	d.log.Info("vrrp: priority 0 sent, serving while the peer takes over", "wait", wait.String())
	time.Sleep(wait)
}

// releaseVIPs removes every instance's VIPs from its interface (dnslb
// release).
func releaseVIPs(specs []vrrpSpec) error {
	for _, sp := range specs {
		ann, err := vrrp.NewNetlinkAnnouncer(sp.Interface, netip.Addr{}, 0)
		if err != nil {
			return fmt.Errorf("vrrp instance %s: %w", sp.Name, err)
		}
		if err := ann.RemoveVIPs(sp.Options.VIPs); err != nil {
			return fmt.Errorf("vrrp instance %s: %w", sp.Name, err)
		}
	}
	return nil
}

func prefixList(ps []netip.Prefix) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}

// vrrpSpecs returns the VRRP instances of cfg (none without vrrp).
// Tracking and the notify script are the node's: every instance gets
// them.
func vrrpSpecs(cfg *config.Config) []vrrpSpec {
	var specs []vrrpSpec
	for _, v := range cfg.VRRP.InstanceList() {
		mode := vrrp.ChecksumPseudoHeader
		if v.ChecksumMode == "rfc9568" {
			mode = vrrp.ChecksumRFC9568
		}
		specs = append(specs, vrrpSpec{Name: v.Name, Interface: v.Interface, Sync: v.Sync, Notify: cfg.VRRP.Notify, Options: vrrp.Options{
			VRID: uint8(v.VRID), Priority: uint8(v.Priority), Version: uint8(v.Version), Interval: v.AdvertInterval,
			Preempt: v.Preempt, PreemptDelay: v.PreemptDelay, VIPs: v.VIPs, Peers: v.Peers, ChecksumMode: mode,
			AuthPass: v.AuthPass, GARPRepeat: v.GARPRepeat, GARPDelay: v.GARPDelay, GARPRefresh: v.GARPRefresh,
			TrackWeight: cfg.VRRP.Track.Weight,
		}})
	}
	return specs
}
