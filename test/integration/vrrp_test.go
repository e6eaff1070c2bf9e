package integration

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/testpeer"
	"github.com/dnslb/dnslb/vrrp"
)

var (
	vip4 = netip.MustParsePrefix("10.77.0.100/24")
	vip6 = netip.MustParsePrefix("fd00:77::100/64")
)

// site is a LAN with two balancer hosts (a: 10.77.0.1, b: 10.77.0.2), each
// with its own NSD on its loopback, and a client host c (10.77.0.10).
type site struct {
	lan     *testpeer.LAN
	a, b, c *testpeer.NetNS
}

func newSite(t *testing.T, prefix string) *site {
	t.Helper()
	requirePeers(t)
	testpeer.RequireTool(t, "tcpdump")
	lan := testpeer.NewLAN(t, prefix)
	s := &site{lan: lan,
		a: lan.AddHost(t, "a", netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd00:77::1/64")),
		b: lan.AddHost(t, "b", netip.MustParsePrefix("10.77.0.2/24"), netip.MustParsePrefix("fd00:77::2/64")),
		c: lan.AddHost(t, "c", netip.MustParsePrefix("10.77.0.10/24"), netip.MustParsePrefix("fd00:77::10/64")),
	}
	return s
}

// vrrpConfig is a dnslb config for one node: the VIP, the node's own NSD
// as backend (named after the node, so whoami tells who answered), health
// checks for tracking, and a vrrp section.
func vrrpConfig(vip netip.Prefix, prio int, interval time.Duration, vrrpExtra string) string {
	return vrrpConfigWith(vip, prio, interval, [][2]string{{"local", "127.0.0.11:5301"}}, vrrpExtra)
}

// vrrpConfigWith is vrrpConfig with these backends.
func vrrpConfigWith(vip netip.Prefix, prio int, interval time.Duration, backends [][2]string, vrrpExtra string) string {
	listen := netip.AddrPortFrom(vip.Addr(), 53)
	return lbConfig([]netip.AddrPort{listen}, "127.0.0.1:9053", backends,
		healthConfig(200*time.Millisecond, 150*time.Millisecond, 300*time.Millisecond, "")+fmt.Sprintf(`vrrp:
  interface: eth0
  vrid: 51
  priority: %d
  advert_interval: %v
  vips: [%q]
  garp_delay: 0s
%s`, prio, interval, vip.String(), vrrpExtra))
}

// startNode starts dnslb with cfg in ns, serving vip.
func startNode(t *testing.T, ns *testpeer.NetNS, _, cfg string, vip netip.Addr) *lb {
	t.Helper()
	return startLB(t, ns, cfg, netip.AddrPortFrom(vip, 53), "127.0.0.1:9053")
}

func (l *lb) vrrpState() string {
	st := l.status()
	if len(st.VRRP) == 0 {
		l.t.Fatal("no vrrp in status")
	}
	return st.VRRP[0].State
}

func (l *lb) waitVRRP(state string, within time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	for l.vrrpState() != state {
		if time.Since(start) > within {
			l.t.Fatalf("vrrp state %s, want %s within %v; log:\n%s", l.vrrpState(), state, within, l.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// prober sends a whoami query to the VIP from the client every 10ms (50ms
// timeout, no retry) and records who answered when. Bounded: at most
// 3000 queries, stopped by stop().
type prober struct {
	mu      sync.Mutex
	answers []answer
	lost    int
	done    chan struct{}
	quit    chan struct{}
}

type answer struct {
	at time.Time
	by string
}

func startProber(t *testing.T, c *testpeer.NetNS, vip netip.Addr) *prober {
	t.Helper()
	return startProberTimeout(t, c, vip, 50*time.Millisecond)
}

// startProberTimeout is startProber with another timeout: a query not
// answered within it counts as lost.
func startProberTimeout(t *testing.T, c *testpeer.NetNS, vip netip.Addr, timeout time.Duration) *prober {
	t.Helper()
	p := &prober{done: make(chan struct{}), quit: make(chan struct{})}
	conn := dialConns(t, c, netip.AddrPortFrom(vip, 53), 1)[0]
	go func() {
		defer close(p.done)
		cl := &dns.Client{Net: "udp", Timeout: timeout}
		for i := 0; i < 3000; i++ {
			select {
			case <-p.quit:
				return
			default:
			}
			m := new(dns.Msg)
			m.SetQuestion("whoami.example.test.", dns.TypeTXT)
			r, _, err := cl.ExchangeWithConn(m, conn)
			p.mu.Lock()
			if err != nil || len(r.Answer) != 1 {
				p.lost++
			} else {
				p.answers = append(p.answers, answer{time.Now(), r.Answer[0].(*dns.TXT).Txt[0]})
			}
			p.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *prober) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
}

// waitFor waits until node answered after t0 and returns the longest gap
// between answers since t0 (the outage seen by the client).
func (p *prober) waitFor(t *testing.T, node string, t0 time.Time, within time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		var last time.Time
		var gap time.Duration
		found := false
		for _, a := range p.answers {
			if a.at.Before(t0) {
				last = a.at
				continue
			}
			if !last.IsZero() && a.at.Sub(last) > gap {
				gap = a.at.Sub(last)
			}
			last = a.at
			if a.by == node {
				found = true
				break
			}
		}
		p.mu.Unlock()
		if found {
			return gap
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no answer from %s within %v after the event", node, within)
	return 0
}

// TestVRRPFailover: two dnslb nodes share the VIP. SIGKILL of the master
// (the backup takes over after Master_Down_Interval), restart (preempts),
// SIGTERM (priority 0: the backup takes over at once). Measured from the
// client as the longest gap between answers, for 100ms and 1s adverts.
func TestVRRPFailover(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		vip      netip.Prefix
	}{{100 * time.Millisecond, vip4}, {time.Second, vip4}, {100 * time.Millisecond, vip6}} {
		interval, vip4 := tc.interval, tc.vip
		t.Run(fmt.Sprintf("%v-%s", interval, vip4.Addr()), func(t *testing.T) {
			s := newSite(t, "vf")
			nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
			nsdIn(t, s.b, "nodeB", "127.0.0.11:5301")
			// b runs a notify script that records its transitions
			notes := t.TempDir() + "/notes"
			script := t.TempDir() + "/notify.sh"
			writeFile(t, script, "#!/bin/sh\necho \"$1\" >> "+notes+"\n")
			if err := os.Chmod(script, 0o755); err != nil {
				t.Fatal(err)
			}
			cfgA, cfgB := vrrpConfig(vip4, 150, interval, ""), vrrpConfig(vip4, 100, interval, "  notify: "+script+"\n")
			a := startNode(t, s.a, "nodeA", cfgA, vip4.Addr())
			b := startNode(t, s.b, "nodeB", cfgB, vip4.Addr())
			// Master_Down_Interval with priority 100: 3 x interval + 156/256 x interval
			mdi := 3*interval + interval*156/256
			a.waitVRRP("master", 5*interval+2*time.Second)
			b.waitVRRP("backup", 3*time.Second)
			if !s.a.HasAddr(t, "eth0", vip4.Addr()) || s.b.HasAddr(t, "eth0", vip4.Addr()) {
				t.Fatal("VIP not on the master only")
			}
			p := startProber(t, s.c, vip4.Addr())
			time.Sleep(300 * time.Millisecond)

			// SIGKILL: no goodbye
			t0 := time.Now()
			a.signal(syscall.SIGKILL)
			a.waitExit(5 * time.Second)
			gapKill := p.waitFor(t, "nodeB", t0, mdi+3*time.Second)
			b.waitVRRP("master", 3*time.Second)

			// restart a: it removes its stale VIP, comes up backup and preempts
			t0 = time.Now()
			a = startNode(t, s.a, "nodeA", cfgA, vip4.Addr())
			a.waitVRRP("master", mdi+3*time.Second)
			gapPreempt := p.waitFor(t, "nodeA", t0, 2*time.Second)
			b.waitVRRP("backup", 3*time.Second)

			// SIGTERM: priority 0, a keeps answering until b has taken over
			t0 = time.Now()
			a.signal(syscall.SIGTERM)
			gapTerm := p.waitFor(t, "nodeB", t0, 3*time.Second)
			if code := a.waitExit(10 * time.Second); code != 0 {
				t.Errorf("SIGTERM exit code %d", code)
			}
			if s.a.HasAddr(t, "eth0", vip4.Addr()) {
				t.Error("VIP left on a after SIGTERM")
			}
			p.stop()
			t.Logf("adverts %v (Master_Down_Interval %v): client outage SIGKILL %v, preempt on restart %v, SIGTERM %v; %d of %d probes unanswered",
				interval, mdi, gapKill.Round(time.Millisecond), gapPreempt.Round(time.Millisecond), gapTerm.Round(time.Millisecond), p.lost, p.lost+len(p.answers))
			if gapKill > mdi+500*time.Millisecond {
				t.Errorf("SIGKILL outage %v > Master_Down_Interval %v + 500ms", gapKill, mdi)
			}
			if gapTerm > interval+200*time.Millisecond {
				t.Errorf("SIGTERM outage %v > one advert interval", gapTerm)
			}
			if got, _ := os.ReadFile(notes); !strings.Contains(string(got), "backup\nmaster\nbackup\nmaster\n") {
				t.Errorf("notify script saw %q", got)
			}
		})
	}
}

// TestVRRPNoPreemptAndTracking: a restarted higher-priority node with
// preempt false stays backup; the master whose only backend dies goes to
// fault (track weight 0) and hands the VIP over.
func TestVRRPNoPreemptAndTracking(t *testing.T) {
	s := newSite(t, "vt")
	nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
	nsdB := nsdIn(t, s.b, "nodeB", "127.0.0.11:5301")
	const iv = 100 * time.Millisecond
	b := startNode(t, s.b, "nodeB", vrrpConfig(vip4, 100, iv, ""), vip4.Addr())
	b.waitVRRP("master", 3*time.Second)
	a := startNode(t, s.a, "nodeA", vrrpConfig(vip4, 150, iv, "  preempt: false\n"), vip4.Addr())
	a.waitVRRP("backup", 2*time.Second)
	time.Sleep(time.Second)
	if a.vrrpState() != "backup" || b.vrrpState() != "master" {
		t.Fatalf("preempt false: a %s, b %s", a.vrrpState(), b.vrrpState())
	}
	// b's backend dies: b goes to fault and a takes over
	p := startProber(t, s.c, vip4.Addr())
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	nsdB.Freeze(t)
	b.waitVRRP("fault", 3*time.Second)
	gap := p.waitFor(t, "nodeA", t0, 3*time.Second)
	a.waitVRRP("master", 3*time.Second)
	t.Logf("tracking: master lost its backend, peer answering after a gap of %v", gap.Round(time.Millisecond))
}

// TestVRRPKeepalivedInterop runs dnslb against keepalived 2.2.7 on one
// VRID for v3 IPv4, v3 IPv6 and v2: each accepts the other as master, and
// the VIP fails over both ways.
func TestVRRPKeepalivedInterop(t *testing.T) {
	testpeer.RequireTool(t, "keepalived")
	cases := []struct {
		name    string
		version int
		vip     netip.Prefix
	}{
		{"v3-ipv4", 3, vip4},
		{"v3-ipv6", 3, vip6},
		{"v2-ipv4", 2, vip4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, "vk")
			nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
			cfg := vrrpConfig(tc.vip, 100, time.Second, fmt.Sprintf("  version: %d\n", tc.version))
			capture := s.c.Capture(t, "eth0", "ip proto 112 or ip6 proto 112")
			a := startNode(t, s.a, "nodeA", cfg, tc.vip.Addr())
			kconf := func(prio int) string {
				return testpeer.KeepalivedConf("kb", nil, testpeer.KeepalivedInstance{VRID: 51, Priority: prio, Version: tc.version, VIPs: []netip.Prefix{tc.vip}})
			}
			// keepalived with the higher priority becomes master; dnslb accepts it
			k := testpeer.StartKeepalived(t, testpeer.KeepalivedOptions{NetNS: s.b, Config: kconf(200)})
			k.WaitState(t, "MASTER", 8*time.Second)
			a.waitVRRP("backup", 5*time.Second)
			time.Sleep(2 * time.Second)
			if a.vrrpState() != "backup" || k.State() != "MASTER" {
				t.Fatalf("dnslb %s, keepalived %s", a.vrrpState(), k.State())
			}
			// keepalived stops (priority 0): dnslb takes over at once
			t0 := time.Now()
			k.Stop(t)
			a.waitVRRP("master", 3*time.Second)
			t.Logf("%s: keepalived SIGTERM -> dnslb master after %v: %s", tc.name, time.Since(t0).Round(time.Millisecond), a.status().VRRP[0].Reason)
			if !s.a.HasAddr(t, "eth0", tc.vip.Addr()) {
				t.Fatal("dnslb master without the VIP")
			}
			// keepalived back with a lower priority: it accepts dnslb as master
			k = testpeer.StartKeepalived(t, testpeer.KeepalivedOptions{NetNS: s.b, Config: kconf(50)})
			time.Sleep(4 * time.Second)
			if st := k.State(); st != "BACKUP" || a.vrrpState() != "master" {
				t.Fatalf("keepalived %q, dnslb %s:\n%s", st, a.vrrpState(), k.Log())
			}
			// dnslb stops (priority 0): keepalived takes over at once
			t0 = time.Now()
			a.signal(syscall.SIGTERM)
			k.WaitState(t, "MASTER", 3*time.Second)
			t.Logf("%s: dnslb SIGTERM -> keepalived master after %v", tc.name, time.Since(t0).Round(time.Millisecond))
			a.waitExit(10 * time.Second)
			log := k.Log()
			for _, bad := range []string{"invalid", "Invalid", "bad ", "mismatch", "error", "wrong"} {
				if strings.Contains(log, bad) {
					t.Errorf("keepalived complained (%q):\n%s", bad, log)
					break
				}
			}
			// every advert dnslb sent decodes, with TTL 255, DSCP CS6 and a valid checksum
			checkCapture(t, capture.Stop(t), tc.vip, s.a.LinkLocal(t, "eth0"))
		})
	}
}

// checkCapture verifies dnslb's adverts in a pcap (source 10.77.0.1 or
// node a's link-local address).
func checkCapture(t *testing.T, path string, vip netip.Prefix, ll netip.Addr) {
	t.Helper()
	src := netip.MustParseAddr("10.77.0.1")
	if vip.Addr().Is6() {
		src = ll
	}
	n := 0
	for _, pkt := range testpeer.ReadPackets(t, path) {
		adv, ok := testpeer.ParseVRRP(pkt)
		if !ok || adv.Src != src {
			continue
		}
		n++
		if adv.TTL != 255 || adv.Checksum == "bad" {
			t.Errorf("bad advert from dnslb: %s", adv)
		}
		tos := uint8(0)
		if ip4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			tos = ip4.TOS
		} else if ip6, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			tos = ip6.TrafficClass
		}
		if tos != 0xc0 {
			t.Errorf("advert TOS %#x, want DSCP CS6 (0xc0)", tos)
		}
		a := vrrp.Advert{Src: adv.Src, Dst: adv.Dst}
		if err := a.UnmarshalBinary(adv.Raw); err != nil {
			t.Errorf("our codec rejects our advert: %v", err)
		}
	}
	if n == 0 {
		t.Fatal("no advert from dnslb captured")
	}
	t.Logf("%d adverts from dnslb captured and verified", n)
}

// TestVRRPUnicastRFC9568: two dnslb nodes with unicast peers and the RFC
// 9568 checksum (no pseudo-header): adverts go to the peer's address, carry
// the message-only checksum, and failover works.
func TestVRRPUnicastRFC9568(t *testing.T) {
	s := newSite(t, "vu")
	nsdIn(t, s.a, "nodeA", "127.0.0.11:5301")
	nsdIn(t, s.b, "nodeB", "127.0.0.11:5301")
	capture := s.a.Capture(t, "eth0", "ip proto 112")
	extra := func(peer string) string { return "  checksum_mode: rfc9568\n  peers: [" + peer + "]\n" }
	a := startNode(t, s.a, "nodeA", vrrpConfig(vip4, 150, 100*time.Millisecond, extra("10.77.0.2")), vip4.Addr())
	b := startNode(t, s.b, "nodeB", vrrpConfig(vip4, 100, 100*time.Millisecond, extra("10.77.0.1")), vip4.Addr())
	a.waitVRRP("master", 3*time.Second)
	b.waitVRRP("backup", 3*time.Second)
	time.Sleep(500 * time.Millisecond)
	if b.vrrpState() != "backup" {
		t.Fatalf("b %s: unicast adverts not accepted", b.vrrpState())
	}
	a.signal(syscall.SIGTERM)
	b.waitVRRP("master", 3*time.Second)
	a.waitExit(10 * time.Second)
	n := 0
	for _, pkt := range testpeer.ReadPackets(t, capture.Stop(t)) {
		adv, ok := testpeer.ParseVRRP(pkt)
		if !ok || adv.Src != netip.MustParseAddr("10.77.0.1") {
			continue
		}
		n++
		if adv.Dst != netip.MustParseAddr("10.77.0.2") || adv.Checksum != testpeer.ChecksumPlain || adv.TTL != 255 {
			t.Errorf("advert %s: want unicast to 10.77.0.2 with the plain (RFC 9568) checksum", adv)
		}
	}
	if n == 0 {
		t.Fatal("no advert captured")
	}
	t.Logf("%d unicast RFC 9568 adverts verified", n)
}
