package balancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenConfig returns a ListenConfig whose sockets bind with
// IP_FREEBIND/IPV6_FREEBIND, so that a standby node can bind the VIP before
// it is configured on an interface, and with SO_REUSEADDR (plus
// SO_REUSEPORT when asked).
//
// Where allowed (CAP_NET_ADMIN, which a node running VRRP has anyway) the
// sockets are also IP_TRANSPARENT/IPV6_TRANSPARENT: FREEBIND lets a socket
// bind an address the node does not hold, but only TRANSPARENT lets it
// send from one. An answer still on its way back from a backend when VRRP
// hands the VIP to the peer is then delivered instead of failing with
// ENETUNREACH. No TPROXY rule exists, so TRANSPARENT changes nothing
// else. Without the capability the option is skipped.
func listenConfig(v6, reusePort bool) net.ListenConfig {
	return net.ListenConfig{
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if v6 {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
				} else {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
				}
				if serr != nil {
					serr = fmt.Errorf("set FREEBIND: %w", serr)
					return
				}
				if v6 {
					_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT, 1)
				} else {
					_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1)
				}
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
					serr = fmt.Errorf("set SO_REUSEADDR: %w", serr)
					return
				}
				if reusePort {
					if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
						serr = fmt.Errorf("set SO_REUSEPORT: %w", serr)
						return
					}
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// isV6 reports whether addr needs an IPv6 socket.
func isV6(addr netip.AddrPort) bool { return addr.Addr().Is6() && !addr.Addr().Is4In6() }

// listenUDP binds a UDP socket on addr, with SO_REUSEPORT when reusePort
// (several workers share the address).
func listenUDP(addr netip.AddrPort, reusePort bool) (*net.UDPConn, error) {
	lc := listenConfig(isV6(addr), reusePort)
	pc, err := lc.ListenPacket(context.Background(), "udp", addr.String())
	if err != nil {
		return nil, explainBindError("udp", addr, err)
	}
	return pc.(*net.UDPConn), nil
}

// listenTCP binds a TCP listener on addr.
func listenTCP(addr netip.AddrPort) (*net.TCPListener, error) {
	lc := listenConfig(isV6(addr), false)
	ln, err := lc.Listen(context.Background(), "tcp", addr.String())
	if err != nil {
		return nil, explainBindError("tcp", addr, err)
	}
	return ln.(*net.TCPListener), nil
}

// explainBindError turns the usual bind failures into a one-line message
// that says what to do; the system error stays in the chain (errors.Is).
func explainBindError(network string, addr netip.AddrPort, err error) error {
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return &bindError{msg: fmt.Sprintf("listen %s %s: address already in use (another DNS server or dnslb is running?)", network, addr), err: err}
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return &bindError{msg: fmt.Sprintf("listen %s %s: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)", network, addr), err: err}
	}
	return fmt.Errorf("listen %s %s: %w", network, addr, err)
}

// bindError is an explained bind failure: its own message, the system
// error underneath.
type bindError struct {
	msg string
	err error
}

func (e *bindError) Error() string { return e.msg }
func (e *bindError) Unwrap() error { return e.err }
