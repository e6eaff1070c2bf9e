package testpeer

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestKnotPrimaryNotifiesNSD: Knot as the primary (10.78.0.2) notifying an
// NSD secondary (.11) directly. After SetSerial (zone-reload) the
// secondary has the new serial within a few seconds. The capture on the
// secondary shows Knot 3.2 sends NOTIFY over TCP (a connection per
// NOTIFY), not UDP.
func TestKnotPrimaryNotifiesNSD(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, Knot, NSD, tcpdump; run without -short")
	t.Parallel()
	forEachKey(t, func(t *testing.T, tc keyCase, names *[]string, pids *[]int) {
		RequireTool(t, "nsd")
		RequireTool(t, "knotd")
		lan := NewLAN(t, "kp"+tc.name[:1])
		prim := lan.AddHost(t, "p", netip.PrefixFrom(labPrimary, 24))
		sec := lan.AddHost(t, "s1", netip.PrefixFrom(labSec[0], 24))
		*names = append(*names, lan.Switch().Name(), prim.Name(), sec.Name())

		k := StartKnot(t, KnotOptions{Name: "kprimary", Addr: ap53(labPrimary), NetNS: prim,
			Zones: labZones(), Primary: true, NotifyTo: []netip.AddrPort{ap53(labSec[0])}, TSIG: tc.key})
		*pids = append(*pids, k.PID)
		n := StartNSD(t, NSDOptions{Name: "nsd1", Addr: ap53(labSec[0]), NetNS: sec.Name(),
			Zones: labZones(), PrimaryAddr: labPrimary, TSIG: tc.key, Verbosity: 2})
		*pids = append(*pids, n.PID)
		WaitSerial(t, sec, ap53(labSec[0]), labZoneA, labSerialA0, 5*time.Second)
		WaitSerial(t, sec, ap53(labSec[0]), labZoneB, labSerialB0, 5*time.Second)
		prim.Do(t, func() {
			if got := Query(t, ap53(labPrimary), "www."+labZoneA, dns.TypeA); len(got.Answer) != 1 {
				t.Errorf("Knot primary: www.%s A: %v", labZoneA, got)
			}
			if got := Whoami(t, ap53(labPrimary)); got != "kprimary" {
				t.Errorf("Knot primary's whoami = %q", got)
			}
		})
		sec.Do(t, func() {
			if got := Whoami(t, ap53(labSec[0])); got != "kprimary" {
				t.Errorf("NSD secondary's whoami = %q, want the primary's name", got)
			}
		})

		c := sec.Capture(t, "eth0", "port 53")
		t0 := time.Now()
		k.SetSerial(t, labZoneA, labSerialA0+1)
		t.Logf("SetSerial took %v", time.Since(t0).Round(time.Millisecond))
		d := WaitSerial(t, sec, ap53(labSec[0]), labZoneA, labSerialA0+1, 5*time.Second)
		t.Logf("NSD secondary has serial %d %v after SetSerial returned", labSerialA0+1, d.Round(time.Millisecond))
		if got, _ := SOASerial(t, sec, ap53(labSec[0]), labZoneB); got != labSerialB0 {
			t.Errorf("%s serial %d, want %d (untouched)", labZoneB, got, labSerialB0)
		}

		msgs := DNSMessages(ReadPackets(t, c.Stop(t)))
		ns := Notifies(msgs, labZoneA, labSec[0])
		if len(ns) == 0 {
			t.Fatalf("no NOTIFY captured on the secondary")
		}
		for _, m := range ns {
			t.Logf("%v", m)
			if m.Transport != "tcp" {
				t.Errorf("Knot NOTIFY over %s, expected tcp (Knot 3.2.6 sends NOTIFY over TCP)", m.Transport)
			}
			if m.Src.Addr() != labPrimary || m.Dst.Port() != 53 {
				t.Errorf("NOTIFY %v: want from %v to port 53", m, labPrimary)
			}
			if (m.Msg.IsTsig() != nil) != (tc.key != nil) {
				t.Errorf("NOTIFY %v: TSIG %v, want %v", m, m.Msg.IsTsig() != nil, tc.key != nil)
			}
		}
		if !strings.Contains(k.Log(), "notify, outgoing, remote 10.78.0.11@53, serial 101") {
			t.Errorf("Knot's log lacks the NOTIFY:\n%s", k.logTail())
		}
	})
}

// TestKnotRoleOptionsRejected: contradictory options fail before knotd
// starts.
func TestKnotRoleOptionsRejected(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	RequireTool(t, "knotd")
	RequireTool(t, "knotc")
	zones := []ZoneSpec{{Name: labZoneA}}
	for _, tc := range []struct {
		name string
		o    KnotOptions
		want string
	}{
		{"no zones", KnotOptions{Primary: true}, "no Zones"},
		{"no role", KnotOptions{Zones: zones}, "need Primary or PrimaryAddr"},
		{"secondary notifies", KnotOptions{Zones: zones, PrimaryAddr: labPrimary, NotifyTo: []netip.AddrPort{ap53(labVIP)}}, "for primaries"},
		{"bad key", KnotOptions{Zones: zones, Primary: true, TSIG: &TSIGKey{Name: "k.", Algorithm: "md4", Secret: "AAAA"}}, "algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Addr = netip.MustParseAddrPort("127.0.0.1:0")
			wantFatal(t, tc.want, func(tb testing.TB) { StartKnot(tb, tc.o) })
		})
	}
}
