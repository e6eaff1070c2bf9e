package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Notify holds the key notify: whether dnslb answers the DNS NOTIFY
// messages (RFC 1996) that the primaries send to the VIP and copies each to
// every backend, and how. Every value is validated even when Enabled is
// false; Interface and Primaries are required only when it is true.
type Notify struct {
	// Enabled is notify.enabled. It defaults to true when the file has a
	// notify section and to false when it has none; DNSLB_NOTIFY_ENABLED
	// overrides either.
	Enabled bool
	// Interface is the network interface the NOTIFYs to the VIP arrive on
	// (notify.interface): 1-15 characters without '/', ':' or whitespace,
	// not "." or "..", like vrrp.interface. Required when enabled.
	Interface string
	// Primaries holds the only sources whose NOTIFYs are answered and
	// copied (notify.primaries), in file order: at least one when enabled,
	// no duplicates. Each is an address ("192.0.2.1" is 192.0.2.1/32,
	// "2001:db8::1" a /128) or a network ("2001:db8::/64") without host
	// bits; IPv4-mapped IPv6 addresses are unmapped. Both families may be
	// mixed. Unspecified and multicast addresses, which are never a
	// source, are rejected.
	Primaries []netip.Prefix
	// MaxPerSecond is how many NOTIFYs are accepted per second from each
	// primary (notify.max_per_second), 1-1000000; default 1000.
	MaxPerSecond int
	// DedupWindow is how long a NOTIFY for the same (primary, zone,
	// serial) is not copied again (notify.dedup_window), in [0s, 1h];
	// default 5s, 0 disables deduplication. A duplicate is still answered.
	DedupWindow time.Duration
	// Retries is how many times a NOTIFY is re-sent to a backend until the
	// backend's SOA serial reaches the NOTIFY's (notify.retries), 0-20;
	// default 5, 0 disables this convergence tracking.
	Retries int
}

// Equal reports whether n and o hold the same settings; Primaries are
// compared in order.
func (n Notify) Equal(o Notify) bool {
	return n.Enabled == o.Enabled &&
		n.Interface == o.Interface &&
		slices.Equal(n.Primaries, o.Primaries) &&
		n.MaxPerSecond == o.MaxPerSecond &&
		n.DedupWindow == o.DedupWindow &&
		n.Retries == o.Retries
}

// Defaults of the notify section, as written in a file.
const (
	defaultNotifyMaxPerSecond = 1000
	defaultNotifyDedupWindow  = "5s"
	defaultNotifyRetries      = 5
)

// Allowed notify ranges.
const (
	maxNotifyPerSecond   = 1000000
	maxNotifyDedupWindow = time.Hour
	maxNotifyRetries     = 20
)

// Known keys of the notify mapping, in schema order.
func notifyKeys() []string {
	return []string{"enabled", "interface", "primaries", "max_per_second", "dedup_window", "retries"}
}

// defaultNotify returns the notify section of a file without one.
func defaultNotify() Notify {
	return Notify{
		MaxPerSecond: defaultNotifyMaxPerSecond,
		DedupWindow:  5 * time.Second,
		Retries:      defaultNotifyRetries,
	}
}

// notify decodes the section notify. Every key comes through viper
// (environment > file > default); the file decides only whether the
// section is present and which keys are unknown.
func (d *decoder) notify() Notify {
	const path = "notify"
	n := defaultNotify()
	m, present, ok := d.openSection(path)
	if !ok {
		return n
	}
	n.Enabled = present

	f := d.viperFields(path)
	f.field("enabled", assign(&n.Enabled, d.boolean))
	f.field("interface", assign(&n.Interface, d.ifaceName))
	f.required("interface", n.Interface == "", n.Enabled)
	f.field("primaries", assign(&n.Primaries, d.primaries))
	f.required("primaries", len(n.Primaries) == 0, n.Enabled)
	f.field("max_per_second", assign(&n.MaxPerSecond, d.intIn(1, maxNotifyPerSecond)))
	f.field("dedup_window", assign(&n.DedupWindow, d.durationBetween(0, maxNotifyDedupWindow, " (0s disables)")))
	f.field("retries", assign(&n.Retries, d.intIn(0, maxNotifyRetries)))
	d.unknown(path, m, notifyKeys())
	return n
}

// primaries decodes notify.primaries at path: a list of addresses or
// CIDRs, or one string of them separated by commas and/or spaces. It
// reports every invalid item and fails if there is one.
func (d *decoder) primaries(path string, v any) ([]netip.Prefix, bool) {
	items, ok := d.list(path, v, "IP addresses or CIDRs")
	if !ok {
		return nil, false
	}
	var out []netip.Prefix
	seen := make(map[netip.Prefix]int, len(items))
	ok = d.eachText(path, items, func(i int, p, s string) {
		pfx, msg := parsePrimary(s)
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

// Multicast ranges: never the source of a NOTIFY.
var (
	multicast4 = netip.MustParsePrefix("224.0.0.0/4")
	multicast6 = netip.MustParsePrefix("ff00::/8")
)

// parsePrimary parses a primary: an IP address (a /32 or /128) or a CIDR
// without host bits. On failure it returns a message for a Problem.
func parsePrimary(s string) (netip.Prefix, string) {
	pfx, msg := parsePrefix(s, "notify.interface", func(port bool) string {
		if port {
			return fmt.Sprintf("%q: not an IP address or CIDR (a primary takes no port)", s)
		}
		return fmt.Sprintf("%q: not an IP address or CIDR", s)
	})
	if msg != "" {
		return netip.Prefix{}, msg
	}
	a, n := pfx.Addr(), pfx.Bits()
	switch {
	case pfx.Masked() != pfx:
		return netip.Prefix{}, fmt.Sprintf("%q: host bits set (the network is %s)", s, pfx.Masked())
	case pfx.IsSingleIP() && a.IsUnspecified():
		return netip.Prefix{}, fmt.Sprintf("%q: unspecified address not allowed", s)
	case multicast4.Contains(a) && n >= multicast4.Bits(), multicast6.Contains(a) && n >= multicast6.Bits():
		return netip.Prefix{}, fmt.Sprintf("%q: multicast address not allowed", s)
	}
	return pfx, ""
}
