package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// healthConfig is the health_check section used by these tests.
func healthConfig(interval, timeout, udpTimeout time.Duration, extra string) string {
	return fmt.Sprintf(`timeouts:
  udp: %v
  udp_retry: true
health_check:
  query: {name: example.test., type: SOA}
  expect: {rcodes: [NOERROR], authoritative: true}
  interval: %v
  timeout: %v
  rise: 2
  fall: 3
  passive: {max_consecutive_timeouts: 5}
%s`, udpTimeout, interval, timeout, extra)
}

// waitHealth polls /status until backend's health is want and returns how
// long that took.
func (l *lb) waitHealth(backend, want string, within time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	for {
		b := l.backendStatus(backend)
		if b.Health == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			l.t.Fatalf("%s not %s within %v: %+v", backend, want, within, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBackendKilledDetectedAndRecovered kills an NSD backend, first with no
// traffic (active checks alone detect it), then under a bounded steady
// stream (passive detection and the one retry make it cost no answer).
func TestBackendKilledDetectedAndRecovered(t *testing.T) {
	const interval, timeout = 500 * time.Millisecond, 300 * time.Millisecond
	l, _, b, _ := startPairWith(t, healthConfig(interval, timeout, 500*time.Millisecond, ""), nil)
	listen := l.listen
	l.waitHealth("ns1", "up", 3*time.Second)
	l.waitHealth("ns2", "up", 3*time.Second)

	// bound for detection: fall x interval (+10% jitter) + timeout, plus 300ms for polling and scheduling
	detectBound := 3*interval*11/10 + timeout + 300*time.Millisecond
	recoverBound := 2*interval*11/10 + timeout + 300*time.Millisecond

	// A: no traffic, active checks only
	b.Stop()
	detect := l.waitHealth("ns2", "down", 5*time.Second)
	b.Restart(t)
	recover := l.waitHealth("ns2", "up", 5*time.Second)
	t.Logf("no traffic: killed ns2 marked down after %v (bound %v), restarted ns2 up after %v (bound %v)", detect, detectBound, recover, recoverBound)
	if detect > detectBound || recover > recoverBound {
		t.Errorf("too slow: detection %v > %v or recovery %v > %v", detect, detectBound, recover, recoverBound)
	}
	if !strings.Contains(l.log.String(), "backend=ns2 from=up to=down") || !strings.Contains(l.log.String(), "probes_failed=3") {
		t.Errorf("no state-change log line:\n%s", l.log.String())
	}

	// B: under a bounded steady stream (8 clients, at most 8 x 20000 queries, stopped below)
	stop := make(chan struct{})
	done := make(chan *loadResult)
	conns := dialConns(t, nil, listen, 8)
	go func() { done <- stream(conns, 20000, stop) }()
	time.Sleep(300 * time.Millisecond)
	b.Stop()
	detect = l.waitHealth("ns2", "down", 5*time.Second)
	atDown := l.backendStatus("ns2").Queries
	time.Sleep(time.Second)
	afterDown := l.backendStatus("ns2").Queries
	b.Restart(t)
	recover = l.waitHealth("ns2", "up", 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	res := <-done
	st := l.backendStatus("ns2")
	t.Logf("under load: ns2 down after %v, up again %v after restart; %s; ns2 timeouts=%d retried=%d", detect, recover, res, st.Timeouts, st.Retried)
	if len(res.lost) > 0 || len(res.mismatched) > 0 {
		t.Errorf("queries lost while ns2 died: %d lost, %d mismatched; first: %s", len(res.lost), len(res.mismatched), first(res.lost))
	}
	for _, line := range l.logLines("backend state change") {
		t.Log(line)
	}
	if afterDown != atDown {
		t.Errorf("ns2 got %d queries after it was marked down", afterDown-atDown)
	}
	if detect > detectBound {
		t.Errorf("detection under load took %v > %v", detect, detectBound)
	}
	if st.Retried == 0 {
		t.Errorf("no query was retried: timeouts %d", st.Timeouts)
	}
}

// TestZoneRemovedMarksDown: the zone is removed from ns2 (NSD restarted
// without it, so it answers REFUSED); ns2 goes down with that reason, every
// query goes to ns1, and ns2 comes back when the zone does.
func TestZoneRemovedMarksDown(t *testing.T) {
	l, _, b, _ := startPairWith(t, healthConfig(200*time.Millisecond, 150*time.Millisecond, time.Second, ""), nil)
	listen := l.listen
	l.waitHealth("ns1", "up", 3*time.Second)
	l.waitHealth("ns2", "up", 3*time.Second)
	b.RemoveZone(t)
	d := l.waitHealth("ns2", "down", 3*time.Second)
	st := l.backendStatus("ns2")
	t.Logf("zone removed: ns2 down after %v: %s", d, st.HealthReason)
	// NSD restarting without the zone may first time out (seconds on a
	// loaded machine); the reason then becomes the REFUSED answer.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(st.HealthReason, "rcode REFUSED, want NOERROR"); st = l.backendStatus("ns2") {
		if time.Now().After(deadline) {
			t.Fatalf("reason %q, want rcode REFUSED", st.HealthReason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := stream(dialConns(t, nil, listen, 2), 50, nil); res.by["ns1"] != 100 {
		t.Fatalf("traffic with ns2 down: %s", res)
	}
	b.RestoreZone(t)
	l.waitHealth("ns2", "up", 3*time.Second)
}

// TestPerBackendProbeOverride: ns2's own health_check asks for a zone it
// does not serve, so real NSD answers REFUSED; ns2 never comes up, with
// that reason, and every query goes to ns1.
func TestPerBackendProbeOverride(t *testing.T) {
	l, _, _, _ := startPairWith(t, healthConfig(200*time.Millisecond, 150*time.Millisecond, time.Second, ""), func(c string) string {
		return strings.Replace(c, "name: ns2\n", "name: ns2\n    health_check:\n      query: {name: not-served.test.}\n", 1)
	})
	listen := l.listen
	l.waitHealth("ns1", "up", 3*time.Second)
	l.waitHealth("ns2", "down", 3*time.Second)
	st := l.backendStatus("ns2")
	if !strings.Contains(st.HealthReason, "rcode REFUSED, want NOERROR") {
		t.Fatalf("reason %q", st.HealthReason)
	}
	if !strings.Contains(l.log.String(), `backend=ns2 from=pending to=down reason="rcode REFUSED, want NOERROR" probes_failed=3`) {
		t.Errorf("log line missing:\n%s", l.log.String())
	}
	res := stream(dialConns(t, nil, listen, 2), 50, nil)
	if res.by["ns1"] != 100 {
		t.Fatalf("traffic with ns2 down: %s", res)
	}
}

// TestBlackholePassiveBeforeActive freezes ns2 (SIGSTOP: no answer, no
// ICMP) under load. Passive detection (5 consecutive timeouts of 300ms)
// marks it down long before the active check could (3 x 1s).
func TestBlackholePassiveBeforeActive(t *testing.T) {
	l, _, b, _ := startPairWith(t, healthConfig(time.Second, 500*time.Millisecond, 300*time.Millisecond, ""), nil)
	listen := l.listen
	l.waitHealth("ns1", "up", 5*time.Second)
	l.waitHealth("ns2", "up", 5*time.Second)

	stop := make(chan struct{})
	done := make(chan *loadResult)
	conns := dialConns(t, nil, listen, 8)
	go func() { done <- stream(conns, 20000, stop) }()
	time.Sleep(200 * time.Millisecond)
	b.Freeze(t)
	detect := l.waitHealth("ns2", "down", 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	res := <-done
	t.Logf("blackholed ns2 marked down after %v (active checks alone: >= 3s); %s", detect, res)
	if !strings.Contains(l.log.String(), `backend=ns2 from=up to=down reason="5 consecutive timeouts or failed connections" detection=passive`) {
		t.Errorf("not detected passively:\n%s", l.log.String())
	}
	if detect >= 2*time.Second {
		t.Errorf("passive detection took %v", detect)
	}
	if len(res.lost) > 0 {
		t.Errorf("%d queries lost; first: %s", len(res.lost), first(res.lost))
	}
	b.Thaw(t)
	recover := l.waitHealth("ns2", "up", 5*time.Second)
	t.Logf("thawed ns2 up again after %v", recover)
}
