package config

import (
	"net/netip"
	"strings"
)

// validateBackends checks the backends' names and addresses, each unique.
// Their health checks are validated with the global one.
func validateBackends(c *check, backends []Backend) {
	const maxNameLen = 63
	for i, b := range backends {
		name, address := item("backends", i)+".name", item("backends", i)+".address"
		switch {
		case !c.set(name) || b.Name == "":
		case len(b.Name) > maxNameLen:
			c.add(name, "%q: longer than %d characters", b.Name, maxNameLen)
		case strings.IndexFunc(b.Name, func(r rune) bool { return !nameChar(r) }) >= 0:
			c.add(name, "%q: may contain only A-Z a-z 0-9 _ . -", b.Name)
		}
		switch a := b.Address.Addr(); {
		case !c.set(address) || !a.IsValid():
		case a.IsUnspecified():
			c.add(address, "%q: unspecified address not allowed", c.text(address))
		case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			c.add(address, "%q: multicast or broadcast address not allowed", c.text(address))
		}
	}
	duplicates(c, "backends", "name", len(backends), func(i int) (string, bool) {
		return backends[i].Name, backends[i].Name != ""
	})
	duplicates(c, "backends", "address", len(backends), func(i int) (netip.AddrPort, bool) {
		return backends[i].Address, backends[i].Address.IsValid()
	})
}

// nameChar reports whether r may appear in a backend name.
func nameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
}
