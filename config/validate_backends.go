package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// validateBackends checks the backends' names and addresses, each unique.
// Their health checks are validated with the global one.
func validateBackends(c *check, backends []Backend) {
	for i, b := range backends {
		name, address := item("backends", i)+".name", item("backends", i)+".address"
		if c.set(name) && b.Name != "" {
			if problem := nameProblem(b.Name); problem != "" {
				c.add(name, "%q: %s", b.Name, problem)
			}
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

// nameProblem says what is wrong with the name of a backend or a VRRP
// instance (1-63 of A-Z a-z 0-9 _ . -), "" if nothing.
func nameProblem(name string) string {
	const maxNameLen = 63
	switch {
	case len(name) > maxNameLen:
		return fmt.Sprintf("longer than %d characters", maxNameLen)
	case strings.IndexFunc(name, func(r rune) bool { return !nameChar(r) }) >= 0:
		return "may contain only A-Z a-z 0-9 _ . -"
	}
	return ""
}

// nameChar reports whether r may appear in a name.
func nameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
}
