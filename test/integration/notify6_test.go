package integration

import (
	"net/netip"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// TestNotifyIPv6: an IPv6 primary notifies the IPv6 VIP; the copies (IPv6
// frames with the primary's source) reach both NSD secondaries, which
// transfer over IPv6.
func TestNotifyIPv6(t *testing.T) {
	requirePeers(t)
	lan := testpeer.NewLAN(t, "n6")
	p := lan.AddHost(t, "p", prefix("fd00:78::2/64"))
	lbh := lan.AddHost(t, "lb", prefix("fd00:78::1/64"))
	s1h := lan.AddHost(t, "s1", prefix("fd00:78::11/64"))
	s2h := lan.AddHost(t, "s2", prefix("fd00:78::12/64"))
	lbh.Run(t, "ip", "-6", "addr", "add", "fd00:78::53/64", "dev", "eth0", "nodad")
	vip := netip.MustParseAddrPort("[fd00:78::53]:53")
	primary6 := netip.MustParseAddr("fd00:78::2")
	zones := []testpeer.ZoneSpec{{Name: zone, Serial: 1000}}
	prim := testpeer.StartNSD(t, testpeer.NSDOptions{Name: "primary", Addr: netip.MustParseAddrPort("[fd00:78::2]:53"), NetNS: p.Name(),
		Zones: zones, Primary: true, NotifyTo: []netip.AddrPort{vip}, Verbosity: 2})
	secs := []netip.AddrPort{netip.MustParseAddrPort("[fd00:78::11]:53"), netip.MustParseAddrPort("[fd00:78::12]:53")}
	hosts := []*testpeer.NetNS{s1h, s2h}
	for i, sec := range secs {
		testpeer.StartNSD(t, testpeer.NSDOptions{Name: []string{"s1", "s2"}[i], Addr: sec, NetNS: hosts[i].Name(), Zones: zones, PrimaryAddr: primary6, Verbosity: 2})
		testpeer.WaitSerial(t, hosts[i], sec, zone, 1000, 10*time.Second)
	}
	cfg := lbConfig([]netip.AddrPort{vip}, "127.0.0.1:9053", [][2]string{{"s1", secs[0].String()}, {"s2", secs[1].String()}},
		"notify:\n  interface: eth0\n  primaries: [\"fd00:78::2\"]\n")
	startLB(t, lbh, cfg, vip, "127.0.0.1:9053")
	start := time.Now()
	prim.SetSerial(t, zone, 1001)
	for i, sec := range secs {
		testpeer.WaitSerial(t, hosts[i], sec, zone, 1001, 10*time.Second)
	}
	t.Logf("IPv6 NOTIFY via the VIP: both secondaries at 1001 after %v", time.Since(start).Round(time.Millisecond))
}
