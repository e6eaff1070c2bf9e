package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Announce sends one gratuitous ARP (IPv4 VIPs, over AF_PACKET) or
// unsolicited neighbour advertisement to ff02::1 (IPv6 VIPs, over a raw
// ICMPv6 socket with hop limit 255) per VIP.
func (n *NetlinkAnnouncer) Announce(vips []netip.Prefix) error {
	var errs []error
	for _, v := range vips {
		var err error
		if v.Addr().Is4() {
			err = n.garp(v.Addr())
		} else {
			err = n.unsolicitedNA(v.Addr())
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (n *NetlinkAnnouncer) garp(vip netip.Addr) error {
	frame, err := GratuitousARP(n.ifi.HardwareAddr, vip)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("gratuitous ARP for %s: %w", vip, err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Ifindex: n.ifi.Index, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(sa.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := unix.Sendto(fd, frame, 0, sa); err != nil {
		return fmt.Errorf("gratuitous ARP for %s on %s: %w", vip, n.ifi.Name, err)
	}
	return nil
}

func (n *NetlinkAnnouncer) unsolicitedNA(vip netip.Addr) error {
	msg, err := UnsolicitedNA(n.ifi.HardwareAddr, vip)
	if err != nil {
		return err
	}
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return fmt.Errorf("unsolicited NA for %s: %w", vip, err)
	}
	defer c.Close()
	pc := ipv6.NewPacketConn(c)
	cm := &ipv6.ControlMessage{IfIndex: n.ifi.Index, HopLimit: 255}
	if n.local.IsValid() {
		cm.Src = n.local.AsSlice()
	}
	if _, err := pc.WriteTo(msg, cm, &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: n.ifi.Name}); err != nil {
		return fmt.Errorf("unsolicited NA for %s on %s: %w", vip, n.ifi.Name, err)
	}
	return nil
}
