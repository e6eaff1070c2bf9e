package healthcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	proxyproto "github.com/pires/go-proxyproto"
)

// TestErrorPhrase: socket errors become short operator phrases, without
// operations and socket addresses.
func TestErrorPhrase(t *testing.T) {
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 45678}
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5301}
	dst6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::53"), Port: 53}
	opErr := func(op, network string, addr net.Addr, syscallName string, err error) error {
		if syscallName != "" {
			err = &os.SyscallError{Syscall: syscallName, Err: err}
		}
		return &net.OpError{Op: op, Net: network, Source: src, Addr: addr, Err: err}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"udp read refused", opErr("read", "udp", dst, "recvfrom", syscall.ECONNREFUSED), "connection refused"},
		{"tcp dial refused", opErr("dial", "tcp", dst6, "connect", syscall.ECONNREFUSED), "connection refused"},
		{"host unreachable", opErr("dial", "tcp", dst6, "connect", syscall.EHOSTUNREACH), "host unreachable"},
		{"network unreachable", opErr("dial", "udp", dst, "connect", syscall.ENETUNREACH), "network unreachable"},
		{"reset", opErr("read", "tcp", dst6, "read", syscall.ECONNRESET), "connection reset"},
		{"broken pipe", opErr("write", "tcp", dst6, "write", syscall.EPIPE), "connection closed"},
		{"eof", io.EOF, "connection closed"},
		{"unexpected eof", io.ErrUnexpectedEOF, "connection closed"},
		{"wrapped eof", fmt.Errorf("reading length: %w", io.EOF), "connection closed"},
		{"deadline", opErr("read", "udp", dst, "", os.ErrDeadlineExceeded), "timeout"},
		{"other errno", opErr("dial", "udp", dst, "socket", syscall.EMFILE), syscall.EMFILE.Error()},
		{"other without syscall", opErr("dial", "tcp", dst6, "", errors.New("no suitable address found")), "no suitable address found"},
		{"plain error", errors.New("something odd"), "something odd"},
	}
	for _, tt := range tests {
		if got := errorPhrase(tt.err); got != tt.want {
			t.Errorf("%s: errorPhrase(%q) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestProbeReasonClosedPort: probing a closed port gives "udp: connection
// refused" or "tcp: connection refused", not the socket error's full text.
func TestProbeReasonClosedPort(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		addr := closedPort(t, transport)
		c := Check{Name: "example.test.", Transport: transport, Timeout: 2 * time.Second}.withDefaults()
		o := probe(context.Background(), exchange, c, addr)
		if want := transport + ": connection refused"; o.result != NetError || o.reason != want {
			t.Errorf("%s probe of closed port %s: %v %q, want error %q", transport, addr, o.result, o.reason, want)
		}
	}
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T, transport string) netip.AddrPort {
	t.Helper()
	var addr net.Addr
	if transport == "tcp" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr()
		ln.Close()
	} else {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr()
		pc.Close()
	}
	return netip.MustParseAddrPort(addr.String())
}

// TestProbeProxyHeader: with ProxyHeader a probe starts with a PROXY v2
// header (as go-proxyproto reads it) naming the probe's own socket as
// the client and the backend as the destination, over UDP and TCP.
func TestProbeProxyHeader(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			got := make(chan *proxyproto.Header, 1)
			var addr netip.AddrPort
			answer := func(q []byte) []byte {
				m := new(dns.Msg)
				if err := m.Unpack(q); err != nil {
					t.Errorf("query after the header: %v", err)
					return nil
				}
				r := new(dns.Msg).SetReply(m)
				b, _ := r.Pack()
				return b
			}
			if transport == "udp" {
				pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
				go func() {
					buf := make([]byte, 4096)
					n, from, err := pc.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					br := bufio.NewReader(bytes.NewReader(buf[:n]))
					h, err := proxyproto.Read(br)
					if err != nil {
						t.Errorf("header: %v", err)
						close(got)
						return
					}
					got <- h
					rest, _ := io.ReadAll(br)
					pc.WriteToUDPAddrPort(answer(rest), from)
				}()
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				addr = ln.Addr().(*net.TCPAddr).AddrPort()
				go func() {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					br := bufio.NewReader(c)
					h, err := proxyproto.Read(br)
					if err != nil {
						t.Errorf("header: %v", err)
						close(got)
						return
					}
					got <- h
					var l [2]byte
					io.ReadFull(br, l[:])
					q := make([]byte, int(l[0])<<8|int(l[1]))
					io.ReadFull(br, q)
					a := answer(q)
					c.Write(append([]byte{byte(len(a) >> 8), byte(len(a))}, a...))
				}()
			}
			c := Check{Name: "example.test.", Transport: transport, ProxyHeader: true, Timeout: 2 * time.Second}.withDefaults()
			if o := probe(context.Background(), exchange, c, addr); o.result != OK {
				t.Fatalf("probe: %v %s", o.result, o.reason)
			}
			h := <-got
			if h == nil || h.Command != proxyproto.PROXY || h.DestinationAddr.String() != addr.String() ||
				!strings.HasPrefix(h.SourceAddr.String(), "127.0.0.1:") {
				t.Fatalf("header %+v", h)
			}
		})
	}
}
