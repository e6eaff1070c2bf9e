package integration

// Dual-stack VRRP (issue 15): several VRRP instances per node, moving
// together as one sync group, against dnslb and keepalived peers, and
// changed by a reload. The site, NSDs, probers and dnslb processes are
// the ones of vrrp_test.go and harness_test.go; everything runs in the
// namespaces newSite creates (only their addresses are used) and every
// process is stopped by PID on cleanup.

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// vip4b is the VIP of the third instance TestVRRPReloadAddsInstance adds.
var vip4b = netip.MustParsePrefix("10.77.0.101/24")

// dsInstance is one item of vrrp.instances.
type dsInstance struct {
	name string
	vrid int
	vip  netip.Prefix
}

// The two instances of a dual-stack pair, and the third one a reload adds.
var (
	dsV4  = dsInstance{"v4", 53, vip4}
	dsV6  = dsInstance{"v6", 54, vip6}
	dsV4b = dsInstance{"v4b", 55, vip4b}
)

// dualStackConfig is a dnslb config for one node of a dual-stack pair:
// listening on every address of listen (bound with IP_FREEBIND, so a
// node listens on VIPs it does not hold, and on VIPs a later reload adds:
// listen cannot change on a reload), the node's own NSD as its only
// backend (tracked: track weight 0, so losing it is fault), and a vrrp
// section with the shared keys at its top (vrrpExtra adds more) and the
// instances.
func dualStackConfig(listen []netip.Prefix, prio int, interval time.Duration, vrrpExtra string, instances ...dsInstance) string {
	var l []netip.AddrPort
	for _, p := range listen {
		l = append(l, netip.AddrPortFrom(p.Addr(), 53))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vrrp:\n  interface: eth0\n  priority: %d\n  advert_interval: %v\n  garp_delay: 0s\n%s  instances:\n", prio, interval, vrrpExtra)
	for _, in := range instances {
		fmt.Fprintf(&b, "    - {name: %s, vrid: %d, vips: [%q]}\n", in.name, in.vrid, in.vip.String())
	}
	return lbConfig(l, "127.0.0.1:9053", [][2]string{{"local", "127.0.0.11:5301"}},
		healthConfig(200*time.Millisecond, 150*time.Millisecond, 300*time.Millisecond, "")+b.String())
}

// vrrpStates returns each VRRP instance's state by instance name.
func (l *lb) vrrpStates() map[string]string {
	l.t.Helper()
	m := map[string]string{}
	for _, v := range l.status().VRRP {
		m[v.Instance] = v.State
	}
	return m
}

// waitAllVRRP waits until every named instance is in state and returns
// how long that took. Bounded by within (status is polled every 20ms).
func (l *lb) waitAllVRRP(state string, within time.Duration, names ...string) time.Duration {
	l.t.Helper()
	start := time.Now()
	for {
		st := l.vrrpStates()
		all := true
		for _, n := range names {
			all = all && st[n] == state
		}
		if all {
			return time.Since(start)
		}
		if time.Since(start) > within {
			l.t.Fatalf("vrrp states %v, want %v %s within %v; log:\n%s", st, names, state, within, l.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLinkLocal waits until ns's eth0 has ll again (the kernel makes the
// same EUI-64 link-local address when the link comes up; DAD is off).
func waitLinkLocal(t *testing.T, ns *testpeer.NetNS, ll netip.Addr, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ns.HasAddr(t, "eth0", ll) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: link-local %v not back on eth0 within %v", ns.Name(), ll, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outage is what a prober saw after t0 until node answered: the longest
// gap between answers and the unanswered probes.
type outage struct {
	gap  time.Duration
	lost int
}

func (o outage) String() string {
	return fmt.Sprintf("%v (%d lost)", o.gap.Round(time.Millisecond), o.lost)
}

// lostSince returns how many probes went unanswered in total (the prober
// counts no times for them); take the difference of two calls.
func (p *prober) lostSince() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

// lastBy returns who gave the last answer, and when.
func (p *prober) lastBy() (string, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.answers) == 0 {
		return "", time.Time{}
	}
	a := p.answers[len(p.answers)-1]
	return a.by, a.at
}

// waitBoth waits until both probers saw node answer after t0 and returns
// each one's outage.
func waitBoth(t *testing.T, p4, p6 *prober, node string, t0 time.Time, lost4, lost6 int, within time.Duration) (o4, o6 outage) {
	t.Helper()
	o4.gap = p4.waitFor(t, node, t0, within)
	o6.gap = p6.waitFor(t, node, t0, within)
	o4.lost, o6.lost = p4.lostSince()-lost4, p6.lostSince()-lost6
	return o4, o6
}

// queryWhoami asks vip once from ns (1s timeout, 3 tries) and returns
// who answered, "" if nobody did.
func queryWhoami(t *testing.T, ns *testpeer.NetNS, vip netip.Addr) string {
	t.Helper()
	conn := dialConns(t, ns, netip.AddrPortFrom(vip, 53), 1)[0]
	cl := &dns.Client{Net: "udp", Timeout: time.Second}
	for i := 0; i < 3; i++ {
		m := new(dns.Msg)
		m.SetQuestion("whoami.example.test.", dns.TypeTXT)
		r, _, err := cl.ExchangeWithConn(m, conn)
		if err == nil && len(r.Answer) == 1 {
			return r.Answer[0].(*dns.TXT).Txt[0]
		}
	}
	return ""
}

// reloadWith writes cfg over l's config file, sends SIGHUP and waits for
// the reload's log line (the n-th "config reloaded" of this process).
func (l *lb) reloadWith(cfg string, n int) {
	l.t.Helper()
	writeFile(l.t, l.config, cfg)
	l.signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for len(l.logLines("config reloaded")) < n {
		if r := l.logLines("reload refused"); len(r) > 0 {
			l.t.Fatalf("reload refused: %s\n%s", r[0], l.log.String())
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("reload %d not applied within 5s:\n%s", n, l.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestVRRPDualStackFailover: a pair with an IPv4 instance (VRID 53) and
// an IPv6 instance (VRID 54) in one sync group, 100ms adverts, one client
// per family querying its VIP every 10ms (50ms timeout). (a) SIGKILL of
// the master and its link down: both families answer from the backup
// after Master_Down_Interval. (b) the master restarts and preempts, then
// SIGTERM: priority 0 on both instances, the backup takes over within an
// advert interval. Each family's outage is the longest gap between
// answers seen by its client.
func TestVRRPDualStackFailover(t *testing.T) {
	const interval = 100 * time.Millisecond
	s := newSite(t, "vds")
	nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
	nsdIn(t, s.b, "nodeB", "127.0.0.11:5301")
	// b's notify script records "<state> <instance>" per transition
	notes := t.TempDir() + "/notes"
	script := t.TempDir() + "/notify.sh"
	writeFile(t, script, "#!/bin/sh\necho \"$1 $2\" >> "+notes+"\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	listen := []netip.Prefix{vip4, vip6}
	cfgA := dualStackConfig(listen, 150, interval, "", dsV4, dsV6)
	cfgB := dualStackConfig(listen, 100, interval, "  notify: "+script+"\n", dsV4, dsV6)
	// Master_Down_Interval of the backup (priority 100): 3 x interval + Skew_Time
	mdi := 3*interval + interval*156/256
	a := startLB(t, s.a, cfgA, netip.AddrPortFrom(vip4.Addr(), 53), "127.0.0.1:9053")
	b := startLB(t, s.b, cfgB, netip.AddrPortFrom(vip4.Addr(), 53), "127.0.0.1:9053")
	a.waitAllVRRP("master", 5*interval+3*time.Second, "v4", "v6")
	b.waitAllVRRP("backup", 3*time.Second, "v4", "v6")
	for _, v := range []netip.Prefix{vip4, vip6} {
		if !s.a.HasAddr(t, "eth0", v.Addr()) || s.b.HasAddr(t, "eth0", v.Addr()) {
			t.Fatalf("VIP %v not on the master only", v)
		}
	}
	for _, v := range b.status().VRRP {
		if !v.Sync || v.Interface != "eth0" || (v.Instance == "v4") != (v.Family == "ipv4") {
			t.Errorf("b's status entry %+v: want sync, eth0 and the instance's family", v)
		}
	}
	checkStateMetric(t, s.a, map[string]string{`instance="v4",vrid="53",family="ipv4"`: "2", `instance="v6",vrid="54",family="ipv6"`: "2"})
	llA := s.a.LinkLocal(t, "eth0")

	// (a) SIGKILL (no goodbye) and the link down: the backup's timers run out
	p4, p6 := startProber(t, s.c, vip4.Addr()), startProber(t, s.c, vip6.Addr())
	time.Sleep(300 * time.Millisecond)
	if by, _ := p4.lastBy(); by != "nodeA" {
		t.Fatalf("IPv4 client answered by %q before the failover, want nodeA", by)
	}
	if by, _ := p6.lastBy(); by != "nodeA" {
		t.Fatalf("IPv6 client answered by %q before the failover, want nodeA", by)
	}
	l4, l6 := p4.lostSince(), p6.lostSince()
	t0 := time.Now()
	a.signal(syscall.SIGKILL)
	s.a.SetLink(t, "eth0", false)
	a.waitExit(5 * time.Second)
	kill4, kill6 := waitBoth(t, p4, p6, "nodeB", t0, l4, l6, mdi+3*time.Second)
	b.waitAllVRRP("master", 3*time.Second, "v4", "v6")
	var tookKillMaster time.Duration // from the kill to b's last instance becoming master
	for _, v := range b.status().VRRP {
		tookKillMaster = max(tookKillMaster, v.Since.Sub(t0))
	}
	// both families keep answering from b for a while
	time.Sleep(300 * time.Millisecond)
	for fam, p := range map[string]*prober{"IPv4": p4, "IPv6": p6} {
		if by, at := p.lastBy(); by != "nodeB" || time.Since(at) > time.Second {
			t.Errorf("%s client: last answer by %q %v ago, want nodeB answering", fam, by, time.Since(at).Round(time.Millisecond))
		}
	}
	p4.stop()
	p6.stop()
	if got, _ := os.ReadFile(notes); !strings.Contains(string(got), "master v4\n") || !strings.Contains(string(got), "master v6\n") {
		t.Errorf("b's notify script saw %q, want master v4 and master v6", got)
	}

	// (b) a's link up and a restarted: it removes the VIPs the kernel may
	// still hold, comes up backup and preempts with both instances
	s.a.SetLink(t, "eth0", true)
	waitLinkLocal(t, s.a, llA, 5*time.Second)
	p4, p6 = startProber(t, s.c, vip4.Addr()), startProber(t, s.c, vip6.Addr())
	time.Sleep(200 * time.Millisecond)
	l4, l6 = p4.lostSince(), p6.lostSince()
	t0 = time.Now()
	a = startLB(t, s.a, cfgA, netip.AddrPortFrom(vip4.Addr(), 53), "127.0.0.1:9053")
	a.waitAllVRRP("master", mdi+3*time.Second, "v4", "v6")
	pre4, pre6 := waitBoth(t, p4, p6, "nodeA", t0, l4, l6, 3*time.Second)
	b.waitAllVRRP("backup", 3*time.Second, "v4", "v6")
	time.Sleep(300 * time.Millisecond)

	// SIGTERM: priority 0 for both instances, a answers until b has taken over
	l4, l6 = p4.lostSince(), p6.lostSince()
	t0 = time.Now()
	a.signal(syscall.SIGTERM)
	term4, term6 := waitBoth(t, p4, p6, "nodeB", t0, l4, l6, 3*time.Second)
	b.waitAllVRRP("master", 3*time.Second, "v4", "v6")
	if code := a.waitExit(10 * time.Second); code != 0 {
		t.Errorf("SIGTERM exit code %d", code)
	}
	for _, v := range []netip.Prefix{vip4, vip6} {
		if s.a.HasAddr(t, "eth0", v.Addr()) {
			t.Errorf("VIP %v left on a after SIGTERM", v)
		}
		if !s.b.HasAddr(t, "eth0", v.Addr()) {
			t.Errorf("VIP %v not on b after a's SIGTERM", v)
		}
	}
	p4.stop()
	p6.stop()
	t.Logf("adverts %v, Master_Down_Interval %v", interval, mdi)
	t.Logf("SIGKILL + link down: outage IPv4 %v, IPv6 %v; b master on both after %v", kill4, kill6, tookKillMaster.Round(time.Millisecond))
	t.Logf("restart, preempt: outage IPv4 %v, IPv6 %v", pre4, pre6)
	t.Logf("SIGTERM: outage IPv4 %v, IPv6 %v", term4, term6)
	// The outages are measurements (logged above, quoted in the docs);
	// the bounds only catch a fail-over that did not happen in time, with
	// room for a loaded test machine.
	for fam, o := range map[string]outage{"IPv4": kill4, "IPv6": kill6} {
		if o.gap > mdi+2*time.Second {
			t.Errorf("SIGKILL: %s outage %v > Master_Down_Interval %v + 2s", fam, o.gap, mdi)
		}
	}
	for fam, o := range map[string]outage{"IPv4": term4, "IPv6": term6} {
		if o.gap > interval+2*time.Second {
			t.Errorf("SIGTERM: %s outage %v > one advert interval + 2s", fam, o.gap)
		}
	}
}

// checkStateMetric reads dnslb's /metrics inside ns (with curl, when
// installed) and checks dnslb_vrrp_state: want maps comma-separated
// labels (each matched on its own, in any order) to the value.
func checkStateMetric(t *testing.T, ns *testpeer.NetNS, want map[string]string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Logf("curl not installed: dnslb_vrrp_state not checked")
		return
	}
	out := ns.Run(t, "curl", "-s", "-m", "5", "http://127.0.0.1:9053/metrics")
	for labels, value := range want {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, "dnslb_vrrp_state{") {
				continue
			}
			ok := true
			for _, l := range strings.Split(labels, ",") {
				ok = ok && strings.Contains(line, l)
			}
			if ok {
				found = true
				if !strings.HasSuffix(line, " "+value) {
					t.Errorf("metric %s, want value %s", line, value)
				}
			}
		}
		if !found {
			t.Errorf("no dnslb_vrrp_state{%s} in /metrics", labels)
		}
	}
}

// placement is where the two VIPs are at one instant.
type placement struct {
	at             time.Time
	a4, a6, b4, b6 bool // node a / b holds the IPv4 / IPv6 VIP
}

// split reports whether one VIP is held by one node only and the other
// VIP by the other node only: IPv4 clients and IPv6 clients go to
// different nodes. A VIP held by both nodes for an instant is the make
// before break overlap of a hand-over (clients follow the new master's
// gratuitous ARP/NA), not a split.
func (p placement) split() bool {
	return p.a4 && !p.b4 && p.b6 && !p.a6 || p.a6 && !p.b6 && p.b4 && !p.a4
}

func (p placement) String() string {
	f := func(v4, v6 bool) string {
		s := ""
		if v4 {
			s += "v4"
		}
		if v6 {
			s += "v6"
		}
		if s == "" {
			s = "-"
		}
		return s
	}
	return "a:" + f(p.a4, p.a6) + " b:" + f(p.b4, p.b6)
}

// vipSampler reads the VIP placement on nodes a and b every 10ms with
// netlink (one RTM_GETADDR dump per node, well under a millisecond, so a
// sample is nearly one instant; `ip -j addr` would take several ms per
// node). Bounded: at most max samples, stopped by stop().
type vipSampler struct {
	mu      sync.Mutex
	samples []placement
	errs    int
	quit    chan struct{}
	done    chan struct{}
}

func startVIPSampler(t *testing.T, a, b *testpeer.NetNS, v4, v6 netip.Addr, max int) *vipSampler {
	t.Helper()
	handle := func(ns *testpeer.NetNS) *netlink.Handle {
		h, err := netns.GetFromName(ns.Name())
		if err != nil {
			t.Fatalf("netns %s: %v", ns.Name(), err)
		}
		defer h.Close()
		nl, err := netlink.NewHandleAt(h)
		if err != nil {
			t.Fatalf("netlink in %s: %v", ns.Name(), err)
		}
		return nl
	}
	ha, hb := handle(a), handle(b)
	has := func(h *netlink.Handle) (has4, has6 bool, err error) {
		addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return false, false, err
		}
		for _, ad := range addrs {
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok {
				continue
			}
			switch ip.Unmap() {
			case v4:
				has4 = true
			case v6:
				has6 = true
			}
		}
		return has4, has6, nil
	}
	s := &vipSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer ha.Close()
		defer hb.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < max; i++ {
			var p placement
			var errA, errB error
			p.a4, p.a6, errA = has(ha)
			p.b4, p.b6, errB = has(hb)
			p.at = time.Now()
			s.mu.Lock()
			if errA != nil || errB != nil {
				s.errs++
			} else {
				s.samples = append(s.samples, p)
			}
			s.mu.Unlock()
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *vipSampler) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

// last returns the latest sample.
func (s *vipSampler) last() placement {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return placement{}
	}
	return s.samples[len(s.samples)-1]
}

// waitPlacement waits until a sample shows want (compared without time).
func (s *vipSampler) waitPlacement(t *testing.T, want placement, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		p := s.last()
		p.at = time.Time{}
		if p == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("VIP placement %v, want %v within %v", p, want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firstAfter returns the time of the first sample after t0 that shows
// want (compared without time), or the zero time.
func (s *vipSampler) firstAfter(t0 time.Time, want placement) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.samples {
		at := p.at
		p.at = time.Time{}
		if at.After(t0) && p == want {
			return at
		}
	}
	return time.Time{}
}

// lastSince returns the latest Since of l's VRRP instances, minus t0:
// when the last of them changed state.
func (l *lb) lastSince(t0 time.Time) time.Duration {
	l.t.Helper()
	var d time.Duration
	for _, v := range l.status().VRRP {
		d = max(d, v.Since.Sub(t0))
	}
	return d
}

// splitReport summarizes the samples: how many, the longest time
// between two samples, and the longest run of consecutive split samples
// (its length in samples and from its first to its last sample).
type splitReport struct {
	samples, errs, splitSamples int
	maxSpacing                  time.Duration
	longestRun                  int
	longestRunDur               time.Duration
	runAt                       string
	moves                       []string // the distinct placements in order, with when
}

func (s *vipSampler) report() splitReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := splitReport{samples: len(s.samples), errs: s.errs}
	run := 0
	var runStart time.Time
	var prev placement
	for i, p := range s.samples {
		if i > 0 {
			r.maxSpacing = max(r.maxSpacing, p.at.Sub(s.samples[i-1].at))
		}
		if i == 0 || p.String() != prev.String() {
			r.moves = append(r.moves, fmt.Sprintf("%s@%s", p, p.at.Format("15:04:05.000")))
		}
		prev = p
		if !p.split() {
			run = 0
			continue
		}
		r.splitSamples++
		if run == 0 {
			runStart = p.at
		}
		run++
		if run > r.longestRun {
			r.longestRun, r.longestRunDur, r.runAt = run, p.at.Sub(runStart), p.String()+" at "+runStart.Format("15:04:05.000")
		}
	}
	return r
}

// TestVRRPSyncGroupTracking: the master's only backend hangs (NSD
// frozen), tracking (weight 0) puts the node in fault, and both VIPs
// move to the peer together; when the backend is back, the node
// preempts and both VIPs move back together. The VIP placement is
// sampled every 10ms throughout: at no time may the IPv4 VIP be on one
// node while the IPv6 VIP is on the other.
//
// A node's two instances move in two netlink operations, one after the
// other (each instance removes or adds its own VIP), so one sample taken
// between them may see a node with one VIP and the other node with the
// other one: that lasts as long as one netlink call and a goroutine
// switch, well under the 10ms sample spacing. A real split (instances
// that did not move together) lasts at least until the next VRRP event,
// an advert interval (100ms) or more. So the test fails only if two
// consecutive samples (10ms apart) show a split.
func TestVRRPSyncGroupTracking(t *testing.T) {
	const interval = 100 * time.Millisecond
	s := newSite(t, "vsg")
	nsdA := nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
	nsdIn(t, s.b, "nodeB", "127.0.0.11:5301")
	listen := []netip.Prefix{vip4, vip6}
	a := startLB(t, s.a, dualStackConfig(listen, 150, interval, "", dsV4, dsV6), netip.AddrPortFrom(vip4.Addr(), 53), "127.0.0.1:9053")
	b := startLB(t, s.b, dualStackConfig(listen, 100, interval, "", dsV4, dsV6), netip.AddrPortFrom(vip4.Addr(), 53), "127.0.0.1:9053")
	a.waitAllVRRP("master", 5*interval+3*time.Second, "v4", "v6")
	b.waitAllVRRP("backup", 3*time.Second, "v4", "v6")
	a.waitHealth("local", "up", 5*time.Second)

	// bounded: 3000 samples (30s at 10ms)
	sam := startVIPSampler(t, s.a, s.b, vip4.Addr(), vip6.Addr(), 3000)
	onA, onB := placement{a4: true, a6: true}, placement{b4: true, b6: true}
	sam.waitPlacement(t, onA, 2*time.Second)
	p4, p6 := startProber(t, s.c, vip4.Addr()), startProber(t, s.c, vip6.Addr())
	time.Sleep(300 * time.Millisecond)

	// a's backend hangs: health checks fail (3 x 200ms), tracking says
	// fault, both instances send priority 0 and drop their VIPs
	t0 := time.Now()
	nsdA.Freeze(t)
	a.waitAllVRRP("fault", 5*time.Second, "v4", "v6")
	tookFault := a.lastSince(t0)
	sam.waitPlacement(t, onB, 3*time.Second)
	tookGone, tookMove := sam.firstAfter(t0, placement{}).Sub(t0), sam.firstAfter(t0, onB).Sub(t0)
	b.waitAllVRRP("master", 3*time.Second, "v4", "v6")
	gap4, gap6 := p4.waitFor(t, "nodeB", t0, 3*time.Second), p6.waitFor(t, "nodeB", t0, 3*time.Second)
	time.Sleep(500 * time.Millisecond)
	if p := sam.last(); p.String() != onB.String() {
		t.Errorf("VIPs %v after the move, want both on b", p)
	}

	// the backend is back: a leaves fault as backup and preempts with both
	t1 := time.Now()
	nsdA.Thaw(t)
	a.waitAllVRRP("master", 5*time.Second, "v4", "v6")
	tookBackMaster := a.lastSince(t1)
	sam.waitPlacement(t, onA, 3*time.Second)
	tookBack := sam.firstAfter(t1, onA).Sub(t1)
	b.waitAllVRRP("backup", 3*time.Second, "v4", "v6")
	time.Sleep(500 * time.Millisecond)
	sam.stop()
	p4.stop()
	p6.stop()

	r := sam.report()
	t.Logf("backend frozen: a in fault on both after %v, no VIP on a from %v, both VIPs on b from %v; client outage (the backend hangs first) IPv4 %v, IPv6 %v",
		tookFault.Round(time.Millisecond), tookGone.Round(time.Millisecond), tookMove.Round(time.Millisecond), gap4.Round(time.Millisecond), gap6.Round(time.Millisecond))
	t.Logf("backend thawed: a master on both after %v, both VIPs on a (and none on b) from %v", tookBackMaster.Round(time.Millisecond), tookBack.Round(time.Millisecond))
	t.Logf("VIP placement: %d samples (%d failed reads), at most %v apart; %d split samples, longest split run %d samples (%v) %s",
		r.samples, r.errs, r.maxSpacing.Round(time.Millisecond), r.splitSamples, r.longestRun, r.longestRunDur.Round(time.Millisecond), r.runAt)
	t.Logf("placements seen: %s", strings.Join(r.moves, ", "))
	if r.samples < 100 {
		t.Errorf("only %d samples", r.samples)
	}
	if r.longestRun >= 2 {
		t.Errorf("VIPs split between the nodes in %d consecutive samples (%v): %s", r.longestRun, r.longestRunDur, r.runAt)
	}
}

// TestVRRPKeepalivedSyncGroupInterop: dnslb on node a, keepalived 2.2.7
// on node b running a vrrp_sync_group of the same two instances (VRID 53
// IPv4, VRID 54 IPv6). Both directions: keepalived with the higher
// priority is MASTER on both and dnslb backup on both; keepalived stops
// (priority 0) and dnslb is master on both; keepalived comes back with a
// lower priority and is BACKUP on both; dnslb stops (priority 0) and
// keepalived is MASTER on both.
func TestVRRPKeepalivedSyncGroupInterop(t *testing.T) {
	testpeer.RequireTool(t, "keepalived")
	const interval = time.Second
	s := newSite(t, "vks")
	nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
	capture := s.c.Capture(t, "eth0", "ip proto 112 or ip6 proto 112")
	a := startLB(t, s.a, dualStackConfig([]netip.Prefix{vip4, vip6}, 100, interval, "", dsV4, dsV6), netip.AddrPortFrom(vip4.Addr(), 53), "127.0.0.1:9053")
	kconf := func(prio int) string {
		return testpeer.KeepalivedConfSync("kb", nil,
			[]testpeer.KeepalivedSyncGroup{{Name: "G_DNS", Instances: []string{"VI_53", "VI_54"}}},
			testpeer.KeepalivedInstance{VRID: 53, Priority: prio, Version: 3, VIPs: []netip.Prefix{vip4}},
			testpeer.KeepalivedInstance{VRID: 54, Priority: prio, Version: 3, VIPs: []netip.Prefix{vip6}})
	}
	kStates := func(k *testpeer.Keepalived) string {
		return k.InstanceState("VI_53") + "/" + k.InstanceState("VI_54")
	}
	waitK := func(k *testpeer.Keepalived, state string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for kStates(k) != state+"/"+state {
			if !k.Running() {
				t.Fatalf("keepalived exited in %s:\n%s", kStates(k), k.Log())
			}
			if time.Since(start) > within {
				t.Fatalf("keepalived %s, want %s on both within %v:\n%s", kStates(k), state, within, k.Log())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	// keepalived with the higher priority: MASTER on both, dnslb backup on both
	k := testpeer.StartKeepalived(t, testpeer.KeepalivedOptions{NetNS: s.b, Config: kconf(200)})
	waitK(k, "MASTER", 8*time.Second)
	a.waitAllVRRP("backup", 5*time.Second, "v4", "v6")
	time.Sleep(2 * time.Second)
	if st := a.vrrpStates(); st["v4"] != "backup" || st["v6"] != "backup" || kStates(k) != "MASTER/MASTER" {
		t.Fatalf("dnslb %v, keepalived %s", st, kStates(k))
	}
	for _, v := range []netip.Prefix{vip4, vip6} {
		if s.a.HasAddr(t, "eth0", v.Addr()) || !s.b.HasAddr(t, "eth0", v.Addr()) {
			t.Errorf("VIP %v not on keepalived's node only", v)
		}
	}

	// keepalived stops (priority 0 on both): dnslb master on both at once
	t0 := time.Now()
	k.Stop(t)
	a.waitAllVRRP("master", 3*time.Second, "v4", "v6")
	tookA := a.lastSince(t0)
	for _, v := range []netip.Prefix{vip4, vip6} {
		if !s.a.HasAddr(t, "eth0", v.Addr()) {
			t.Fatalf("dnslb master without the VIP %v", v)
		}
	}
	var reasons []string
	for _, v := range a.status().VRRP {
		reasons = append(reasons, v.Instance+": "+v.Reason)
	}
	log1 := k.Log()

	// keepalived back with a lower priority: BACKUP on both, dnslb stays master
	k = testpeer.StartKeepalived(t, testpeer.KeepalivedOptions{NetNS: s.b, Config: kconf(50)})
	time.Sleep(4 * time.Second)
	if st := a.vrrpStates(); kStates(k) != "BACKUP/BACKUP" || st["v4"] != "master" || st["v6"] != "master" {
		t.Fatalf("keepalived %s, dnslb %v:\n%s", kStates(k), st, k.Log())
	}

	// dnslb stops (priority 0 on both): keepalived MASTER on both at once
	t0 = time.Now()
	a.signal(syscall.SIGTERM)
	tookK := waitK(k, "MASTER", 3*time.Second)
	a.waitExit(10 * time.Second)
	for _, v := range []netip.Prefix{vip4, vip6} {
		if s.a.HasAddr(t, "eth0", v.Addr()) {
			t.Errorf("VIP %v left on a after SIGTERM", v)
		}
	}
	t.Logf("keepalived SIGTERM -> dnslb master on both after %v (%s)", tookA.Round(time.Millisecond), strings.Join(reasons, "; "))
	t.Logf("dnslb SIGTERM -> keepalived MASTER on both after %v", tookK.Round(time.Millisecond))
	for i, log := range []string{log1, k.Log()} {
		for _, bad := range []string{"invalid", "Invalid", "bad ", "mismatch", "error", "wrong"} {
			if strings.Contains(log, bad) {
				t.Errorf("keepalived run %d complained (%q):\n%s", i+1, bad, log)
				break
			}
		}
	}
	if log := k.Log(); !strings.Contains(log, "(VI_53) Backup received priority 0 advertisement") || !strings.Contains(log, "(VI_54) Backup received priority 0 advertisement") {
		t.Errorf("keepalived did not see dnslb's priority 0 on both instances:\n%s", log)
	}
	// every advert dnslb sent, on both instances, decodes with TTL 255,
	// DSCP CS6 and a valid checksum
	path := capture.Stop(t)
	ll := s.a.LinkLocal(t, "eth0")
	checkCapture(t, path, vip4, ll)
	checkCapture(t, path, vip6, ll)
}

// TestVRRPReloadAddsInstance: a pair runs the IPv4 and IPv6 instances,
// with a client per family querying its VIP every 10ms. A reload adds a
// third instance (IPv4, VRID 55, 10.77.0.101) to b and then to a: it
// joins each node's sync group (on b, a backup, it waits for its group
// instead of taking its VIP alone) and a serves its VIP. Then a reload
// raises b's priority above a's: b preempts with all three instances, a
// hand-over (both nodes hold the VIPs for an instant) in which no query
// may be lost.
func TestVRRPReloadAddsInstance(t *testing.T) {
	const interval = 100 * time.Millisecond
	s := newSite(t, "vra")
	nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
	nsdIn(t, s.b, "nodeB", "127.0.0.11:5301")
	// listen cannot change on a reload: every VIP, also the one the
	// reload adds, is in listen from the start
	listen := []netip.Prefix{vip4, vip6, vip4b}
	a := startLB(t, s.a, dualStackConfig(listen, 150, interval, "", dsV4, dsV6), netip.AddrPortFrom(vip4.Addr(), 53), "127.0.0.1:9053")
	b := startLB(t, s.b, dualStackConfig(listen, 100, interval, "", dsV4, dsV6), netip.AddrPortFrom(vip4.Addr(), 53), "127.0.0.1:9053")
	a.waitAllVRRP("master", 5*interval+3*time.Second, "v4", "v6")
	b.waitAllVRRP("backup", 3*time.Second, "v4", "v6")
	// A query counts as lost only when it is never answered (1 s, a stub
	// resolver's first retry): a hand-over must drop nothing, while a
	// stall of the loaded test machine only delays answers.
	p4, p6 := startProberTimeout(t, s.c, vip4.Addr(), time.Second), startProberTimeout(t, s.c, vip6.Addr(), time.Second)
	time.Sleep(300 * time.Millisecond)

	// b first: its new instance is alone on VRID 55, but its group is
	// backup, so it stays backup (3 x Master_Down_Interval here)
	b.reloadWith(dualStackConfig(listen, 100, interval, "", dsV4, dsV6, dsV4b), 1)
	b.waitLog("vrrp instance added", 2*time.Second)
	time.Sleep(3 * (3*interval + interval*156/256))
	if st := b.vrrpStates(); st["v4b"] != "backup" || s.b.HasAddr(t, "eth0", vip4b.Addr()) {
		t.Fatalf("b's new instance %q (VIP held: %v): want backup with its sync group", st["v4b"], s.b.HasAddr(t, "eth0", vip4b.Addr()))
	}
	t0 := time.Now()
	a.reloadWith(dualStackConfig(listen, 150, interval, "", dsV4, dsV6, dsV4b), 1)
	a.waitAllVRRP("master", 3*time.Second, "v4", "v6", "v4b")
	var tookAdd time.Duration // from a's reload to its new instance becoming master
	for _, v := range a.status().VRRP {
		if v.Instance == "v4b" {
			tookAdd = v.Since.Sub(t0)
		}
	}
	if !s.a.HasAddr(t, "eth0", vip4b.Addr()) || s.b.HasAddr(t, "eth0", vip4b.Addr()) {
		t.Fatalf("VIP %v not on a only", vip4b)
	}
	if by := queryWhoami(t, s.c, vip4b.Addr()); by != "nodeA" {
		t.Fatalf("the added VIP %v answered by %q, want nodeA", vip4b.Addr(), by)
	}
	p4b := startProberTimeout(t, s.c, vip4b.Addr(), time.Second)
	time.Sleep(500 * time.Millisecond)

	// b's priority above a's: b preempts with all three instances
	l4, l6, l4b := p4.lostSince(), p6.lostSince(), p4b.lostSince()
	t1 := time.Now()
	b.reloadWith(dualStackConfig(listen, 200, interval, "", dsV4, dsV6, dsV4b), 2)
	b.waitAllVRRP("master", 3*time.Second, "v4", "v6", "v4b")
	var tookOver time.Duration
	for _, v := range b.status().VRRP {
		tookOver = max(tookOver, v.Since.Sub(t1))
	}
	a.waitAllVRRP("backup", 3*time.Second, "v4", "v6", "v4b")
	o4 := outage{gap: p4.waitFor(t, "nodeB", t1, 3*time.Second)}
	o6 := outage{gap: p6.waitFor(t, "nodeB", t1, 3*time.Second)}
	o4b := outage{gap: p4b.waitFor(t, "nodeB", t1, 3*time.Second)}
	time.Sleep(500 * time.Millisecond)
	p4.stop()
	p6.stop()
	p4b.stop()
	o4.lost, o6.lost, o4b.lost = p4.lostSince()-l4, p6.lostSince()-l6, p4b.lostSince()-l4b
	for _, v := range []netip.Prefix{vip4, vip6, vip4b} {
		if s.a.HasAddr(t, "eth0", v.Addr()) || !s.b.HasAddr(t, "eth0", v.Addr()) {
			t.Errorf("VIP %v not on b only after the hand-over", v)
		}
	}
	if by := queryWhoami(t, s.c, vip4b.Addr()); by != "nodeB" {
		t.Errorf("the added VIP %v answered by %q after the hand-over, want nodeB", vip4b.Addr(), by)
	}
	t.Logf("third instance added: master on a %v after a's reload", tookAdd.Round(time.Millisecond))
	t.Logf("b's priority raised to 200: b master on all three %v after the reload; client gap (lost) IPv4 %v, IPv6 %v, added IPv4 %v",
		tookOver.Round(time.Millisecond), o4, o6, o4b)
	t.Logf("probes in all: IPv4 %d (%d lost), IPv6 %d (%d lost), added IPv4 %d (%d lost)",
		len(p4.answers)+p4.lost, p4.lost, len(p6.answers)+p6.lost, p6.lost, len(p4b.answers)+p4b.lost, p4b.lost)
	for name, o := range map[string]outage{"IPv4": o4, "IPv6": o6, "added IPv4": o4b} {
		if o.lost > 0 {
			t.Errorf("%s client: %d queries lost in the hand-over (gap %v)", name, o.lost, o.gap)
		}
	}
}
