package testpeer

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Addresses of the PROXY protocol tests: each runs its server in a
// namespace of its own, on a loopback address (127/8 is all local
// there), and sends from .1 (the allowed proxy) and other 127.0.0.x
// addresses.
var (
	ppProxy    = netip.MustParseAddr("127.0.0.1") // allowed to send headers
	ppStranger = netip.MustParseAddr("127.0.0.2") // not allowed
	ppClient   = netip.MustParseAddrPort("192.0.2.10:5353")
	ppClient6  = netip.MustParseAddrPort("[2001:db8::10]:5353")
	ppVIP6     = netip.MustParseAddrPort("[2001:db8::53]:53")
)

// proxyCase is one query of a PROXY protocol test.
type proxyCase struct {
	name    string
	src     netip.Addr
	network string
	hdr     ProxyHeader
	qname   string // default the case's own name under example.test.
	qtype   uint16 // default A
	ecs     netip.Prefix
	// want is the expected outcome: "drop" (no answer), or an rcode
	// name; wantAddr, if valid, the whoami address answered.
	want     string
	wantAddr netip.Addr
}

// run sends the case's query and checks the outcome; it returns the
// answer (nil when dropped).
func (c proxyCase) run(t *testing.T, ns *NetNS, server netip.AddrPort) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	name := c.qname
	if name == "" {
		name = c.name + "." + Zone
	}
	qtype := c.qtype
	if qtype == 0 {
		qtype = dns.TypeA
	}
	m.SetQuestion(dns.Fqdn(name), qtype)
	if c.ecs.IsValid() {
		m.SetEdns0(1232, false)
		fam := uint16(1)
		if c.ecs.Addr().Is6() {
			fam = 2
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam,
			SourceNetmask: uint8(c.ecs.Bits()), Address: c.ecs.Addr().AsSlice()})
	}
	// Drops are seen by a timeout: keep it short, the servers are local.
	r, err := ExchangeFrom(ns, c.src, server, c.network, c.hdr, m, 700*time.Millisecond)
	switch {
	case c.want == "drop" && errors.Is(err, ErrNoAnswer):
		t.Logf("%-28s %s from %v, %v: dropped (%v)", c.name, c.network, c.src, c.hdr, err)
		return nil
	case c.want == "drop" && err == nil:
		t.Errorf("%s: %s from %v, %v: answered %s, want it dropped:\n%v", c.name, c.network, c.src, c.hdr, dns.RcodeToString[r.Rcode], r)
		return r
	case err != nil:
		t.Errorf("%s: %s from %v, %v: %v, want %s", c.name, c.network, c.src, c.hdr, err, c.want)
		return nil
	}
	t.Logf("%-28s %s from %v, %v: %s %v", c.name, c.network, c.src, c.hdr, dns.RcodeToString[r.Rcode], r.Answer)
	if got := dns.RcodeToString[r.Rcode]; got != c.want {
		t.Errorf("%s: %s from %v, %v: rcode %s, want %s:\n%v", c.name, c.network, c.src, c.hdr, got, c.want, r)
	}
	if c.wantAddr.IsValid() {
		if got := answerAddr(r); got != c.wantAddr {
			t.Errorf("%s: %s from %v, %v: whoami address %v, want %v:\n%v", c.name, c.network, c.src, c.hdr, got, c.wantAddr, r)
		}
	}
	return r
}

// answerAddr returns the first A or AAAA address of r's answer.
func answerAddr(r *dns.Msg) netip.Addr {
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(rr.A.To4())
			return a
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(rr.AAAA)
			return a
		}
	}
	return netip.Addr{}
}

// TestKnotProxyAllowlist: Knot with proxy-allowlist 127.0.0.1 and
// mod-whoami, which answers the address Knot takes for the client. See
// the PROXY protocol facts in knot.go.
func TestKnotProxyAllowlist(t *testing.T) {
	SkipShort(t, "needs root: network namespace, Knot; run without -short")
	t.Parallel()
	RequireTool(t, "knotd")
	ns := NewNetNS(t, "kpx")
	server := netip.MustParseAddrPort("127.0.0.11:53")
	StartKnot(t, KnotOptions{Name: "kproxy", Addr: server, NetNS: ns, Primary: true,
		Zones: []ZoneSpec{{Name: Zone}}, ProxyAllowlist: []netip.Prefix{netip.PrefixFrom(ppProxy, 32)}, Whoami: true})
	apex := func(c proxyCase) proxyCase { c.qname = Zone; return c }
	for _, c := range []proxyCase{
		apex(proxyCase{name: "plain-from-allowed", src: ppProxy, network: "udp", want: "NOERROR", wantAddr: ppProxy}),
		apex(proxyCase{name: "proxy-from-allowed", src: ppProxy, network: "udp", hdr: ProxyFor(ppClient), want: "NOERROR", wantAddr: ppClient.Addr()}),
		apex(proxyCase{name: "proxy6-over-ipv4", src: ppProxy, network: "udp", qtype: dns.TypeAAAA,
			hdr: ProxyHeader{Client: ppClient6, Dst: ppVIP6}, want: "NOERROR", wantAddr: ppClient6.Addr()}),
		apex(proxyCase{name: "local-from-allowed", src: ppProxy, network: "udp", hdr: ProxyLocal, want: "drop"}),
		apex(proxyCase{name: "proxy-from-stranger", src: ppStranger, network: "udp", hdr: ProxyFor(ppClient), want: "drop"}),
		apex(proxyCase{name: "plain-from-stranger", src: ppStranger, network: "udp", want: "NOERROR", wantAddr: ppStranger}),
		apex(proxyCase{name: "tcp-proxy-from-allowed", src: ppProxy, network: "tcp", hdr: ProxyFor(ppClient), want: "drop"}),
		apex(proxyCase{name: "tcp-plain-from-allowed", src: ppProxy, network: "tcp", want: "NOERROR", wantAddr: ppProxy}),
	} {
		c.run(t, ns, server)
	}
}
