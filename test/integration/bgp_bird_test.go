package integration

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// TestBGPBIRDECMP: two active nodes, each with its own NSD, announce the
// VIP to BIRD 2 (docs/anycast.md's bird.conf, merge paths on): BIRD's table holds two routes for it,
// the router's kernel one route with two next hops, and clients on 20
// source addresses reach both nodes. Measured: node2's backend killed →
// its path gone at BIRD and in the kernel; backend back → path again.
func TestBGPBIRDECMP(t *testing.T) {
	requirePeers(t)
	testpeer.RequireTool(t, "bird")
	testpeer.RequireTool(t, "birdc")
	lan := testpeer.NewLAN(t, "bgpb")
	rh, client, routerAddr, sources := ecmpHosts(t, lan, 20)

	nodes := startBGPNodes(t, lan, 2, func(i int, addr netip.Addr) string {
		return bgpNodeConfig(addr, routerAddr, 65000, "  mode: active\n  withdraw_delay: 2s\n")
	})
	var peers []testpeer.BGPPeer
	var addrs []netip.Addr
	for _, n := range nodes {
		peers = append(peers, testpeer.BGPPeer{Address: n.addr, AS: 65053})
		addrs = append(addrs, n.addr)
	}
	// The router's config is docs/anycast.md's, as is.
	router := testpeer.StartBIRD(t, testpeer.BIRDOptions{NetNS: rh, Config: docSnippet(t, "bird-router-ecmp")})
	// waitHops polls until BIRD's table and the kernel both have exactly
	// the next hops want for the VIP.
	waitHops := func(want []netip.Addr, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		slices.SortFunc(want, netip.Addr.Compare)
		for {
			got, kern := router.NextHops(t, bgpPrefix()), router.KernelNextHops(t, bgpPrefix())
			slices.SortFunc(got, netip.Addr.Compare)
			slices.SortFunc(kern, netip.Addr.Compare)
			if slices.Equal(got, want) && slices.Equal(kern, want) {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("BIRD next hops %v, kernel %v, want %v; BIRD:\n%s", got, kern, want, router.ShowRoute(t, bgpPrefix()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	took := waitHops(addrs, 30*time.Second)
	show := router.ShowRoute(t, bgpPrefix())
	t.Logf("MEASURED: BIRD table and kernel with 2 next hops %v after BIRD started; birdc show route for %s all:\n%s",
		took.Round(time.Millisecond), bgpPrefix(), show)
	if strings.Count(show, "[AS65053i]") != 2 {
		t.Errorf("want two BGP routes with AS path 65053 in BIRD's table:\n%s", show)
	}
	for _, n := range []string{"n1", "n2"} {
		if s := router.ProtocolState(t, n); !strings.Contains(s, "Established") {
			t.Errorf("BIRD protocol %s: %q", n, s)
		}
	}

	load := startClients(t, client, sources, 20*time.Millisecond)
	defer load.end()
	time.Sleep(2 * time.Second)
	checkShares(t, load, nodes, "from 20 sources in 2s")

	// Backend death on node2: its path goes (bound fall 2 × 250ms + 1s
	// for dnslb, plus BIRD and the kernel; 10s to fail).
	nodes[1].nsd.Kill(t)
	gone := waitHops(addrs[:1], 10*time.Second)
	time.Sleep(time.Second)
	_, lostKill := load.snapshot()
	t.Logf("MEASURED: node2 backend killed -> BIRD and kernel route without node2 after %v; %d queries lost meanwhile",
		gone.Round(time.Millisecond), lostKill)
	if lines := nodes[1].lb.logLines(`msg="bgp: withdrawn"`); len(lines) != 1 || !strings.Contains(lines[0], "only 0 of at least 1 backends up") {
		t.Errorf("withdraw log lines %q", lines)
	}
	time.Sleep(time.Second)
	by, lost := load.snapshot()
	if by[nodes[1].name] != 0 || lost != 0 {
		t.Errorf("after the withdrawal: shares %v, lost %d; want all on node1", by, lost)
	}

	nodes[1].nsd.Restart(t)
	back := waitHops(addrs, 10*time.Second)
	t.Logf("MEASURED: node2 backend back -> 2 next hops again after %v", back.Round(time.Millisecond))
}
