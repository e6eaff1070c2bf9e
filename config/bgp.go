package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// BGP holds the key bgp: announcing the listen addresses to routers as
// host routes (/32, /128) while this node is fit to serve them, and
// withdrawing them when it is not. Every value is validated even when
// Enabled is false; LocalAS, RouterID and Neighbors are required only
// when it is true and the mode speaks BGP itself (not kernel).
type BGP struct {
	// Enabled is bgp.enabled. It defaults to true when the file has a bgp
	// section and to false when it has none; DNSLB_BGP_ENABLED overrides
	// either.
	Enabled bool `mapstructure:"enabled"`
	// Mode is how the node announces (bgp.mode): "vrrp" announces a VIP
	// only while this node is the VRRP master of its instance (needs
	// vrrp.enabled); "active" announces on every fit node, so routers
	// spread the clients over them (ECMP), and puts the VIPs on
	// bgp.interface (not with vrrp.enabled); "kernel" speaks no BGP
	// itself but adds a route per VIP to the kernel with protocol
	// bgp.route_protocol, for a local BIRD or FRR to redistribute; "auto"
	// (default) is vrrp with vrrp.enabled and active without.
	Mode string `mapstructure:"mode" enum:"auto|vrrp|active|kernel" note:"auto: vrrp with vrrp.enabled, else active"`
	// LocalAS is this node's autonomous system number (bgp.local_as),
	// 1-4294967295. Required when enabled, but in mode kernel.
	LocalAS int `mapstructure:"local_as" range:"1-4294967295" note:"required when enabled, but in mode kernel"`
	// RouterID is the BGP identifier of this node (bgp.router_id): an
	// IPv4 address, unique among the routers it talks to (the node's own
	// address, never a shared VIP). Required when enabled, but in mode
	// kernel.
	RouterID netip.Addr `mapstructure:"router_id" kind:"ipv4" note:"unique per node; required when enabled, but in mode kernel"`
	// Neighbors are the routers this node announces to (bgp.neighbors),
	// addresses unique; at least one when enabled, but in mode kernel.
	// They come from the file only.
	Neighbors []BGPNeighbor `mapstructure:"neighbors" fileonly:"list the neighbors in the file"`
	// Communities are attached to every announced route
	// (bgp.communities): "asn:value" with both parts 0-65535, or one of
	// no-export, no-advertise, no-export-subconfed, graceful-shutdown,
	// blackhole; nil (default) none. A reload applies a new list without
	// resetting a session.
	Communities []string `mapstructure:"communities" kind:"community" note:"a reload re-announces without a session reset"`
	// MED is the multi-exit discriminator of every announced route
	// (bgp.med), 0-4294967295; default 0. Lower is preferred: give the
	// backup site a higher MED. A reload applies it without a session
	// reset.
	MED int `mapstructure:"med" range:"0-4294967295" note:"lower is preferred"`
	// NextHop holds the next hop announced with the routes (bgp.next_hop):
	// at most one IPv4 address (for the IPv4 VIPs) and one IPv6 address
	// (for the IPv6 VIPs); nil (default) means the local address of each
	// session, which is what an eBGP router needs.
	NextHop []netip.Addr `mapstructure:"next_hop" kind:"nexthop" note:"one per family at most; empty: each session's local address"`
	// WithdrawDelay is how long the node keeps answering after it
	// withdrew its routes on a shutdown (bgp.withdraw_delay), in [0s, 1m];
	// default 2s: the routers' time to move the clients away.
	WithdrawDelay time.Duration `mapstructure:"withdraw_delay" range:"[0s, 1m]" note:"keep answering this long after withdrawing at shutdown"`
	// MinHealthyBackends is how many backends must be up for the node to
	// announce (bgp.min_healthy_backends), 0-10000 and at most the number
	// of backends; default 1, 0 announces whatever their health.
	MinHealthyBackends int `mapstructure:"min_healthy_backends" range:"0-10000" note:"at most the number of backends; 0: whatever their health"`
	// Interface is where this node accepts the VIPs' traffic
	// (bgp.interface); default "lo": mode active adds the VIPs there as
	// addresses, mode kernel as local routes (no address, so that a
	// routing daemon's connected route does not hide dnslb's kernel
	// route) next to the host routes it tags. A dummy interface works
	// too, when the kernel has the module.
	Interface string `mapstructure:"interface" kind:"interface" note:"active: the VIPs' addresses; kernel: the device of their local and host routes"`
	// RouteProtocol is the protocol number of the kernel routes mode
	// kernel adds (bgp.route_protocol), 1-255 but the numbers the kernel
	// and routing daemons use (1-4, 11 zebra, 12 bird, 186-189, 192);
	// default 250. BIRD matches it as krt_source; FRR redistributes
	// kernel routes.
	RouteProtocol int `mapstructure:"route_protocol" range:"1-255" note:"mode kernel: the routes' protocol number"`
}

// BGPNeighbor is one item of bgp.neighbors: a router.
type BGPNeighbor struct {
	// Address is the router's address (address), unique in the list; the
	// session runs from the local address the kernel picks towards it.
	Address netip.Addr `mapstructure:"address" kind:"ip" required:"true" note:"unique"`
	// PeerAS is the router's AS number (peer_as), 1-4294967295; the same
	// as bgp.local_as makes an iBGP session.
	PeerAS int `mapstructure:"peer_as" range:"1-4294967295" required:"true"`
	// Port is the router's TCP port (port), 1-65535; default 179.
	Port int `mapstructure:"port" range:"1-65535"`
	// Password is the TCP MD5 signature key (RFC 2385) of the session
	// (password); "" (default) none.
	Password string `mapstructure:"password" kind:"quoted" note:"TCP MD5 key; \"\" none"`
	// Multihop is the TTL of the session's packets for a router that is
	// not on a connected network (multihop), 0-255; 0 (default) means
	// directly connected (eBGP TTL 1).
	Multihop int `mapstructure:"multihop" range:"0-255" note:"0: directly connected"`
	// HoldTime is the session's hold time (hold_time), whole seconds in
	// [3s, 1h]; default 90s. Keepalives go every third of it. A router
	// that hears nothing for this long withdraws the routes.
	HoldTime time.Duration `mapstructure:"hold_time" range:"[3s, 1h]" note:"whole seconds; keepalive every third"`
	// Passive makes the node wait for the router to connect (passive)
	// instead of connecting itself; default false. The node then listens
	// on TCP port 179.
	Passive bool `mapstructure:"passive" note:"wait for the router to connect (listens on port 179)"`
}

// EffectiveMode returns the mode bgp.mode selects: auto resolved
// against vrrp.enabled.
func (c *Config) EffectiveMode() string {
	if c.BGP.Mode == "auto" || c.BGP.Mode == "" {
		if c.VRRP.Enabled {
			return "vrrp"
		}
		return "active"
	}
	return c.BGP.Mode
}

// wellKnownCommunities are the community names bgp.communities accepts,
// with their values (RFC 1997, 7999, 8326).
var wellKnownCommunities = map[string]uint32{
	"no-export":           0xFFFFFF01,
	"no-advertise":        0xFFFFFF02,
	"no-export-subconfed": 0xFFFFFF03,
	"graceful-shutdown":   0xFFFF0000,
	"blackhole":           0xFFFF029A,
}

// Community returns the 32-bit value of an item of bgp.communities as
// [Parse] stored it.
func Community(s string) (uint32, error) {
	if v, ok := wellKnownCommunities[s]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q: not a community", s)
	}
	return uint32(a)<<16 | uint32(b), nil
}

// parseCommunity parses an item of bgp.communities and returns it as it
// is stored: a lower-case name or "asn:value" without leading zeros.
func parseCommunity(s string) (string, string) {
	t := strings.ToLower(strings.TrimSpace(s))
	if _, ok := wellKnownCommunities[t]; ok {
		return t, ""
	}
	v, err := Community(t)
	if err != nil {
		return "", fmt.Sprintf("%q: not a community (asn:value, both 0-65535, or no-export, no-advertise, no-export-subconfed, graceful-shutdown, blackhole)", s)
	}
	return fmt.Sprintf("%d:%d", v>>16, v&0xFFFF), ""
}

// parseHost parses an IP address without prefix length, port or zone
// (bgp.neighbors[].address, bgp.next_hop); an IPv4-mapped address is
// unmapped.
func parseHost(s string) (netip.Addr, string) {
	t := strings.TrimSpace(s)
	a, err := netip.ParseAddr(t)
	switch {
	case err == nil && a.Zone() != "":
		return netip.Addr{}, fmt.Sprintf("%q: zone not allowed", s)
	case err == nil && (a.IsUnspecified() || a.IsMulticast()):
		return netip.Addr{}, fmt.Sprintf("%q: not a unicast address", s)
	case err == nil:
		return a.Unmap(), ""
	}
	if _, err := netip.ParsePrefix(t); err == nil {
		return netip.Addr{}, fmt.Sprintf("%q: not an IP address (no prefix length here)", s)
	}
	if _, msg := parseAddrPort(t); msg == "" {
		return netip.Addr{}, fmt.Sprintf("%q: not an IP address (no port here)", s)
	}
	return netip.Addr{}, fmt.Sprintf("%q: not an IP address", s)
}

// host reads one IP address (kind ip), or an IPv4 address when v4 (kind
// ipv4, a BGP identifier); "" counts as absent.
func (l leaf) host(v4 bool) (any, bool) {
	s, ok := l.text()
	if !ok || strings.TrimSpace(s) == "" {
		return nil, ok
	}
	a, msg := parseHost(s)
	if msg == "" && v4 && !a.Is4() {
		msg = fmt.Sprintf("%q: not an IPv4 address (a BGP identifier is 32 bits, written as one)", s)
	}
	if msg != "" {
		l.bad("%s", msg)
		return nil, false
	}
	return a, true
}

// bgpRestartOnly returns the bgp keys of [RestartOnly] that differ.
func bgpRestartOnly(old, new *Config) []string {
	var keys []string
	if old.BGP.Enabled != new.BGP.Enabled {
		keys = append(keys, "bgp.enabled")
	}
	if !old.BGP.Enabled && !new.BGP.Enabled {
		return keys
	}
	if old.EffectiveMode() != new.EffectiveMode() {
		keys = append(keys, "bgp.mode")
	}
	if old.BGP.LocalAS != new.BGP.LocalAS {
		keys = append(keys, "bgp.local_as")
	}
	if old.BGP.RouterID != new.BGP.RouterID {
		keys = append(keys, "bgp.router_id")
	}
	if old.BGP.Interface != new.BGP.Interface {
		keys = append(keys, "bgp.interface")
	}
	return keys
}
