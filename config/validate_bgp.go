package config

import (
	"slices"
	"time"
)

// validateBGP checks the bgp section against itself and the others: the
// mode against vrrp.enabled, the keys the mode needs, the neighbours'
// addresses, the next hops' families, the hold times, the tracking count
// against the backends and the route protocol against the numbers other
// routing daemons use. backends is the number of backends, 0 when they
// are missing.
func validateBGP(c *check, cfg *Config, backends int) {
	if c.unread["bgp"] {
		return
	}
	b := cfg.BGP
	mode := cfg.EffectiveMode()
	vrrpOn := cfg.VRRP.Enabled && c.ok("vrrp.enabled")
	if b.Enabled && c.ok("bgp.enabled") && c.ok("bgp.mode") {
		switch {
		case b.Mode == "vrrp" && !vrrpOn:
			c.add("bgp.mode", "vrrp needs vrrp.enabled (or use active: every fit node announces)")
		case b.Mode == "active" && vrrpOn:
			c.add("bgp.mode", "active does not go with vrrp.enabled (the VIPs would be both on bgp.interface and moved by VRRP); use vrrp")
		}
		if mode != "kernel" {
			bgpRequired(c, "bgp.local_as", b.LocalAS == 0, mode)
			bgpRequired(c, "bgp.router_id", !b.RouterID.IsValid(), mode)
			if c.ok("bgp.neighbors") && !c.unread["bgp.neighbors"] {
				bgpRequired(c, "bgp.neighbors", len(b.Neighbors) == 0, mode)
			}
		}
	}
	duplicates(c, "bgp.neighbors", "address", len(b.Neighbors), func(i int) (string, bool) {
		a := b.Neighbors[i].Address
		return a.String(), a.IsValid()
	})
	for i, n := range b.Neighbors {
		if p := item("bgp.neighbors", i) + ".hold_time"; c.set(p) && n.HoldTime%time.Second != 0 {
			c.add(p, "%s is not a whole number of seconds (BGP counts seconds)", fmtDuration(n.HoldTime))
		}
	}
	var v4, v6 int
	for i, a := range b.NextHop {
		p := item("bgp.next_hop", i)
		if !c.ok(p) || !a.IsValid() {
			continue
		}
		n := &v4
		if a.Is6() {
			n = &v6
		}
		if *n++; *n > 1 {
			c.add(p, "%q: a second next hop of its family (one IPv4 and one IPv6 at most)", c.text(p))
		}
	}
	if c.set("bgp.min_healthy_backends") && backends > 0 && b.MinHealthyBackends > backends {
		c.add("bgp.min_healthy_backends", "%d exceeds the number of backends (%d): the node would never announce", b.MinHealthyBackends, backends)
	}
	reserved := []int{1, 2, 3, 4, 11, 12, 186, 187, 188, 189, 192}
	if c.set("bgp.route_protocol") && slices.Contains(reserved, b.RouteProtocol) {
		c.add("bgp.route_protocol", "%d is used by the kernel or a routing daemon (1-4, 11, 12, 186-189, 192 are taken)", b.RouteProtocol)
	}
}

// bgpRequired reports the key at p, which mode needs, when it is missing.
func bgpRequired(c *check, p string, missing bool, mode string) {
	if missing && c.ok(p) {
		c.add(p, "required with bgp.mode %s", mode)
	}
}
