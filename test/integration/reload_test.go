package integration

import (
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/testpeer"
)

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad: while a bounded stream of queries runs, SIGHUP adds
// ns3 and removes ns1. No query may be lost; afterwards ns1 gets nothing
// and ns3 gets traffic. Then an invalid file is refused and dnslb keeps
// serving the old configuration.
func TestReloadUnderLoad(t *testing.T) {
	requirePeers(t)
	a, b := twoNSD(t)
	c := testpeer.StartNSD(t, testpeer.NSDOptions{Name: "ns3", Addr: testpeer.FreePort(t, netip.MustParseAddr("127.0.0.13"))})
	listen := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	l := startLB(t, nil, lbConfig([]netip.AddrPort{listen}, adm, [][2]string{{"ns1", a.Addr.String()}, {"ns2", b.Addr.String()}}, ""), listen, adm)

	stop := make(chan struct{})
	done := make(chan *loadResult)
	conns := dialConns(t, nil, listen, 8)
	// bounded: at most 8 x 50000 queries, stopped 1s after the reload
	go func() { done <- stream(conns, 50000, stop) }()

	time.Sleep(500 * time.Millisecond)
	writeFile(t, l.config, lbConfig([]netip.AddrPort{listen}, adm, [][2]string{{"ns2", b.Addr.String()}, {"ns3", c.Addr.String()}}, ""))
	l.signal(syscall.SIGHUP)
	l.waitLog("config reloaded", 5*time.Second)
	time.Sleep(time.Second)
	close(stop)
	res := <-done
	t.Logf("stream across reload: %s", res)
	if len(res.lost) > 0 || len(res.mismatched) > 0 {
		t.Fatalf("queries lost across reload: %s; first: %s %s", res, first(res.lost), first(res.mismatched))
	}
	if res.by["ns1"] == 0 || res.by["ns3"] == 0 {
		t.Fatalf("stream did not span the reload: %s", res)
	}
	// after the reload ns1 gets nothing
	post := stream(dialConns(t, nil, listen, 4), 50, nil)
	if post.by["ns1"] != 0 || post.by["ns3"] == 0 || len(post.lost) > 0 {
		t.Fatalf("after reload: %s", post)
	}
	// drain ns2 by changing its state: only ns3 gets new queries
	cfg := strings.Replace(lbConfig([]netip.AddrPort{listen}, adm, [][2]string{{"ns2", b.Addr.String()}, {"ns3", c.Addr.String()}}, ""),
		"name: ns2\n", "name: ns2\n    state: drain\n", 1)
	writeFile(t, l.config, cfg)
	l.signal(syscall.SIGHUP)
	l.waitLog("changed=[ns2]", 5*time.Second)
	post = stream(dialConns(t, nil, listen, 4), 25, nil)
	if post.by["ns3"] != 100 {
		t.Fatalf("after draining ns2: %s", post)
	}
	if st := l.backendStatus("ns2"); st.State != "drain" {
		t.Fatalf("ns2 state %q, want drain", st.State)
	}
	if !strings.Contains(l.log.String(), "backend drained and closed") {
		t.Errorf("ns1 not drained and closed:\n%s", l.log.String())
	}

	// invalid file: refused, still serving the old set
	writeFile(t, l.config, "listen: [\"127.0.0.1:53\"]\nbackends:\n  - name: x\n    address: 127.0.0.1\n")
	l.signal(syscall.SIGHUP)
	l.waitLog("reload refused", 5*time.Second)
	if !strings.Contains(l.log.String(), `key=backends[0].address problem="missing port"`) {
		t.Errorf("refusal does not name the key:\n%s", l.log.String())
	}
	post = stream(dialConns(t, nil, listen, 2), 25, nil)
	if len(post.lost) > 0 || post.by["ns2"]+post.by["ns3"] != 50 {
		t.Fatalf("after refused reload: %s", post)
	}
	if st := l.status(); st.LastReloadError == "" {
		t.Error("status does not show the refused reload")
	}
}

// TestConfigWatch: with config_watch on, writing the file reloads it (no
// SIGHUP) under a steady stream with nothing lost; rewriting the same
// content does not reload; an invalid file is refused and the running
// configuration keeps serving.
func TestConfigWatch(t *testing.T) {
	requirePeers(t)
	a, b := twoNSD(t)
	listen := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	both := lbConfig([]netip.AddrPort{listen}, adm, [][2]string{{"ns1", a.Addr.String()}, {"ns2", b.Addr.String()}}, "config_watch: true\n")
	l := startLB(t, nil, both, listen, adm)
	l.waitLog("config_watch: reloading on changes", 5*time.Second)

	stop := make(chan struct{})
	done := make(chan *loadResult)
	go func() { done <- stream(dialConns(t, nil, listen, 4), 20000, stop) }() // bounded: 4 x 20000
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	writeFile(t, l.config, lbConfig([]netip.AddrPort{listen}, adm, [][2]string{{"ns2", b.Addr.String()}}, "config_watch: true\n"))
	l.waitLog("config reloaded", 5*time.Second)
	t.Logf("reloaded %v after the write", time.Since(t0).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	close(stop)
	res := <-done
	t.Logf("stream across the watched reload: %s", res)
	if len(res.lost) > 0 || len(res.mismatched) > 0 || res.by["ns1"] == 0 {
		t.Fatalf("across the watched reload: %s; first lost: %s", res, first(res.lost))
	}
	if post := stream(dialConns(t, nil, listen, 2), 25, nil); post.by["ns1"] != 0 || post.by["ns2"] != 50 {
		t.Fatalf("after the watched reload: %s", post)
	}
	// the same bytes again (a touch): no reload
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, l.config, string(data))
	time.Sleep(1200 * time.Millisecond)
	if n := strings.Count(l.log.String(), "config reloaded"); n != 1 {
		t.Fatalf("%d reloads after rewriting the same content, want 1", n)
	}
	// an invalid file: refused, still serving
	writeFile(t, l.config, "listen: [\"127.0.0.1:53\"]\nbackends: []\n")
	l.waitLog("reload refused", 5*time.Second)
	if post := stream(dialConns(t, nil, listen, 2), 10, nil); post.answered != 20 {
		t.Fatalf("after a refused watched reload: %s", post)
	}
}
