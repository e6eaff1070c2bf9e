package testpeer

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
)

// TestBINDPrimaryLoopback: a BIND primary in the test's own namespace on
// 127.0.0.1 (named listens only on interface addresses) with a picked
// port answers SOA, A and whoami; rndc works; SetSerial reloads the zone;
// Stop stops named and its process group.
func TestBINDPrimaryLoopback(t *testing.T) {
	SkipShort(t, "starts named (an external process); run without -short")
	t.Parallel()
	_, pids := trackGone(t)
	b := StartBIND(t, BINDOptions{Name: "lo-bind", Addr: netip.MustParseAddrPort("127.0.0.1:0"),
		Zones: labZones(), Primary: true})
	*pids = append(*pids, b.PID)
	if b.Addr.Port() == 0 {
		t.Fatalf("Addr %v: port not picked", b.Addr)
	}
	t.Logf("named pid %d on %v, control %v", b.PID, b.Addr, b.ControlAddr)

	r := Query(t, b.Addr, labZoneA, dns.TypeSOA)
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
		t.Fatalf("SOA %s: %v", labZoneA, r)
	}
	if soa, ok := r.Answer[0].(*dns.SOA); !ok || soa.Serial != labSerialA0 {
		t.Errorf("SOA answer %v, want serial %d", r.Answer[0], labSerialA0)
	}
	r = Query(t, b.Addr, "www."+labZoneA, dns.TypeA)
	if len(r.Answer) != 1 || rdata(r.Answer[0]) != "192.0.2.1" || !r.Authoritative {
		t.Errorf("www.%s A: %v", labZoneA, r)
	}
	if r := Query(t, b.Addr, "nope."+labZoneA, dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("nope.%s A: rcode %s, want NXDOMAIN", labZoneA, dns.RcodeToString[r.Rcode])
	}
	if got := Whoami(t, b.Addr); got != "lo-bind" {
		t.Errorf("whoami = %q", got)
	}
	if got, err := b.Serial(t, labZoneB); err != nil || got != labSerialB0 {
		t.Errorf("Serial(%s) = %d, %v; want %d", labZoneB, got, err, labSerialB0)
	}
	if out := b.Rndc(t, "status"); !strings.Contains(out, "server is up and running") {
		t.Errorf("rndc status:\n%s", out)
	}

	t0 := time.Now()
	b.SetSerial(t, labZoneA, labSerialA0+1)
	b.SetSerial(t, labZoneA, labSerialA0+2) // a second reload within the same second
	t.Logf("two SetSerials took %v", time.Since(t0).Round(time.Millisecond))
	if got, err := b.Serial(t, labZoneA); err != nil || got != labSerialA0+2 {
		t.Errorf("after SetSerial: serial %d, %v", got, err)
	}
	if d := b.WaitSerial(t, labZoneA, labSerialA0+2, time.Second); d > 100*time.Millisecond {
		t.Errorf("WaitSerial on the primary itself took %v", d)
	}
	b.Notify(t, labZoneA) // notify no: a no-op, but rndc accepts it
	if !strings.Contains(b.Log(), "zone example.test/IN: loaded serial 102") {
		t.Errorf("log lacks the reload:\n%s", b.logTail())
	}

	b.Stop()
	if b.Running() {
		t.Errorf("Running after Stop")
	}
	if !pidGone(b.PID) {
		t.Errorf("pid %d still alive after Stop", b.PID)
	}
	b.Stop() // idempotent
}

// TestBINDOptionsRejected: bad options fail before named starts.
func TestBINDOptionsRejected(t *testing.T) {
	SkipShort(t, "needs named installed; run without -short")
	t.Parallel()
	bindTool(t, "named")
	zones := []ZoneSpec{{Name: labZoneA}}
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	for _, tc := range []struct {
		name string
		o    BINDOptions
		want string
	}{
		{"no zones", BINDOptions{Addr: lo, Primary: true}, "no Zones"},
		{"no role", BINDOptions{Addr: lo, Zones: zones}, "need Primary or PrimaryAddr"},
		{"both roles", BINDOptions{Addr: lo, Zones: zones, Primary: true, PrimaryAddr: labPrimary}, "both set"},
		{"secondary notifies", BINDOptions{Addr: lo, Zones: zones, PrimaryAddr: labPrimary, NotifyTo: []netip.AddrPort{ap53(labVIP)}}, "for primaries"},
		{"bad key", BINDOptions{Addr: lo, Zones: zones, Primary: true, TSIG: &TSIGKey{Name: "k.", Algorithm: "md4", Secret: "AAAA"}}, "algorithm"},
		// 127/8 but not on lo in the test's own namespace: named could
		// not listen there.
		{"loopback not on an interface", BINDOptions{Addr: netip.MustParseAddrPort("127.0.0.31:0"), Zones: zones, Primary: true}, "named listens only on interface addresses"},
		{"not loopback", BINDOptions{Addr: ap53(labPrimary), Zones: zones, Primary: true}, "want a loopback address"},
		{"bad extra option", BINDOptions{Addr: lo, Zones: zones, Primary: true, Options: "no-such-option yes;"}, "named-checkconf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantFatal(t, tc.want, func(tb testing.TB) { StartBIND(tb, tc.o) })
		})
	}
}

// TestBINDPrimaryNotifiesSecondaries: a BIND primary (10.78.0.2)
// notifies a BIND (.11), an NSD (.12) and a Knot (.13) secondary, with
// and without TSIG. All transfer the zones at start; after SetSerial each
// has the new serial within 10s (BIND holds the NOTIFY until notify-delay,
// 5s, after its startup NOTIFYs). The captures show UDP NOTIFYs from the
// primary's address (signed with the key if set). The BIND secondary
// refuses a NOTIFY from a stranger (.53); with TSIG, the primary refuses
// an unsigned AXFR.
func TestBINDPrimaryNotifiesSecondaries(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, named, NSD, Knot, tcpdump; takes 7 s; run without -short")
	t.Parallel()
	forEachKey(t, func(t *testing.T, tc keyCase, names *[]string, pids *[]int) {
		RequireRoot(t)
		bindTool(t, "named")
		RequireTool(t, "nsd")
		RequireTool(t, "knotd")
		lan := NewLAN(t, "bp"+tc.name[:1])
		prim := lan.AddHost(t, "p", netip.PrefixFrom(labPrimary, 24))
		vip := lan.AddHost(t, "lb", netip.PrefixFrom(labVIP, 24))
		*names = append(*names, lan.Switch().Name(), prim.Name(), vip.Name())
		var secs []*NetNS
		for i, a := range labSec {
			h := lan.AddHost(t, "s"+string(rune('1'+i)), netip.PrefixFrom(a, 24))
			secs = append(secs, h)
			*names = append(*names, h.Name())
		}
		var to []netip.AddrPort
		for _, a := range labSec {
			to = append(to, ap53(a))
		}
		t0 := time.Now()
		p := StartBIND(t, BINDOptions{Name: "bprimary", Addr: ap53(labPrimary), NetNS: prim,
			Zones: labZones(), Primary: true, NotifyTo: to, TSIG: tc.key})
		*pids = append(*pids, p.PID)
		bs := StartBIND(t, BINDOptions{Name: "bind1", Addr: ap53(labSec[0]), NetNS: secs[0],
			Zones: labZones(), PrimaryAddr: labPrimary, TSIG: tc.key})
		*pids = append(*pids, bs.PID)
		n := StartNSD(t, NSDOptions{Name: "nsd2", Addr: ap53(labSec[1]), NetNS: secs[1].Name(),
			Zones: labZones(), PrimaryAddr: labPrimary, TSIG: tc.key, Verbosity: 2})
		*pids = append(*pids, n.PID)
		k := StartKnot(t, KnotOptions{Name: "knot3", Addr: ap53(labSec[2]), NetNS: secs[2],
			Zones: labZones(), PrimaryAddr: labPrimary, TSIG: tc.key})
		*pids = append(*pids, k.PID)
		for i, a := range labSec {
			for _, z := range labZones() {
				d := WaitSerial(t, secs[i], ap53(a), z.Name, z.Serial, 10*time.Second)
				t.Logf("%v has %s serial %d %v after WaitSerial began (%v after the primary started)", a, z.Name, z.Serial,
					d.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
			}
		}
		secs[0].Do(t, func() {
			if got := Whoami(t, ap53(labSec[0])); got != "bprimary" {
				t.Errorf("BIND secondary's whoami = %q, want the primary's name", got)
			}
		})

		caps := []*Capture{secs[0].Capture(t, "eth0", "port 53"), secs[1].Capture(t, "eth0", "port 53")}
		t1 := time.Now()
		p.SetSerial(t, labZoneA, labSerialA0+1)
		for i, a := range labSec {
			d := WaitSerial(t, secs[i], ap53(a), labZoneA, labSerialA0+1, 10*time.Second)
			t.Logf("%v: %s serial %d %v after SetSerial returned (%v after it began)", a, labZoneA, labSerialA0+1,
				d.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		}
		if got, err := bs.Serial(t, labZoneB); err != nil || got != labSerialB0 {
			t.Errorf("BIND secondary: %s serial %d (%v), want %d (untouched)", labZoneB, got, err, labSerialB0)
		}
		for i, c := range caps {
			dst := labSec[i]
			msgs := DNSMessages(ReadPackets(t, c.Stop(t)))
			ns := Notifies(msgs, labZoneA, dst)
			if len(ns) == 0 {
				t.Errorf("%v: no NOTIFY captured", dst)
			}
			for _, m := range ns {
				t.Logf("%v: %v", dst, m)
				if m.Transport != "udp" || m.Src.Addr() != labPrimary || m.Dst.Port() != 53 {
					t.Errorf("NOTIFY %v: want udp from %v to port 53", m, labPrimary)
				}
				if (m.Msg.IsTsig() != nil) != (tc.key != nil) {
					t.Errorf("NOTIFY %v: TSIG %v, want %v", m, m.Msg.IsTsig() != nil, tc.key != nil)
				}
			}
			acked := false
			for _, m := range msgs {
				if m.IsNotifyReply() && m.Src.Addr() == dst && m.Msg.Rcode == dns.RcodeSuccess {
					acked = true
				}
			}
			if !acked {
				t.Errorf("%v: no NOERROR reply to a NOTIFY captured", dst)
			}
		}
		if !strings.Contains(p.Log(), "zone example.test/IN: sending notifies (serial 101)") {
			t.Errorf("primary's log lacks the NOTIFYs:\n%s", p.logTail())
		}
		if !strings.Contains(bs.Log(), "transfer of 'example.test/IN' from 10.78.0.2#53: Transfer completed") {
			t.Errorf("BIND secondary's log lacks the transfer:\n%s", bs.logTail())
		}

		// A stranger's NOTIFY: REFUSED, and no transfer.
		r := sendNotify(t, vip, ap53(labSec[0]), "udp", labZoneA, labSerialA0+5, tc.key)
		t.Logf("NOTIFY from the stranger to the BIND secondary: %s (AA=%v, question %d)", dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Question))
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("NOTIFY from %v to the BIND secondary: rcode %s, want REFUSED", labVIP, dns.RcodeToString[r.Rcode])
		}
		if tc.key != nil {
			// Unsigned from the primary's address: BIND accepts NOTIFY
			// from a zone's primaries by address alone (the SOA query
			// and transfer it then makes are signed).
			r := sendNotify(t, prim, ap53(labSec[0]), "udp", labZoneA, labSerialA0+1, nil)
			t.Logf("unsigned NOTIFY from the primary's address to the BIND secondary: %s", dns.RcodeToString[r.Rcode])
			if r.Rcode != dns.RcodeSuccess {
				t.Errorf("unsigned NOTIFY from the primary's address: rcode %s, want NOERROR", dns.RcodeToString[r.Rcode])
			}
			// The transfer ACL wants the key.
			m := new(dns.Msg)
			m.SetAxfr(labZoneA)
			secs[0].Do(t, func() {
				r := Exchange(t, ap53(labPrimary), "tcp", m)
				if r.Rcode != dns.RcodeRefused {
					t.Errorf("unsigned AXFR from %v: rcode %s, want REFUSED", labSec[0], dns.RcodeToString[r.Rcode])
				}
			})
		}
	})
}

// notifyResponder answers every DNS message arriving at addr (UDP,
// inside ns) with rcode, sending the reply from the socket bound to
// replyFrom (addr itself if invalid). It returns the number of messages
// it got so far. Cleanup closes the sockets and waits for the goroutine.
func notifyResponder(t *testing.T, ns *NetNS, addr, replyFrom netip.AddrPort, rcode int) func() int {
	t.Helper()
	var in, out *net.UDPConn
	ns.Do(t, func() {
		var err error
		if in, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr)); err != nil {
			t.Fatalf("listen %v: %v", addr, err)
		}
		out = in
		if replyFrom.IsValid() {
			if out, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(replyFrom)); err != nil {
				in.Close()
				t.Fatalf("listen %v: %v", replyFrom, err)
			}
		}
	})
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			k, from, err := in.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:k]) != nil {
				continue
			}
			mu.Lock()
			n++
			mu.Unlock()
			r := new(dns.Msg)
			r.SetRcode(m, rcode)
			r.Authoritative = rcode == dns.RcodeSuccess
			if b, err := r.Pack(); err == nil {
				_, _ = out.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	t.Cleanup(func() {
		in.Close()
		out.Close()
		<-done
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// TestBINDNotifyRetries measures BIND 9.18's NOTIFY sending, for the
// facts at the top of bind.go. A primary (one zone, five targets) sends
// NOTIFYs for serial 100 at its start; 1.5s later SetSerial makes serial
// 101, whose NOTIFYs BIND holds until 5s after the first round
// (notify-delay). Per target, for serial 100:
//
//   - .11:53 is silent (a socket that never reads): BIND sends the NOTIFY
//     3 times, 5s apart, from one source port with one message ID, then
//     logs "retries exceeded" 15s after the first; never over TCP. The
//     serial 101 round does not stop these retries.
//   - .12:56 answers NOERROR but from port 5656: the reply is not taken
//     (BIND's socket is connected; the kernel answers ICMP port
//     unreachable), so it is retried like the silent one.
//   - .53:53 has no socket (ICMP port unreachable): one NOTIFY, logged as
//     "failed: connection refused", never retried.
//   - .12:53 answers REFUSED, .12:54 NOTAUTH: one NOTIFY each, logged as
//     "notify response from ...: REFUSED", never retried.
//
// Every NOTIFY goes over UDP from a source port of its own. Takes ~17s
// (the silent target's 15s).
func TestBINDNotifyRetries(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, named, tcpdump; takes 17 s; run without -short")
	t.Parallel()
	names, pids := trackGone(t)
	RequireRoot(t)
	bindTool(t, "named")
	lan := NewLAN(t, "br")
	prim := lan.AddHost(t, "p", netip.PrefixFrom(labPrimary, 24))
	vip := lan.AddHost(t, "lb", netip.PrefixFrom(labVIP, 24))
	silent := lan.AddHost(t, "s1", netip.PrefixFrom(labSec[0], 24))
	resp := lan.AddHost(t, "s2", netip.PrefixFrom(labSec[1], 24))
	*names = append(*names, lan.Switch().Name(), prim.Name(), vip.Name(), silent.Name(), resp.Name())

	silentAP := ap53(labSec[0])
	silent.Do(t, func() {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(silentAP))
		if err != nil {
			t.Fatalf("listen %v: %v", silentAP, err)
		}
		t.Cleanup(func() { c.Close() })
	})
	refusedAP := ap53(labSec[1])
	notAuthAP := netip.AddrPortFrom(labSec[1], 54)
	otherPortAP := netip.AddrPortFrom(labSec[1], 56)
	icmpAP := ap53(labVIP)
	notifyResponder(t, resp, refusedAP, netip.AddrPort{}, dns.RcodeRefused)
	notifyResponder(t, resp, notAuthAP, netip.AddrPort{}, dns.RcodeNotAuth)
	otherPort := notifyResponder(t, resp, otherPortAP, netip.AddrPortFrom(labSec[1], 5656), dns.RcodeSuccess)

	c := prim.Capture(t, "eth0", "udp or tcp or icmp")
	zones := []ZoneSpec{{Name: labZoneA, Serial: labSerialA0}}
	b := StartBIND(t, BINDOptions{Name: "bprimary", Addr: ap53(labPrimary), NetNS: prim, Zones: zones, Primary: true,
		NotifyTo: []netip.AddrPort{icmpAP, silentAP, refusedAP, notAuthAP, otherPortAP}})
	*pids = append(*pids, b.PID)
	time.Sleep(1500 * time.Millisecond)
	b.SetSerial(t, labZoneA, labSerialA0+1)

	// Wait for the give-up on the silent target: 15s after its first
	// NOTIFY (which is at most ~1s after the start: notify-rate).
	giveUp := "notify to 10.78.0.11#53: retries exceeded"
	deadline := time.Now().Add(16 * time.Second)
	for !strings.Contains(b.Log(), giveUp) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within 17.5s of the start:\n%s", giveUp, b.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A fallback (TCP, another try) would follow the give-up at once.
	time.Sleep(300 * time.Millisecond)
	pkts := ReadPackets(t, c.Stop(t))
	msgs := DNSMessages(pkts)
	log := b.Log()

	// Transport: UDP only; no TCP segment to or from the primary at all.
	for _, p := range pkts {
		if tcp, ok := p.TransportLayer().(*layers.TCP); ok {
			t.Errorf("TCP segment captured (ports %d > %d): BIND 9.18 should notify over UDP only", tcp.SrcPort, tcp.DstPort)
		}
	}
	all := Notifies(msgs, labZoneA, netip.Addr{})
	type key struct {
		dst    netip.AddrPort
		serial uint32
	}
	sent := map[key][]CapturedDNS{}
	rounds := map[uint32][]CapturedDNS{} // serial -> NOTIFYs in capture order
	ports := map[uint16]bool{}
	for _, m := range all {
		t.Logf("%v", m)
		if m.Transport != "udp" || m.Src.Addr() != labPrimary {
			t.Errorf("NOTIFY %v: want udp from %v", m, labPrimary)
		}
		if m.Src.Port() < 1024 {
			t.Errorf("NOTIFY %v: source port %d, want an ephemeral one", m, m.Src.Port())
		}
		ports[m.Src.Port()] = true
		serial := notifySerial(m)
		sent[key{m.Dst, serial}] = append(sent[key{m.Dst, serial}], m)
		rounds[serial] = append(rounds[serial], m)
	}
	first100, first101 := rounds[labSerialA0], rounds[labSerialA0+1]
	if len(first100) == 0 || len(first101) == 0 {
		t.Fatalf("NOTIFYs captured: %d for serial 100, %d for serial 101; want both", len(first100), len(first101))
	}
	// notify-delay: the change at ~1.5s is notified 5s after the first
	// round, not at once.
	if d := first101[0].Time.Sub(first100[0].Time); d < 4500*time.Millisecond || d > 6*time.Second {
		t.Errorf("first NOTIFY for serial 101 %v after the first for 100, want ~5s (notify-delay)", d.Round(time.Millisecond))
	} else {
		t.Logf("first NOTIFY for serial 101 %v after the first for 100 (SetSerial was at ~1.5s)", d.Round(time.Millisecond))
	}

	// Unanswered: 3 sends 5s apart, same port and ID, then the give-up;
	// the serial 101 round in between does not cancel them.
	for _, ap := range []netip.AddrPort{silentAP, otherPortAP} {
		got := sent[key{ap, labSerialA0}]
		if len(got) != 3 {
			t.Errorf("%d NOTIFYs for serial 100 to %v (unanswered), want 3", len(got), ap)
			continue
		}
		for i := 1; i < len(got); i++ {
			if d := got[i].Time.Sub(got[i-1].Time); d < 4500*time.Millisecond || d > 6500*time.Millisecond {
				t.Errorf("NOTIFY %d to %v %v after the previous one, want ~5s", i+1, ap, d.Round(time.Millisecond))
			}
			if got[i].Src != got[0].Src || got[i].Msg.Id != got[0].Msg.Id {
				t.Errorf("retry %v: want the first one's source %v and id %d", got[i], got[0].Src, got[0].Msg.Id)
			}
		}
		if !got[2].Time.After(first101[0].Time) {
			t.Errorf("last serial 100 retry to %v at %v, before the serial 101 round (%v)", ap, got[2].Time, first101[0].Time)
		}
		if len(sent[key{ap, labSerialA0 + 1}]) == 0 {
			t.Errorf("no NOTIFY for serial 101 to %v", ap)
		}
	}
	if n := otherPort(); n < 3 {
		t.Errorf("the responder answering from another port got %d NOTIFYs, want >= 3", n)
	}
	for _, want := range []string{
		"notify to 10.78.0.11#53 failed: timed out",
		"notify to 10.78.0.12#56: retries exceeded",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}

	// Final answers: one NOTIFY per round, no retry.
	for _, f := range []struct {
		ap   netip.AddrPort
		logs string
	}{
		{icmpAP, "notify to 10.78.0.53#53 failed: connection refused"},
		{refusedAP, "notify response from 10.78.0.12#53: REFUSED"},
		{notAuthAP, "notify response from 10.78.0.12#54: NOTAUTH"},
	} {
		for _, serial := range []uint32{labSerialA0, labSerialA0 + 1} {
			if got := sent[key{f.ap, serial}]; len(got) != 1 {
				t.Errorf("%d NOTIFYs for serial %d to %v, want 1 (no retry after %q)", len(got), serial, f.ap, f.logs)
			}
		}
		if n := strings.Count(log, f.logs); n != 2 {
			t.Errorf("log has %q %d times, want 2 (once per round)", f.logs, n)
		}
	}
	icmp := 0
	for _, p := range pkts {
		if l := p.Layer(layers.LayerTypeICMPv4); l != nil && l.(*layers.ICMPv4).TypeCode == layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort) {
			icmp++
		}
	}
	if icmp == 0 {
		t.Errorf("no ICMP port unreachable captured")
	}
	if len(ports) != 10 {
		t.Errorf("NOTIFYs of 2 rounds to 5 targets came from %d source ports, want 10 (one per NOTIFY and its retries)", len(ports))
	}
	if t.Failed() {
		t.Logf("named's log:\n%s", b.logTail())
	}
}

// notifySerial returns the serial of the SOA a NOTIFY carries, or 0.
func notifySerial(m CapturedDNS) uint32 {
	for _, rr := range m.Msg.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

// TestBINDManyZones: 200 zones, a BIND primary (127.0.0.21) notifying a
// BIND secondary (127.0.0.22) in one namespace (StartBIND adds both
// addresses to its lo). With notify-rate, startup-notify-rate and
// serial-query-rate raised from 20/s (Options) and notify-delay 0, the
// secondary has all 200 within a second of its start, and all 200 new
// serials within a second of SetSerials.
func TestBINDManyZones(t *testing.T) {
	SkipShort(t, "needs root: network namespace, two named; takes 2 s; run without -short")
	t.Parallel()
	names, pids := trackGone(t)
	RequireRoot(t)
	bindTool(t, "named")
	ns := NewNetNS(t, "bmany")
	*names = append(*names, ns.Name())
	var zones []ZoneSpec
	for i := range 200 {
		zones = append(zones, ZoneSpec{Name: fmt.Sprintf("z%03d.test.", i), Serial: 10})
	}
	const fast = "notify-rate 1000;\nstartup-notify-rate 1000;\nserial-query-rate 1000;\nnotify-delay 0;"
	pa, sa := netip.MustParseAddrPort("127.0.0.21:53"), netip.MustParseAddrPort("127.0.0.22:53")
	p := StartBIND(t, BINDOptions{Name: "many-p", Addr: pa, NetNS: ns, Zones: zones, Primary: true,
		NotifyTo: []netip.AddrPort{sa}, Options: fast})
	t0 := time.Now()
	s := StartBIND(t, BINDOptions{Name: "many-s", Addr: sa, NetNS: ns, Zones: zones, PrimaryAddr: pa.Addr(), Options: fast})
	*pids = append(*pids, p.PID, s.PID)
	waitAll := func(serial uint32, since time.Time) {
		t.Helper()
		deadline := since.Add(10 * time.Second)
		for _, z := range zones {
			s.WaitSerial(t, z.Name, serial, time.Until(deadline))
		}
		t.Logf("secondary has serial %d in all %d zones %v after", serial, len(zones), time.Since(since).Round(time.Millisecond))
	}
	waitAll(10, t0)
	t1 := time.Now()
	p.SetSerials(t, 11)
	t.Logf("SetSerials of %d zones took %v", len(zones), time.Since(t1).Round(time.Millisecond))
	waitAll(11, t1)
	if got := strings.Count(p.Log(), "sending notifies (serial 11)"); got != len(zones) {
		t.Errorf("primary logged %d NOTIFY rounds for serial 11, want %d", got, len(zones))
	}
}
