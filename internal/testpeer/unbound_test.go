package testpeer

import (
	"net/netip"
	"testing"
)

// TestUnboundProxyProtocol: Unbound 1.17 with a proxy-protocol-port and
// access-control lines for senders (127.0.0.x) and proxied clients
// (192.0.2.x): access-control is applied to the sender first, then to
// the proxied client; there is no separate list of proxies. See the
// facts in unbound.go.
func TestUnboundProxyProtocol(t *testing.T) {
	SkipShort(t, "needs root: network namespace, Unbound; run without -short")
	t.Parallel()
	ns := NewNetNS(t, "ubx")
	server := netip.MustParseAddrPort("127.0.0.13:53")
	var (
		denied    = netip.MustParseAddr("127.0.0.3") // sender denied
		refused   = netip.MustParseAddr("127.0.0.4") // sender refused
		other     = netip.MustParseAddr("127.0.0.5") // another allowed sender
		refusedCl = netip.MustParseAddrPort("192.0.2.66:5353")
		deniedCl  = netip.MustParseAddrPort("192.0.2.67:5353")
		unlisted  = netip.MustParseAddrPort("198.51.100.1:5353")
		viewCl    = netip.MustParseAddrPort("192.0.2.68:5353") // in the refusing view
	)
	acl := func(p, action string) UnboundACL { return UnboundACL{netip.MustParsePrefix(p), action} }
	u := StartUnbound(t, UnboundOptions{Name: "uproxy", Addr: server, NetNS: ns, ProxyProtocol: true,
		Zones: []ZoneSpec{{Name: Zone, Records: "www\tIN\tA\t192.0.2.1"}},
		AccessControl: []UnboundACL{
			acl("0.0.0.0/0", "refuse"), acl("::/0", "refuse"),
			acl("127.0.0.1/32", "allow"), acl("127.0.0.3/32", "deny"), acl("127.0.0.4/32", "refuse"), acl("127.0.0.5/32", "allow"),
			acl("192.0.2.0/24", "allow"), acl("2001:db8::/32", "allow"), acl("192.0.2.66/32", "refuse"), acl("192.0.2.67/32", "deny"),
		},
		RefuseView: []netip.Prefix{netip.PrefixFrom(viewCl.Addr(), 32)}})
	t.Logf("Unbound pid %d", u.PID)
	www := "www." + Zone
	for _, c := range []proxyCase{
		{name: "udp-proxy", src: ppProxy, network: "udp", hdr: ProxyFor(ppClient), qname: www, want: "NOERROR"},
		{name: "udp-proxy6", src: ppProxy, network: "udp", hdr: ProxyHeader{Client: ppClient6, Dst: ppVIP6}, qname: www, want: "NOERROR"},
		{name: "tcp-proxy", src: ppProxy, network: "tcp", hdr: ProxyFor(ppClient), qname: www, want: "NOERROR"},
		{name: "udp-proxy-client-refused", src: ppProxy, network: "udp", hdr: ProxyFor(refusedCl), qname: www, want: "REFUSED"},
		{name: "tcp-proxy-client-refused", src: ppProxy, network: "tcp", hdr: ProxyFor(refusedCl), qname: www, want: "REFUSED"},
		{name: "udp-proxy-client-denied", src: ppProxy, network: "udp", hdr: ProxyFor(deniedCl), qname: www, want: "drop"},
		{name: "udp-proxy-client-in-view", src: ppProxy, network: "udp", hdr: ProxyFor(viewCl), qname: www, want: "REFUSED"},
		{name: "tcp-proxy-client-in-view", src: ppProxy, network: "tcp", hdr: ProxyFor(viewCl), qname: www, want: "REFUSED"},
		{name: "udp-proxy-client-unlisted", src: ppProxy, network: "udp", hdr: ProxyFor(unlisted), qname: www, want: "REFUSED"},
		{name: "udp-plain", src: ppProxy, network: "udp", qname: www, want: "drop"},
		{name: "tcp-plain", src: ppProxy, network: "tcp", qname: www, want: "drop"},
		{name: "udp-local", src: ppProxy, network: "udp", hdr: ProxyLocal, qname: www, want: "NOERROR"},
		{name: "udp-sender-denied", src: denied, network: "udp", hdr: ProxyFor(ppClient), qname: www, want: "drop"},
		{name: "udp-sender-refused", src: refused, network: "udp", hdr: ProxyFor(ppClient), qname: www, want: "REFUSED"},
		// Any sender access-control allows may name any client.
		{name: "udp-other-sender", src: other, network: "udp", hdr: ProxyFor(ppClient), qname: www, want: "NOERROR"},
		{name: "udp-nxdomain-outside", src: ppProxy, network: "udp", hdr: ProxyFor(ppClient), qname: "nowhere.invalid.", want: "NXDOMAIN"},
	} {
		r := c.run(t, ns, server)
		if r == nil {
			continue
		}
		inView := c.hdr.Client == viewCl
		switch {
		case c.want == "NOERROR" && answerAddr(r) != netip.MustParseAddr("192.0.2.1"):
			t.Errorf("%s: answer %v, want www's A 192.0.2.1", c.name, r.Answer)
		case c.want == "REFUSED" && inView && len(r.Question) != 1:
			t.Errorf("%s: REFUSED by the view without the question; want it kept", c.name)
		case c.want == "REFUSED" && !inView && len(r.Question) != 0:
			t.Logf("%s: REFUSED by access-control with the question kept (Unbound 1.17.1 removes it)", c.name)
		case c.want == "REFUSED":
			t.Logf("%s: REFUSED with %d questions", c.name, len(r.Question))
		}
	}

	// The query log names the proxied client (the sender for a LOCAL
	// header).
	replies := map[netip.Addr][]string{}
	for _, q := range u.QueryLog() {
		if q.Rcode != "" {
			replies[q.Client] = append(replies[q.Client], q.Name+" "+q.Rcode)
		}
	}
	for _, w := range []struct {
		client netip.Addr
		reply  string
	}{
		{ppClient.Addr(), www + " NOERROR"},
		{ppClient6.Addr(), www + " NOERROR"},
		{refusedCl.Addr(), "null REFUSED"},
		{viewCl.Addr(), www + " REFUSED"},
		{unlisted.Addr(), "null REFUSED"},
		{ppProxy, www + " NOERROR"}, // the LOCAL header
		// A refused sender is logged under the client its header names.
		{ppClient.Addr(), "null REFUSED"},
	} {
		if !containsLine(replies[w.client], w.reply) {
			t.Errorf("query log: no %q for %v; replies by client: %v", w.reply, w.client, replies)
		}
	}
	for _, a := range []netip.Addr{deniedCl.Addr(), denied, refused} {
		if len(replies[a]) > 0 {
			t.Errorf("query log has replies for %v, which is denied: %v", a, replies[a])
		}
	}
	if got := u.Replies(netip.Addr{}); len(got) == 0 {
		t.Errorf("no reply lines in the log:\n%s", u.logTail())
	}
}
