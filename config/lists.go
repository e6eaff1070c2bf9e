package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
)

// list returns the items of v, the value at path: a list, or one string of
// items separated by commas and/or spaces (how an environment variable
// arrives). what names the items for the message when v is neither.
func (d *decoder) list(path string, v any, what string) ([]any, bool) {
	switch x := v.(type) {
	case string:
		var items []any
		for _, f := range strings.FieldsFunc(x, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			items = append(items, f)
		}
		return items, true
	case []any:
		return x, true
	}
	d.add(path, "must be a list of %s, not %s", what, kind(v))
	return nil, false
}

// eachText calls item with the index, path and text of every item of the
// list at path, skipping (and reporting) the items that are not scalars.
// It reports whether no problem was recorded meanwhile.
func (d *decoder) eachText(path string, items []any, item func(i int, p, s string)) bool {
	n := len(d.problems)
	for i, it := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		s, ok := d.text(p, it)
		if !ok {
			continue
		}
		item(i, p, s)
	}
	return len(d.problems) == n
}

// duplicate reports whether key is in seen, which maps the keys of the
// earlier items of the list at path to their index; if so it records at p
// which item the one at p repeats.
func duplicate[K comparable](d *decoder, seen map[K]int, key K, p, path string) bool {
	j, dup := seen[key]
	if dup {
		d.add(p, "duplicate of %s[%d]", path, j)
	}
	return dup
}

// parsePrefix parses s, "ip/len" or a bare "ip" (a /32 or /128), without a
// zone; an IPv4-mapped address is unmapped and its length adjusted. The
// host bits are kept. link names the key a zone would repeat, and notAddr
// returns the message when s does not start with an IP address (port
// tells whether it is one with a port). On failure it returns a message
// for a Problem.
func parsePrefix(s, link string, notAddr func(port bool) string) (netip.Prefix, string) {
	t := strings.TrimSpace(s)
	addr, bits, hasBits := strings.Cut(t, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		_, msg := parseAddrPort(t)
		return netip.Prefix{}, notAddr(msg == "")
	}
	if a.Zone() != "" && link == "" {
		return netip.Prefix{}, fmt.Sprintf("%q: zone not allowed", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Sprintf("%q: zone not allowed (%s is the link)", s, link)
	}
	n := a.BitLen()
	if hasBits {
		digits := bits != "" && strings.Trim(bits, "0123456789") == ""
		var err error
		n, err = strconv.Atoi(bits)
		if !digits || err != nil || n > a.BitLen() {
			return netip.Prefix{}, fmt.Sprintf("%q: prefix length must be 0-%d", s, a.BitLen())
		}
	}
	if a.Is4In6() {
		if n < 96 {
			return netip.Prefix{}, fmt.Sprintf("%q: prefix length must be 96-128 for an IPv4-mapped address", s)
		}
		a, n = a.Unmap(), n-96
	}
	return netip.PrefixFrom(a, n), ""
}
