package testpeer

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"
)

// Addresses of the NOTIFY lab (one LAN per test, so tests may share them).
var (
	labPrimary  = netip.MustParseAddr("10.78.0.2")
	labVIP      = netip.MustParseAddr("10.78.0.53") // dnslb's host; here a stranger
	labSec      = []netip.Addr{netip.MustParseAddr("10.78.0.11"), netip.MustParseAddr("10.78.0.12"), netip.MustParseAddr("10.78.0.13")}
	labZoneA    = "example.test."
	labZoneB    = "second.test."
	labSerialA0 = uint32(100)
	labSerialB0 = uint32(7)
)

func labZones() []ZoneSpec {
	return []ZoneSpec{
		{Name: labZoneA, Serial: labSerialA0, Records: "www\tIN\tA\t192.0.2.1"},
		{Name: labZoneB, Serial: labSerialB0},
	}
}

func ap53(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, 53) }

// notifyLab is a LAN with a primary NSD (10.78.0.2), an empty host
// holding the VIP address (10.78.0.53: it plays the stranger), NSD
// secondaries on .11 and .12 and a Knot secondary on .13, all serving
// example.test. and second.test.
type notifyLab struct {
	lan     *LAN
	prim    *NetNS
	vip     *NetNS
	secs    []*NetNS // .11, .12, .13
	primary *NSD
	nsd     []*NSD // on .11, .12
	knot    *Knot  // on .13
	key     *TSIGKey
}

// newNotifyLab builds the lab; the primary notifies notifyTo. It waits
// until every secondary has both zones.
func newNotifyLab(t *testing.T, prefix string, key *TSIGKey, notifyTo []netip.AddrPort, names *[]string, pids *[]int) *notifyLab {
	t.Helper()
	RequireTool(t, "nsd")
	RequireTool(t, "knotd")
	t0 := time.Now()
	defer func() { t.Logf("lab ready after %v", time.Since(t0).Round(time.Millisecond)) }()
	l := &notifyLab{lan: NewLAN(t, prefix), key: key}
	l.prim = l.lan.AddHost(t, "p", netip.PrefixFrom(labPrimary, 24))
	l.vip = l.lan.AddHost(t, "lb", netip.PrefixFrom(labVIP, 24))
	*names = append(*names, l.lan.Switch().Name(), l.prim.Name(), l.vip.Name())
	for i, a := range labSec {
		h := l.lan.AddHost(t, "s"+string(rune('1'+i)), netip.PrefixFrom(a, 24))
		l.secs = append(l.secs, h)
		*names = append(*names, h.Name())
	}
	t.Logf("LAN up after %v", time.Since(t0).Round(time.Millisecond))
	l.primary = StartNSD(t, NSDOptions{Name: "primary", Addr: ap53(labPrimary), NetNS: l.prim.Name(),
		Zones: labZones(), Primary: true, NotifyTo: notifyTo, TSIG: key, Verbosity: 2})
	*pids = append(*pids, l.primary.PID)
	for i := range 2 {
		n := StartNSD(t, NSDOptions{Name: "nsd" + string(rune('1'+i)), Addr: ap53(labSec[i]), NetNS: l.secs[i].Name(),
			Zones: labZones(), PrimaryAddr: labPrimary, TSIG: key, Verbosity: 2})
		l.nsd = append(l.nsd, n)
		*pids = append(*pids, n.PID)
	}
	l.knot = StartKnot(t, KnotOptions{Name: "knot3", Addr: ap53(labSec[2]), NetNS: l.secs[2],
		Zones: labZones(), PrimaryAddr: labPrimary, TSIG: key})
	*pids = append(*pids, l.knot.PID)
	l.waitAll(t, labZoneA, labSerialA0)
	l.waitAll(t, labZoneB, labSerialB0)
	return l
}

// waitAll waits (5s at most) until every secondary serves zone with at
// least serial, asking each from its own namespace.
func (l *notifyLab) waitAll(t *testing.T, zone string, serial uint32) {
	t.Helper()
	for i, a := range labSec {
		d := WaitSerial(t, l.secs[i], ap53(a), zone, serial, 5*time.Second)
		t.Logf("%v has %s serial %d after %v", a, zone, serial, d.Round(time.Millisecond))
	}
}

// sendNotify sends a NOTIFY for zone (with serial in the answer section,
// signed with key if set) from inside ns to server and returns the reply.
func sendNotify(t *testing.T, ns *NetNS, server netip.AddrPort, network, zone string, serial uint32, key *TSIGKey) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetNotify(zone)
	soa, err := dns.NewRR(zone + " 300 IN SOA ns1." + zone + " hostmaster." + zone + " 0 3600 900 604800 300")
	if err != nil {
		t.Fatal(err)
	}
	soa.(*dns.SOA).Serial = serial
	m.Answer = []dns.RR{soa}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	if key != nil {
		c = key.Client(network, 2*time.Second)
		m.SetTsig(key.Name, key.DNSAlgorithm(), 300, time.Now().Unix())
	}
	var r *dns.Msg
	ns.Do(t, func() { r, _, err = c.Exchange(m, server.String()) })
	if err != nil && r == nil {
		t.Fatalf("NOTIFY %s to %v over %s from %s: %v", zone, server, network, ns.Name(), err)
	}
	// A TSIG error on the reply (e.g. an unsigned REFUSED to a signed
	// query) is expected for refusals; the rcode is what counts.
	return r
}

func testKey() *TSIGKey {
	k := NewTSIGKey("xfr.test.")
	return &k
}

// TestNotifyPrimaryToSecondaries: a primary NSD notifies each secondary
// directly (NSD .11, .12, Knot .13); after SetSerial on both zones every
// secondary has the new serial within a few seconds. Captures on .11 and
// .13 show the NOTIFYs: UDP from the primary's address, answered NOERROR.
func TestNotifyPrimaryToSecondaries(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, NSD, Knot, tcpdump; takes 2 s; run without -short")
	t.Parallel()
	forEachKey(t, func(t *testing.T, tc keyCase, names *[]string, pids *[]int) {
		var to []netip.AddrPort
		for _, a := range labSec {
			to = append(to, ap53(a))
		}
		l := newNotifyLab(t, "nt"+tc.name[:1], tc.key, to, names, pids)
		capNSD := l.secs[0].Capture(t, "eth0", "port 53")
		capKnot := l.secs[2].Capture(t, "eth0", "port 53")

		// One zone at a time: SetSerial reloads NSD (SIGHUP), and a
		// reload while a secondary is transferring the other zone resets
		// that transfer, which Knot retries only after 15 minutes.
		t0 := time.Now()
		for _, z := range []struct {
			name   string
			serial uint32
		}{{labZoneA, labSerialA0 + 1}, {labZoneB, labSerialB0 + 1}} {
			l.primary.SetSerial(t, z.name, z.serial)
			for i, a := range labSec {
				WaitSerial(t, l.secs[i], ap53(a), z.name, z.serial, 5*time.Second)
				t.Logf("%v: %s serial %d %v after the first SetSerial", a, z.name, z.serial, time.Since(t0).Round(time.Millisecond))
			}
		}
		l.prim.Do(t, func() {
			if got := Whoami(t, ap53(labPrimary)); got != "primary" {
				t.Errorf("primary's whoami = %q", got)
			}
			r := Query(t, ap53(labPrimary), "www."+labZoneA, dns.TypeA)
			if len(r.Answer) != 1 || !r.Authoritative {
				t.Errorf("primary: www.%s A: %v", labZoneA, r)
			}
		})

		for _, c := range []struct {
			name string
			cap  *Capture
			dst  netip.Addr
		}{{"nsd1", capNSD, labSec[0]}, {"knot3", capKnot, labSec[2]}} {
			msgs := DNSMessages(ReadPackets(t, c.cap.Stop(t)))
			for _, zone := range []string{labZoneA, labZoneB} {
				ns := Notifies(msgs, zone, c.dst)
				if len(ns) == 0 {
					t.Errorf("%s: no NOTIFY for %s captured", c.name, zone)
					continue
				}
				for _, n := range ns {
					t.Logf("%s: %v", c.name, n)
					if n.Transport != "udp" || n.Src.Addr() != labPrimary || n.Dst.Port() != 53 {
						t.Errorf("%s: NOTIFY %v: want udp from %v to port 53", c.name, n, labPrimary)
					}
					if (n.Msg.IsTsig() != nil) != (tc.key != nil) {
						t.Errorf("%s: NOTIFY %v: TSIG %v, want %v", c.name, n, n.Msg.IsTsig() != nil, tc.key != nil)
					}
				}
				acked := false
				for _, m := range msgs {
					if m.IsNotifyReply() && m.Src.Addr() == c.dst && m.Msg.Rcode == dns.RcodeSuccess &&
						len(m.Msg.Question) > 0 && m.Msg.Question[0].Name == zone {
						acked = true
					}
				}
				if !acked {
					t.Errorf("%s: no NOERROR reply to a NOTIFY for %s captured", c.name, zone)
				}
			}
		}
	})
}

// TestNotifyFromStrangerRefused: the primary notifies nobody. After a
// SetSerial only the primary has the new serial; a NOTIFY from the VIP
// host (10.78.0.53, not allowed) is refused — NSD answers REFUSED, Knot
// NOTAUTH — and no secondary transfers. A NOTIFY for a zone a secondary
// does not serve gets NXDOMAIN from NSD, NOTAUTH from Knot. With TSIG, a correctly signed
// NOTIFY from the stranger and an unsigned one from the primary's own
// address are refused too. Then the same NOTIFY from the primary's address
// (signed if TSIG; over TCP) is accepted (NOERROR) and every secondary
// catches up.
func TestNotifyFromStrangerRefused(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, NSD, Knot; takes 4 s; run without -short")
	t.Parallel()
	forEachKey(t, func(t *testing.T, tc keyCase, names *[]string, pids *[]int) {
		l := newNotifyLab(t, "ns"+tc.name[:1], tc.key, nil, names, pids)
		want := labSerialA0 + 1
		l.primary.SetSerial(t, labZoneA, want)

		wantRcode := []int{dns.RcodeRefused, dns.RcodeRefused, dns.RcodeNotAuth} // NSD, NSD, Knot
		check := func(what string, from *NetNS, key *TSIGKey) {
			t.Helper()
			for i, a := range labSec {
				for _, network := range []string{"udp", "tcp"} {
					r := sendNotify(t, from, ap53(a), network, labZoneA, want, key)
					tsig := "none"
					if ts := r.IsTsig(); ts != nil {
						tsig = "error " + dns.RcodeToString[int(ts.Error)]
					}
					t.Logf("%s over %s to %v: %s (AA=%v, question %d, TSIG %s)", what, network, a,
						dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Question), tsig)
					if r.Rcode != wantRcode[i] {
						t.Errorf("%s over %s to %v: rcode %s, want %s", what, network, a,
							dns.RcodeToString[r.Rcode], dns.RcodeToString[wantRcode[i]])
					}
				}
			}
		}
		check("NOTIFY from the stranger", l.vip, tc.key)
		// A zone nobody serves, from the primary's address.
		for i, a := range labSec {
			r := sendNotify(t, l.prim, ap53(a), "udp", "other.test.", 1, nil)
			t.Logf("NOTIFY for other.test. to %v: %s (AA=%v, question %d)", a, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Question))
			if want := []int{dns.RcodeNameError, dns.RcodeNameError, dns.RcodeNotAuth}[i]; r.Rcode != want {
				t.Errorf("NOTIFY for other.test. to %v: rcode %s, want %s", a, dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
			}
		}
		if tc.key != nil {
			check("unsigned NOTIFY from the primary's address", l.prim, nil)
			bad := *tc.key
			bad.Secret = NewTSIGKey(bad.Name).Secret
			wantRcode = []int{dns.RcodeNotAuth, dns.RcodeNotAuth, dns.RcodeNotAuth}
			check("NOTIFY with a wrong secret from the primary's address", l.prim, &bad)
		}
		// Had any secondary accepted, it would transfer within ms.
		time.Sleep(1500 * time.Millisecond)
		for i, a := range labSec {
			if got, ok := SOASerial(t, l.secs[i], ap53(a), labZoneA); !ok || got != labSerialA0 {
				t.Errorf("%v: serial %d (ok %v) after refused NOTIFYs, want %d", a, got, ok, labSerialA0)
			}
		}
		// WaitSerial's timeout names the server and shows its log.
		ft := &fatalTB{TB: t}
		goexitSafe(func() { WaitSerial(ft, l.prim, ap53(labSec[0]), labZoneA, want, 300*time.Millisecond) })
		if !ft.fatal || !strings.Contains(ft.msg, "serial 101 not reached") || !strings.Contains(ft.msg, "nsd-nsd1.log") {
			t.Errorf("WaitSerial for a serial never sent: fatal %v, message:\n%s", ft.fatal, ft.msg)
		}
		if got, _ := SOASerial(t, l.prim, ap53(labPrimary), labZoneA); got != want {
			t.Fatalf("primary serves %d, want %d", got, want)
		}
		for _, n := range l.nsd {
			b, _ := readFile(n.LogPath)
			if !strings.Contains(b, "notify for example.test. from 10.78.0.53 refused") {
				t.Errorf("%s's log lacks the refusal:\n%s", n.Name, n.logTail())
			}
		}
		// Knot logs refused NOTIFYs at debug level only.
		if strings.Contains(l.knot.Log(), "10.78.0.53") {
			t.Logf("Knot logged the stranger after all:\n%s", l.knot.logTail())
		}

		// The primary's address (and key) is allowed; over TCP too
		// (the primary notifies over UDP, Knot primaries over TCP).
		for i, a := range labSec {
			r := sendNotify(t, l.prim, ap53(a), "tcp", labZoneA, want, tc.key)
			if r.Rcode != dns.RcodeSuccess {
				t.Errorf("NOTIFY from the primary's address to %v: rcode %s, want NOERROR", a, dns.RcodeToString[r.Rcode])
			}
			d := WaitSerial(t, l.secs[i], ap53(a), labZoneA, want, 5*time.Second)
			t.Logf("%v: serial %d %v after an allowed NOTIFY", a, want, d.Round(time.Millisecond))
		}
	})
}

// TestNSDNotifyRetries: NSD 4.6.1's NOTIFY retries with the default
// notify-retry (5), for the facts at the top of dnsrole.go. The primary's
// startup NOTIFY goes to 10.78.0.53:53, where nothing listens (ICMP port
// unreachable, which NSD ignores), and to an NSD on .11 that refuses it
// (its primary is .99). The refusing one gets 5 NOTIFYs at once, each
// right after the previous REFUSED, then NSD gives up on it; the silent
// one gets a NOTIFY every ~3s (the test watches the first three; all 5 and
// the give-up 15s after the first take too long for a test).
func TestNSDNotifyRetries(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, NSD, tcpdump; takes 7 s; run without -short")
	t.Parallel()
	names, pids := trackGone(t)
	RequireTool(t, "nsd")
	lan := NewLAN(t, "nr")
	prim := lan.AddHost(t, "p", netip.PrefixFrom(labPrimary, 24))
	vip := lan.AddHost(t, "lb", netip.PrefixFrom(labVIP, 24))
	sec := lan.AddHost(t, "s1", netip.PrefixFrom(labSec[0], 24))
	*names = append(*names, lan.Switch().Name(), prim.Name(), vip.Name(), sec.Name())
	zones := []ZoneSpec{{Name: labZoneA, Serial: labSerialA0}}
	refuser := StartNSD(t, NSDOptions{Name: "refuser", Addr: ap53(labSec[0]), NetNS: sec.Name(),
		Zones: zones, PrimaryAddr: netip.MustParseAddr("10.78.0.99"), Verbosity: 2})
	*pids = append(*pids, refuser.PID)
	capP := prim.Capture(t, "eth0", "udp port 53")
	p := StartNSD(t, NSDOptions{Name: "primary", Addr: ap53(labPrimary), NetNS: prim.Name(),
		Zones: zones, Primary: true, NotifyTo: []netip.AddrPort{ap53(labVIP), ap53(labSec[0])}})
	*pids = append(*pids, p.PID)

	const giveUp = "max notify send count reached, 10.78.0.11@53 unreachable"
	t0 := time.Now()
	for !strings.Contains(readLog(p.LogPath), giveUp) {
		if time.Since(t0) > 5*time.Second {
			t.Fatalf("no %q in the primary's log:\n%s", giveUp, p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The third NOTIFY to the silent target is due 6s after the first.
	time.Sleep(6500 * time.Millisecond)
	var silent, refused []CapturedDNS
	for deadline := time.Now().Add(4 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		msgs := DNSMessages(readPacketsSoFar(t, capP.Path))
		silent, refused = Notifies(msgs, labZoneA, labVIP), Notifies(msgs, labZoneA, labSec[0])
		if len(silent) >= 3 || time.Now().After(deadline) {
			break
		}
	}
	capP.Stop(t)
	for _, n := range append(append([]CapturedDNS(nil), refused...), silent...) {
		t.Logf("%v", n)
	}
	if len(refused) != 5 {
		t.Errorf("%d NOTIFYs to the refusing 10.78.0.11, want 5 (notify-retry default)", len(refused))
	} else if d := refused[4].Time.Sub(refused[0].Time); d > time.Second {
		t.Errorf("5 NOTIFYs to the refusing 10.78.0.11 took %v, want back-to-back", d)
	}
	if n := strings.Count(readLog(p.LogPath), "received notify response error REFUSED from 10.78.0.11@53"); n != 5 {
		t.Errorf("primary logged %d REFUSED responses, want 5:\n%s", n, p.logTail())
	}
	if len(silent) < 3 {
		t.Fatalf("%d NOTIFYs to the silent 10.78.0.53 within ~10s, want >= 3", len(silent))
	}
	for i := 1; i < len(silent); i++ {
		// NSD checks the timeout in whole seconds (time(NULL)); under
		// load the gap grows.
		if d := silent[i].Time.Sub(silent[i-1].Time); d < 1900*time.Millisecond || d > 5*time.Second {
			t.Errorf("NOTIFY %d to 10.78.0.53 %v after the previous one, want ~3s", i+1, d.Round(time.Millisecond))
		}
	}
}

// readPacketsSoFar reads a pcap tcpdump is still writing: a record cut
// off at the end is dropped.
func readPacketsSoFar(t *testing.T, path string) []gopacket.Packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return nil // header not written yet
	}
	var pkts []gopacket.Packet
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			return pkts
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		p.Metadata().CaptureInfo = ci
		pkts = append(pkts, p)
	}
}

// TestNSDRoleOptionsRejected: contradictory role options fail the test
// before anything starts.
func TestNSDRoleOptionsRejected(t *testing.T) {
	t.Parallel()
	RequireTool(t, "nsd")
	zones := []ZoneSpec{{Name: labZoneA}}
	for _, tc := range []struct {
		name string
		o    NSDOptions
		want string
	}{
		{"no role", NSDOptions{Zones: zones}, "need Primary or PrimaryAddr"},
		{"both roles", NSDOptions{Zones: zones, Primary: true, PrimaryAddr: labPrimary}, "both set"},
		{"notify without zones", NSDOptions{NotifyTo: []netip.AddrPort{ap53(labVIP)}}, "need Zones"},
		{"secondary notifies", NSDOptions{Zones: zones, PrimaryAddr: labPrimary, NotifyTo: []netip.AddrPort{ap53(labVIP)}}, "for primaries"},
		{"bad zone", NSDOptions{Zones: []ZoneSpec{{Name: "a b."}}, Primary: true}, "plain domain name"},
		{"bad key", NSDOptions{Zones: zones, Primary: true, TSIG: &TSIGKey{Name: "k.", Secret: "!!"}}, "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Addr = netip.MustParseAddrPort("127.0.0.1:0")
			wantFatal(t, tc.want, func(tb testing.TB) { StartNSD(tb, tc.o) })
		})
	}
}

// TestZoneText checks the zone a primary serves.
func TestZoneText(t *testing.T) {
	z := ZoneText(ZoneSpec{Name: "Example.Test", Serial: 42, Records: "www\tIN\tA\t192.0.2.1\n"}, "p")
	for _, want := range []string{"$ORIGIN Example.Test.\n", " 42 3600 900 604800 300\n", "whoami\tIN\tTXT\t\"p\"\n", "www\tIN\tA\t192.0.2.1\n"} {
		if !strings.Contains(z, want) {
			t.Errorf("ZoneText lacks %q:\n%s", want, z)
		}
	}
	if z := ZoneText(ZoneSpec{Name: "a.test."}, "p"); !strings.Contains(z, " 1 3600 ") {
		t.Errorf("serial 0 should become 1:\n%s", z)
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// TestSOASerialStaysLocal: from the test's own namespace SOASerial only
// asks loopback addresses; a LAN address must be asked from its NetNS.
func TestSOASerialStaysLocal(t *testing.T) {
	t.Parallel()
	if _, err := soaSerialIn("", netip.MustParseAddrPort("10.78.0.2:53"), labZoneA); !errors.Is(err, errLeaves) {
		t.Errorf("query to 10.78.0.2 from the root namespace: err %v, want errLeaves", err)
	}
	if _, ok := SOASerial(t, nil, netip.MustParseAddrPort("10.78.0.2:53"), labZoneA); ok {
		t.Errorf("SOASerial to 10.78.0.2 from the root namespace: ok")
	}
	if err := checkStaysLocal(netip.MustParseAddrPort("127.0.0.1:53")); err != nil {
		t.Errorf("loopback: %v", err)
	}
	ns := NewNetNS(t, "tploc")
	ns.Do(t, func() {
		if err := checkStaysLocal(netip.MustParseAddrPort("10.78.0.2:53")); err != nil {
			t.Errorf("inside NetNS.Do: %v", err)
		}
	})
}

// TestDNSRolesOnLoopback runs both pairs in the test's own namespace on
// 127/8 with picked ports: NSD primary (127.0.0.21) -> Knot secondary
// (.23), Knot primary (.25) -> NSD secondary (.26). The NOTIFY source must
// be the primary's own address (outgoing-interface / via), not 127.0.0.1,
// or the secondary's ACL refuses it.
func TestDNSRolesOnLoopback(t *testing.T) {
	SkipShort(t, "starts NSD and Knot (external processes); run without -short")
	t.Parallel()
	_, pids := trackGone(t)
	RequireTool(t, "nsd")
	RequireTool(t, "knotd")
	ip := netip.MustParseAddr
	zones := []ZoneSpec{{Name: labZoneA, Serial: 5}}

	knotSec := FreePort(t, ip("127.0.0.23"))
	p := StartNSD(t, NSDOptions{Name: "lo-nsd-primary", Addr: netip.MustParseAddrPort("127.0.0.21:0"),
		Zones: zones, Primary: true, NotifyTo: []netip.AddrPort{knotSec}})
	k := StartKnot(t, KnotOptions{Name: "lo-knot-secondary", Addr: knotSec, Zones: zones,
		PrimaryAddr: p.Addr.Addr(), PrimaryPort: p.Addr.Port()})
	nsdSec := FreePort(t, ip("127.0.0.26"))
	kp := StartKnot(t, KnotOptions{Name: "lo-knot-primary", Addr: netip.MustParseAddrPort("127.0.0.25:0"),
		Zones: zones, Primary: true, NotifyTo: []netip.AddrPort{nsdSec}})
	s := StartNSD(t, NSDOptions{Name: "lo-nsd-secondary", Addr: nsdSec, Zones: zones,
		PrimaryAddr: kp.Addr.Addr(), PrimaryPort: kp.Addr.Port(), Verbosity: 2})
	*pids = append(*pids, p.PID, k.PID, kp.PID, s.PID)
	t.Logf("NSD primary %v -> Knot %v; Knot primary %v -> NSD %v", p.Addr, k.Addr, kp.Addr, s.Addr)

	WaitSerial(t, nil, k.Addr, labZoneA, 5, 5*time.Second)
	WaitSerial(t, nil, s.Addr, labZoneA, 5, 5*time.Second)
	p.SetSerial(t, labZoneA, 6)
	kp.SetSerial(t, labZoneA, 6)
	t.Logf("Knot secondary: serial 6 after %v", WaitSerial(t, nil, k.Addr, labZoneA, 6, 5*time.Second).Round(time.Millisecond))
	t.Logf("NSD secondary: serial 6 after %v", WaitSerial(t, nil, s.Addr, labZoneA, 6, 5*time.Second).Round(time.Millisecond))
	if !strings.Contains(readLog(s.LogPath), "notify for example.test. from 127.0.0.25 serial 6") {
		t.Errorf("NSD secondary did not log the Knot primary's NOTIFY from 127.0.0.25:\n%s", s.logTail())
	}
	if !strings.Contains(k.Log(), "notify, incoming, remote 127.0.0.21@") {
		t.Errorf("Knot secondary did not log the NSD primary's NOTIFY from 127.0.0.21:\n%s", k.logTail())
	}
}
