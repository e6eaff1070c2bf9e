package main

import (
	"math"
	"net/netip"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/balancer"
	"github.com/dnslb/dnslb/config"
	"github.com/dnslb/dnslb/notifydup"
)

// newNotify builds the NOTIFY duplicator for cfg.Notify: the balancer
// hands it every NOTIFY, and it copies to every backend that is not
// disabled.
func (d *daemon) newNotify(cfg *config.Config) (*notifydup.Duplicator, error) {
	return notifydup.New(notifydup.Options{
		Interface: cfg.Notify.Interface,
		Policy:    notifyPolicy(cfg),
		Backends:  d.notifyTargets,
		// The master copies, and so does a master handing over on its
		// way out: it holds the VIPs and answers until it stops.
		IsMaster: func(vip netip.Addr) bool {
			return d.vrrp == nil || d.vrrp.holds(vip) || d.handingOver.Load()
		},
		Logger:     d.log,
		Registerer: d.registry,
	})
}

func notifyPolicy(cfg *config.Config) notifydup.Policy {
	n := cfg.Notify
	p := notifydup.Policy{Primaries: n.Primaries, MaxPerSecond: n.MaxPerSecond, DedupWindow: n.DedupWindow, Retries: n.Retries,
		TrackQPS: n.TrackQPS, MaxTracked: n.MaxTracked, CopyQPS: n.CopyQPS}
	for _, k := range n.TSIGKeys {
		p.Keys = append(p.Keys, notifydup.TSIGKey{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret})
	}
	return p
}

// notifyTargets lists the backends that get NOTIFY copies: every one not
// disabled, down ones included (a NOTIFY is cheap, and a secondary that
// comes back must be current).
func (d *daemon) notifyTargets() []notifydup.Backend {
	var out []notifydup.Backend
	for _, b := range d.current().Backends {
		if b.State != config.StateDisabled {
			out = append(out, notifydup.Backend{Name: b.Name, Addr: b.Address})
		}
	}
	return out
}

// notifyAdapter gives the balancer the duplicator as its Notifier: the two
// packages do not import each other.
type notifyAdapter struct{ d *notifydup.Duplicator }

// Notify implements balancer.Notifier.
func (a notifyAdapter) Notify(msg []byte, src, dst netip.AddrPort, done func([]byte)) balancer.NotifyVerdict {
	switch a.d.Notify(msg, src, dst, done) {
	case notifydup.Accept:
		return balancer.NotifyAccept
	case notifydup.Refuse:
		return balancer.NotifyRefuse
	}
	return balancer.NotifyIgnore
}

// addNotifyTracking fills the tracking part of the status's notify line.
func addNotifyTracking(n *admin.Notify, ns notifydup.Stats) {
	n.Resends, n.SOAQueries, n.GivenUp = ns.Resends, ns.SOAQueries, ns.GivenUp
	n.Tracked, n.MaxTracked, n.Untracked = ns.Tracked, ns.MaxTracked, ns.Untracked
	h := &admin.Histogram{Count: ns.Convergence.Count, SumSeconds: ns.Convergence.Sum}
	for i, le := range ns.Convergence.Bounds {
		if !math.IsInf(le, 1) {
			h.Buckets = append(h.Buckets, admin.Bucket{LE: le, Count: ns.Convergence.Counts[i]})
		}
	}
	n.Convergence = h
}
