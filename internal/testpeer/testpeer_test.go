package testpeer

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rdata returns rr's presentation form without the owner/TTL/class/type.
func rdata(rr dns.RR) string {
	return strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String()))
}

// pidGone reports whether pid no longer exists (or is a zombie).
func pidGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || !alive(pid)
}

func TestDefaultZone(t *testing.T) {
	z := DefaultZone("alpha")
	for _, want := range []string{
		"$ORIGIN example.test.", "2026112501", "ns1\tIN\tA\t127.0.0.1", "www\tIN\tAAAA\t2001:db8::1",
		"mx\tIN\tMX\t10 mail.example.test.", "mail\tIN\tA\t192.0.2.25", `whoami	IN	TXT	"alpha"`,
		"h1999\tIN\tA\t198.18.7.207",
	} {
		if !strings.Contains(z, want) {
			t.Errorf("DefaultZone lacks %q", want)
		}
	}
	if n := strings.Count(z, "\nbig\tIN\tTXT\t"); n != BigTXTCount {
		t.Errorf("big TXT records = %d, want %d", n, BigTXTCount)
	}
	if s := txtString("medium", 3); len(s) != TXTLen {
		t.Errorf("TXT string length = %d, want %d", len(s), TXTLen)
	}
}

// TestNSDRootNamespace runs two NSDs on 127.0.0.11 and 127.0.0.12 (free
// ports) in the test's own namespace; Linux answers all of 127/8 on lo.
func TestNSDRootNamespace(t *testing.T) {
	SkipShort(t, "starts two NSD processes; run without -short")
	t.Parallel()
	alpha := StartNSD(t, NSDOptions{Name: "alpha", Addr: FreePort(t, netip.MustParseAddr("127.0.0.11"))})
	// Port 0: StartNSD picks one.
	beta := StartNSD(t, NSDOptions{Name: "beta", Addr: netip.MustParseAddrPort("127.0.0.12:0")})
	if beta.Addr.Port() == 0 {
		t.Fatalf("beta.Addr = %v: port not picked", beta.Addr)
	}
	t.Logf("alpha %v pid %d, beta %v pid %d", alpha.Addr, alpha.PID, beta.Addr, beta.PID)

	for _, n := range []*NSD{alpha, beta} {
		if got := Whoami(t, n.Addr); got != n.Name {
			t.Errorf("Whoami(%v) = %q, want %q", n.Addr, got, n.Name)
		}
	}

	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		want      []string // rdata of the answer, in any order; nil: not checked
		wantCount int      // answers; -1: not checked
		wantTC    bool
	}{
		{"A", "www.example.test", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}, 1, false},
		{"AAAA", "www.example.test", dns.TypeAAAA, dns.RcodeSuccess, []string{"2001:db8::1"}, 1, false},
		{"MX", "mx.example.test", dns.TypeMX, dns.RcodeSuccess, []string{"10 mail.example.test."}, 1, false},
		{"mail A", "mail.example.test", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.25"}, 1, false},
		{"host", "h1234.example.test", dns.TypeA, dns.RcodeSuccess, []string{"198.18.4.210"}, 1, false},
		{"NXDOMAIN", "nope.example.test", dns.TypeA, dns.RcodeNameError, nil, 0, false},
		{"medium fits EDNS 4096", "medium.example.test", dns.TypeTXT, dns.RcodeSuccess, nil, MediumTXTCount, false},
		{"big exceeds EDNS 4096", "big.example.test", dns.TypeTXT, dns.RcodeSuccess, nil, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Query(t, alpha.Addr, tt.qname, tt.qtype)
			if r.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if r.Truncated != tt.wantTC {
				t.Errorf("TC = %v, want %v", r.Truncated, tt.wantTC)
			}
			if tt.wantCount >= 0 && len(r.Answer) != tt.wantCount {
				t.Errorf("%d answers, want %d", len(r.Answer), tt.wantCount)
			}
			if tt.want != nil {
				var got []string
				for _, rr := range r.Answer {
					got = append(got, rdata(rr))
				}
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("answer = %q, want %q", got, tt.want)
				}
			}
		})
	}

	t.Run("medium without EDNS truncated", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("medium.example.test.", dns.TypeTXT)
		if r := Exchange(t, beta.Addr, "udp", m); !r.Truncated {
			t.Errorf("TC = false, want true (%d answers)", len(r.Answer))
		}
	})
	t.Run("big UDP without EDNS TC=1", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("big.example.test.", dns.TypeTXT)
		if r := Exchange(t, beta.Addr, "udp", m); !r.Truncated {
			t.Errorf("TC = false, want true")
		}
	})
	t.Run("big over TCP", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("big.example.test.", dns.TypeTXT)
		r := Exchange(t, beta.Addr, "tcp", m)
		if r.Truncated || len(r.Answer) != BigTXTCount {
			t.Errorf("TC = %v, %d answers; want false, %d", r.Truncated, len(r.Answer), BigTXTCount)
		}
	})
	t.Run("AXFR", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetAxfr(Zone)
		tr := &dns.Transfer{DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second}
		ch, err := tr.In(m, alpha.Addr.String())
		if err != nil {
			t.Fatalf("AXFR: %v", err)
		}
		var rrs []dns.RR
		envelopes := 0
		for env := range ch {
			if env.Error != nil {
				t.Fatalf("AXFR envelope %d: %v", envelopes, env.Error)
			}
			envelopes++
			rrs = append(rrs, env.RR...)
		}
		t.Logf("AXFR: %d records in %d messages", len(rrs), envelopes)
		if len(rrs) <= HostCount {
			t.Errorf("AXFR returned %d records, want > %d", len(rrs), HostCount)
		}
		if envelopes < 2 {
			t.Errorf("AXFR came in %d message(s), want several", envelopes)
		}
		if _, ok := rrs[0].(*dns.SOA); !ok {
			t.Errorf("AXFR first record %v, want SOA", rrs[0])
		}
	})
	t.Run("stop and restart", func(t *testing.T) {
		old := beta.PID
		beta.Stop()
		beta.Stop() // idempotent
		if !pidGone(old) {
			t.Errorf("pid %d still alive after Stop", old)
		}
		if beta.Running() {
			t.Errorf("Running() = true after Stop")
		}
		m := new(dns.Msg)
		m.SetQuestion(WhoamiName, dns.TypeTXT)
		c := &dns.Client{Net: "tcp", Timeout: 300 * time.Millisecond}
		if _, _, err := c.Exchange(m, beta.Addr.String()); err == nil {
			t.Errorf("stopped NSD still answers over TCP")
		}
		beta.Restart(t)
		if beta.PID == old {
			t.Errorf("PID unchanged after Restart")
		}
		if got := Whoami(t, beta.Addr); got != "beta" {
			t.Errorf("Whoami after Restart = %q", got)
		}
	})
}

func TestNSDCustomZone(t *testing.T) {
	SkipShort(t, "starts NSD (an external process); run without -short")
	t.Parallel()
	zone := "$ORIGIN example.test.\n$TTL 60\n" +
		"@ SOA ns1 hostmaster 7 3600 900 604800 60\n@ NS ns1\nns1 A 127.0.0.1\n" +
		"whoami TXT \"custom\"\nonly A 192.0.2.77\n"
	n := StartNSD(t, NSDOptions{Name: "c", Addr: netip.MustParseAddrPort("127.0.0.13:0"), Zone: zone})
	if got := Whoami(t, n.Addr); got != "custom" {
		t.Errorf("Whoami = %q, want custom", got)
	}
	if r := Query(t, n.Addr, "www.example.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("www in custom zone: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

func TestStartNSDBadZoneFails(t *testing.T) {
	SkipShort(t, "starts NSD (an external process); run without -short")
	t.Parallel()
	RequireTool(t, "nsd")
	// A failing StartNSD must report and leave nothing behind; run it in a
	// fake TB so the failure is captured instead of failing this test.
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartNSD(ft, NSDOptions{Name: "bad", Addr: netip.MustParseAddrPort("127.0.0.14:0"), Zone: "this is not a zone\n"})
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("StartNSD with a bad zone did not return within 15s")
	}
	if !ft.fatal {
		t.Fatal("StartNSD with a bad zone did not fail")
	}
	if !strings.Contains(ft.msg, "nsd-bad.log") {
		t.Errorf("failure message lacks the log tail:\n%s", ft.msg)
	}
	t.Logf("reported as expected:\n%s", ft.msg)
}

// fatalTB records Fatalf and ends the goroutine, like testing.T does.
type fatalTB struct {
	testing.TB
	fatal bool
	msg   string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = true
	f.msg = strings.TrimSpace(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func TestNetNS(t *testing.T) {
	SkipShort(t, "needs root: network namespace, NSD, tc; run without -short")
	t.Parallel()
	var name string
	var pids []int
	// Registered before NewNetNS, so it runs after the namespace's cleanup:
	// nothing may survive that.
	t.Cleanup(func() {
		out, err := exec.Command("ip", "netns", "list").CombinedOutput()
		if err != nil || (name != "" && strings.Contains(string(out), name)) {
			t.Errorf("netns %s still listed after cleanup (%v):\n%s", name, err, out)
		}
		for _, pid := range pids {
			if !pidGone(pid) {
				t.Errorf("pid %d still alive after cleanup", pid)
			}
		}
	})
	ns := NewNetNS(t, "tptest")
	name = ns.Name()
	if len(name) > 15 || !strings.HasPrefix(name, "tptest-") {
		t.Errorf("Name() = %q", name)
	}

	addrA := netip.MustParseAddrPort("127.0.0.11:5301")
	addrB := netip.MustParseAddrPort("127.0.0.12:5302")
	a := StartNSD(t, NSDOptions{Name: "ns-a", Addr: addrA, NetNS: ns.Name()})
	b := StartNSD(t, NSDOptions{Name: "ns-b", Addr: addrB, NetNS: ns.Name()})
	pids = append(pids, a.PID, b.PID)

	if out := ns.Run(t, "ip", "-o", "addr", "show", "dev", "lo"); !strings.Contains(out, "127.0.0.1/8") {
		t.Errorf("lo inside %s:\n%s", ns.Name(), out)
	}

	ns.Do(t, func() {
		for _, n := range []*NSD{a, b} {
			if got := Whoami(t, n.Addr); got != n.Name {
				t.Errorf("Whoami(%v) in netns = %q, want %q", n.Addr, got, n.Name)
			}
		}
	})

	// minRTT is the best of a few whoami queries, sent from inside.
	minRTT := func(server netip.AddrPort) time.Duration {
		best := time.Hour
		ns.Do(t, func() {
			for range 5 {
				start := time.Now()
				Whoami(t, server)
				best = min(best, time.Since(start))
			}
		})
		return best
	}
	t.Logf("before delay: a %v, b %v", minRTT(addrA), minRTT(addrB))

	ns.DelayFromAddr(t, "lo", addrB.Addr(), 100*time.Millisecond)
	rttA, rttB := minRTT(addrA), minRTT(addrB)
	t.Logf("after DelayFromAddr(%v, 100ms): a %v, b %v", addrB.Addr(), rttA, rttB)
	if rttB < 90*time.Millisecond {
		t.Errorf("delayed backend b answered in %v, want >= 90ms", rttB)
	}
	if rttA >= 50*time.Millisecond {
		t.Errorf("undelayed backend a answered in %v, want < 50ms", rttA)
	}

	t.Run("delayed TCP still works", func(t *testing.T) {
		ns.Do(t, func() {
			m := new(dns.Msg)
			m.SetQuestion("big.example.test.", dns.TypeTXT)
			start := time.Now()
			r := Exchange(t, addrB, "tcp", m)
			if len(r.Answer) != BigTXTCount {
				t.Errorf("%d answers over TCP, want %d", len(r.Answer), BigTXTCount)
			}
			if d := time.Since(start); d < 90*time.Millisecond {
				t.Errorf("TCP to delayed backend took %v, want >= 90ms", d)
			}
		})
	})

	t.Run("IPv6 loopback address", func(t *testing.T) {
		ns.AddLoopbackAddr(t, "fd00::11/128")
		v6 := StartNSD(t, NSDOptions{Name: "ns-v6", Addr: netip.MustParseAddrPort("[fd00::11]:5303"), NetNS: ns.Name()})
		pids = append(pids, v6.PID)
		ns.Do(t, func() {
			if got := Whoami(t, v6.Addr); got != "ns-v6" {
				t.Errorf("Whoami(%v) = %q", v6.Addr, got)
			}
		})
	})

	var sleepPID int
	t.Run("Start is killed on cleanup", func(t *testing.T) {
		RequireTool(t, "sleep")
		cmd := ns.Start(t, "sleep", "300")
		sleepPID = cmd.Process.Pid
		pids = append(pids, sleepPID)
		deadline := time.Now().Add(2 * time.Second)
		for !strings.Contains(ns.Run(t, "ip", "netns", "identify", strconv.Itoa(sleepPID)), ns.Name()) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d not in netns %s", sleepPID, ns.Name())
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if sleepPID != 0 && !pidGone(sleepPID) {
		t.Errorf("pid %d survived its test's cleanup", sleepPID)
	}
}

// TestStaleNetNSSwept fakes a namespace left by a killed test binary (its
// marker names a process that has exited) and checks NewNetNS removes it.
func TestStaleNetNSSwept(t *testing.T) {
	RequireRoot(t)
	RequireTool(t, "ip")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := "tpstale-" + randHex(3)
	if out, err := runBounded("ip", "netns", "add", stale); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = runBounded("ip", "netns", "del", stale); _ = removeMarker(stale) })
	if err := os.MkdirAll(markerDir, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Appendf(nil, "%d 1\n", dead.Process.Pid)
	if err := os.WriteFile(filepath.Join(markerDir, markerPrefix+stale), marker, 0o644); err != nil {
		t.Fatal(err)
	}

	NewNetNS(t, "tpsweep")

	if _, err := os.Stat(filepath.Join("/run/netns", stale)); err == nil {
		t.Errorf("stale netns %s not deleted", stale)
	}
	if _, err := os.Stat(filepath.Join(markerDir, markerPrefix+stale)); err == nil {
		t.Errorf("marker of stale netns %s not removed", stale)
	}
}
