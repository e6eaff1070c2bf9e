package balancer

import (
	"net/netip"

	"github.com/dnslb/dnslb/internal/dnswire"
	"github.com/dnslb/dnslb/internal/proxyv2"
)

// ClientAddress is how a backend learns the real client's address: behind
// dnslb every query comes from dnslb's own.
type ClientAddress uint8

const (
	// ClientAddressNone sends queries as they came.
	ClientAddressNone ClientAddress = iota
	// ClientAddressProxyV2 puts a PROXY protocol v2 header (client and VIP
	// address and port) in front of every UDP query and at the start of
	// every TCP connection to the backend.
	ClientAddressProxyV2
	// ClientAddressECS adds an EDNS Client Subnet option (RFC 7871) with
	// the client's prefix to every query (Settings.ECS), and takes what
	// dnslb added out of the answer again.
	ClientAddressECS
	// ClientAddressProxyV2UDP is ClientAddressProxyV2 for UDP only: TCP
	// connections carry no header. For backends that take PROXY v2 over
	// UDP only (Knot 3.2 closes a TCP connection that starts with one);
	// over TCP they see dnslb's address.
	ClientAddressProxyV2UDP
)

var clientAddressNames = [...]string{ClientAddressNone: "none", ClientAddressProxyV2: "proxy_v2", ClientAddressECS: "ecs",
	ClientAddressProxyV2UDP: "proxy_v2_udp"}

// String returns the configuration spelling (none, proxy_v2, ecs,
// proxy_v2_udp).
func (c ClientAddress) String() string {
	if int(c) < len(clientAddressNames) {
		return clientAddressNames[c]
	}
	return "unknown"
}

// ECSSettings say which client prefix client_address: ecs sends.
type ECSSettings struct {
	// IPv4PrefixLen and IPv6PrefixLen are the source prefix lengths sent
	// (RFC 7871 11.1 recommends 24 and 56, the defaults).
	IPv4PrefixLen, IPv6PrefixLen int
	// Override replaces an ECS option the client sent; without it such a
	// query goes out unchanged (the client, a resolver, chose its subnet).
	Override bool
}

func (e ECSSettings) withDefaults() ECSSettings {
	if e.IPv4PrefixLen <= 0 || e.IPv4PrefixLen > 32 {
		e.IPv4PrefixLen = 24
	}
	if e.IPv6PrefixLen <= 0 || e.IPv6PrefixLen > 128 {
		e.IPv6PrefixLen = 56
	}
	return e
}

// UDP receive buffers keep room around each query so that a PROXY v2
// header can be put in front of it, and an ECS option behind it, in place.
const (
	// udpHeadroom is the room in front of every received query.
	udpHeadroom = proxyv2.MaxLen
	// ecsRoom is the most AddECS adds: an OPT record (11 bytes) with an
	// option for a /128 (24).
	ecsRoom = 11 + 4 + 4 + 16
)

// addECS gives msg (whose OPT record is at opt, or -1) the client's ECS
// option per e. It returns the message to send, aliasing msg, and what
// was added for stripAdded; a message that cannot take one (no room, or
// signed) goes out as it is.
func addECS(msg []byte, opt int, client netip.Addr, e *ECSSettings) ([]byte, dnswire.ECSAdded) {
	client = client.Unmap()
	var out []byte
	var added dnswire.ECSAdded
	var ok bool
	if client.Is4() {
		a := client.As4()
		out, added, ok = dnswire.AddECS(msg, opt, 1, e.IPv4PrefixLen, a[:], e.Override)
	} else {
		a := client.As16()
		out, added, ok = dnswire.AddECS(msg, opt, 2, e.IPv6PrefixLen, a[:], e.Override)
	}
	if !ok {
		return msg, dnswire.AddedNothing
	}
	return out, added
}

// frameUDP turns the query in frame[udpHeadroom:udpHeadroom+n] into the
// datagram for be: with the client's ECS option added (ecs mode), or
// behind a PROXY v2 header for client → dst (proxy_v2 mode). It works in
// place, in the frame's headroom and spare capacity, and allocates
// nothing.
func frameUDP(frame []byte, n int, mode ClientAddress, opt int, client, dst netip.AddrPort, e *ECSSettings) (dgram []byte, added dnswire.ECSAdded) {
	msg := frame[udpHeadroom : udpHeadroom+n]
	switch mode {
	case ClientAddressECS:
		msg, added = addECS(msg, opt, client.Addr(), e)
		return msg, added
	case ClientAddressProxyV2, ClientAddressProxyV2UDP:
		h := proxyv2.Len(client, dst)
		proxyv2.Append(frame[udpHeadroom-h:udpHeadroom-h], client, dst, false)
		return frame[udpHeadroom-h : udpHeadroom+n], dnswire.AddedNothing
	}
	return msg, dnswire.AddedNothing
}
