package config

import "net/netip"

// validateListen checks the listen addresses: no wildcard, no duplicate.
func validateListen(c *check, listen []netip.AddrPort) {
	for i, ap := range listen {
		if p := item("listen", i); c.ok(p) && ap.Addr().IsUnspecified() {
			c.add(p, "%q: wildcard address not allowed, list each address clients query (answers must come from it)", c.text(p))
		}
	}
	duplicates(c, "listen", "", len(listen), func(i int) (netip.AddrPort, bool) { return listen[i], listen[i].IsValid() })
}

// validateLimits checks that the per-client TCP limit fits in the total.
func validateLimits(c *check, l Limits) {
	if c.set("limits.tcp_connections") && c.set("limits.tcp_connections_per_client") && l.TCPConnectionsPerClient > l.TCPConnections {
		c.add("limits.tcp_connections_per_client", "%d exceeds limits.tcp_connections (%d)", l.TCPConnectionsPerClient, l.TCPConnections)
	}
}

// validateACL checks the access lists: networks without host bits, no
// duplicates.
func validateACL(c *check, a ACL) {
	for _, l := range []struct {
		path string
		list []netip.Prefix
	}{{"acl.allow", a.Allow}, {"acl.deny", a.Deny}} {
		networks(c, l.path, l.list)
		duplicates(c, l.path, "", len(l.list), func(i int) (netip.Prefix, bool) { return l.list[i], l.list[i].IsValid() })
	}
}

// validateAdmin checks the admin listener's address and token.
func validateAdmin(c *check, a Admin) {
	if _, err := netip.ParseAddrPort(a.Listen); c.set("admin.listen") && a.Listen != "" && err != nil {
		c.add("admin.listen", "%q: not ip:port", a.Listen)
	}
	if c.set("admin.token") && a.Token != "" && len(a.Token) < 16 {
		c.add("admin.token", "too short: %d characters, at least 16", len(a.Token))
	}
}

// validateRRL checks the exempt prefixes: networks without host bits, no
// duplicates.
func validateRRL(c *check, r RRL) {
	networks(c, "rrl.exempt", r.Exempt)
	duplicates(c, "rrl.exempt", "", len(r.Exempt), func(i int) (netip.Prefix, bool) { return r.Exempt[i], r.Exempt[i].IsValid() })
}
