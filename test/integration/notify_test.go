package integration

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// notifySite is a LAN with a primary (10.78.0.2), dnslb holding the VIP
// 10.78.0.53 on its eth0, two NSD secondaries (.11, .12) and one Knot
// secondary (.13), each accepting NOTIFY only from the primary and
// transferring from it, and a stranger host (.99).
type notifySite struct {
	lan                 *testpeer.LAN
	lbHost, p, stranger *testpeer.NetNS
	s1h, s2h, s3h       *testpeer.NetNS
	primary             *testpeer.NSD
	primaryKnot         *testpeer.Knot // instead of primary, for a Knot primary
	s1, s2              *testpeer.NSD
	s3                  *testpeer.Knot
	lb                  *lb
	vip                 netip.AddrPort
	secondaries         []netip.AddrPort
	secondaryHosts      []*testpeer.NetNS
}

var (
	primaryAddr = netip.MustParseAddr("10.78.0.2")
	notifyVIP   = netip.MustParseAddrPort("10.78.0.53:53")
	zone        = "example.test."
)

func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// newNotifySite builds the site. notifyTo says where the primary sends its
// NOTIFYs (the VIP, or nowhere when the test sends them itself); tsig
// signs NOTIFYs and transfers; lbNotify is dnslb's notify section.
func newNotifySite(t *testing.T, prefixName string, notifyToVIP bool, tsig *testpeer.TSIGKey, lbNotify string) *notifySite {
	return newNotifySiteWith(t, prefixName, false, notifyToVIP, tsig, lbNotify)
}

// newNotifySiteWith is newNotifySite with a Knot primary when knotPrimary
// (Knot sends NOTIFY over TCP).
func newNotifySiteWith(t *testing.T, prefixName string, knotPrimary, notifyToVIP bool, tsig *testpeer.TSIGKey, lbNotify string) *notifySite {
	t.Helper()
	requirePeers(t)
	testpeer.RequireTool(t, "knotd")
	testpeer.RequireTool(t, "tcpdump")
	lan := testpeer.NewLAN(t, prefixName)
	s := &notifySite{lan: lan, vip: notifyVIP}
	s.p = lan.AddHost(t, "p", prefix("10.78.0.2/24"))
	s.lbHost = lan.AddHost(t, "lb", prefix("10.78.0.1/24"))
	s.s1h = lan.AddHost(t, "s1", prefix("10.78.0.11/24"))
	s.s2h = lan.AddHost(t, "s2", prefix("10.78.0.12/24"))
	s.s3h = lan.AddHost(t, "s3", prefix("10.78.0.13/24"))
	s.stranger = lan.AddHost(t, "x", prefix("10.78.0.99/24"))
	s.lbHost.Run(t, "ip", "addr", "add", "10.78.0.53/24", "dev", "eth0")

	zones := []testpeer.ZoneSpec{{Name: zone, Serial: 1000}}
	var notifyTo []netip.AddrPort
	if notifyToVIP {
		notifyTo = []netip.AddrPort{notifyVIP}
	}
	if knotPrimary {
		s.primaryKnot = testpeer.StartKnot(t, testpeer.KnotOptions{Name: "primary", Addr: netip.MustParseAddrPort("10.78.0.2:53"), NetNS: s.p,
			Zones: zones, Primary: true, NotifyTo: notifyTo, TSIG: tsig})
	} else {
		s.primary = testpeer.StartNSD(t, testpeer.NSDOptions{Name: "primary", Addr: netip.MustParseAddrPort("10.78.0.2:53"), NetNS: s.p.Name(),
			Zones: zones, Primary: true, NotifyTo: notifyTo, TSIG: tsig, Verbosity: 2})
	}
	s.secondaries = []netip.AddrPort{netip.MustParseAddrPort("10.78.0.11:53"), netip.MustParseAddrPort("10.78.0.12:53"), netip.MustParseAddrPort("10.78.0.13:53")}
	s.secondaryHosts = []*testpeer.NetNS{s.s1h, s.s2h, s.s3h}
	s.s1 = testpeer.StartNSD(t, testpeer.NSDOptions{Name: "s1", Addr: s.secondaries[0], NetNS: s.s1h.Name(), Zones: zones, PrimaryAddr: primaryAddr, TSIG: tsig, Verbosity: 2})
	s.s2 = testpeer.StartNSD(t, testpeer.NSDOptions{Name: "s2", Addr: s.secondaries[1], NetNS: s.s2h.Name(), Zones: zones, PrimaryAddr: primaryAddr, TSIG: tsig, Verbosity: 2})
	s.s3 = testpeer.StartKnot(t, testpeer.KnotOptions{Name: "s3", Addr: s.secondaries[2], NetNS: s.s3h, Zones: zones, PrimaryAddr: primaryAddr, TSIG: tsig})
	for i, sec := range s.secondaries {
		testpeer.WaitSerial(t, s.secondaryHosts[i], sec, zone, 1000, 10*time.Second)
	}
	cfg := lbConfig([]netip.AddrPort{notifyVIP}, "127.0.0.1:9053",
		[][2]string{{"s1", s.secondaries[0].String()}, {"s2", s.secondaries[1].String()}, {"s3", s.secondaries[2].String()}}, lbNotify)
	s.lb = startLB(t, s.lbHost, cfg, notifyVIP, "127.0.0.1:9053")
	return s
}

const defaultNotify = "notify:\n  interface: eth0\n  primaries: [10.78.0.2]\n"

// waitAll waits until every secondary serves serial and returns the
// slowest time.
func (s *notifySite) waitAll(t *testing.T, serial uint32, within time.Duration) time.Duration {
	t.Helper()
	var slowest time.Duration
	for i, sec := range s.secondaries {
		if d := testpeer.WaitSerial(t, s.secondaryHosts[i], sec, zone, serial, within); d > slowest {
			slowest = d
		}
	}
	return slowest
}

// metric reads one sample from dnslb's /metrics inside its namespace.
func (s *notifySite) metric(t *testing.T, series string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", s.lbHost.Name(), "curl", "-s", "http://127.0.0.1:9053/metrics").Output()
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

// TestNotifyReachesEverySecondary: NSD primary, UDP NOTIFY to the VIP.
// Every secondary (2 NSD, 1 Knot) reaches the new serial; the primary got
// its answer from the VIP (no retry, no "unreachable").
func TestNotifyReachesEverySecondary(t *testing.T) {
	s := newNotifySite(t, "nd", true, nil, defaultNotify)
	start := time.Now()
	s.primary.SetSerial(t, zone, 1001)
	slowest := s.waitAll(t, 1001, 10*time.Second)
	t.Logf("UDP NOTIFY via the VIP: all 3 secondaries at serial 1001 after %v (slowest)", time.Since(start).Round(time.Millisecond))
	_ = slowest
	time.Sleep(500 * time.Millisecond)
	logb, _ := os.ReadFile(s.primary.LogPath)
	log := string(logb)
	for _, bad := range []string{"unreachable", "retry", "max notify send count"} {
		if strings.Contains(log, bad) {
			t.Errorf("primary logged %q:\n%s", bad, log)
		}
	}
	for _, be := range []string{"s1", "s2", "s3"} {
		if v := s.metric(t, fmt.Sprintf(`dnslb_notify_copies_total{backend=%q}`, be)); v == "" || v == "0" {
			t.Errorf("no copy counted for %s", be)
		}
	}
}

// TestNotifyKnotPrimaryOverTCP: Knot notifies over TCP; dnslb answers on
// the connection and copies the NOTIFY to every secondary as UDP.
func TestNotifyKnotPrimaryOverTCP(t *testing.T) {
	s := newNotifySiteWith(t, "nk", true, true, nil, defaultNotify)
	start := time.Now()
	s.primaryKnot.SetSerial(t, zone, 1001)
	s.waitAll(t, 1001, 10*time.Second)
	t.Logf("Knot primary (TCP NOTIFY): all 3 secondaries at serial 1001 %v after the reload was requested", time.Since(start).Round(time.Millisecond))
	if v := s.metric(t, `dnslb_frontend_notify_answered_total{rcode="NOERROR"}`); v == "" || v == "0" {
		t.Errorf("no NOTIFY answered by dnslb: %q", v)
	}
}

// TestNotifyWithoutDuplicationReachesOne is the control: notify disabled,
// the balancer forwards the NOTIFY to one backend, from its own address,
// which the secondaries' ACL refuses: at most one secondary (here none)
// learns of the change before its refresh timer.
func TestNotifyWithoutDuplicationReachesOne(t *testing.T) {
	s := newNotifySite(t, "nn", true, nil, "")
	s.primary.SetSerial(t, zone, 1001)
	time.Sleep(3 * time.Second)
	converged := 0
	for i, sec := range s.secondaries {
		if serial, ok := testpeer.SOASerial(t, s.secondaryHosts[i], sec, zone); ok && serial == 1001 {
			converged++
		}
	}
	t.Logf("without notifydup: %d of 3 secondaries at the new serial after 3s", converged)
	if converged > 1 {
		t.Fatalf("%d secondaries converged without duplication; the control is broken", converged)
	}
}

// TestNotifyTCPAndTSIG: a TSIG-signed NOTIFY sent to the VIP over TCP from
// the primary's address is answered on the connection with an answer
// signed with the same key, and copied to every secondary as UDP; the
// signature still verifies there and all converge.
func TestNotifyTCPAndTSIG(t *testing.T) {
	key := &testpeer.TSIGKey{Name: "notify-key.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="}
	s := newNotifySite(t, "nt", false, key, defaultNotify+"  tsig_keys: [{name: notify-key., algorithm: hmac-sha256, secret: \""+key.Secret+"\"}]\n")
	s.primary.SetSerial(t, zone, 1002) // no NOTIFY: the primary notifies nobody
	m := new(dns.Msg)
	m.SetNotify(zone)
	m.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns1." + zone, Mbox: "hostmaster." + zone, Serial: 1002}}
	m.SetTsig(key.Name, dns.HmacSHA256, 300, time.Now().Unix())
	var r *dns.Msg
	var err error
	start := time.Now()
	s.p.Do(t, func() {
		c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, TsigSecret: map[string]string{key.Name: key.Secret}}
		r, _, err = c.Exchange(m, notifyVIP.String())
	})
	if err != nil {
		t.Fatalf("TCP NOTIFY (the answer must be signed with the key): %v", err)
	}
	if r == nil || r.Rcode != dns.RcodeSuccess || r.Opcode != dns.OpcodeNotify || !r.Authoritative || r.IsTsig() == nil {
		t.Fatalf("TCP NOTIFY answer: %v", r)
	}
	s.waitAll(t, 1002, 10*time.Second)
	t.Logf("TSIG NOTIFY over TCP: all 3 secondaries converged in %v", time.Since(start).Round(time.Millisecond))
}

// TestNotifyConvergenceAfterOutage: s2 is unplugged while the NOTIFY is
// copied; dnslb keeps checking s2's serial and re-sends the copy, so s2
// converges once it is back.
func TestNotifyConvergenceAfterOutage(t *testing.T) {
	s := newNotifySite(t, "nc", true, nil, defaultNotify)
	s.s2h.SetLink(t, "eth0", false)
	s.primary.SetSerial(t, zone, 1003)
	testpeer.WaitSerial(t, s.s1h, s.secondaries[0], zone, 1003, 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	s.s2h.SetLink(t, "eth0", true)
	d := testpeer.WaitSerial(t, s.s2h, s.secondaries[1], zone, 1003, 15*time.Second)
	t.Logf("s2 unplugged for 1.5s during the NOTIFY: converged %v after it came back", d.Round(time.Millisecond))
}

// TestNotifyFromStrangerRefused: a NOTIFY from an address outside
// notify.primaries gets REFUSED and is not copied, over UDP and TCP.
func TestNotifyFromStrangerRefused(t *testing.T) {
	s := newNotifySite(t, "ns", true, nil, defaultNotify)
	m := new(dns.Msg)
	m.SetNotify(zone)
	var r *dns.Msg
	var err error
	for _, network := range []string{"udp", "tcp"} {
		s.stranger.Do(t, func() {
			r, _, err = (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, notifyVIP.String())
		})
		if err != nil || r.Rcode != dns.RcodeRefused {
			t.Fatalf("stranger's NOTIFY over %s: %v %v", network, r, err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	// both transports are counted by notify duplication, which owns the
	// policy
	if v := s.metric(t, `dnslb_notify_received_total{result="stranger"}`); v != "2" {
		t.Errorf("stranger count %q, want 2 (UDP and TCP)", v)
	}
	if v := s.metric(t, `dnslb_notify_received_total{result="copied"}`); v != "0" {
		t.Errorf("copied %q, want 0", v)
	}
}

// TestNotifyBurst: 1,000 NOTIFYs for 1,000 zones from the primary's
// address; every secondary receives every one (counted in a capture on
// its own interface).
func TestNotifyBurst(t *testing.T) {
	s := newNotifySite(t, "nb", false, nil, defaultNotify+"  max_per_second: 5000\n")
	caps := make([]*testpeer.Capture, len(s.secondaryHosts))
	for i, h := range s.secondaryHosts {
		caps[i] = h.Capture(t, "eth0", "udp dst port 53 and src host 10.78.0.2")
	}
	const n = 1000
	start := time.Now()
	s.p.Do(t, func() {
		conn, err := dns.Dial("udp", notifyVIP.String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// closed loop: each NOTIFY is answered by the VIP before the next
		for i := 0; i < n; i++ {
			m := new(dns.Msg)
			m.SetNotify(fmt.Sprintf("z%d.test.", i))
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			if err := conn.WriteMsg(m); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ReadMsg(); err != nil {
				t.Fatalf("NOTIFY %d not answered: %v", i, err)
			}
		}
	})
	sent := time.Since(start)
	time.Sleep(time.Second)
	for i, c := range caps {
		zones := map[string]bool{}
		for _, pkt := range testpeer.ReadPackets(t, c.Stop(t)) {
			if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
				m := new(dns.Msg)
				if m.Unpack(udp.Payload) == nil && m.Opcode == dns.OpcodeNotify && len(m.Question) == 1 &&
					strings.HasPrefix(m.Question[0].Name, "z") {
					zones[m.Question[0].Name] = true
				}
			}
		}
		// Every z*.test NOTIFY must be in the capture. tcpdump's own
		// buffer may drop frames in a burst: then the kernel's count of
		// frames that matched the filter must cover them (it may also
		// count the primary's own NOTIFYs for other zones).
		b, _ := os.ReadFile(c.LogPath)
		var got, dropped int
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(line, "packets received by filter") {
				fmt.Sscanf(line, "%d", &got)
			}
			if strings.HasSuffix(line, "packets dropped by kernel") {
				fmt.Sscanf(line, "%d", &dropped)
			}
		}
		// A loaded machine may also end tcpdump before it wrote its last
		// record whole (ReadPackets drops a truncated last record): the
		// kernel's count still covers it.
		switch {
		case len(zones) == n:
		case got < n:
			t.Errorf("secondary %d: %d of %d zones' NOTIFYs in the capture (%d frames matched the filter, %d dropped by tcpdump)", i+1, len(zones), n, got, dropped)
		default:
			t.Logf("secondary %d: %d of %d zones' NOTIFYs in the pcap, but %d frames matched the filter (%d dropped by tcpdump): the rest were lost by the capture, not on the wire", i+1, len(zones), n, got, dropped)
		}
	}
	if t.Failed() {
		for _, r := range []string{"copied", "rate_limited", "duplicate", "malformed"} {
			t.Logf("dnslb_notify_received_total{result=%q} %s", r, s.metric(t, fmt.Sprintf("dnslb_notify_received_total{result=%q}", r)))
		}
		for _, be := range []string{"s1", "s2", "s3"} {
			t.Logf("%s: copies %s, errors %s", be, s.metric(t, fmt.Sprintf("dnslb_notify_copies_total{backend=%q}", be)), s.metric(t, fmt.Sprintf("dnslb_notify_copy_errors_total{backend=%q}", be)))
		}

	}
	t.Logf("burst: %d NOTIFYs answered and copied to 3 secondaries in %v (%.0f NOTIFY/s)", n, sent.Round(time.Millisecond), float64(n)/sent.Seconds())
}
