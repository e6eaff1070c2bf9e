package bgp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel is a [Routes] that puts a route per announced prefix into the
// kernel's main table, on an interface (lo) and with its own protocol
// number, for a routing daemon on the node (BIRD, FRR) to redistribute.
// It speaks no BGP. Needs CAP_NET_ADMIN.
type Kernel struct {
	link     netlink.Link
	protocol int
}

// NewKernel looks up iface; the routes get protocol (1-255).
func NewKernel(iface string, protocol int) (*Kernel, error) {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("bgp.interface %q: %w", iface, err)
	}
	return &Kernel{link: link, protocol: protocol}, nil
}

func (k *Kernel) route(p netip.Prefix) *netlink.Route {
	return &netlink.Route{
		LinkIndex: k.link.Attrs().Index,
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Protocol:  netlink.RouteProtocol(k.protocol),
		Scope:     netlink.SCOPE_LINK,
		Table:     unix.RT_TABLE_MAIN,
	}
}

// Announce adds (or replaces) the route of p. The attributes are the
// routing daemon's business.
func (k *Kernel) Announce(_ context.Context, p netip.Prefix, _ Attrs) error {
	if err := netlink.RouteReplace(k.route(p)); err != nil {
		return fmt.Errorf("bgp: kernel route %s: %w", p, err)
	}
	return nil
}

// Withdraw removes the route of p; a missing route is fine.
func (k *Kernel) Withdraw(_ context.Context, p netip.Prefix) error {
	if err := netlink.RouteDel(k.route(p)); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("bgp: kernel route %s: %w", p, err)
	}
	return nil
}

// AddLocal puts the host routes ps on iface as addresses, so that the
// node accepts the traffic routers send it for them (mode active; mode
// kernel uses [AddLocalRoutes]). An address already there is fine.
func AddLocal(iface string, ps []netip.Prefix) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("bgp.interface %q: %w", iface, err)
	}
	var errs []error
	for _, p := range ps {
		if err := netlink.AddrReplace(link, localAddr(p)); err != nil {
			errs = append(errs, fmt.Errorf("bgp: add %s to %s: %w", p, iface, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveLocal takes the addresses AddLocal added off iface; one that is
// gone already is fine.
func RemoveLocal(iface string, ps []netip.Prefix) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("bgp.interface %q: %w", iface, err)
	}
	var errs []error
	for _, p := range ps {
		if err := netlink.AddrDel(link, localAddr(p)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("bgp: remove %s from %s: %w", p, iface, err))
		}
	}
	return errors.Join(errs...)
}

func localAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// AddLocalRoutes makes the node accept the traffic for ps without an
// address: a route of type local per prefix in the local table, on iface,
// with protocol (mode kernel). An address would give the routing daemon
// a connected route for the same prefix as the one [Kernel] adds, and
// FRR's zebra always selects a connected route over a kernel one, so it
// would never redistribute dnslb's route. dnslb binds the VIPs with
// IP_FREEBIND (and UDP with IP_TRANSPARENT), which needs no address. A
// route already there is fine.
func AddLocalRoutes(iface string, protocol int, ps []netip.Prefix) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("bgp.interface %q: %w", iface, err)
	}
	var errs []error
	for _, p := range ps {
		if err := netlink.RouteReplace(localRoute(link, protocol, p)); err != nil {
			errs = append(errs, fmt.Errorf("bgp: local route %s on %s: %w", p, iface, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveLocalRoutes removes the routes AddLocalRoutes added; one that is
// gone already is fine.
func RemoveLocalRoutes(iface string, protocol int, ps []netip.Prefix) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("bgp.interface %q: %w", iface, err)
	}
	var errs []error
	for _, p := range ps {
		if err := netlink.RouteDel(localRoute(link, protocol, p)); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("bgp: remove local route %s on %s: %w", p, iface, err))
		}
	}
	return errors.Join(errs...)
}

func localRoute(link netlink.Link, protocol int, p netip.Prefix) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Protocol:  netlink.RouteProtocol(protocol),
		Type:      unix.RTN_LOCAL,
		Table:     unix.RT_TABLE_LOCAL,
	}
	if p.Addr().Is4() {
		r.Scope = netlink.SCOPE_HOST
	}
	return r
}
