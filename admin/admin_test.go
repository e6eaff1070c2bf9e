package admin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/dnslb/dnslb/balancer"
)

// newBalancerRegistry registers a real balancer's metrics, with one
// backend, so the lint sees every metric family dnslb exports.
func newBalancerRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := balancer.New(balancer.Options{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]balancer.BackendSpec{{Name: "ns1", Addr: netip.MustParseAddrPort("127.0.0.1:9"), Weight: 1}}, balancer.Settings{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	return reg
}

func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	o.Listen = "127.0.0.1:0"
	s := New(o)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricNames lints every exported metric with promlint, as CoreDNS
// does, and checks the names the operators' dashboards rely on.
func TestMetricNames(t *testing.T) {
	reg := newBalancerRegistry(t)
	s := startServer(t, Options{Gatherer: reg})
	code, body := get(t, "http://"+s.Addr()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{
		"dnslb_backend_queries_total", "dnslb_backend_timeouts_total", "dnslb_backend_outstanding",
		"dnslb_frontend_dropped_total", "dnslb_tcp_connections", "dnslb_backend_unmatched_answers_total",
	} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("metric %s missing", name)
		}
	}
}

func TestHealthzAndStatus(t *testing.T) {
	var healthy atomic.Bool
	s := startServer(t, Options{
		Healthy: healthy.Load,
		Status: func() Status {
			return Status{Version: "test", StartedAt: time.Now(), Listen: []string{"127.0.0.1:53"},
				Backends: []Backend{{Name: "ns1", Address: "127.0.0.11:53", State: "active", Health: "down", HealthReason: "timeout after 500ms", Weight: 2,
					Queries: 10, Responses: map[string]uint64{"NOERROR": 9, "NXDOMAIN": 1}, LatencyMS: 0.25}}}
		},
	})
	if code, _ := get(t, "http://"+s.Addr()+"/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz while not serving: %d", code)
	}
	healthy.Store(true)
	if code, body := get(t, "http://"+s.Addr()+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	st, err := Fetch(context.Background(), s.Addr(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Backends) != 1 || st.Backends[0].Weight != 2 || st.Backends[0].Responses["NXDOMAIN"] != 1 {
		t.Fatalf("status round trip: %+v", st)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, st, TableOptions{Wide: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BACKEND", "ns1", "127.0.0.11:53", "NOERROR=9 NXDOMAIN=1", "0.25ms", "down", "timeout after 500ms"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("wide table lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := WriteTable(&buf, st, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BACKEND", "ns1", "127.0.0.11 ", "active", "down", "timeout after 500ms\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

// tableStatus is a busy node's Status: three backends, IPv6 addresses,
// VRRP and NOTIFY sections, a failed reload and long reasons.
func tableStatus() *Status {
	now := time.Now()
	return &Status{
		Version: "v1.4.2-17-g0123abcd-dirty", StartedAt: now.Add(-73*time.Hour - 12*time.Minute), ConfigFile: "/etc/dnslb/config.yaml",
		ConfigHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", LastReload: now.Add(-time.Hour),
		LastReloadError: "/etc/dnslb/config.yaml: backends[2].address: \"[2001:db8:0:53::3]:5353x\" is not an address:port " +
			"(give an IPv6 address in brackets, then the port)\n/etc/dnslb/config.yaml: backends[2].health_check.timeout: 0s out of range 1ms-10s",
		Listen:         []string{"192.0.2.53:53", "[2001:db8:0:53::53]:53", "127.0.0.1:5300", "[::1]:5300"},
		TCPConnections: 1234,
		Dropped:        map[string]uint64{"rate_limit": 12, "malformed": 3, "no_backend": 0, "tcp_limit": 1500},
		VRRP: []VRRP{{Instance: "53", Family: "ipv4", VRID: 53, State: "master", Priority: 150, EffectivePriority: 140, Master: "self", AdvertInterval: "1s",
			Since: now.Add(-2*time.Hour - 3*time.Minute), Reason: "higher priority than the master's advertisement (140 > 100)",
			VIPs: []string{"192.0.2.53/24", "192.0.2.54/24", "192.0.2.55/24"}}},
		Notify: &Notify{
			Received: map[string]uint64{"copied": 4211, "stranger": 17, "malformed": 2},
			Copies:   map[string]uint64{"ns1-fra1": 4211, "ns2-fra1": 4211, "ns3-ams1": 4200},
			Errors:   map[string]uint64{"ns3-ams1": 11},
			Pending:  map[string]int{"ns3-ams1": 1200},
			Oldest:   map[string]float64{"ns3-ams1": 42.5},
			Resends:  map[string]uint64{"ns3-ams1": 3}, Tracked: 1200, MaxTracked: 1000000,
			Convergence: &Histogram{Buckets: []Bucket{{LE: 1, Count: 3000}, {LE: 10, Count: 8000}, {LE: 60, Count: 8411}}, Count: 8411},
		},
		Backends: []Backend{
			{Name: "ns1-fra1", Address: "[2001:db8:53::1]:53", State: "active", Health: "up", HealthReason: "answer NOERROR",
				HealthSince: now.Add(-72 * time.Hour), Weight: 100, Outstanding: 12, TCPConnections: 40, Queries: 123456789, Timeouts: 1234,
				Retried: 1200, Unmatched: 3, Responses: map[string]uint64{"NOERROR": 120000000, "NXDOMAIN": 3456789, "SERVFAIL": 12},
				LatencyMS: 0.42, QPS: 15234, P50MS: 0.31, P99MS: 2.75},
			{Name: "ns2-fra1", Address: "[2001:db8:53::2]:5353", State: "drain", Health: "down",
				HealthReason: "udp: read udp [2001:db8:53::53]:45678->[2001:db8:53::2]:5353: recvfrom: connection refused",
				HealthSince:  now.Add(-5 * time.Minute), Weight: 50, Outstanding: 0, Queries: 98765432, Timeouts: 98765,
				Responses: map[string]uint64{"NOERROR": 98000000, "REFUSED": 700000}, LatencyMS: 12.5, QPS: 0, P50MS: 11.2, P99MS: 153.4},
			{Name: "ns3-ams1", Address: "[fd00:dead:beef::1053]:53", State: "removed", Health: "pending",
				HealthReason: "inherited from the previous process (graceful restart)", HealthSince: now.Add(-3 * time.Second),
				Weight: 1000, Outstanding: 3, QPS: 7.4, P99MS: 1234.5},
		},
	}
}

// TestWriteTableFits: the default `dnslb status` output fits in 100
// columns, with every backend named and the new short columns; -wide
// keeps every column and value whole.
func TestWriteTableFits(t *testing.T) {
	st := tableStatus()
	var buf bytes.Buffer
	if err := WriteTable(&buf, st, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > DefaultTableWidth {
			t.Errorf("line %d is %d columns, want <= %d: %q", i+1, n, DefaultTableWidth, line)
		}
	}
	for _, want := range []string{
		"BACKEND", "ADDRESS", "STATE", "HEALTH", "QPS", "P99", "OUT", "TIMEOUTS", "REASON",
		"ns1-fra1", "2001:db8:53::1 ", "ns3-ams1", "]:5353", "drain", "removed", "pending", "15234", "153ms", "1.2s",
		"\n  /etc/dnslb/config.yaml: backends[2].health_check.timeout", "up 3d", "down 5m", "pending 3s", "udp: connection refused\n", "answer NOERROR\n", "vrrp 53 (vrid 53 ipv4): MASTER", "vips 192.0.2.53/24", "notify: received", "ns3-ams1=1200 (oldest 42.5s)", "notify tracking: 1200/1000000 pairs", "p50 <=10s p99 <=60s", "LAST RELOAD FAILED",
		"dropped: malformed=3", "tcp_limit=1500",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "RCODES") || strings.Contains(out, "UNMATCHED") {
		t.Errorf("default table has wide columns:\n%s", out)
	}
	t.Logf("default:\n%s", out)

	// Longer than any real backend: names, full IPv6 addresses, a huge
	// P99; still 100 columns.
	long := tableStatus()
	long.Backends[0].Name = "resolver-frankfurt-rack12-primary"
	long.Backends[1].Address = "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:65535"
	long.Backends[2].P99MS, long.Backends[2].Timeouts, long.Backends[2].Outstanding = 123456, 123456789012, 123456
	buf.Reset()
	if err := WriteTable(&buf, long, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > DefaultTableWidth {
			t.Errorf("long values: line %d is %d columns: %q", i+1, n, line)
		}
	}
	if !strings.Contains(buf.String(), "]:65535") || !strings.Contains(buf.String(), "resolver-…") {
		t.Errorf("long values: addresses lose their port or names their start:\n%s", buf.String())
	}
	t.Logf("long values:\n%s", buf.String())

	buf.Reset()
	if err := WriteTable(&buf, st, TableOptions{Wide: true}); err != nil {
		t.Fatal(err)
	}
	wide := buf.String()
	header := "BACKEND ADDRESS STATE HEALTH WEIGHT OUTSTANDING TCP QPS P50 P99 QUERIES TIMEOUTS RETRIED UNMATCHED LATENCY RCODES REASON"
	_, table, _ := strings.Cut(wide, "\nBACKEND")
	if got := strings.Join(strings.Fields(strings.SplitN("BACKEND"+table, "\n", 2)[0]), " "); got != header {
		t.Errorf("wide header %q, want %q:\n%s", got, header, wide)
	}
	for _, want := range []string{
		"[2001:db8:53::2]:5353", "ns2-fra1", st.Backends[1].HealthReason, "LAST RELOAD FAILED: " + st.LastReloadError,
		"NOERROR=120000000 NXDOMAIN=3456789 SERVFAIL=12", "123456789", "0.42ms", "0.31ms",
		"listen 192.0.2.53:53,[2001:db8:0:53::53]:53,127.0.0.1:5300,[::1]:5300", "vips 192.0.2.53/24,192.0.2.54/24,192.0.2.55/24",
	} {
		if !strings.Contains(wide, want) {
			t.Errorf("wide table lacks %q:\n%s", want, wide)
		}
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		s     string
		width int
		want  []string
	}{
		{"short line", 20, []string{"short line"}},
		{"aaaa bbbb  cccc dddd", 15, []string{"aaaa bbbb", "  cccc dddd"}},
		{"part one; part two; three", 20, []string{"part one; part two;", "  three"}},
		{"x; a b c d e f g h i j", 14, []string{"x; a b c d e f", "  g h i j"}},
		{"0123456789abcdef", 10, []string{"0123456789", "  abcdef"}},
	}
	for _, tt := range tests {
		if got := wrap(tt.s, tt.width); !slices.Equal(got, tt.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", tt.s, tt.width, got, tt.want)
		}
	}
}

func TestCut(t *testing.T) {
	if got := cutEnd("ns2-secondary-dc1", 8); got != "ns2-sec…" {
		t.Errorf("cutEnd: %q", got)
	}
	if got := cutMiddle("[2001:db8:0:53:ffff:ffff:ffff:2]:5353", 21); got != "[2001:db8:…ff:2]:5353" || utf8.RuneCountInString(got) != 21 {
		t.Errorf("cutMiddle: %q", got)
	}
	if got := cutMiddle("[::1]:53", 21); got != "[::1]:53" {
		t.Errorf("cutMiddle of a short address: %q", got)
	}
}

func TestFetchErrorsSayWhere(t *testing.T) {
	_, err := Fetch(context.Background(), "127.0.0.1:1", "")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error %v does not name the address", err)
	}
}

func TestListenInUse(t *testing.T) {
	s := startServer(t, Options{})
	err := New(Options{Listen: s.Addr()}).Start()
	if err == nil || !strings.Contains(err.Error(), "admin.listen") || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("got %v", err)
	}
}

// TestTokenAndSetState: with a token, every endpoint but /healthz needs
// it; POST /backends/NAME/ACTION reaches SetState and maps its errors.
func TestTokenAndSetState(t *testing.T) {
	const token = "0123456789abcdef-secret"
	var got []string
	s := startServer(t, Options{
		Token: token,
		SetState: func(name, state string) error {
			if name != "ns1" {
				return fmt.Errorf("%w %q", ErrNoBackend, name)
			}
			got = append(got, state)
			return nil
		},
	})
	if code, _ := get(t, "http://"+s.Addr()+"/healthz"); code != 200 {
		t.Fatalf("/healthz without token: %d", code)
	}
	if _, err := Fetch(context.Background(), s.Addr(), ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("/status without token: %v", err)
	}
	if _, err := Fetch(context.Background(), s.Addr(), "wrong-token-0123456"); err == nil {
		t.Fatal("/status with a wrong token answered")
	}
	if _, err := Fetch(context.Background(), s.Addr(), token); err != nil {
		t.Fatalf("/status with the token: %v", err)
	}
	if _, err := SetState(context.Background(), s.Addr(), "", "ns1", "drain"); err == nil {
		t.Fatal("drain without token accepted")
	}
	for action, want := range map[string]string{"drain": "drain", "enable": "active", "disable": "disabled"} {
		st, err := SetState(context.Background(), s.Addr(), token, "ns1", action)
		if err != nil || st != want {
			t.Fatalf("%s: %q, %v", action, st, err)
		}
	}
	if len(got) != 3 {
		t.Fatalf("SetState called %d times, want 3", len(got))
	}
	if _, err := SetState(context.Background(), s.Addr(), token, "nope", "drain"); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown backend: %v", err)
	}
	if _, err := SetState(context.Background(), s.Addr(), token, "ns1", "reboot"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("unknown action: %v", err)
	}
}
