package admin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	if err := WriteTable(&buf, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BACKEND", "ns1", "127.0.0.11:53", "NOERROR=9 NXDOMAIN=1", "0.25ms", "down", "timeout after 500ms"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
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
