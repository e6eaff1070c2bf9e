package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// TestSlowBackendGetsLessTraffic runs two NSD backends and dnslb inside a
// network namespace and delays every packet from ns2 by 200ms. Under a
// closed-loop load the slow backend accumulates outstanding queries, so
// least-connection sends it far less; with one client at a time the
// latency tie-break sends it almost nothing.
func TestSlowBackendGetsLessTraffic(t *testing.T) {
	requirePeers(t)
	ns := testpeer.NewNetNS(t, "dlbslow")
	fast, slow := nsdIn(t, ns, "ns1", "127.0.0.11:5301"), nsdIn(t, ns, "ns2", "127.0.0.12:5302")
	listen := netip.MustParseAddrPort("127.0.0.1:5300")
	// health checks on, with a probe timeout (400ms) above the delay
	// (200ms): the slow backend must stay up and simply get less
	cfg := lbConfig([]netip.AddrPort{listen}, "127.0.0.1:9053", [][2]string{{"ns1", fast.Addr.String()}, {"ns2", slow.Addr.String()}},
		healthConfig(500*time.Millisecond, 400*time.Millisecond, time.Second, ""))
	l := startLB(t, ns, cfg, listen, "127.0.0.1:9053")
	l.waitLog("backend=ns1 from=pending to=up", 5*time.Second)
	l.waitLog("backend=ns2 from=pending to=up", 5*time.Second)

	// equal backends first: both get a fair share
	even := stream(dialConns(t, ns, listen, 8), 100, nil)
	t.Logf("before delay (8 clients x 100): %s", even)
	if even.by["ns1"] < 200 || even.by["ns2"] < 200 {
		t.Fatalf("equal backends not shared: %s", even)
	}

	ns.DelayFromAddr(t, "lo", slow.Addr.Addr(), 200*time.Millisecond)

	// 16 closed-loop clients for at most 2 s (and at most 16 x 400 queries)
	stop := make(chan struct{})
	timer := time.AfterFunc(2*time.Second, func() { close(stop) })
	defer timer.Stop()
	loaded := stream(dialConns(t, ns, listen, 16), 400, stop)
	t.Logf("ns2 delayed 200ms, 16 clients: %s", loaded)
	if len(loaded.lost) > 0 || len(loaded.mismatched) > 0 {
		t.Fatalf("queries lost: %s; %s", loaded, first(loaded.lost))
	}
	if share := float64(loaded.by["ns2"]) / float64(loaded.answered); share > 0.10 {
		t.Fatalf("slow backend got %.1f%% of queries under load, want < 10%%: %s", share*100, loaded)
	}

	// one client at a time: outstanding is 0 for both at every pick, so the
	// latency EWMA decides
	seq := stream(dialConns(t, ns, listen, 1), 200, nil)
	t.Logf("ns2 delayed 200ms, 1 client: %s", seq)
	if share := float64(seq.by["ns2"]) / float64(seq.answered); share > 0.05 {
		t.Fatalf("slow backend got %.1f%% of sequential queries, want < 5%%: %s", share*100, seq)
	}
	if strings.Contains(l.log.String(), "to=down") {
		t.Fatalf("slow backend was marked down:\n%s", l.log.String())
	}
}
