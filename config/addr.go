package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// parseAddrPort parses "ip:port" (IPv6 as "[::1]:53") with a port in
// 1-65535. On failure it returns a message for a Problem, naming what is
// wrong rather than echoing the parser. IPv4-mapped IPv6 addresses are
// unmapped so that duplicates are found.
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
