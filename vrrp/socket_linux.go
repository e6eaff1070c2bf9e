package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// tosCS6 is DSCP CS6 (network control) in the TOS / traffic class byte.
const tosCS6 = 0xc0

// Listen opens a raw IP protocol 112 socket on iface for the family of
// vips: it joins the VRRP multicast group, sends with TTL/hop limit 255 and
// DSCP CS6, and reports each packet's TTL so that Instance can drop the
// ones that crossed a router. Adverts are sent from the interface's first
// IPv4 address that is not a VIP, or from its IPv6 link-local address.
// Needs CAP_NET_RAW.
func Listen(iface string, v6 bool, vips []netip.Prefix) (Conn, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("vrrp.interface %q: %w", iface, err)
	}
	local, err := primaryAddr(ifi, v6, vips)
	if err != nil {
		return nil, err
	}
	if v6 {
		return listen6(ifi, local)
	}
	return listen4(ifi, local)
}

func explainSocketError(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("vrrp: open raw socket: %w (needs root or CAP_NET_RAW)", err)
	}
	return fmt.Errorf("vrrp: open raw socket: %w", err)
}

// primaryAddr picks the address adverts are sent from.
func primaryAddr(ifi *net.Interface, v6 bool, vips []netip.Prefix) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp.interface %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP)
		ip = ip.Unmap()
		if isVIP(ip, vips) {
			continue
		}
		if v6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
		if !v6 && ip.Is4() {
			return ip, nil
		}
	}
	if v6 {
		return netip.Addr{}, fmt.Errorf("vrrp.interface %s: no IPv6 link-local address (is the link up?)", ifi.Name)
	}
	return netip.Addr{}, fmt.Errorf("vrrp.interface %s: no IPv4 address besides the VIPs to send adverts from", ifi.Name)
}

func isVIP(a netip.Addr, vips []netip.Prefix) bool {
	for _, v := range vips {
		if v.Addr() == a {
			return true
		}
	}
	return false
}

// conn4 is an IPv4 Conn.
type conn4 struct {
	pc    *ipv4.PacketConn
	raw   net.PacketConn
	ifi   *net.Interface
	local netip.Addr
}

func listen4(ifi *net.Interface, local netip.Addr) (Conn, error) {
	raw, err := net.ListenPacket("ip4:112", "0.0.0.0")
	if err != nil {
		return nil, explainSocketError(err)
	}
	pc := ipv4.NewPacketConn(raw)
	c := &conn4{pc: pc, raw: raw, ifi: ifi, local: local}
	for _, step := range []func() error{
		func() error { return pc.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true) },
		func() error { return pc.JoinGroup(ifi, &net.IPAddr{IP: GroupV4.AsSlice()}) },
		func() error { return pc.SetMulticastInterface(ifi) },
		func() error { return pc.SetMulticastTTL(255) },
		func() error { return pc.SetTTL(255) },
		func() error { return pc.SetTOS(tosCS6) },
		func() error { return pc.SetMulticastLoopback(false) },
	} {
		if err := step(); err != nil {
			raw.Close()
			return nil, fmt.Errorf("vrrp: set up socket on %s: %w", ifi.Name, err)
		}
	}
	return c, nil
}

func (c *conn4) Read(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	for {
		n, cm, src, err := c.pc.ReadFrom(b)
		if err != nil {
			return 0, netip.Addr{}, netip.Addr{}, 0, err
		}
		if cm == nil || cm.IfIndex != c.ifi.Index {
			continue // another interface's VRRP traffic
		}
		s, _ := netip.AddrFromSlice(src.(*net.IPAddr).IP)
		d, _ := netip.AddrFromSlice(cm.Dst)
		return n, s.Unmap(), d.Unmap(), cm.TTL, nil
	}
}

func (c *conn4) Write(b []byte, dst netip.Addr) error {
	cm := &ipv4.ControlMessage{IfIndex: c.ifi.Index, Src: c.local.AsSlice()}
	_, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice()})
	return err
}

func (c *conn4) LocalAddr() netip.Addr { return c.local }
func (c *conn4) Close() error          { return c.raw.Close() }

// conn6 is an IPv6 Conn.
type conn6 struct {
	pc    *ipv6.PacketConn
	raw   net.PacketConn
	ifi   *net.Interface
	local netip.Addr
}

func listen6(ifi *net.Interface, local netip.Addr) (Conn, error) {
	raw, err := net.ListenPacket("ip6:112", "::")
	if err != nil {
		return nil, explainSocketError(err)
	}
	pc := ipv6.NewPacketConn(raw)
	c := &conn6{pc: pc, raw: raw, ifi: ifi, local: local}
	for _, step := range []func() error{
		func() error {
			return pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true)
		},
		func() error { return pc.JoinGroup(ifi, &net.IPAddr{IP: GroupV6.AsSlice()}) },
		func() error { return pc.SetMulticastInterface(ifi) },
		func() error { return pc.SetMulticastHopLimit(255) },
		func() error { return pc.SetHopLimit(255) },
		func() error { return pc.SetTrafficClass(tosCS6) },
		func() error { return pc.SetMulticastLoopback(false) },
	} {
		if err := step(); err != nil {
			raw.Close()
			return nil, fmt.Errorf("vrrp: set up socket on %s: %w", ifi.Name, err)
		}
	}
	return c, nil
}

func (c *conn6) Read(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	for {
		n, cm, src, err := c.pc.ReadFrom(b)
		if err != nil {
			return 0, netip.Addr{}, netip.Addr{}, 0, err
		}
		if cm == nil || cm.IfIndex != c.ifi.Index {
			continue
		}
		s, _ := netip.AddrFromSlice(src.(*net.IPAddr).IP)
		d, _ := netip.AddrFromSlice(cm.Dst)
		return n, s.WithZone(""), d, cm.HopLimit, nil
	}
}

func (c *conn6) Write(b []byte, dst netip.Addr) error {
	cm := &ipv6.ControlMessage{IfIndex: c.ifi.Index, Src: c.local.AsSlice(), HopLimit: 255}
	_, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: c.ifi.Name})
	return err
}

func (c *conn6) LocalAddr() netip.Addr { return c.local }
func (c *conn6) Close() error          { return c.raw.Close() }
