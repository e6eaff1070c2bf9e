package bgp

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// freePort returns a TCP port free on 127.0.0.2.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// received lists what router learnt from its neighbours: prefix -> MED
// and communities.
type route struct {
	med         uint32
	communities []uint32
	nexthop     string
}

func received(t *testing.T, router *Speaker) map[string]route {
	t.Helper()
	out := map[string]route{}
	for _, fam := range []*api.Family{{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, {Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}} {
		err := router.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam}, func(d *api.Destination) {
			for _, p := range d.Paths {
				attrs, err := apiutil.GetNativePathAttributes(p)
				if err != nil {
					t.Error(err)
					continue
				}
				var r route
				for _, a := range attrs {
					switch x := a.(type) {
					case *bgp.PathAttributeMultiExitDisc:
						r.med = x.Value
					case *bgp.PathAttributeCommunities:
						r.communities = x.Value
					case *bgp.PathAttributeNextHop:
						r.nexthop = x.Value.String()
					case *bgp.PathAttributeMpReachNLRI:
						r.nexthop = x.Nexthop.String()
					}
				}
				out[d.Prefix] = r
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func established(s *Speaker, n netip.Addr) bool {
	for _, se := range s.Sessions() {
		if se.Neighbor == n && se.State == "established" {
			return true
		}
	}
	return false
}

// TestSpeaker runs two embedded speakers on loopback: the node
// (127.0.0.1, AS 65053) announces to a "router" (127.0.0.2, AS 65000,
// passive). Announce, new attributes without a session reset, withdraw,
// a neighbour removed and added again.
func TestSpeaker(t *testing.T) {
	if testing.Short() {
		t.Skip("two GoBGP speakers and their sessions take about 10 s; run without -short")
	}
	ctx := context.Background()
	port := freePort(t)
	nodeAddr, routerAddr := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	router, err := NewSpeaker(ctx, SpeakerOptions{LocalAS: 65000, RouterID: routerAddr, ListenPort: port, ListenAddresses: []netip.Addr{routerAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Stop()
	if err := router.SetNeighbors(ctx, []Neighbor{{Address: nodeAddr, PeerAS: 65053, Passive: true, HoldTime: 9 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	node, err := NewSpeaker(ctx, SpeakerOptions{LocalAS: 65053, RouterID: netip.MustParseAddr("10.0.0.11"), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Stop()
	if err := node.SetNeighbors(ctx, []Neighbor{{Address: netip.MustParseAddr("10.9.9.9"), PeerAS: 65000, Passive: true}}); err == nil {
		t.Error("passive neighbour accepted by a speaker that does not listen")
	}
	routerN := Neighbor{Address: routerAddr, PeerAS: 65000, Port: uint16(port), HoldTime: 9 * time.Second, LocalAddress: nodeAddr}
	if err := node.SetNeighbors(ctx, []Neighbor{routerN}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "session established", func() bool { return established(node, routerAddr) })
	if v := testutil.ToFloat64(node.state.WithLabelValues(routerAddr.String())); v != 6 {
		t.Errorf("dnslb_bgp_session_state = %v, want 6", v)
	}
	since := node.Sessions()[0].Since

	a := New(Options{Routes: node, Attrs: Attrs{MED: 100, Communities: []uint32{65000<<16 | 53}}})
	a.Update(ctx, map[netip.Prefix]Verdict{vip4: {Fit: true, Reason: "test"}, vip6: {Fit: true, Reason: "test"}})
	waitFor(t, "route at the router", func() bool { _, ok := received(t, router)["192.0.2.53/32"]; return ok })
	got := received(t, router)
	if r := got["192.0.2.53/32"]; r.med != 100 || !slices.Equal(r.communities, []uint32{65000<<16 | 53}) || r.nexthop != "127.0.0.1" {
		t.Errorf("route %+v", r)
	}
	if _, ok := got["2001:db8::53/128"]; ok {
		t.Error("IPv6 route sent to an IPv4 neighbour")
	}

	// New attributes: re-announced, same session.
	a.SetAttrs(ctx, Attrs{MED: 200})
	waitFor(t, "new MED", func() bool { return received(t, router)["192.0.2.53/32"].med == 200 })
	if r := received(t, router)["192.0.2.53/32"]; r.communities != nil {
		t.Errorf("communities kept: %+v", r)
	}
	if s := node.Sessions()[0]; s.State != "established" || !s.Since.Equal(since) {
		t.Errorf("session reset by new attributes: %+v", s)
	}

	a.Update(ctx, map[netip.Prefix]Verdict{vip4: {Reason: "test"}, vip6: {Reason: "test"}})
	waitFor(t, "withdrawal", func() bool { return len(received(t, router)) == 0 })

	// Removing the neighbour closes the session; adding it back brings
	// the announced routes back.
	a.Update(ctx, map[netip.Prefix]Verdict{vip4: {Fit: true, Reason: "test"}})
	waitFor(t, "route again", func() bool { return len(received(t, router)) == 1 })
	if err := node.SetNeighbors(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "route gone with the session", func() bool { return len(received(t, router)) == 0 })
	if len(node.Sessions()) != 0 {
		t.Errorf("sessions %+v", node.Sessions())
	}
	if err := node.SetNeighbors(ctx, []Neighbor{routerN}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "route after re-adding", func() bool { return len(received(t, router)) == 1 })
}
