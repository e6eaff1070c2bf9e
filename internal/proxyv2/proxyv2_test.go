package proxyv2

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
)

// parse reads a header with the reference parser.
func parse(t *testing.T, b []byte) *proxyproto.Header {
	t.Helper()
	h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(append(b, 0xAB))))
	if err != nil {
		t.Fatalf("go-proxyproto rejects %x: %v", b, err)
	}
	return h
}

// TestAppendParsesAsReference: every header Append writes is read back by
// github.com/pires/go-proxyproto with the same addresses, ports and
// transport.
func TestAppendParsesAsReference(t *testing.T) {
	cases := []struct {
		src, dst string
		tcp      bool
		proto    proxyproto.AddressFamilyAndProtocol
	}{
		{"192.0.2.7:40000", "198.51.100.53:53", false, proxyproto.UDPv4},
		{"192.0.2.7:40000", "198.51.100.53:53", true, proxyproto.TCPv4},
		{"[2001:db8::7]:40000", "[2001:db8::53]:53", false, proxyproto.UDPv6},
		{"[2001:db8::7]:40000", "[2001:db8::53]:53", true, proxyproto.TCPv6},
		{"[::ffff:192.0.2.7]:1", "198.51.100.53:53", false, proxyproto.UDPv4}, // mapped: IPv4
		{"192.0.2.7:1", "[2001:db8::53]:53", false, proxyproto.UDPv6},         // mixed: IPv6
	}
	for _, c := range cases {
		src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
		b := Append(nil, src, dst, c.tcp)
		if len(b) != Len(src, dst) {
			t.Errorf("%s: %d bytes, Len says %d", c.src, len(b), Len(src, dst))
		}
		h := parse(t, b)
		if h.Command != proxyproto.PROXY || h.TransportProtocol != c.proto {
			t.Errorf("%s -> %s: command %v protocol %v, want PROXY %v", c.src, c.dst, h.Command, h.TransportProtocol, c.proto)
		}
		var sa, da netip.AddrPort
		switch a := h.SourceAddr.(type) {
		case *net.UDPAddr:
			sa, da = a.AddrPort(), h.DestinationAddr.(*net.UDPAddr).AddrPort()
		case *net.TCPAddr:
			sa, da = a.AddrPort(), h.DestinationAddr.(*net.TCPAddr).AddrPort()
		}
		if sa.Addr().Unmap() != src.Addr().Unmap() || sa.Port() != src.Port() || da.Addr().Unmap() != dst.Addr().Unmap() || da.Port() != dst.Port() {
			t.Errorf("%s -> %s read back as %s -> %s", src, dst, sa, da)
		}
	}
}

// TestAppendAllocatesNothing: built in place on the hot path.
func TestAppendAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, MaxLen)
	src, dst := netip.MustParseAddrPort("[2001:db8::7]:40000"), netip.MustParseAddrPort("[2001:db8::53]:53")
	if n := testing.AllocsPerRun(1000, func() { Append(buf[:0], src, dst, false) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
