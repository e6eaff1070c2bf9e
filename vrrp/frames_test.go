package vrrp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var testMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x99, 0x00, 0x01}

func TestGratuitousARP(t *testing.T) {
	for _, vip := range []netip.Addr{vip4, netip.MustParseAddr("192.0.2.255"), netip.AddrFrom16(vip4.As16())} {
		b, err := GratuitousARP(testMAC, vip)
		if err != nil {
			t.Fatalf("%v: %v", vip, err)
		}
		if len(b) != 60 {
			t.Errorf("%v: %d bytes, want the 60-byte Ethernet minimum", vip, len(b))
		}
		p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("%v: gopacket: %v", vip, el.Error())
		}
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !bytes.Equal(eth.SrcMAC, testMAC) || !bytes.Equal(eth.DstMAC, layers.EthernetBroadcast) || eth.EthernetType != layers.EthernetTypeARP {
			t.Errorf("%v: Ethernet %v > %v type %v", vip, eth.SrcMAC, eth.DstMAC, eth.EthernetType)
		}
		arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok {
			t.Fatalf("%v: no ARP layer in %v", vip, p)
		}
		v4 := vip.Unmap().AsSlice()
		if arp.AddrType != layers.LinkTypeEthernet || arp.Protocol != layers.EthernetTypeIPv4 ||
			arp.HwAddressSize != 6 || arp.ProtAddressSize != 4 || arp.Operation != layers.ARPRequest ||
			!bytes.Equal(arp.SourceHwAddress, testMAC) || !bytes.Equal(arp.SourceProtAddress, v4) ||
			!bytes.Equal(arp.DstHwAddress, make([]byte, 6)) || !bytes.Equal(arp.DstProtAddress, v4) {
			t.Errorf("%v: ARP %+v", vip, arp)
		}
		if pad := b[42:]; !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Errorf("%v: padding %x", vip, pad)
		}
	}
}

func TestUnsolicitedNA(t *testing.T) {
	for _, vip := range []netip.Addr{vip6, netip.MustParseAddr("fe80::7"), netip.MustParseAddr("fe80::7%eth0")} {
		b, err := UnsolicitedNA(testMAC, vip)
		if err != nil {
			t.Fatalf("%v: %v", vip, err)
		}
		if len(b) != 32 {
			t.Errorf("%v: %d bytes, want 32", vip, len(b))
		}
		p := gopacket.NewPacket(b, layers.LayerTypeICMPv6, gopacket.Default)
		checkNA(t, p, vip)
		if icmp := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); icmp.Checksum != 0 {
			t.Errorf("%v: checksum %#04x, want 0 for the kernel to fill in", vip, icmp.Checksum)
		}
	}
}

func TestUnsolicitedNAFrame(t *testing.T) {
	for _, tc := range []struct{ src, vip netip.Addr }{
		{vip6, vip6},
		{v6Src, vip6},
		{netip.MustParseAddr("fe80::7"), netip.MustParseAddr("fe80::7")},
	} {
		b, err := UnsolicitedNAFrame(testMAC, tc.src, tc.vip)
		if err != nil {
			t.Fatalf("%v from %v: %v", tc.vip, tc.src, err)
		}
		if len(b) != 14+40+32 {
			t.Errorf("%v: %d bytes, want 86", tc.vip, len(b))
		}
		p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !bytes.Equal(eth.SrcMAC, testMAC) || eth.DstMAC.String() != "33:33:00:00:00:01" || eth.EthernetType != layers.EthernetTypeIPv6 {
			t.Errorf("%v: Ethernet %v > %v type %v", tc.vip, eth.SrcMAC, eth.DstMAC, eth.EthernetType)
		}
		ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !ok {
			t.Fatalf("%v: no IPv6 layer in %v", tc.vip, p)
		}
		if ip.Version != 6 || ip.TrafficClass != 0 || ip.FlowLabel != 0 || ip.Length != 32 ||
			ip.NextHeader != layers.IPProtocolICMPv6 || ip.HopLimit != 255 ||
			!ip.SrcIP.Equal(tc.src.AsSlice()) || !ip.DstIP.Equal(net.ParseIP("ff02::1")) {
			t.Errorf("%v: IPv6 %+v", tc.vip, ip)
		}
		checkNA(t, p, tc.vip)
		msg := ip.Payload
		if got := finish(onesSum(pseudoHeaderSum(tc.src, allNodes, uint8(layers.IPProtocolICMPv6), len(msg)), msg)); got != 0 {
			t.Errorf("%v: ICMPv6 checksum does not verify (%#04x)", tc.vip, got)
		}
		// The message is UnsolicitedNA's with the checksum filled in.
		raw, _ := UnsolicitedNA(testMAC, tc.vip)
		m := append([]byte(nil), msg...)
		m[2], m[3] = 0, 0
		if !bytes.Equal(m, raw) {
			t.Errorf("%v: frame's message %x, UnsolicitedNA %x", tc.vip, m, raw)
		}
	}
}

// checkNA checks the ICMPv6 and Neighbor Advertisement layers of p.
func checkNA(t *testing.T, p gopacket.Packet, vip netip.Addr) {
	t.Helper()
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("%v: gopacket: %v", vip, el.Error())
	}
	icmp, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if !ok {
		t.Fatalf("%v: no ICMPv6 layer in %v", vip, p)
	}
	if icmp.TypeCode.Type() != layers.ICMPv6TypeNeighborAdvertisement || icmp.TypeCode.Code() != 0 {
		t.Errorf("%v: ICMPv6 type/code %v", vip, icmp.TypeCode)
	}
	na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !ok {
		t.Fatalf("%v: no Neighbor Advertisement in %v", vip, p)
	}
	if na.Router() || na.Solicited() || !na.Override() || na.Flags != 0x20 {
		t.Errorf("%v: flags %#02x, want Override only", vip, na.Flags)
	}
	if !na.TargetAddress.Equal(vip.AsSlice()) {
		t.Errorf("target %v, want %v", na.TargetAddress, vip)
	}
	want := layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: []byte(testMAC)}}
	if !reflect.DeepEqual(na.Options, want) {
		t.Errorf("%v: options %v, want %v", vip, na.Options, want)
	}
	if reserved := icmp.Payload[1:4]; !bytes.Equal(reserved, []byte{0, 0, 0}) {
		t.Errorf("%v: reserved bytes %x", vip, reserved)
	}
}

// TestFramesMatchKeepalived rebuilds every gratuitous ARP and unsolicited NA
// keepalived 2.2.7 sent in the captures. The NA frames must be identical; the
// ARP frames differ only in the target MAC (keepalived: broadcast, we: zero,
// as RFC 5227 2.3 says) and in our padding to 60 bytes.
func TestFramesMatchKeepalived(t *testing.T) {
	pcaps, _ := filepath.Glob("testdata/keepalived/*.pcap")
	var arps, nas int
	for _, path := range pcaps {
		name, _ := filepath.Rel("testdata", path)
		for i, frame := range readPcap(t, name) {
			p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
			eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
				arps++
				vip, _ := netip.AddrFromSlice(arp.SourceProtAddress)
				got, err := GratuitousARP(eth.SrcMAC, vip)
				if err != nil {
					t.Fatal(err)
				}
				want := append([]byte(nil), frame...)
				copy(want[32:38], make([]byte, 6)) // target hardware address
				if !bytes.Equal(got[:len(want)], want) || len(got) != 60 {
					t.Errorf("%s #%d: GratuitousARP\n%x\nkeepalived (target MAC zeroed)\n%x", name, i+1, got, want)
				}
				continue
			}
			if na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement); ok {
				nas++
				ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				src, _ := netip.AddrFromSlice(ip.SrcIP)
				vip, _ := netip.AddrFromSlice(na.TargetAddress)
				got, err := UnsolicitedNAFrame(eth.SrcMAC, src, vip)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, frame) {
					t.Errorf("%s #%d: UnsolicitedNAFrame\n%x\nkeepalived\n%x", name, i+1, got, frame)
				}
			}
		}
	}
	if arps == 0 || nas == 0 {
		t.Errorf("compared %d ARP and %d NA frames; the captures should hold both", arps, nas)
	}
	t.Logf("compared %d gratuitous ARPs and %d unsolicited NAs with keepalived's", arps, nas)
}

func TestFramesErrors(t *testing.T) {
	short := net.HardwareAddr{1, 2, 3}
	long := make(net.HardwareAddr, 20) // InfiniBand
	for name, f := range map[string]func() ([]byte, error){
		"ARP short MAC":    func() ([]byte, error) { return GratuitousARP(short, vip4) },
		"ARP long MAC":     func() ([]byte, error) { return GratuitousARP(long, vip4) },
		"ARP nil MAC":      func() ([]byte, error) { return GratuitousARP(nil, vip4) },
		"ARP IPv6":         func() ([]byte, error) { return GratuitousARP(testMAC, vip6) },
		"ARP unset":        func() ([]byte, error) { return GratuitousARP(testMAC, netip.Addr{}) },
		"NA short MAC":     func() ([]byte, error) { return UnsolicitedNA(short, vip6) },
		"NA IPv4":          func() ([]byte, error) { return UnsolicitedNA(testMAC, vip4) },
		"NA mapped IPv4":   func() ([]byte, error) { return UnsolicitedNA(testMAC, netip.AddrFrom16(vip4.As16())) },
		"NA unset":         func() ([]byte, error) { return UnsolicitedNA(testMAC, netip.Addr{}) },
		"frame short MAC":  func() ([]byte, error) { return UnsolicitedNAFrame(short, vip6, vip6) },
		"frame IPv4 vip":   func() ([]byte, error) { return UnsolicitedNAFrame(testMAC, vip6, vip4) },
		"frame IPv4 src":   func() ([]byte, error) { return UnsolicitedNAFrame(testMAC, vip4, vip6) },
		"frame unset src":  func() ([]byte, error) { return UnsolicitedNAFrame(testMAC, netip.Addr{}, vip6) },
		"frame mapped src": func() ([]byte, error) { return UnsolicitedNAFrame(testMAC, netip.AddrFrom16(vip4.As16()), vip6) },
	} {
		if b, err := f(); !errors.Is(err, ErrInvalid) || b != nil {
			t.Errorf("%s: %x, %v; want nil, ErrInvalid", name, b, err)
		}
	}
}
