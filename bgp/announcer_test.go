package bgp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// fakeRoutes records the calls and fails while fail is set.
type fakeRoutes struct {
	calls []string
	fail  error
	table map[netip.Prefix]Attrs
}

func (f *fakeRoutes) Announce(_ context.Context, p netip.Prefix, a Attrs) error {
	f.calls = append(f.calls, fmt.Sprintf("announce %s med=%d", p, a.MED))
	if f.fail != nil {
		return f.fail
	}
	f.table[p] = a
	return nil
}

func (f *fakeRoutes) Withdraw(_ context.Context, p netip.Prefix) error {
	f.calls = append(f.calls, "withdraw "+p.String())
	if f.fail != nil {
		return f.fail
	}
	delete(f.table, p)
	return nil
}

func (f *fakeRoutes) take() []string {
	c := f.calls
	f.calls = nil
	return c
}

var (
	vip4 = HostRoute(netip.MustParseAddr("192.0.2.53"))
	vip6 = HostRoute(netip.MustParseAddr("2001:db8::53"))
)

func TestAnnouncer(t *testing.T) {
	ctx := context.Background()
	routes := &fakeRoutes{table: map[netip.Prefix]Attrs{}}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	a := New(Options{Routes: routes, Attrs: Attrs{MED: 10}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg})
	fit, unfit := Verdict{Fit: true, Reason: "2 backends up"}, Verdict{Reason: "only 0 of at least 1 backends up"}

	step := func(name string, vs map[netip.Prefix]Verdict, wantCalls []string, wantFailed int) {
		t.Helper()
		if n := a.Update(ctx, vs); n != wantFailed {
			t.Errorf("%s: %d failed, want %d", name, n, wantFailed)
		}
		if got := routes.take(); !slices.Equal(got, wantCalls) {
			t.Errorf("%s: calls %q, want %q", name, got, wantCalls)
		}
	}
	step("first", map[netip.Prefix]Verdict{vip4: fit, vip6: unfit}, []string{"announce 192.0.2.53/32 med=10"}, 0) // nothing to withdraw yet
	step("same again", map[netip.Prefix]Verdict{vip4: fit, vip6: unfit}, nil, 0)
	step("reason only", map[netip.Prefix]Verdict{vip4: {Fit: true, Reason: "3 backends up"}, vip6: unfit}, nil, 0)
	if st := a.Status(); len(st) != 2 || !st[0].Announced || st[0].Verdict.Reason != "3 backends up" || st[1].Announced {
		t.Errorf("status %+v", st)
	}
	step("down", map[netip.Prefix]Verdict{vip4: unfit, vip6: unfit}, []string{"withdraw 192.0.2.53/32"}, 0)

	// A failure is retried by the next Update, and logged once.
	routes.fail = errors.New("no route to router")
	step("fails", map[netip.Prefix]Verdict{vip4: fit, vip6: unfit}, []string{"announce 192.0.2.53/32 med=10"}, 1)
	step("fails again", map[netip.Prefix]Verdict{vip4: fit, vip6: unfit}, []string{"announce 192.0.2.53/32 med=10"}, 1)
	if st := a.Status(); st[0].Announced || st[0].Err == "" {
		t.Errorf("after failures: %+v", st[0])
	}
	routes.fail = nil
	step("recovers", map[netip.Prefix]Verdict{vip4: fit, vip6: unfit}, []string{"announce 192.0.2.53/32 med=10"}, 0)

	// New attributes: only the announced route goes out again.
	if n := a.SetAttrs(ctx, Attrs{MED: 20, Communities: []uint32{1}}); n != 0 {
		t.Errorf("SetAttrs failed %d", n)
	}
	if got := routes.take(); !slices.Equal(got, []string{"announce 192.0.2.53/32 med=20"}) {
		t.Errorf("SetAttrs calls %q", got)
	}
	a.SetAttrs(ctx, Attrs{MED: 20, Communities: []uint32{1}})
	if got := routes.take(); got != nil {
		t.Errorf("same attrs again: %q", got)
	}
	if v := testutil.ToFloat64(a.metrics.announced.WithLabelValues(vip4.String())); v != 1 {
		t.Errorf("announced gauge %v", v)
	}

	// A prefix no longer configured is withdrawn and forgotten.
	step("removed", map[netip.Prefix]Verdict{vip6: unfit}, []string{"withdraw 192.0.2.53/32"}, 0)
	if st := a.Status(); len(st) != 1 || st[0].Prefix != vip6 {
		t.Errorf("status after removal %+v", st)
	}
	step("up again", map[netip.Prefix]Verdict{vip4: fit, vip6: fit}, []string{"announce 192.0.2.53/32 med=20", "announce 2001:db8::53/128 med=20"}, 0)
	if n := a.WithdrawAll(ctx, "shutting down"); n != 0 || !slices.Equal(routes.take(), []string{"withdraw 192.0.2.53/32", "withdraw 2001:db8::53/128"}) {
		t.Errorf("WithdrawAll")
	}
	if a.Announced() || len(routes.table) != 0 {
		t.Errorf("still announced: %v", routes.table)
	}

	// One line per change, with its reason; one per failure streak.
	var lines []string
	for l := range strings.Lines(logs.String()) {
		lines = append(lines, l)
	}
	count := func(s string) int {
		return len(slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.Contains(l, s) }))
	}
	if n := count("msg=\"bgp: announced\""); n != 4 {
		t.Errorf("%d announce lines:\n%s", n, logs.String())
	}
	if n := count("msg=\"bgp: withdrawn\""); n != 4 {
		t.Errorf("%d withdraw lines:\n%s", n, logs.String())
	}
	if n := count("announce failed"); n != 1 {
		t.Errorf("%d failure lines", n)
	}
	if !strings.Contains(logs.String(), `reason="shutting down"`) {
		t.Errorf("no shutdown reason logged")
	}
}

// TestMetricNames lints the dnslb_bgp_* metrics with promlint.
func TestMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(Options{Routes: &fakeRoutes{table: map[netip.Prefix]Attrs{}}, Registerer: reg})
	a.Update(context.Background(), map[netip.Prefix]Verdict{vip4: {Fit: true, Reason: "x"}})
	sp, err := NewSpeaker(context.Background(), SpeakerOptions{LocalAS: 65053, RouterID: netip.MustParseAddr("10.0.0.1"), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	if err := sp.SetNeighbors(context.Background(), []Neighbor{{Address: netip.MustParseAddr("127.0.0.9"), PeerAS: 65000, Port: 1}}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 4 {
		t.Errorf("%d metric families, want 4", len(mfs))
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
