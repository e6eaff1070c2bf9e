package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The address parsers read one item as written and return a message for
// a Problem when it does not parse, naming what is wrong rather than
// echoing the parser. IPv4-mapped IPv6 addresses are unmapped so that
// duplicates are found.

// parseAddrPort parses "ip:port" (IPv6 as "[::1]:53") with a port in
// 1-65535.
func parseAddrPort(s string) (netip.AddrPort, string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			switch ae.Err {
			case "missing port in address":
				return netip.AddrPort{}, "missing port"
			case "too many colons in address":
				return netip.AddrPort{}, fmt.Sprintf(`%q: put an IPv6 address in brackets, e.g. "[::1]:53"`, s)
			}
		}
		return netip.AddrPort{}, fmt.Sprintf("%q: not ip:port", s)
	}
	if port == "" {
		return netip.AddrPort{}, "missing port"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Sprintf("%q: not an IP address", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return netip.AddrPort{}, fmt.Sprintf("port %s out of range 1-65535", port)
	case err != nil:
		return netip.AddrPort{}, fmt.Sprintf("%q: port %q is not a number", s, port)
	case n == 0:
		return netip.AddrPort{}, "port 0 out of range 1-65535"
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)), ""
}

// parsePrefix parses s, "ip/len" or a bare "ip" (a /32 or /128), without a
// zone; an IPv4-mapped address is unmapped and its length adjusted. The
// host bits are kept. link names the key a zone would repeat, and notAddr
// returns the message when s does not start with an IP address (port
// tells whether it is one with a port).
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

// parseNetwork parses an item of acl.allow or acl.deny: an IP address or
// CIDR (host bits are checked by validation).
func parseNetwork(s string) (netip.Prefix, string) {
	return parsePrefix(s, "", func(port bool) string {
		if port {
			return fmt.Sprintf("%q: not an IP address or CIDR (no port here)", s)
		}
		return fmt.Sprintf("%q: not an IP address or CIDR", s)
	})
}

// parsePrimary parses an item of notify.primaries: an IP address or CIDR.
func parsePrimary(s string) (netip.Prefix, string) {
	return parsePrefix(s, "notify.interface", func(port bool) string {
		if port {
			return fmt.Sprintf("%q: not an IP address or CIDR (a primary takes no port)", s)
		}
		return fmt.Sprintf("%q: not an IP address or CIDR", s)
	})
}

// parseVIP parses an item of vrrp.vips: "ip/len" or a bare "ip" (a /32 or
// /128).
func parseVIP(s string) (netip.Prefix, string) {
	return parsePrefix(s, "vrrp.interface", func(port bool) string {
		if port {
			return fmt.Sprintf("%q: no port allowed, write an address such as 192.0.2.53/24", s)
		}
		return fmt.Sprintf("%q: not an IP address or prefix such as 192.0.2.53/24", s)
	})
}

// parsePeer parses an item of vrrp.peers: an IP address.
func parsePeer(s string) (netip.Addr, string) {
	t := strings.TrimSpace(s)
	a, err := netip.ParseAddr(t)
	if err == nil {
		return a.Unmap(), ""
	}
	if _, err := netip.ParsePrefix(t); err == nil {
		return netip.Addr{}, fmt.Sprintf("%q: not an IP address (a peer takes no prefix length)", s)
	}
	if _, msg := parseAddrPort(t); msg == "" {
		return netip.Addr{}, fmt.Sprintf("%q: not an IP address (a peer takes no port)", s)
	}
	return netip.Addr{}, fmt.Sprintf("%q: not an IP address", s)
}
