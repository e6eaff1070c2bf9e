package testpeer

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hostRecords returns n A records h0..h<n-1>, enough to make an AXFR
// span several messages.
func hostRecords(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "h%d\tIN\tA\t198.18.%d.%d\n", i, i/256, i%256)
	}
	return b.String()
}

// TestPDNSProxyProtocol: PowerDNS 4.7 with proxy-protocol-from
// 127.0.0.1, edns-subnet-processing and allow-axfr-ips naming a proxied
// client: which queries are answered, what the query log says, which
// client the AXFR ACL sees. See the facts in pdns.go.
func TestPDNSProxyProtocol(t *testing.T) {
	SkipShort(t, "needs root: network namespace, PowerDNS; run without -short")
	t.Parallel()
	ns := NewNetNS(t, "pdx")
	server := netip.MustParseAddrPort("127.0.0.12:53")
	axfrClient := netip.MustParseAddrPort("192.0.2.77:40000")
	p := StartPDNS(t, PDNSOptions{Name: "pproxy", Addr: server, NetNS: ns,
		Zones:     []ZoneSpec{{Name: Zone, Records: "www\tIN\tA\t192.0.2.1\n" + hostRecords(1500)}},
		ProxyFrom: []netip.Prefix{netip.PrefixFrom(ppProxy, 32)}, ECS: true,
		AllowAXFR: []netip.Prefix{netip.PrefixFrom(axfrClient.Addr(), 32)}})
	t.Logf("PowerDNS pid %d", p.PID)

	for _, c := range []proxyCase{
		{name: "udp-proxy", src: ppProxy, network: "udp", hdr: ProxyFor(ppClient), want: "NXDOMAIN"},
		{name: "udp-proxy6", src: ppProxy, network: "udp", hdr: ProxyHeader{Client: ppClient6, Dst: ppVIP6}, want: "NXDOMAIN"},
		{name: "udp-plain-from-proxy", src: ppProxy, network: "udp", want: "drop"},
		{name: "udp-local", src: ppProxy, network: "udp", hdr: ProxyLocal, want: "NXDOMAIN"},
		{name: "udp-proxy-from-stranger", src: ppStranger, network: "udp", hdr: ProxyFor(ppClient), want: "drop"},
		{name: "udp-plain-from-stranger", src: ppStranger, network: "udp", want: "NXDOMAIN"},
		{name: "tcp-proxy", src: ppProxy, network: "tcp", hdr: ProxyFor(ppClient), want: "NXDOMAIN"},
		{name: "tcp-plain-from-proxy", src: ppProxy, network: "tcp", want: "drop"},
		{name: "tcp-local", src: ppProxy, network: "tcp", hdr: ProxyLocal, want: "NXDOMAIN"},
		{name: "udp-proxy-ecs", src: ppProxy, network: "udp", hdr: ProxyFor(ppClient), ecs: netip.MustParsePrefix("10.1.2.0/24"), want: "NXDOMAIN"},
	} {
		r := c.run(t, ns, server)
		if c.ecs.IsValid() && r != nil {
			if got := answerECS(r); got != c.ecs {
				t.Errorf("%s: answer's ECS %v, want %v echoed:\n%v", c.name, got, c.ecs, r)
			}
		}
	}

	// The query log names the sender and the proxied client.
	want := map[string]string{
		"udp-proxy":               "Remote 127.0.0.1(192.0.2.10) udp",
		"udp-proxy6":              "Remote 127.0.0.1(2001:db8::10) udp",
		"udp-local":               "Remote 127.0.0.1(0.0.0.0) udp",
		"udp-plain-from-stranger": "Remote 127.0.0.2 udp",
		"tcp-proxy":               "Remote 127.0.0.1(192.0.2.10) tcp",
		"tcp-local":               "Remote 127.0.0.1(0.0.0.0) tcp",
		"udp-proxy-ecs":           "Remote 127.0.0.1(192.0.2.10)<-10.1.2.0/24 udp",
	}
	got := map[string]string{}
	for _, q := range p.QueryLog() {
		name, _ := strings.CutSuffix(q.Name, "."+strings.TrimSuffix(Zone, "."))
		s := "Remote " + q.Remote.String()
		if q.Proxied.IsValid() {
			s += "(" + q.Proxied.String() + ")"
		}
		if q.ECS.IsValid() {
			s += "<-" + q.ECS.String()
		}
		if q.TCP {
			s += " tcp"
		} else {
			s += " udp"
		}
		got[name] = s
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("query log for %s: %q, want %q", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && name != strings.TrimSuffix(Zone, ".") {
			t.Errorf("query log has %s (%s), which should have been dropped", name, got[name])
		}
	}

	// AXFR: allow-axfr-ips is checked against the proxied client.
	for _, c := range []struct {
		name  string
		src   netip.Addr
		hdr   ProxyHeader
		rcode int
	}{
		{"axfr-proxied-allowed", ppProxy, ProxyFor(axfrClient), dns.RcodeSuccess},
		{"axfr-proxied-other", ppProxy, ProxyFor(ppClient), dns.RcodeNotAuth},
		{"axfr-local", ppProxy, ProxyLocal, dns.RcodeNotAuth},
		{"axfr-plain-stranger", ppStranger, NoProxyHeader, dns.RcodeNotAuth},
	} {
		res, err := TransferFrom(ns, c.src, server, c.hdr, Zone, 10*time.Second)
		if err != nil {
			t.Errorf("%s: %v (%d messages, %d records)", c.name, err, res.Messages, len(res.Records))
			continue
		}
		t.Logf("%-22s from %v, %v: %s, %d messages, %d records", c.name, c.src, c.hdr, dns.RcodeToString[res.Rcode], res.Messages, len(res.Records))
		if res.Rcode != c.rcode {
			t.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[res.Rcode], dns.RcodeToString[c.rcode])
		}
		if c.rcode == dns.RcodeSuccess && (!res.Complete(Zone) || res.Messages < 2) {
			t.Errorf("%s: incomplete: %d messages, %d records", c.name, res.Messages, len(res.Records))
		}
	}
	var xfrs []string
	for _, x := range p.AXFRLog() {
		xfrs = append(xfrs, x.Client+": "+x.Event)
	}
	for _, w := range []string{
		"127.0.0.1(192.0.2.77): AXFR finished",
		"127.0.0.1(192.0.2.10): failed: client may not request AXFR",
		"127.0.0.1(0.0.0.0): failed: client may not request AXFR",
	} {
		if !containsLine(xfrs, w) {
			t.Errorf("AXFR log lacks %q:\n%s", w, strings.Join(xfrs, "\n"))
		}
	}
}

func containsLine(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// answerECS returns the subnet of r's ECS option, or an invalid prefix.
func answerECS(r *dns.Msg) netip.Prefix {
	opt := r.IsEdns0()
	if opt == nil {
		return netip.Prefix{}
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok {
			a, _ := netip.AddrFromSlice(e.Address)
			if e.Family == 1 {
				a = a.Unmap()
			}
			return netip.PrefixFrom(a, int(e.SourceNetmask)).Masked()
		}
	}
	return netip.Prefix{}
}
