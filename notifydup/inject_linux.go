package notifydup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// injector sends NOTIFY copies with a foreign source address: Ethernet
// frames over AF_PACKET on the route's link (resolving the next hop's MAC
// from the neighbour table), or raw IP packets (IP_HDRINCL) on links
// without a link-layer address.
type injector struct {
	packetFD int // AF_PACKET, SOCK_RAW
	raw4     int // AF_INET, SOCK_RAW, IPPROTO_RAW (IP_HDRINCL implied)
	raw6     int // AF_INET6, SOCK_RAW, IPPROTO_RAW

	mu    sync.Mutex
	paths map[netip.Addr]path // next-hop cache, so a burst costs no netlink round trips
}

// path is how to reach one backend: the link and the next hop's MAC (nil
// for the raw IP fallback).
type path struct {
	link    netlink.Link
	mac     net.HardwareAddr
	expires time.Time
}

// pathTTL bounds how long a cached next hop is trusted.
const pathTTL = 2 * time.Second

func newInjector(iface string) (*injector, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return nil, fmt.Errorf("notify.interface %s: open AF_PACKET socket for copies: %w (needs CAP_NET_RAW)", iface, err)
	}
	j := &injector{packetFD: fd, raw4: -1, raw6: -1, paths: map[netip.Addr]path{}}
	if j.raw4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW); err != nil {
		j.close()
		return nil, fmt.Errorf("notifydup: raw IPv4 socket: %w", err)
	}
	if j.raw6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW); err != nil {
		j.raw6 = -1 // IPv6 disabled: IPv6 copies will fail with a clear error
	}
	return j, nil
}

func (j *injector) close() {
	for _, fd := range []int{j.packetFD, j.raw4, j.raw6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// send builds the copy (primary's source, backend's destination, payload
// verbatim, checksums from scratch) and injects it.
func (j *injector) send(n *Notify, to netip.AddrPort) error {
	ipLayer, err := ipHeader(n.Src.Addr(), to.Addr())
	if err != nil {
		return err
	}
	udp := &layers.UDP{SrcPort: layers.UDPPort(n.Src.Port()), DstPort: layers.UDPPort(to.Port())}
	if err := udp.SetNetworkLayerForChecksum(ipLayer.(gopacket.NetworkLayer)); err != nil {
		return err
	}
	p, err := j.path(to)
	if err != nil {
		return err
	}
	attrs := p.link.Attrs()
	if mac := p.mac; mac != nil {
		{
			eth := &layers.Ethernet{SrcMAC: attrs.HardwareAddr, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}
			if to.Addr().Is6() {
				eth.EthernetType = layers.EthernetTypeIPv6
			}
			frame, err := serialize(eth, ipLayer, udp, gopacket.Payload(n.Payload))
			if err != nil {
				return err
			}
			sa := &unix.SockaddrLinklayer{Ifindex: attrs.Index, Halen: 6}
			copy(sa.Addr[:], mac)
			if err := unix.Sendto(j.packetFD, frame, 0, sa); err != nil {
				return fmt.Errorf("inject on %s: %w", attrs.Name, err)
			}
			return nil
		}
	}
	// no link-layer address (or no MAC for the next hop): raw IP socket
	pkt, err := serialize(ipLayer, udp, gopacket.Payload(n.Payload))
	if err != nil {
		return err
	}
	if to.Addr().Is4() {
		sa := &unix.SockaddrInet4{Addr: to.Addr().As4()}
		return sendRaw(j.raw4, pkt, sa)
	}
	if j.raw6 < 0 {
		return errors.New("no raw IPv6 socket")
	}
	sa := &unix.SockaddrInet6{Addr: to.Addr().As16()}
	return sendRaw(j.raw6, pkt, sa)
}

// path returns the cached way to backend, looking it up when missing or
// stale.
func (j *injector) path(to netip.AddrPort) (path, error) {
	now := time.Now()
	j.mu.Lock()
	p, ok := j.paths[to.Addr()]
	j.mu.Unlock()
	if ok && now.Before(p.expires) {
		return p, nil
	}
	link, nextHop, err := route(to.Addr())
	if err != nil {
		return path{}, err
	}
	p = path{link: link, expires: now.Add(pathTTL)}
	if len(link.Attrs().HardwareAddr) == 6 {
		if mac, err := neighbour(link, nextHop, to); err == nil {
			p.mac = mac
		}
	}
	j.mu.Lock()
	j.paths[to.Addr()] = p
	j.mu.Unlock()
	return p, nil
}

func sendRaw(fd int, pkt []byte, sa unix.Sockaddr) error {
	if err := unix.Sendto(fd, pkt, 0, sa); err != nil {
		return fmt.Errorf("raw IP send: %w", err)
	}
	return nil
}

func ipHeader(src, dst netip.Addr) (gopacket.SerializableLayer, error) {
	src, dst = src.Unmap(), dst.Unmap()
	switch {
	case src.Is4() && dst.Is4():
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}, nil
	case src.Is6() && dst.Is6():
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}, nil
	}
	return nil, fmt.Errorf("primary %s and backend %s are of different IP families", src, dst)
}

func serialize(ls ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		return nil, fmt.Errorf("build copy: %w", err)
	}
	return buf.Bytes(), nil
}

// route returns the link toward dst and the next hop on it (a gateway, or
// dst itself).
func route(dst netip.Addr) (netlink.Link, net.IP, error) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		return nil, nil, fmt.Errorf("no route to backend %s: %v", dst, err)
	}
	r := routes[0]
	link, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return nil, nil, fmt.Errorf("route to %s: %w", dst, err)
	}
	hop := net.IP(dst.AsSlice())
	if r.Gw != nil {
		hop = r.Gw
	}
	return link, hop, nil
}

// neighbour returns the MAC of hop on link from the neighbour table; when
// it is missing it makes the kernel resolve it (a SOA query to the backend,
// which a DNS server answers anyway) and waits up to 500ms.
func neighbour(link netlink.Link, hop net.IP, backend netip.AddrPort) (net.HardwareAddr, error) {
	if mac := lookupNeigh(link, hop); mac != nil {
		return mac, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	go querySOA(ctx, backend, ".")
	for ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if mac := lookupNeigh(link, hop); mac != nil {
			return mac, nil
		}
	}
	return nil, fmt.Errorf("no neighbour entry for %s on %s", hop, link.Attrs().Name)
}

func lookupNeigh(link netlink.Link, hop net.IP) net.HardwareAddr {
	family := netlink.FAMILY_V4
	if hop.To4() == nil {
		family = netlink.FAMILY_V6
	}
	neighs, err := netlink.NeighList(link.Attrs().Index, family)
	if err != nil {
		return nil
	}
	for _, n := range neighs {
		if n.IP.Equal(hop) && len(n.HardwareAddr) == 6 && n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
			return n.HardwareAddr
		}
	}
	return nil
}
