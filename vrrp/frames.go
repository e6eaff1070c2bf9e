package vrrp

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Announcements a new master sends so that neighbours and switches learn
// where the virtual addresses now live (RFC 5798 6.4.1 and 6.4.2).

// allNodes is the link-local all-nodes group (RFC 4291 2.7.1).
var allNodes = netip.MustParseAddr("ff02::1")

// naFlagOverride is the O bit of a Neighbor Advertisement (RFC 4861 4.4),
// in the flags byte as gopacket's layer holds it.
const naFlagOverride = 0x20

// GratuitousARP returns an Ethernet frame carrying an ARP request with sender
// = target = vip (IPv4), sender MAC mac, Ethernet dst ff:ff:ff:ff:ff:ff,
// target MAC 00:00:00:00:00:00, padded to the 60-byte Ethernet minimum.
//
// The zero target MAC is what RFC 5227 2.3 asks of an ARP announcement and
// what the Linux kernel sends; keepalived 2.2.7 puts ff:ff:ff:ff:ff:ff there
// instead. Receivers ignore the field in a request.
func GratuitousARP(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("%w: gratuitous ARP: MAC %v is not 6 bytes", ErrInvalid, mac)
	}
	ip := vip.Unmap()
	if !ip.Is4() {
		return nil, fmt.Errorf("%w: gratuitous ARP: %v is not IPv4", ErrInvalid, vip)
	}
	a := ip.As4()
	eth := &layers.Ethernet{
		SrcMAC:       mac,
		DstMAC:       layers.EthernetBroadcast,
		EthernetType: layers.EthernetTypeARP,
	}
	arp := &layers.ARP{
		AddrType:          layers.LinkTypeEthernet,
		Protocol:          layers.EthernetTypeIPv4,
		Operation:         layers.ARPRequest,
		SourceHwAddress:   mac,
		SourceProtAddress: a[:],
		DstHwAddress:      make([]byte, 6),
		DstProtAddress:    a[:],
	}
	return serialize(true, eth, arp)
}

// UnsolicitedNA returns the ICMPv6 Neighbor Advertisement (type 136, code 0)
// message for a raw ICMPv6 socket: flags Router=0, Solicited=0, Override=1,
// target vip, option Target Link-Layer Address = mac. The checksum field is
// left 0: Linux computes it on ICMPv6 raw sockets. Send it to ff02::1 with hop
// limit 255 (RFC 4861 7.2.6).
func UnsolicitedNA(mac net.HardwareAddr, vip netip.Addr) ([]byte, error) {
	icmp, na, err := naLayers(mac, vip)
	if err != nil {
		return nil, err
	}
	return serialize(false, icmp, na)
}

// UnsolicitedNAFrame returns UnsolicitedNA's message in a full Ethernet frame
// (src MAC mac, dst 33:33:00:00:00:01) and IPv6 packet (src, dst ff02::1, hop
// limit 255) with the ICMPv6 checksum computed, for AF_PACKET sockets and
// tests. keepalived uses the vip itself as src.
func UnsolicitedNAFrame(mac net.HardwareAddr, src, vip netip.Addr) ([]byte, error) {
	icmp, na, err := naLayers(mac, vip)
	if err != nil {
		return nil, err
	}
	if !src.Is6() || src.Is4In6() {
		return nil, fmt.Errorf("%w: neighbor advertisement: source %v is not IPv6", ErrInvalid, src)
	}
	s, d := src.As16(), allNodes.As16()
	ip6 := &layers.IPv6{
		Version:    6,
		NextHeader: layers.IPProtocolICMPv6,
		HopLimit:   255,
		SrcIP:      s[:],
		DstIP:      d[:],
	}
	if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
		return nil, err
	}
	eth := &layers.Ethernet{
		SrcMAC:       mac,
		DstMAC:       multicastMAC(allNodes),
		EthernetType: layers.EthernetTypeIPv6,
	}
	return serialize(true, eth, ip6, icmp, na)
}

func naLayers(mac net.HardwareAddr, vip netip.Addr) (*layers.ICMPv6, *layers.ICMPv6NeighborAdvertisement, error) {
	if len(mac) != 6 {
		return nil, nil, fmt.Errorf("%w: neighbor advertisement: MAC %v is not 6 bytes", ErrInvalid, mac)
	}
	if !vip.Is6() || vip.Is4In6() {
		return nil, nil, fmt.Errorf("%w: neighbor advertisement: %v is not IPv6", ErrInvalid, vip)
	}
	t := vip.As16()
	icmp := &layers.ICMPv6{
		TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0),
	}
	na := &layers.ICMPv6NeighborAdvertisement{
		Flags:         naFlagOverride,
		TargetAddress: t[:],
		Options: layers.ICMPv6Options{{
			Type: layers.ICMPv6OptTargetAddress,
			Data: append([]byte(nil), mac...),
		}},
	}
	return icmp, na, nil
}

// multicastMAC maps an IPv6 multicast address to its Ethernet address
// (RFC 2464 7): 33:33 and the address's last four bytes.
func multicastMAC(group netip.Addr) net.HardwareAddr {
	g := group.As16()
	return net.HardwareAddr{0x33, 0x33, g[12], g[13], g[14], g[15]}
}

func serialize(checksums bool, ls ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: checksums}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		return nil, fmt.Errorf("vrrp: serializing %v: %w", ls[0].LayerType(), err)
	}
	return buf.Bytes(), nil
}
