package integration

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// docSnippet returns the fenced block that follows `<!-- snippet: name -->`
// in docs/anycast.md: the kernel-mode tests run the configs the docs show.
func docSnippet(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/anycast.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- snippet: " + name + " -->\n"
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("docs/anycast.md has no %q", strings.TrimSpace(marker))
	}
	rest, ok = strings.CutPrefix(rest, "```\n")
	if !ok {
		t.Fatalf("docs/anycast.md: no code block right after %q", strings.TrimSpace(marker))
	}
	body, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatalf("docs/anycast.md: unterminated code block after %q", strings.TrimSpace(marker))
	}
	return body
}

// kernelNode is the setup of the kernel-mode tests, at the addresses the
// docs' snippets use: a router (gobgpd, 10.99.0.1, AS 65000, expecting
// 10.99.0.11 as AS 65053) and a node (10.99.0.11) with its NSD and dnslb
// in mode kernel; the test starts the node's routing daemon.
type kernelNode struct {
	router   *testpeer.GoBGPD
	routerNS *testpeer.NetNS
	node     *bgpNode
}

func startKernelNode(t *testing.T, lanPrefix string) *kernelNode {
	t.Helper()
	lan := testpeer.NewLAN(t, lanPrefix)
	routerAddr := netip.MustParseAddr("10.99.0.1")
	rh := lan.AddHost(t, "router", netip.MustParsePrefix("10.99.0.1/24"))
	nodes := startBGPNodes(t, lan, 1, func(i int, addr netip.Addr) string {
		return lbConfig([]netip.AddrPort{anycastVIP}, "127.0.0.1:9053", [][2]string{{"local", "127.0.0.11:53"}},
			`health_check:
  query: {name: example.test., type: SOA}
  expect: {rcodes: [NOERROR], authoritative: true}
  interval: 250ms
  timeout: 200ms
  rise: 1
  fall: 2
bgp:
  mode: kernel
  withdraw_delay: 2s
`)
	})
	router := testpeer.StartGoBGPD(t, testpeer.GoBGPDOptions{NetNS: rh, AS: 65000, RouterID: routerAddr,
		Neighbors: []testpeer.BGPPeer{{Address: nodes[0].addr, AS: 65053}}})
	// A route of another protocol for another /32 on the node: the
	// daemon must not announce it.
	nodes[0].ns.Run(t, "ip", "route", "add", "10.53.0.99/32", "dev", "lo", "proto", "251")
	// gobgpd installs nothing in the kernel: the router forwards to the
	// node by a static route, to show the VIP is served with no address.
	rh.Run(t, "ip", "route", "add", bgpPrefix(), "via", nodes[0].addr.String())
	return &kernelNode{router: router, routerNS: rh, node: nodes[0]}
}

// routerPrefixes returns the prefixes the router has, each with the
// neighbours it has them from.
func (k *kernelNode) routerPrefixes(t *testing.T) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for pfx, paths := range k.router.RIB(t) {
		for _, p := range paths {
			out[pfx] = append(out[pfx], p.Neighbor)
		}
	}
	return out
}

// waitVIP polls until the router has the VIP from the node (want) or
// not, and returns how long that took.
func (k *kernelNode) waitVIP(t *testing.T, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := k.routerPrefixes(t)
		if has := slices.Equal(got[bgpPrefix()], []netip.Addr{k.node.addr}); has == want && (want || got[bgpPrefix()] == nil) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("router has %v, want the VIP from %s: %v", got, k.node.addr, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kernelRoute returns the node's kernel route to the VIP ("" if none).
func (k *kernelNode) kernelRoute(t *testing.T) string {
	return strings.TrimSpace(k.node.ns.Run(t, "ip", "route", "show", bgpPrefix()))
}

// run is the common part: the VIP is at the router while dnslb is fit
// (and nothing else of the node), goes when the backend dies, comes back
// with it, and goes first at SIGTERM. It logs the numbers.
func (k *kernelNode) run(t *testing.T, daemon string, started time.Time) {
	t.Helper()
	took := k.waitVIP(t, true, 30*time.Second)
	t.Logf("MEASURED: %s: router has the VIP from the node %v after the daemon started (%v since its start)", daemon,
		took.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	if r := k.kernelRoute(t); r != "10.53.0.53 dev lo proto 250 scope link" {
		t.Errorf("node's kernel route %q, want dev lo proto 250 scope link", r)
	}
	if out := k.node.ns.Run(t, "ip", "addr", "show", "dev", "lo"); strings.Contains(out, anycastVIP.Addr().String()) {
		t.Errorf("the VIP is an address on lo (zebra would shadow the kernel route with a connected one):\n%s", out)
	}
	k.routerNS.Do(t, func() {
		if who := testpeer.Whoami(t, anycastVIP); who != "node1" {
			t.Errorf("VIP queried from the router answered by %q", who)
		}
	})
	if got := k.routerPrefixes(t); len(got) != 1 {
		t.Errorf("router has %v, want only %s (not the proto 251 route)", got, bgpPrefix())
	}
	if st := k.node.lb.status(); st.BGP == nil || st.BGP.Mode != "kernel" || len(st.BGP.Sessions) != 0 ||
		len(st.BGP.Prefixes) != 1 || !st.BGP.Prefixes[0].Announced {
		t.Errorf("bgp status %+v", st.BGP)
	}

	k.node.nsd.Kill(t)
	gone := k.waitVIP(t, false, 10*time.Second)
	t.Logf("MEASURED: %s: backend killed -> VIP gone at the router after %v (dnslb: fall 2 x 250ms)", daemon, gone.Round(time.Millisecond))
	if r := k.kernelRoute(t); r != "" {
		t.Errorf("node's kernel route still there after the withdrawal: %q", r)
	}
	k.node.nsd.Restart(t)
	back := k.waitVIP(t, true, 10*time.Second)
	t.Logf("MEASURED: %s: backend back -> VIP at the router again after %v", daemon, back.Round(time.Millisecond))

	sig := time.Now()
	k.node.lb.signal(syscall.SIGTERM)
	k.waitVIP(t, false, 10*time.Second)
	withdrawn := time.Since(sig)
	k.node.lb.waitExit(15 * time.Second)
	t.Logf("MEASURED: %s: SIGTERM -> VIP gone at the router after %v, dnslb exited after %v (withdraw_delay 2s)", daemon,
		withdrawn.Round(time.Millisecond), time.Since(sig).Round(time.Millisecond))
	if withdrawn > 2*time.Second {
		t.Errorf("VIP withdrawn %v after SIGTERM, want it within withdraw_delay (2s)", withdrawn)
	}
	if r := k.kernelRoute(t); r != "" {
		t.Errorf("node's kernel route left after exit: %q", r)
	}
}

// TestBGPKernelBIRD: dnslb in mode kernel, BIRD 2 on the same node with
// docs/anycast.md's bird.conf (learn, import krt_source = 250, export
// RTS_INHERIT over BGP) announces the VIP to the router while dnslb is
// fit.
func TestBGPKernelBIRD(t *testing.T) {
	requirePeers(t)
	testpeer.RequireTool(t, "bird")
	testpeer.RequireTool(t, "birdc")
	k := startKernelNode(t, "bgpkb")
	conf := docSnippet(t, "bird-kernel")
	started := time.Now()
	bird := testpeer.StartBIRD(t, testpeer.BIRDOptions{NetNS: k.node.ns, Config: conf})
	t.Cleanup(func() { // before BIRD stops
		if t.Failed() {
			t.Logf("BIRD:\n%s\n%s", bird.Birdc(t, "show", "route", "all"), bird.Birdc(t, "show", "protocols"))
		}
	})
	k.run(t, "BIRD", started)
}

// TestBGPKernelFRR: dnslb in mode kernel, FRR 8.4 (zebra + bgpd) on the
// same node with docs/anycast.md's bgpd.conf (redistribute kernel through
// a prefix-list route-map) announces the VIP to the router while dnslb is
// fit.
func TestBGPKernelFRR(t *testing.T) {
	requirePeers(t)
	k := startKernelNode(t, "bgpkf")
	conf := docSnippet(t, "frr-kernel")
	started := time.Now()
	frr := testpeer.StartFRR(t, testpeer.FRROptions{NetNS: k.node.ns, Config: conf})
	t.Cleanup(func() { // before FRR stops
		if t.Failed() {
			t.Logf("FRR:\n%s\n%s", frr.Vtysh(t, "show ip route"), frr.Vtysh(t, "show bgp ipv4 unicast"))
		}
	})
	k.run(t, "FRR", started)
}
