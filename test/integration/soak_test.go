//go:build soak

package integration

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// TestSoak (make soak; build tag soak, not part of make test) runs a VRRP
// pair under a steady query stream for DNSLB_SOAK_DURATION (default 5m),
// repeating a 30-second cycle of operations on the master, node a:
//
//	t+0s   SIGKILL one of its two NSD backends      (health checks take it out)
//	t+5s   restart it                                (it comes back)
//	t+9s   SIGHUP with ns1's weight changed
//	t+13s  SIGKILL both backends: tracking puts a in fault, b takes the VIP
//	t+18s  restart both: a preempts the VIP back
//
// Every query the client sends outside the two VRRP fail-over windows
// (3s from each fail-over) must be answered. Node a's RSS and goroutine
// count are sampled every 10s and must stay flat.
func TestSoak(t *testing.T) {
	testpeer.SkipShort(t, "soak: runs for minutes (DNSLB_SOAK_DURATION, default 5m); run without -short")
	dur := 5 * time.Minute
	if v := os.Getenv("DNSLB_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("DNSLB_SOAK_DURATION=%q: %v", v, err)
		}
		dur = d
	}
	// RSS is only meaningful without the race detector: build a plain binary
	plain := t.TempDir() + "/dnslb"
	if out, err := exec.Command("go", "build", "-o", plain, "github.com/dnslb/dnslb/cmd/dnslb").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	raceBinary := binary
	binary = plain
	defer func() { binary = raceBinary }()
	s := newSite(t, "sk")
	a1 := nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
	a2 := nsdIn(t, s.a, "nodeA", "127.0.0.12:5301")
	nsdIn(t, s.b, "nodeB", "127.0.0.11:5301")
	nsdIn(t, s.b, "nodeB", "127.0.0.12:5301")
	const interval = 100 * time.Millisecond
	cfg := func(prio int) string {
		return vrrpConfigWith(vip4, prio, interval, [][2]string{{"ns1", "127.0.0.11:5301"}, {"ns2", "127.0.0.12:5301"}}, "")
	}
	a := startNode(t, s.a, "nodeA", cfg(150), vip4.Addr())
	b := startNode(t, s.b, "nodeB", cfg(100), vip4.Addr())
	a.waitVRRP("master", 5*time.Second)
	b.waitVRRP("backup", 3*time.Second)

	// the client: 4 closed-loop UDP streams to the VIP
	type rec struct {
		at time.Time
		ok bool
	}
	var mu sync.Mutex
	var recs []rec
	quit := make(chan struct{})
	var stopOnce sync.Once
	stopClients := func() { stopOnce.Do(func() { close(quit) }) }
	var wg sync.WaitGroup
	for _, conn := range dialConns(t, s.c, netip.AddrPortFrom(vip4.Addr(), 53), 4) {
		wg.Add(1)
		go func(conn *dns.Conn) {
			defer wg.Done()
			// 1s: a query lost with a killed backend is retried by dnslb
			// on the other after timeouts.udp (300ms)
			cl := &dns.Client{Net: "udp", Timeout: time.Second}
			for i := 0; i < 10_000_000; i++ { // bounded by quit and the count
				select {
				case <-quit:
					return
				default:
				}
				r, _, err := cl.ExchangeWithConn(question("whoami.example.test.", dns.TypeTXT), conn)
				mu.Lock()
				recs = append(recs, rec{time.Now(), err == nil && len(r.Answer) == 1})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}(conn)
	}
	defer func() { stopClients(); wg.Wait() }()

	sampleA := func() (rssKB, goroutines int) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				rssKB, _ = strconv.Atoi(strings.Fields(line)[1])
			}
		}
		body, _ := exec.Command("ip", "netns", "exec", s.a.Name(), "curl", "-s", "http://127.0.0.1:9053/metrics").Output()
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "go_goroutines ") {
				goroutines, _ = strconv.Atoi(strings.Fields(line)[1])
			}
		}
		return rssKB, goroutines
	}
	type sample struct{ rss, gor int }
	var samples []sample
	var excused [][2]time.Time
	start := time.Now()
	weight := 1
	nextSample := start
	for cycle := 0; time.Since(start) < dur; cycle++ {
		c0 := time.Now()
		at := func(d time.Duration) {
			for time.Since(c0) < d {
				if time.Now().After(nextSample) {
					r, g := sampleA()
					samples = append(samples, sample{r, g})
					nextSample = nextSample.Add(10 * time.Second)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		a2.Stop()
		at(5 * time.Second)
		a2.Restart(t)
		at(9 * time.Second)
		weight = 3 - weight
		writeFile(t, a.config, strings.Replace(cfg(150), "name: ns1\n", fmt.Sprintf("name: ns1\n    weight: %d\n", weight), 1))
		a.signal(syscall.SIGHUP)
		at(13 * time.Second)
		excused = append(excused, [2]time.Time{time.Now(), time.Now().Add(3 * time.Second)})
		a1.Stop()
		a2.Stop()
		at(18 * time.Second)
		excused = append(excused, [2]time.Time{time.Now(), time.Now().Add(3 * time.Second)})
		a1.Restart(t)
		a2.Restart(t)
		at(30 * time.Second)
		t.Logf("cycle %d done at %v", cycle+1, time.Since(start).Round(time.Second))
	}
	stopClients()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	lost, lostExcused := 0, 0
	for _, r := range recs {
		if r.ok {
			continue
		}
		inWindow := false
		for _, w := range excused {
			if !r.at.Before(w[0]) && r.at.Before(w[1]) {
				inWindow = true
			}
		}
		if inWindow {
			lostExcused++
		} else {
			lost++
			if lost <= 5 {
				t.Logf("unanswered at +%v into the soak", r.at.Sub(start).Round(time.Millisecond))
			}
		}
	}
	first, last := samples[0], samples[len(samples)-1]
	maxRSS, maxGor := 0, 0
	for _, s := range samples {
		maxRSS, maxGor = max(maxRSS, s.rss), max(maxGor, s.gor)
	}
	t.Logf("soak %v: %d queries, %d unanswered in the %d fail-over windows, %d outside them", time.Since(start).Round(time.Second), len(recs), lostExcused, len(excused), lost)
	t.Logf("node a RSS %d KiB -> %d KiB (max %d), goroutines %d -> %d (max %d), over %d samples", first.rss, last.rss, maxRSS, first.gor, last.gor, maxGor, len(samples))
	if lost > 0 {
		t.Errorf("%d queries unanswered outside the fail-over windows", lost)
	}
	if last.rss > first.rss*3/2+16*1024 {
		t.Errorf("RSS grew from %d to %d KiB", first.rss, last.rss)
	}
	if last.gor > first.gor+20 {
		t.Errorf("goroutines grew from %d to %d", first.gor, last.gor)
	}
}
