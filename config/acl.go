package config

import (
	"fmt"
	"net/netip"
)

// ACL is the client access list (key acl). A client whose address is in a
// Deny prefix is refused; otherwise, when Allow is not empty, only clients
// in an Allow prefix are served. Refused clients get no answer over UDP
// and have their TCP connection closed. The default (both empty) serves
// everyone. A reload applies a new list.
type ACL struct {
	// Allow lists the prefixes served (acl.allow); empty: everyone.
	Allow []netip.Prefix
	// Deny lists the prefixes refused (acl.deny), checked before Allow.
	Deny []netip.Prefix
}

func aclKeys() []string { return []string{"allow", "deny"} }

// acl decodes the section acl.
func (d *decoder) acl() ACL {
	var a ACL
	if v, ok := d.lookup("acl.allow"); ok == keySet {
		a.Allow, _ = d.prefixes("acl.allow", v)
	}
	if v, ok := d.lookup("acl.deny"); ok == keySet {
		a.Deny, _ = d.prefixes("acl.deny", v)
	}
	return a
}

// prefixes decodes a list of IP addresses or CIDRs without host bits at
// path, as a list or one string separated by commas and/or spaces.
func (d *decoder) prefixes(path string, v any) ([]netip.Prefix, bool) {
	return d.prefixList(path, v, parseACLPrefix)
}

// parseACLPrefix parses one acl.allow or acl.deny item.
func parseACLPrefix(s string) (netip.Prefix, string) {
	pfx, msg := parsePrefix(s, "", func(port bool) string {
		if port {
			return fmt.Sprintf("%q: not an IP address or CIDR (no port here)", s)
		}
		return fmt.Sprintf("%q: not an IP address or CIDR", s)
	})
	if msg == "" && pfx.Masked() != pfx {
		msg = fmt.Sprintf("%q: host bits set (the network is %s)", s, pfx.Masked())
	}
	return pfx, msg
}

// prefixList decodes a list of prefixes at path with parse, reporting
// every invalid or repeated item; it fails if there is one.
func (d *decoder) prefixList(path string, v any, parse func(string) (netip.Prefix, string)) ([]netip.Prefix, bool) {
	items, ok := d.list(path, v, "IP addresses or CIDRs")
	if !ok {
		return nil, false
	}
	var out []netip.Prefix
	seen := make(map[netip.Prefix]int, len(items))
	ok = d.eachText(path, items, func(i int, p, s string) {
		pfx, msg := parse(s)
		if msg != "" {
			d.add(p, "%s", msg)
			return
		}
		if duplicate(d, seen, pfx, p, path) {
			return
		}
		seen[pfx] = i
		out = append(out, pfx)
	})
	return out, ok
}
