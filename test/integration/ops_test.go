package integration

import (
	"errors"
	"fmt"
	"github.com/miekg/dns"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// TestFreebindStandby: dnslb starts on a VIP that is on no interface yet
// (the VRRP standby case) and serves as soon as the address appears.
func TestFreebindStandby(t *testing.T) {
	requirePeers(t)
	ns := testpeer.NewNetNS(t, "dlbfree")
	be := nsdIn(t, ns, "ns1", "127.0.0.11:5301")
	vip := netip.MustParseAddrPort("10.53.0.1:5300")
	startLB(t, ns, lbConfig([]netip.AddrPort{vip}, "127.0.0.1:9053", [][2]string{{"ns1", be.Addr.String()}}, ""), vip, "127.0.0.1:9053")
	ns.Run(t, "ip", "addr", "add", "10.53.0.1/32", "dev", "lo")
	res := stream(dialConns(t, ns, vip, 1), 5, nil)
	if res.by["ns1"] != 5 {
		t.Fatalf("not serving on the VIP after it was added: %s", res)
	}
}

// TestIPv6Backend: a backend reached over IPv6 loopback.
func TestIPv6Backend(t *testing.T) {
	requirePeers(t)
	be := testpeer.StartNSD(t, testpeer.NSDOptions{Name: "v6", Addr: testpeer.FreePort(t, netip.MustParseAddr("::1"))})
	listen := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	l := startLB(t, nil, lbConfig([]netip.AddrPort{listen}, adm, [][2]string{{"v6", be.Addr.String()}}, ""), listen, adm)
	if got := testpeer.Whoami(t, l.listen); got != "v6" {
		t.Fatalf("whoami = %q", got)
	}
}

// TestStatusCommandAndMetrics: `dnslb status` prints the table and
// /metrics carries the per-backend series after traffic.
func TestStatusCommandAndMetrics(t *testing.T) {
	l, _, _, _ := startPair(t)
	stream(dialConns(t, nil, l.listen, 2), 20, nil)
	// qps and latency percentiles cover the last 10s, sampled every 2s
	stop := make(chan struct{})
	go func() { stream(dialConns(t, nil, l.listen, 2), 3000, stop) }() // bounded: 2 x 3000
	time.Sleep(4500 * time.Millisecond)
	st := l.status()
	close(stop)
	for _, b := range st.Backends {
		if b.QPS <= 0 || b.P50MS <= 0 || b.P99MS < b.P50MS {
			t.Errorf("backend %s: qps %.0f p50 %.3fms p99 %.3fms", b.Name, b.QPS, b.P50MS, b.P99MS)
		}
		t.Logf("backend %s: %.0f qps, p50 %.3fms, p99 %.3fms", b.Name, b.QPS, b.P50MS, b.P99MS)
	}
	out, err := exec.Command(binary, "status", "-admin", l.admin).CombinedOutput()
	if err != nil {
		t.Fatalf("dnslb status: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("dnslb status: a line of %d columns (> 100): %q", n, line)
		}
	}
	wide, err := exec.Command(binary, "status", "-wide", "-admin", l.admin).CombinedOutput()
	if err != nil {
		t.Fatalf("dnslb status -wide: %v\n%s", err, wide)
	}
	out = append(out, wide...)
	for _, want := range []string{"BACKEND", "QPS", "P99", "ns1", "ns2", "active", "NOERROR="} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	resp, err := http.Get("http://" + l.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`dnslb_backend_queries_total{backend="ns1"}`,
		`dnslb_backend_responses_total{backend="ns2",rcode="NOERROR"}`,
		`dnslb_backend_latency_seconds_bucket{backend="ns1"`,
		`dnslb_backend_outstanding{backend="ns1"} 0`,
		`dnslb_frontend_dropped_total{reason="answer_unmatched"} 0`,
		`dnslb_tcp_connections 0`,
		`dnslb_config_reloads_total{result="refused"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// every dnslb series the Grafana dashboard queries exists (VRRP and
	// NOTIFY series only appear with those features on)
	dash, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`dnslb_[a-z0-9_]+`).FindAllString(string(dash), -1)
	if len(names) == 0 {
		t.Fatal("no dnslb series in the dashboard")
	}
	for _, n := range names {
		if strings.HasPrefix(n, "dnslb_vrrp_") || strings.Contains(n, "notify") {
			continue
		}
		if !strings.Contains(string(body), n) {
			t.Errorf("dashboard queries %s, which /metrics does not have", n)
		}
	}
	// the other form of the run command: `dnslb -config FILE`
	bad := exec.Command(binary, "-config", "/nonexistent.yaml")
	out, _ = bad.CombinedOutput()
	if bad.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "/nonexistent.yaml") {
		t.Fatalf("dnslb -config with a missing file: exit %d: %s", bad.ProcessState.ExitCode(), out)
	}
}

// TestDrainEnableCommands: `dnslb drain ns1` stops new queries to ns1 at
// once, `dnslb enable ns1` brings it back; with admin.token set, the
// commands need the token (DNSLB_ADMIN_TOKEN) and fail clearly without it.
func TestDrainEnableCommands(t *testing.T) {
	const token = "integration-test-token-0123"
	l, _, _, _ := startPairWith(t, "", func(cfg string) string {
		return strings.Replace(cfg, "admin:\n", "admin:\n  token: "+token+"\n", 1)
	})
	run := func(env string, args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "DNSLB_ADMIN_TOKEN="+env)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("", "drain", "-admin", l.admin, "ns1"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("drain without the token: %v\n%s", err, out)
	}
	if out, err := run(token, "drain", "-admin", l.admin, "nsX"); err == nil || !strings.Contains(out, `"nsX"`) {
		t.Fatalf("drain of an unknown backend: %v\n%s", err, out)
	}
	if out, err := run(token, "drain", "-admin", l.admin, "ns1"); err != nil || !strings.Contains(out, "ns1: drain") {
		t.Fatalf("drain ns1: %v\n%s", err, out)
	}
	res := stream(dialConns(t, nil, l.listen, 2), 50, nil)
	if res.by["ns1"] != 0 || res.by["ns2"] != 100 || len(res.lost) != 0 {
		t.Fatalf("while ns1 is drained: %v", res)
	}
	out, err := run(token, "status", "-admin", l.admin)
	if err != nil || !strings.Contains(out, "drain") {
		t.Fatalf("status after drain: %v\n%s", err, out)
	}
	if out, err := run(token, "enable", "-admin", l.admin, "ns1"); err != nil || !strings.Contains(out, "ns1: active") {
		t.Fatalf("enable ns1: %v\n%s", err, out)
	}
	res = stream(dialConns(t, nil, l.listen, 2), 50, nil)
	if res.by["ns1"] == 0 || len(res.lost) != 0 {
		t.Fatalf("after enable: %v", res)
	}
}

// TestTCPFloodCapsAndMemory: 1000 connections against
// limits.tcp_connections 200: exactly 200 are held, the other 800 are
// closed at once and counted, queries still get answers (UDP and over a
// held connection), and the process's RSS stays bounded (logged).
func TestTCPFloodCapsAndMemory(t *testing.T) {
	l, _, _, _ := startPairWith(t, "limits:\n  tcp_connections: 200\n  tcp_connections_per_client: 200\n", nil)
	rss := func() int {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", l.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				kb, _ := strconv.Atoi(strings.Fields(line)[1])
				return kb
			}
		}
		return 0
	}
	before := rss()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 1000; i++ { // bounded: 1000 connections
		c, err := net.DialTimeout("tcp", l.listen.String(), 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// a refused connection is closed by dnslb: a read sees EOF at once
	time.Sleep(300 * time.Millisecond)
	closed := 0
	var held []net.Conn
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		} else {
			held = append(held, c)
		}
	}
	st := l.status()
	after := rss()
	t.Logf("1000 connections: %d held, %d closed; tcp_connections=%d tcp_limit drops=%d; RSS %d KiB before, %d KiB with them (race-detector build)",
		len(held), closed, st.TCPConnections, st.Dropped["tcp_limit"], before, after)
	if len(held) != 200 || closed != 800 || st.TCPConnections != 200 || st.Dropped["tcp_limit"] != 800 {
		t.Fatalf("caps did not hold: held %d closed %d status %d drops %d", len(held), closed, st.TCPConnections, st.Dropped["tcp_limit"])
	}
	if after-before > 64*1024 {
		t.Fatalf("RSS grew by %d KiB for 200 idle connections", after-before)
	}
	// still serving: UDP, and a query on a held connection
	if testpeer.Whoami(t, l.listen) == "" {
		t.Fatal("no UDP answer during the flood")
	}
	dc := &dns.Conn{Conn: held[0]}
	if err := dc.WriteMsg(question("whoami.example.test.", dns.TypeTXT)); err != nil {
		t.Fatal(err)
	}
	dc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if r, err := dc.ReadMsg(); err != nil || len(r.Answer) != 1 {
		t.Fatalf("query on a held connection: %v %v", r, err)
	}
	for _, c := range conns {
		c.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); l.status().TCPConnections != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d TCP connections still counted after the clients closed", l.status().TCPConnections)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
