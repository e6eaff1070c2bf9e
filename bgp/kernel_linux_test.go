package bgp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// TestKernelLocalRoutes (root, in a namespace): mode kernel's pieces.
// AddLocalRoutes makes the VIPs local by routes in the local table, with
// no address on lo (an address would give FRR's zebra a connected route
// that shadows the kernel route: TestBGPKernelFRR); a socket bound to the
// VIP (with FREEBIND, as dnslb binds) receives; Kernel adds and removes the main-table route with its
// protocol; adding and removing twice is fine.
func TestKernelLocalRoutes(t *testing.T) {
	ns := testpeer.NewNetNS(t, "bgpk")
	ps := []netip.Prefix{netip.MustParsePrefix("10.53.0.53/32"), netip.MustParsePrefix("fd53::53/128")}
	ns.Do(t, func() {
		for range 2 {
			if err := AddLocalRoutes("lo", 250, ps); err != nil {
				t.Fatal(err)
			}
		}
	})
	if out := ns.Run(t, "ip", "route", "show", "table", "local", "10.53.0.53/32"); strings.TrimSpace(out) != "local 10.53.0.53 dev lo proto 250 scope host" {
		t.Errorf("IPv4 local route %q", out)
	}
	if out := ns.Run(t, "ip", "-6", "route", "show", "table", "local", "fd53::53/128"); !strings.HasPrefix(strings.TrimSpace(out), "local fd53::53 dev lo proto 250") {
		t.Errorf("IPv6 local route %q", out)
	}
	if out := ns.Run(t, "ip", "addr", "show", "dev", "lo"); strings.Contains(out, "10.53.0.53") || strings.Contains(out, "fd53::53") {
		t.Errorf("a VIP is an address on lo:\n%s", out)
	}
	ns.Do(t, func() {
		for _, p := range ps {
			// FREEBIND as dnslb's listeners: IPv6 binds no address
			// without it.
			lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				rc.Control(func(fd uintptr) {
					if p.Addr().Is6() {
						serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
					} else {
						serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
					}
				})
				return serr
			}}
			pc, err := lc.ListenPacket(context.Background(), "udp", netip.AddrPortFrom(p.Addr(), 5353).String())
			if err != nil {
				t.Fatalf("bind %s: %v", p.Addr(), err)
			}
			s, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.Addr(), 5353)))
			if err != nil {
				t.Fatal(err)
			}
			s.Write([]byte("x"))
			c := pc.(*net.UDPConn)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 10)
			if n, _, err := c.ReadFromUDP(buf); err != nil || string(buf[:n]) != "x" {
				t.Errorf("%s: received %q, %v", p.Addr(), buf[:n], err)
			}
			s.Close()
			c.Close()
		}
		k, err := NewKernel("lo", 250)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if err := k.Announce(context.Background(), p, Attrs{}); err != nil {
				t.Fatal(err)
			}
		}
	})
	if out := ns.Run(t, "ip", "route", "show", "10.53.0.53/32"); strings.TrimSpace(out) != "10.53.0.53 dev lo proto 250 scope link" {
		t.Errorf("main-table route %q", out)
	}
	ns.Do(t, func() {
		k, _ := NewKernel("lo", 250)
		for range 2 {
			for _, p := range ps {
				if err := k.Withdraw(context.Background(), p); err != nil {
					t.Error(err)
				}
			}
			if err := RemoveLocalRoutes("lo", 250, ps); err != nil {
				t.Error(err)
			}
		}
	})
	for _, args := range [][]string{{"-4", "route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"}} {
		if out := ns.Run(t, append([]string{"ip"}, args...)...); strings.Contains(out, "10.53.0.53") || strings.Contains(out, "fd53::53") {
			t.Errorf("route left after removal:\n%s", out)
		}
	}
}
