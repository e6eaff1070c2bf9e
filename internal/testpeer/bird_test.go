package testpeer

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBIRD: a BIRD router (BIRDRouterConfig, merge paths) learns the
// same /32 from two BIRD "nodes" over eBGP: its table holds two routes,
// the kernel one multipath route with both next hops; a node stopped by
// PID takes its route with it. Every bird is gone after cleanup.
func TestBIRD(t *testing.T) {
	names, pids := trackGone(t)
	lan := NewLAN(t, "tbird")
	router := netip.MustParseAddr("10.99.0.1")
	rh := lan.AddHost(t, "router", netip.MustParsePrefix("10.99.0.1/24"))
	*names = append(*names, rh.Name())
	var peers []BGPPeer
	var nodes []*BIRD
	for i := range 2 {
		addr := netip.AddrFrom4([4]byte{10, 99, 0, byte(11 + i)})
		h := lan.AddHost(t, fmt.Sprintf("n%d", i+1), netip.PrefixFrom(addr, 24))
		*names = append(*names, h.Name())
		peers = append(peers, BGPPeer{Address: addr, AS: 65053})
		nodes = append(nodes, StartBIRD(t, BIRDOptions{NetNS: h, Config: fmt.Sprintf(`router id %s;
protocol device {}
protocol static { ipv4; route 10.53.0.53/32 blackhole; }
protocol bgp up {
  local as 65053; neighbor %s as 65000; connect retry time 2;
  ipv4 { import none; export all; };
}
`, addr, router)}))
		*pids = append(*pids, nodes[i].p.pid)
	}
	r := StartBIRD(t, BIRDOptions{NetNS: rh, Config: BIRDRouterConfig(router, 65000, peers, 0, true)})
	*pids = append(*pids, r.p.pid)
	if !strings.Contains(r.Birdc(t, "show", "status"), "Daemon is up and running") {
		t.Errorf("show status:\n%s", r.Birdc(t, "show", "status"))
	}
	wait := func(want []netip.Addr) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, kern := r.NextHops(t, "10.53.0.53/32"), r.KernelNextHops(t, "10.53.0.53/32")
			slices.SortFunc(got, netip.Addr.Compare)
			slices.SortFunc(kern, netip.Addr.Compare)
			if slices.Equal(got, want) && slices.Equal(kern, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("BIRD next hops %v, kernel %v, want %v:\n%s", got, kern, want, r.ShowRoute(t, "10.53.0.53/32"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait([]netip.Addr{peers[0].Address, peers[1].Address})
	if s := r.ProtocolState(t, "n1"); !strings.Contains(s, "Established") {
		t.Errorf("protocol n1 state %q", s)
	}
	if err := nodes[1].p.stop(termGrace); err != nil {
		t.Fatal(err)
	}
	wait([]netip.Addr{peers[0].Address})
	if got := r.NextHops(t, "10.53.0.54/32"); got != nil {
		t.Errorf("next hops of an unknown prefix: %v", got)
	}
}
