package testpeer

import (
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

var (
	vrrpGroup4 = netip.MustParseAddr("224.0.0.18")
	vrrpGroup6 = netip.MustParseAddr("ff02::12")
)

// kaPair is two keepalived instances on hosts a (priority 150) and b
// (priority 100) of a fresh LAN, and a capture of VRRP on b's eth0 that
// started before either.
type kaPair struct {
	lan    *LAN
	a, b   *NetNS
	ka, kb *Keepalived
	cap    *Capture
	start  time.Time // just before ka was started
}

// startPair starts the pair with instance in (VRID, VIPs, Version...);
// Priority is set per host. global goes into both global_defs.
func startPair(t *testing.T, prefix string, names *[]string, pids *[]int, global []string, in KeepalivedInstance) *kaPair {
	t.Helper()
	RequireTool(t, "keepalived")
	RequireTool(t, "tcpdump")
	var p kaPair
	p.lan, p.a, p.b = newTwoHostLAN(t, prefix, names)
	p.cap = p.b.Capture(t, "eth0", "ip proto 112 or ip6 proto 112")
	*pids = append(*pids, p.cap.p.pid)

	inA, inB := in, in
	inA.Priority, inB.Priority = 150, 100
	confA := KeepalivedConf("tp_a", global, inA)
	p.start = time.Now()
	p.ka = StartKeepalived(t, KeepalivedOptions{NetNS: p.a, Config: confA})
	*pids = append(*pids, p.ka.PID)
	p.kb = StartKeepalived(t, KeepalivedOptions{NetNS: p.b, Config: KeepalivedConf("tp_b", global, inB)})
	*pids = append(*pids, p.kb.PID)
	t.Logf("keepalived.conf of a:\n%s", confA)
	return &p
}

// waitMaster waits until a is MASTER with vip and b is BACKUP without it.
func (p *kaPair) waitMaster(t *testing.T, vip netip.Addr) {
	t.Helper()
	p.ka.WaitState(t, "MASTER", 10*time.Second)
	t.Logf("a MASTER %v after start", time.Since(p.start).Round(time.Millisecond))
	waitAddr(t, p.a, vip, true, 2*time.Second)
	if s := p.kb.State(); s != "BACKUP" {
		t.Errorf("b state %q, want BACKUP", s)
	}
	if p.b.HasAddr(t, "eth0", vip) {
		t.Errorf("b (BACKUP) has the VIP %v", vip)
	}
}

// waitAddr waits until h's eth0 has (want) or lacks (!want) a.
func waitAddr(t *testing.T, h *NetNS, a netip.Addr, want bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for h.HasAddr(t, "eth0", a) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: HasAddr(%v) != %v after %v: %v", h.Name(), a, want, timeout, h.Addrs(t, "eth0"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// adverts stops the capture and returns its VRRP packets, logging them.
func (p *kaPair) adverts(t *testing.T) []VRRPAdvert {
	t.Helper()
	pkts := ReadPackets(t, p.cap.Stop(t))
	ads := VRRPAdverts(pkts)
	t.Logf("capture: %d packets, %d VRRP", len(pkts), len(ads))
	for i, a := range ads {
		if i < 3 || i >= len(ads)-3 {
			t.Logf("  %s", a)
		}
	}
	if len(ads) == 0 || len(ads) != len(pkts) {
		t.Errorf("capture of VRRP has %d packets, %d of them VRRP", len(pkts), len(ads))
	}
	return ads
}

// checkAdverts checks what every advert must have, and returns those from
// src by priority.
func checkAdverts(t *testing.T, ads []VRRPAdvert, version, vrid uint8, group netip.Addr, vip netip.Addr, checksum string) map[netip.Addr][]uint8 {
	t.Helper()
	prios := map[netip.Addr][]uint8{}
	for _, a := range ads {
		if a.Dst != group || a.TTL != 255 || a.Version != version || a.Type != 1 || a.VRID != vrid ||
			!slices.Equal(a.Addrs, []netip.Addr{vip}) || a.Checksum != checksum {
			t.Errorf("advert %s: want dst %v ttl 255 VRRPv%d type 1 vrid %d addrs [%v] checksum %s",
				a, group, version, vrid, vip, checksum)
		}
		if p := prios[a.Src]; len(p) == 0 || p[len(p)-1] != a.Priority {
			prios[a.Src] = append(p, a.Priority)
		}
	}
	return prios
}

// handover returns the time from from's last advert to to's first advert
// after it, as captured (0 if there is no such pair).
func handover(ads []VRRPAdvert, from, to netip.Addr) time.Duration {
	var last time.Time
	for _, a := range ads {
		switch {
		case a.Src == from:
			last = a.Time
		case a.Src == to && !last.IsZero():
			return a.Time.Sub(last)
		}
	}
	return 0
}

// TestKeepalivedFailover: VRRPv3 over IPv4, vrid 51, priorities 150/100,
// VIP 10.77.0.100/24. The 150 one becomes MASTER with the VIP; stopping it
// (priority 0) hands over to the other within ~1s.
func TestKeepalivedFailover(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, keepalived, tcpdump; takes 5 s; run without -short")
	t.Parallel()
	names, pids := trackGone(t)
	p := startPair(t, "tpka", names, pids, nil,
		KeepalivedInstance{VRID: 51, Version: 3, VIPs: []netip.Prefix{vip4}})
	vip := vip4.Addr()
	p.waitMaster(t, vip)

	t0 := time.Now()
	p.ka.Stop(t)
	t.Logf("a stopped in %v", time.Since(t0).Round(time.Millisecond))
	p.kb.WaitState(t, "MASTER", 5*time.Second)
	took := time.Since(t0)
	t.Logf("b MASTER %v after a's SIGTERM", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("b took %v to become MASTER after a's graceful stop, want < 3s (skew time 0.6s)", took)
	}
	waitAddr(t, p.b, vip, true, 2*time.Second)
	if p.a.HasAddr(t, "eth0", vip) {
		t.Errorf("a still has the VIP after a graceful stop")
	}
	for _, want := range []string{"(VI_51) sent 0 priority", "(VI_51) removing VIPs."} {
		if !strings.Contains(p.ka.Log(), want) {
			t.Errorf("a's log lacks %q", want)
		}
	}
	if !strings.Contains(p.kb.Log(), "(VI_51) Backup received priority 0 advertisement") {
		t.Errorf("b's log lacks the priority 0 advertisement")
	}
	if p.ka.Running() || p.ka.State() != "MASTER" {
		t.Errorf("a after Stop: running %v, state %q (want false, MASTER: the log's last state)", p.ka.Running(), p.ka.State())
	}

	ads := p.adverts(t)
	prios := checkAdverts(t, ads, 3, 51, vrrpGroup4, vip, ChecksumPseudoHeader)
	if got, want := prios[v4A.Addr()], []uint8{150, 0}; !slices.Equal(got, want) {
		t.Errorf("a's advert priorities %v, want %v", got, want)
	}
	if got, want := prios[v4B.Addr()], []uint8{100}; !slices.Equal(got, want) {
		t.Errorf("b's advert priorities %v, want %v", got, want)
	}
	d := handover(ads, v4A.Addr(), v4B.Addr())
	t.Logf("on the wire: b's first advert %v after a's priority 0", d.Round(time.Millisecond))
	if d <= 0 || d > 2*time.Second {
		t.Errorf("b's first advert %v after a's priority 0, want within 2s (skew time 0.6s)", d)
	}
	for _, a := range ads {
		if a.AdverInt != 100 {
			t.Errorf("advert %s: max adver int %d cs, want 100", a, a.AdverInt)
		}
	}
	// gopacket's VRRPv2 layer takes the v3 packet as well (it does not
	// check the version): Version 3, and AdverInt the low byte of the
	// 12-bit centisecond field. Use ParseVRRP for v3.
	pkts := ReadPackets(t, p.cap.Stop(t))
	ip := pkts[0].Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip.Protocol != layers.IPProtocolVRRP || ip.TTL != 255 || !ip.DstIP.Equal(vrrpGroup4.AsSlice()) {
		t.Errorf("first packet: IP proto %v ttl %d dst %v", ip.Protocol, ip.TTL, ip.DstIP)
	}
	if l, ok := pkts[0].Layer(layers.LayerTypeVRRP).(*layers.VRRPv2); ok {
		t.Logf("gopacket VRRPv2 layer on a v3 packet: version %d vrid %d prio %d adverint %d", l.Version, l.VirtualRtrID, l.Priority, l.AdverInt)
	}

	t0 = time.Now()
	p.kb.Kill(t)
	if p.kb.Running() {
		t.Errorf("b running after Kill")
	}
	t.Logf("b killed in %v", time.Since(t0).Round(time.Millisecond))
}

// TestKeepalivedVariants covers the other protocol variants the VRRP
// interop tests need, and the other ways a master goes away.
func TestKeepalivedVariants(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, keepalived, tcpdump; takes 13 s; run without -short")
	t.Parallel()
	t.Run("v2-ipv4-kill", func(t *testing.T) {
		t.Parallel()
		names, pids := trackGone(t)
		p := startPair(t, "tpkv2", names, pids, nil,
			KeepalivedInstance{VRID: 52, Version: 2, VIPs: []netip.Prefix{vip4}})
		vip := vip4.Addr()
		p.waitMaster(t, vip)

		t0 := time.Now()
		p.ka.Kill(t)
		p.kb.WaitState(t, "MASTER", 8*time.Second)
		took := time.Since(t0)
		t.Logf("b MASTER %v after a's SIGKILL (no priority 0)", took.Round(time.Millisecond))
		if took < 2500*time.Millisecond {
			t.Errorf("b MASTER %v after a killed: want about 3.6s (3 adverts + skew)", took)
		}
		waitAddr(t, p.b, vip, true, 2*time.Second)
		if !p.a.HasAddr(t, "eth0", vip) {
			t.Errorf("killed a no longer has the VIP: who removed it?")
		}

		ads := p.adverts(t)
		prios := checkAdverts(t, ads, 2, 52, vrrpGroup4, vip, ChecksumPlain)
		if got, want := prios[v4A.Addr()], []uint8{150}; !slices.Equal(got, want) {
			t.Errorf("a's advert priorities %v, want %v (no priority 0 when killed)", got, want)
		}
		if got, want := prios[v4B.Addr()], []uint8{100}; !slices.Equal(got, want) {
			t.Errorf("b's advert priorities %v, want %v", got, want)
		}
		t.Logf("on the wire: b's first advert %v after a's last", handover(ads, v4A.Addr(), v4B.Addr()).Round(time.Millisecond))
		// gopacket decodes VRRPv2.
		pkts := ReadPackets(t, p.cap.Path)
		l, ok := pkts[0].Layer(layers.LayerTypeVRRP).(*layers.VRRPv2)
		if !ok {
			t.Fatalf("gopacket found no VRRPv2 layer in %v", pkts[0])
		}
		if l.Version != 2 || l.VirtualRtrID != 52 || l.Priority != 150 || l.AdverInt != 1 ||
			l.AuthType != layers.VRRPv2AuthNoAuth || len(l.IPAddress) != 1 || !l.IPAddress[0].Equal(vip.AsSlice()) {
			t.Errorf("gopacket VRRPv2: %+v", l)
		}
		if ads[0].AdverInt != 1 || ads[0].AuthType != 0 {
			t.Errorf("ParseVRRP v2: adver int %d auth %d, want 1, 0", ads[0].AdverInt, ads[0].AuthType)
		}
	})

	t.Run("v3-ipv6-stop", func(t *testing.T) {
		t.Parallel()
		names, pids := trackGone(t)
		// No Version: IPv6 instances are always VRRPv3.
		p := startPair(t, "tpkv6", names, pids, nil,
			KeepalivedInstance{VRID: 53, VIPs: []netip.Prefix{vip6}})
		vip := vip6.Addr()
		p.waitMaster(t, vip)

		t0 := time.Now()
		p.ka.Stop(t)
		p.kb.WaitState(t, "MASTER", 5*time.Second)
		t.Logf("b MASTER %v after a's SIGTERM", time.Since(t0).Round(time.Millisecond))
		waitAddr(t, p.b, vip, true, 2*time.Second)
		if p.a.HasAddr(t, "eth0", vip) {
			t.Errorf("a still has the VIP after a graceful stop")
		}

		ads := p.adverts(t)
		prios := checkAdverts(t, ads, 3, 53, vrrpGroup6, vip, ChecksumPseudoHeader)
		llA, llB := p.a.LinkLocal(t, "eth0"), p.b.LinkLocal(t, "eth0")
		if got, want := prios[llA], []uint8{150, 0}; !slices.Equal(got, want) {
			t.Errorf("a's (%v) advert priorities %v, want %v; all: %v", llA, got, want, prios)
		}
		if got, want := prios[llB], []uint8{100}; !slices.Equal(got, want) {
			t.Errorf("b's (%v) advert priorities %v, want %v", llB, got, want)
		}
	})

	t.Run("v3-ipv4-linkdown", func(t *testing.T) {
		t.Parallel()
		names, pids := trackGone(t)
		p := startPair(t, "tpkld", names, pids, []string{"vrrp_version 3"},
			KeepalivedInstance{VRID: 54, VIPs: []netip.Prefix{vip4}})
		vip := vip4.Addr()
		p.waitMaster(t, vip)

		t0 := time.Now()
		p.a.SetLink(t, "eth0", false)
		p.ka.WaitState(t, "FAULT", 3*time.Second)
		t.Logf("a FAULT %v after its eth0 went down", time.Since(t0).Round(time.Millisecond))
		p.kb.WaitState(t, "MASTER", 6*time.Second)
		t.Logf("b MASTER %v after a's eth0 went down", time.Since(t0).Round(time.Millisecond))
		waitAddr(t, p.b, vip, true, 2*time.Second)

		t0 = time.Now()
		p.a.SetLink(t, "eth0", true)
		p.ka.WaitState(t, "MASTER", 8*time.Second) // preempts b
		t.Logf("a MASTER again %v after its eth0 came up", time.Since(t0).Round(time.Millisecond))
		p.kb.WaitState(t, "BACKUP", 3*time.Second)
		waitAddr(t, p.a, vip, true, 2*time.Second)
		waitAddr(t, p.b, vip, false, 2*time.Second)

		checkAdverts(t, p.adverts(t), 3, 54, vrrpGroup4, vip, ChecksumPseudoHeader)
	})
	// keepalived 2.2.7 has no v3_checksum_as_v2 (2.2.8 has): the RFC 9568
	// checksum mode is covered by dnslb-to-dnslb tests and byte fixtures.
}

// skipTB records Skipf and Fatalf and ends the goroutine, like testing.T.
type skipTB struct {
	testing.TB
	skipped, fatal bool
	msg            string
}

func (s *skipTB) Helper() {}
func (s *skipTB) Skipf(format string, args ...any) {
	s.skipped = true
	s.msg = format
	runtime.Goexit()
}
func (s *skipTB) Fatalf(format string, args ...any) {
	s.fatal = true
	s.msg = format
	runtime.Goexit()
}

func TestRequireKeepalivedKeyword(t *testing.T) {
	SkipShort(t, "runs keepalived -t (an external process); run without -short")
	t.Parallel()
	RequireTool(t, "keepalived")
	for _, c := range []struct {
		keyword string
		skip    bool
	}{
		{"vrrp_version 3", false},        // global_defs
		{"old_unicast_checksum", false},  // vrrp_instance only
		{"tp_no_such_keyword_xyz", true}, // nowhere
		{"vrrp_garp_master_delay 1", false},
	} {
		st := &skipTB{TB: t}
		goexitSafe(func() { RequireKeepalivedKeyword(st, c.keyword) })
		if st.skipped != c.skip || st.fatal {
			t.Errorf("RequireKeepalivedKeyword(%q): skipped %v fatal %v (%s), want skipped %v", c.keyword, st.skipped, st.fatal, st.msg, c.skip)
		}
	}
}

// TestStartKeepalivedBadConfigFails: an unknown keyword, which keepalived
// itself would log and ignore, fails StartKeepalived with the reason.
func TestStartKeepalivedBadConfigFails(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, keepalived; takes 5 s; run without -short")
	t.Parallel()
	RequireTool(t, "keepalived")
	names, pids := trackGone(t)
	lan := NewLAN(t, "tpkbad")
	h := lan.AddHost(t, "a", v4A)
	*names = append(*names, lan.Switch().Name(), h.Name())
	conf := KeepalivedConf("tp_bad", []string{"tp_no_such_keyword_xyz"},
		KeepalivedInstance{VRID: 56, Priority: 100, VIPs: []netip.Prefix{vip4}})
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartKeepalived(ft, KeepalivedOptions{NetNS: h, Config: conf})
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("StartKeepalived with a bad config did not return within 15s")
	}
	if !ft.fatal || !strings.Contains(ft.msg, "Unknown keyword 'tp_no_such_keyword_xyz'") {
		t.Fatalf("StartKeepalived with an unknown keyword: fatal %v, message:\n%s", ft.fatal, ft.msg)
	}
	t.Logf("reported as expected:\n%s", ft.msg)

	// AllowConfigErrors starts it anyway; keepalived ignores the line.
	k := StartKeepalived(t, KeepalivedOptions{NetNS: h, Config: conf, AllowConfigErrors: true})
	*pids = append(*pids, k.PID)
	if !strings.Contains(k.Log(), "Unknown keyword 'tp_no_such_keyword_xyz'") {
		t.Errorf("keepalived's log lacks the unknown keyword:\n%s", k.Log())
	}
	k.WaitState(t, "MASTER", 10*time.Second) // alone on the LAN
	waitAddr(t, h, vip4.Addr(), true, 2*time.Second)
}

// TestKeepalivedConfSync checks the vrrp_sync_group text (no root needed;
// StartKeepalived in TestKeepalivedSyncGroup has keepalived -t check it).
func TestKeepalivedConfSync(t *testing.T) {
	ins := []KeepalivedInstance{
		{VRID: 53, Priority: 150, Version: 3, VIPs: []netip.Prefix{vip4}},
		{VRID: 54, Priority: 150, VIPs: []netip.Prefix{vip6}},
	}
	conf := KeepalivedConfSync("tp_s", nil, []KeepalivedSyncGroup{{Name: "G_DNS", Instances: []string{"VI_53", "VI_54"}}}, ins...)
	if plain := KeepalivedConf("tp_s", nil, ins...); !strings.HasPrefix(conf, plain) {
		t.Errorf("KeepalivedConfSync does not start with KeepalivedConf's text:\n%s", conf)
	}
	want := "vrrp_sync_group G_DNS {\n    group {\n        VI_53\n        VI_54\n    }\n}\n"
	if !strings.HasSuffix(conf, want) {
		t.Errorf("KeepalivedConfSync:\n%s\nwant it to end with:\n%s", conf, want)
	}
	if got := KeepalivedConfSync("tp_s", nil, []KeepalivedSyncGroup{{Instances: []string{"VI_53"}}}, ins[0]); !strings.Contains(got, "vrrp_sync_group G_VI_53 {") {
		t.Errorf("default group name: %s", got)
	}
}

// TestKeepalivedSyncGroup: a pair running a sync group of an IPv4 and an
// IPv6 instance; both instances are MASTER on a, and both move to b when
// a stops.
func TestKeepalivedSyncGroup(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, keepalived; takes 6 s; run without -short")
	t.Parallel()
	RequireTool(t, "keepalived")
	names, pids := trackGone(t)
	_, a, b := newTwoHostLAN(t, "tpksg", names)
	groups := []KeepalivedSyncGroup{{Name: "G_DNS", Instances: []string{"VI_53", "VI_54"}}}
	conf := func(id string, prio int) string {
		return KeepalivedConfSync(id, nil, groups,
			KeepalivedInstance{VRID: 53, Priority: prio, Version: 3, VIPs: []netip.Prefix{vip4}},
			KeepalivedInstance{VRID: 54, Priority: prio, VIPs: []netip.Prefix{vip6}})
	}
	ka := StartKeepalived(t, KeepalivedOptions{NetNS: a, Config: conf("tp_a", 150)})
	*pids = append(*pids, ka.PID)
	kb := StartKeepalived(t, KeepalivedOptions{NetNS: b, Config: conf("tp_b", 100)})
	*pids = append(*pids, kb.PID)
	deadline := time.Now().Add(10 * time.Second)
	for ka.InstanceState("VI_53") != "MASTER" || ka.InstanceState("VI_54") != "MASTER" {
		if time.Now().After(deadline) {
			t.Fatalf("a not MASTER on both instances:\n%s", ka.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitAddr(t, a, vip4.Addr(), true, 2*time.Second)
	waitAddr(t, a, vip6.Addr(), true, 2*time.Second)
	if kb.InstanceState("VI_53") != "BACKUP" || kb.InstanceState("VI_54") != "BACKUP" {
		t.Errorf("b: VI_53 %s, VI_54 %s, want BACKUP", kb.InstanceState("VI_53"), kb.InstanceState("VI_54"))
	}
	t0 := time.Now()
	ka.Stop(t)
	deadline = time.Now().Add(5 * time.Second)
	for kb.InstanceState("VI_53") != "MASTER" || kb.InstanceState("VI_54") != "MASTER" {
		if time.Now().After(deadline) {
			t.Fatalf("b not MASTER on both instances after a stopped:\n%s", kb.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("b MASTER on both instances %v after a's SIGTERM", time.Since(t0).Round(time.Millisecond))
	waitAddr(t, b, vip4.Addr(), true, 2*time.Second)
	waitAddr(t, b, vip6.Addr(), true, 2*time.Second)
	for _, want := range []string{"VRRP_Group(G_DNS) Syncing instances to MASTER state", "(VI_53) Entering MASTER STATE", "(VI_54) Entering MASTER STATE"} {
		if !strings.Contains(kb.Log(), want) {
			t.Errorf("b's log lacks %q:\n%s", want, kb.Log())
		}
	}
}
