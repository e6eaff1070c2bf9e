package main

import (
	"context"
	"os/exec"
	"time"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/balancer"
	"github.com/dnslb/dnslb/config"
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
	ann, err := vrrp.NewNetlinkAnnouncer(v.Interface, nalocal)
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
		TrackWeight: v.Track.Weight, Conn: conn, Announcer: ann, Logger: d.log, Registerer: d.registry,
		OnTransition: func(from, to vrrp.State, reason string) { d.vrrpTransition(v.Notify, to) },
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return in, nil
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
		if !s.Removed && s.State == balancer.Active && s.Health == balancer.Up {
			healthy++
		}
	}
	d.vrrp.SetTracking(healthy >= min)
}

// handOver makes the peer master before we stop serving: a priority-0
// advert now, while this node keeps the VIPs and answers, then a short wait
// so the peer's gratuitous ARPs move the clients.
func (d *daemon) handOver() {
	if d.vrrp == nil || d.vrrp.Status().State != vrrp.Master.String() {
		return
	}
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
	return &admin.VRRP{VRID: int(s.VRID), State: s.State, Priority: int(s.Priority), EffectivePriority: int(s.EffectivePriority),
		Master: s.Master, MasterPriority: int(s.MasterPriority), AdvertInterval: s.AdvertInterval.String(),
		Since: s.Since, Reason: s.Reason, VIPs: s.VIPs}
}
