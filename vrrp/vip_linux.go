package vrrp

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkAnnouncer adds and removes the VIPs on an interface with netlink
// and announces them with gratuitous ARP (IPv4) or unsolicited neighbour
// advertisements (IPv6). Needs CAP_NET_ADMIN and CAP_NET_RAW.
type NetlinkAnnouncer struct {
	link  netlink.Link
	ifi   *net.Interface
	local netip.Addr // IPv6 source for NAs (link-local)
	// lifetime, if not 0, is the VIPs' valid and preferred lifetime: the
	// kernel removes a VIP by itself once it passes without AddVIPs being
	// called again, so a process that dies leaves no VIP behind for long.
	lifetime time.Duration
}

// NewNetlinkAnnouncer looks up iface. With a lifetime (whole seconds,
// the kernel's granularity; rounded up), VIPs are added with that valid
// and preferred lifetime and must be refreshed by calling AddVIPs again
// (Options.VIPRefresh).
func NewNetlinkAnnouncer(iface string, local netip.Addr, lifetime time.Duration) (*NetlinkAnnouncer, error) {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("vrrp.interface %q: %w", iface, err)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("vrrp.interface %q: %w", iface, err)
	}
	return &NetlinkAnnouncer{link: link, ifi: ifi, local: local, lifetime: lifetime}, nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD // usable at once; the peer gave it up
	}
	return a
}

// AddVIPs configures the VIPs; one already there is fine, and gets its
// lifetime renewed.
func (n *NetlinkAnnouncer) AddVIPs(vips []netip.Prefix) error {
	var errs []error
	for _, v := range vips {
		a := nlAddr(v)
		if n.lifetime > 0 {
			secs := int(math.Ceil(n.lifetime.Seconds()))
			a.ValidLft, a.PreferedLft = secs, secs
		}
		if err := netlink.AddrReplace(n.link, a); err != nil && !errors.Is(err, syscall.EEXIST) {
			errs = append(errs, fmt.Errorf("add %s to %s: %w", v, n.ifi.Name, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveVIPs removes the VIPs; one not there is fine.
func (n *NetlinkAnnouncer) RemoveVIPs(vips []netip.Prefix) error {
	var errs []error
	for _, v := range vips {
		err := netlink.AddrDel(n.link, nlAddr(v))
		if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", v, n.ifi.Name, err))
		}
	}
	return errors.Join(errs...)
}
