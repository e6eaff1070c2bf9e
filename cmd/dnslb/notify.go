package main

import (
	"net/netip"

	"github.com/dnslb/dnslb/config"
	"github.com/dnslb/dnslb/notifydup"
	"github.com/dnslb/dnslb/vrrp"
)

// newNotify builds the NOTIFY duplicator for cfg.Notify: it watches the
// listen addresses (port 53) on notify.interface and copies to every
// backend that is not disabled.
func (d *daemon) newNotify(cfg *config.Config) (*notifydup.Duplicator, error) {
	var vips []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, l := range cfg.Listen {
		if !seen[l.Addr()] {
			seen[l.Addr()] = true
			vips = append(vips, l.Addr())
		}
	}
	return notifydup.New(notifydup.Options{
		Interface: cfg.Notify.Interface,
		VIPs:      vips,
		Policy:    notifyPolicy(cfg),
		Backends:  d.notifyTargets,
		IsMaster: func() bool {
			return d.vrrp == nil || d.vrrp.Status().State == vrrp.Master.String()
		},
		Logger:     d.log,
		Registerer: d.registry,
	})
}

func notifyPolicy(cfg *config.Config) notifydup.Policy {
	n := cfg.Notify
	return notifydup.Policy{Primaries: n.Primaries, MaxPerSecond: n.MaxPerSecond, DedupWindow: n.DedupWindow, Retries: n.Retries}
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

// tcpNotify copies a NOTIFY the balancer received over TCP as UDP.
func (d *daemon) tcpNotify(msg []byte, src, dst netip.AddrPort) {
	if d.notify == nil {
		return
	}
	n, err := notifydup.ParseMessage(msg, src, dst)
	if err != nil {
		d.log.Warn("tcp notify not copied", "src", src.String(), "err", err)
		return
	}
	d.notify.Handle(n)
}
