package integration

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/testpeer"
	"github.com/miekg/dns"
)

// TestThousandBackends: 1000 backends (four NSD servers listening on 250
// loopback addresses each) with health checks. The start-up time to the
// first answer is logged (the target is under 1s; the assertion is only a
// loose bound, timing is for the benchmarks). A reload that removes 50,
// adds 50 and reweights 50 under a steady stream loses nothing.
func TestThousandBackends(t *testing.T) {
	requirePeers(t)
	var backends [][2]string
	addr := func(nsd, i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, byte(100 + nsd), byte(1 + i)}) }
	for n := 0; n < 4; n++ {
		first := testpeer.FreePort(t, addr(n, 0))
		var extra []netip.Addr
		for i := 1; i < 250; i++ {
			extra = append(extra, addr(n, i))
		}
		testpeer.StartNSD(t, testpeer.NSDOptions{Name: fmt.Sprintf("nsd%d", n), Addr: first, ExtraAddrs: extra})
		for i := 0; i < 250; i++ {
			backends = append(backends, [2]string{fmt.Sprintf("b%d-%d", n, i), netip.AddrPortFrom(addr(n, i), first.Port()).String()})
		}
	}
	listen := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	hc := "health_check:\n  query: {name: example.test., type: SOA}\n  interval: 1s\n  timeout: 500ms\n  rise: 1\n"
	t0 := time.Now()
	l := startLB(t, nil, lbConfig([]netip.AddrPort{listen}, adm, backends, hc), listen, adm)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	var served time.Duration
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if r, _, err := c.Exchange(question("whoami.example.test.", dns.TypeTXT), listen.String()); err == nil && r.Rcode == dns.RcodeSuccess {
			served = time.Since(t0)
			break
		}
	}
	if served == 0 {
		t.Fatalf("no answer within 10s of starting with 1000 backends")
	}
	t.Logf("1000 backends: first answer %v after exec (race-detector build)", served.Round(time.Millisecond))
	if served > 5*time.Second {
		t.Fatalf("start-up took %v", served)
	}
	// wait until the checks have marked every backend up
	for deadline := time.Now().Add(15 * time.Second); ; {
		up := 0
		for _, b := range l.status().Backends {
			if b.Health == "up" {
				up++
			}
		}
		if up == 1000 {
			t.Logf("all 1000 backends up %v after exec", time.Since(t0).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 1000 backends up after 15s", up)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 100 changes: b0-0..49 removed, b0-50..99 reweighted, 50 new names
	// on the addresses just freed
	var next [][2]string
	for i, b := range backends {
		if i < 50 {
			next = append(next, [2]string{strings.Replace(b[0], "b0-", "new-", 1), b[1]})
			continue
		}
		next = append(next, b)
	}
	cfg := lbConfig([]netip.AddrPort{listen}, adm, next, hc)
	for i := 50; i < 100; i++ {
		cfg = strings.Replace(cfg, fmt.Sprintf("name: b0-%d\n    address: %q\n", i, backends[i][1]),
			fmt.Sprintf("name: b0-%d\n    address: %q\n    weight: 5\n", i, backends[i][1]), 1)
	}
	stop := make(chan struct{})
	done := make(chan *loadResult)
	go func() { done <- stream(dialConns(t, nil, listen, 8), 20000, stop) }() // bounded: 8 x 20000
	time.Sleep(500 * time.Millisecond)
	writeFile(t, l.config, cfg)
	r0 := time.Now()
	l.signal(syscall.SIGHUP)
	l.waitLog("config reloaded", 10*time.Second)
	t.Logf("reload of 1000 backends with 100 changed applied in %v", time.Since(r0).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(stop)
	res := <-done
	t.Logf("stream across the reload: sent=%d answered=%d lost=%d mismatched=%d", res.sent, res.answered, len(res.lost), len(res.mismatched))
	if len(res.lost) > 0 || len(res.mismatched) > 0 {
		t.Fatalf("lost across the 1000-backend reload: %s; first: %s", res, first(res.lost))
	}
	if !strings.Contains(l.log.String(), "added=\"[new-0") && !strings.Contains(l.log.String(), "added=[new-0") {
		t.Fatalf("reload log does not list the added backends:\n%s", lastLines(l.log.String(), 5))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
