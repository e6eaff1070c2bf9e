package integration

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// TestBGPTwoSites: two sites, each a VRRP pair of dnslb nodes (mode vrrp:
// only the master announces) announcing the same VIP to its own FRR
// router, site A with MED 10, site B with MED 20; the routers are iBGP
// peers (AS 65000), so both prefer site A by MED. A client that reaches
// the VIP through site B's router is answered by site A's master; when
// both of site A's backends die the traffic moves to site B, and back to
// A when they return; when site A's master dies, its backup takes the VIP
// and the route, and the traffic comes back to site A (meanwhile site B
// answers: a1's session closes at once, a2 needs Master_Down_Interval).
// Measured at the client (whoami every 10ms) and in
// the routers' kernels. One LAN carries both sites (the next hops are on
// it); the VRRP pairs use different VRIDs.
func TestBGPTwoSites(t *testing.T) {
	requirePeers(t)
	lan := testpeer.NewLAN(t, "bgps")
	ra, rb := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
	rah := lan.AddHost(t, "ra", netip.MustParsePrefix("10.99.0.1/24"))
	rbh := lan.AddHost(t, "rb", netip.MustParsePrefix("10.99.0.2/24"))
	client := lan.AddHost(t, "client", netip.MustParsePrefix("10.99.0.100/24"))
	client.Run(t, "ip", "route", "add", bgpPrefix(), "via", rb.String())
	for _, h := range []*testpeer.NetNS{rah, rbh} {
		h.Sysctl(t, "net/ipv4/ip_forward", "1")
		h.Sysctl(t, "net/ipv4/conf/all/send_redirects", "0")
		h.Sysctl(t, "net/ipv4/conf/eth0/send_redirects", "0")
	}
	client.Sysctl(t, "net/ipv4/conf/all/accept_redirects", "0")
	client.Sysctl(t, "net/ipv4/conf/eth0/accept_redirects", "0")

	type siteSpec struct {
		names  []string
		first  byte
		router netip.Addr
		vrid   int
		med    int
	}
	nodes := map[string]*bgpNode{}
	var peersA, peersB []testpeer.BGPPeer
	for _, s := range []siteSpec{{[]string{"a1", "a2"}, 11, ra, 51, 10}, {[]string{"b1", "b2"}, 21, rb, 52, 20}} {
		for i, name := range s.names {
			addr := netip.AddrFrom4([4]byte{10, 99, 0, s.first + byte(i)})
			h := lan.AddHost(t, name, netip.PrefixFrom(addr, 24))
			nd := &bgpNode{name: name, addr: addr, ns: h, nsd: nsdIn(t, h, name, "127.0.0.11:53")}
			conf := bgpNodeConfig(addr, s.router, 65000, fmt.Sprintf(`  mode: vrrp
  med: %d
  withdraw_delay: 1s
vrrp:
  interface: eth0
  vrid: %d
  priority: %d
  advert_interval: 100ms
  vips: ["%s/32"]
  garp_delay: 0s
`, s.med, s.vrid, 150-50*i, anycastVIP.Addr()))
			nd.lb = startLB(t, h, conf, anycastVIP, "127.0.0.1:9053")
			nodes[name] = nd
			if s.router == ra {
				peersA = append(peersA, testpeer.BGPPeer{Address: addr, AS: 65053})
			} else {
				peersB = append(peersB, testpeer.BGPPeer{Address: addr, AS: 65053})
			}
		}
	}
	nodes["a1"].lb.waitVRRP("master", 10*time.Second)
	nodes["b1"].lb.waitVRRP("master", 10*time.Second)
	routerA := testpeer.StartFRR(t, testpeer.FRROptions{NetNS: rah, AS: 65000, RouterID: ra,
		Neighbors: append(peersA, testpeer.BGPPeer{Address: rb, AS: 65000})})
	routerB := testpeer.StartFRR(t, testpeer.FRROptions{NetNS: rbh, AS: 65000, RouterID: rb,
		Neighbors: append(peersB, testpeer.BGPPeer{Address: ra, AS: 65000})})
	t.Cleanup(func() { // before the routers stop
		if t.Failed() {
			t.Logf("router A:\n%s\nrouter B:\n%s", routerA.Vtysh(t, "show bgp ipv4 unicast "+bgpPrefix()),
				routerB.Vtysh(t, "show bgp ipv4 unicast "+bgpPrefix()))
		}
	})
	// waitBoth polls until both routers' kernels forward the VIP to hop.
	waitBoth := func(hop netip.Addr, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			a, b := routerA.KernelNextHops(t, bgpPrefix()), routerB.KernelNextHops(t, bgpPrefix())
			if slices.Equal(a, []netip.Addr{hop}) && slices.Equal(b, []netip.Addr{hop}) {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("router A forwards the VIP to %v, router B to %v; want %s", a, b, hop)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Both routers have site B's path in the end: wait for it at B first,
	// so that A's preference is a choice, not the only path.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(routerB.Vtysh(t, "show bgp ipv4 unicast "+bgpPrefix()), nodes["b1"].addr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("router B has no path from b1:\n%s", routerB.Vtysh(t, "show bgp ipv4 unicast "+bgpPrefix()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := waitBoth(nodes["a1"].addr, 30*time.Second)
	t.Logf("both routers forward the VIP to a1 (MED 10 over b1's MED 20) %v after router B had b1's path; router B:\n%s",
		took.Round(time.Millisecond), routerB.Vtysh(t, "show bgp ipv4 unicast "+bgpPrefix()))
	for _, n := range []string{"a2", "b2"} {
		if st := nodes[n].lb.status(); st.BGP == nil || len(st.BGP.Prefixes) != 1 || st.BGP.Prefixes[0].Announced {
			t.Errorf("VRRP backup %s announces: %+v", n, st.BGP)
		}
	}

	p := startProber(t, client, anycastVIP.Addr())
	p.waitFor(t, "a1", time.Now(), 5*time.Second)

	// Site A's backends die: both routers move to site B.
	t0 := time.Now()
	nodes["a1"].nsd.Kill(t)
	nodes["a2"].nsd.Kill(t)
	routed := waitBoth(nodes["b1"].addr, 15*time.Second)
	gap := p.waitFor(t, "b1", t0, 15*time.Second)
	t.Logf("MEASURED: site A's backends killed -> both routers forward to b1 after %v; client's longest gap between answers %v",
		routed.Round(time.Millisecond), gap.Round(time.Millisecond))

	// They come back: traffic returns to site A.
	t1 := time.Now()
	nodes["a1"].nsd.Restart(t)
	nodes["a2"].nsd.Restart(t)
	back := waitBoth(nodes["a1"].addr, 15*time.Second)
	gapBack := p.waitFor(t, "a1", t1, 15*time.Second)
	t.Logf("MEASURED: site A's backends back -> both routers forward to a1 after %v; client's longest gap %v",
		back.Round(time.Millisecond), gapBack.Round(time.Millisecond))

	// Site A's master dies (SIGKILL: its session closes, its route goes):
	// VRRP makes a2 master, a2 announces, traffic stays in site A.
	nodes["a2"].lb.waitVRRP("backup", 10*time.Second) // out of fault: its backend is back
	time.Sleep(500 * time.Millisecond)
	t2 := time.Now()
	if err := nodes["a1"].lb.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitBoth(nodes["a2"].addr, 15*time.Second)
	routedA2 := time.Since(t2)
	gapKill := p.waitFor(t, "a2", t2, 15*time.Second)
	nodes["a2"].lb.waitVRRP("master", 5*time.Second)
	t.Logf("MEASURED: site A's master killed -> both routers forward to a2 (now VRRP master) after %v; client's longest gap %v",
		routedA2.Round(time.Millisecond), gapKill.Round(time.Millisecond))
	p.mu.Lock()
	var seq []string
	for _, a := range p.answers {
		if d := a.at.Sub(t2); d >= 0 && (len(seq) == 0 || !strings.HasPrefix(seq[len(seq)-1], a.by+" ")) {
			seq = append(seq, fmt.Sprintf("%s %v", a.by, d.Round(time.Millisecond)))
		}
	}
	p.mu.Unlock()
	t.Logf("MEASURED: answered by, from (after the kill): %s", strings.Join(seq, ", "))
	for _, l := range nodes["a2"].lb.logLines("vrrp state change") {
		t.Log(l)
	}
	p.stop()
	p.mu.Lock()
	t.Logf("MEASURED: client: %d answers, %d lost over the test", len(p.answers), p.lost)
	p.mu.Unlock()
}
