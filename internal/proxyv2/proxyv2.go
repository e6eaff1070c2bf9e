// Package proxyv2 writes PROXY protocol version 2 headers (the HAProxy
// specification, section 2.2), which tell a backend the real client's
// address: dnslb puts one in front of each UDP query, and once at the
// start of each TCP connection, to the backends configured with
// client_address: proxy_v2 (Knot, PowerDNS, Unbound, dnsdist accept it).
//
// It writes PROXY commands only, never LOCAL: a health probe that wants a
// header names its own socket in a PROXY header instead, because Knot 3.2
// drops UDP queries with a LOCAL header (which is why dnsdist 1.7, whose
// health checks send one, marks Knot backends down).
//
// Written by hand rather than with github.com/pires/go-proxyproto (the
// reference the tests parse with): the header is built in place on the
// hot path, for every UDP query, and must not allocate.
package proxyv2

import "net/netip"

// signature starts every v2 header.
var signature = [12]byte{0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a}

// Header sizes.
const (
	fixedLen = 16
	ipv4Len  = 12 // two addresses and two ports
	ipv6Len  = 36
	// MaxLen is the longest header Append writes.
	MaxLen = fixedLen + ipv6Len
)

const (
	cmdProxy = 0x21 // version 2, PROXY: relayed for the addresses given

	tcpIPv4 = 0x11
	udpIPv4 = 0x12
	tcpIPv6 = 0x21
	udpIPv6 = 0x22
)

// Len returns the length of the header Append writes for src and dst.
func Len(src, dst netip.AddrPort) int {
	if src.Addr().Unmap().Is4() && dst.Addr().Unmap().Is4() {
		return fixedLen + ipv4Len
	}
	return fixedLen + ipv6Len
}

// Append appends a PROXY header for a connection from src (the client) to
// dst (the address it reached, the VIP) over TCP or UDP. When the two are
// of different families both are written as IPv6 (IPv4-mapped). It
// allocates nothing when b has room for Len(src, dst) more bytes.
func Append(b []byte, src, dst netip.AddrPort, tcp bool) []byte {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	b = append(b, signature[:]...)
	if s.Is4() && d.Is4() {
		fam := byte(udpIPv4)
		if tcp {
			fam = tcpIPv4
		}
		b = append(b, cmdProxy, fam, 0, ipv4Len)
		s4, d4 := s.As4(), d.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	} else {
		fam := byte(udpIPv6)
		if tcp {
			fam = tcpIPv6
		}
		b = append(b, cmdProxy, fam, 0, ipv6Len)
		s16, d16 := s.As16(), d.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	return append(b, byte(src.Port()>>8), byte(src.Port()), byte(dst.Port()>>8), byte(dst.Port()))
}
