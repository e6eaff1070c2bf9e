package testpeer

import (
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// trackGone returns empty lists of namespace names and PIDs, already
// registered with requireGone: call it first in a test and append what the
// test creates.
func trackGone(t *testing.T) (names *[]string, pids *[]int) {
	names, pids = new([]string), new([]int)
	requireGone(t, names, pids)
	return names, pids
}

// requireGone registers (call it first, before creating anything, so it
// runs last) a cleanup that checks no namespace in *names is still listed
// and no pid in *pids is alive.
func requireGone(t *testing.T, names *[]string, pids *[]int) {
	t.Cleanup(func() {
		out, err := exec.Command("ip", "netns", "list").CombinedOutput()
		if err != nil {
			t.Errorf("ip netns list: %v\n%s", err, out)
		}
		for _, n := range *names {
			if strings.Contains(string(out), n) {
				t.Errorf("netns %s still listed after cleanup:\n%s", n, out)
			}
		}
		for _, pid := range *pids {
			if !pidGone(pid) {
				t.Errorf("pid %d (%s) still alive after cleanup", pid, procComm(pid))
			}
		}
	})
}

// eui64LinkLocal is the fe80:: address the kernel derives from mac.
func eui64LinkLocal(mac net.HardwareAddr) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b)
}

// waitPing pings dst from ns until it answers (true) or timeout passes.
func waitPing(t *testing.T, ns *NetNS, dst netip.Addr, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if ns.Ping(t, dst) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	v4A  = netip.MustParsePrefix("10.77.0.1/24")
	v4B  = netip.MustParsePrefix("10.77.0.2/24")
	v6A  = netip.MustParsePrefix("fd00:77::1/64")
	v6B  = netip.MustParsePrefix("fd00:77::2/64")
	vip4 = netip.MustParsePrefix("10.77.0.100/24")
	vip6 = netip.MustParsePrefix("fd00:77::100/64")
)

// newTwoHostLAN returns a LAN with hosts a (10.77.0.1/24, fd00:77::1/64)
// and b (.2, ::2), recording their namespace names in names.
func newTwoHostLAN(t *testing.T, prefix string, names *[]string) (*LAN, *NetNS, *NetNS) {
	t.Helper()
	lan := NewLAN(t, prefix)
	a := lan.AddHost(t, "a", v4A, v6A)
	b := lan.AddHost(t, "b", v4B, v6B)
	*names = append(*names, lan.Switch().Name(), a.Name(), b.Name())
	return lan, a, b
}

func TestLAN(t *testing.T) {
	SkipShort(t, "needs root: LAN of namespaces, tcpdump; takes 3 s; run without -short")
	t.Parallel()
	names, pids := trackGone(t)
	RequireTool(t, "ping")
	lan, a, b := newTwoHostLAN(t, "tplan", names)
	t.Logf("switch %s, hosts %s %s", lan.Switch().Name(), a.Name(), b.Name())
	if !strings.HasPrefix(lan.Switch().Name(), "tplansw-") || !strings.HasPrefix(a.Name(), "tplana-") {
		t.Errorf("names %s, %s: want tplansw-*, tplana-*", lan.Switch().Name(), a.Name())
	}

	br := lan.Switch().Run(t, "ip", "-d", "link", "show", "br0")
	for _, want := range []string{"state UP", "stp_state 0", "forward_delay 0", "mcast_snooping 0"} {
		if !strings.Contains(br, want) {
			t.Errorf("br0 lacks %q:\n%s", want, br)
		}
	}

	for i, h := range []*NetNS{a, b} {
		mac := HostMAC(i + 1)
		if got := lan.MAC(h); got.String() != mac.String() {
			t.Errorf("MAC(%s) = %v, want %v", h.Name(), got, mac)
		}
		if out := h.Run(t, "ip", "link", "show", "eth0"); !strings.Contains(out, "link/ether "+mac.String()) {
			t.Errorf("%s eth0 MAC is not %v:\n%s", h.Name(), mac, out)
		}
		ll := h.LinkLocal(t, "eth0")
		if want := eui64LinkLocal(mac); ll != want {
			t.Errorf("%s LinkLocal = %v, want %v", h.Name(), ll, want)
		}
		if !h.HasAddr(t, "eth0", ll) {
			t.Errorf("%s: HasAddr(%v) = false", h.Name(), ll)
		}
		if got := h.Run(t, "cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad"); strings.TrimSpace(got) != "0" {
			t.Errorf("%s accept_dad = %q, want 0 (Sysctl not applied in the namespace?)", h.Name(), got)
		}
	}
	if lan.MAC(lan.Switch()) != nil {
		t.Errorf("MAC(switch) != nil")
	}
	addrs := a.Addrs(t, "eth0")
	for _, want := range []netip.Prefix{v4A, v6A, netip.PrefixFrom(eui64LinkLocal(HostMAC(1)), 64)} {
		if !slices.Contains(addrs, want) {
			t.Errorf("a.Addrs = %v, lacks %v", addrs, want)
		}
	}
	if a.HasAddr(t, "eth0", v4B.Addr()) {
		t.Errorf("a.HasAddr(%v) = true", v4B.Addr())
	}
	if got := lan.Hosts(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Hosts() = %v", got)
	}

	llB := b.LinkLocal(t, "eth0").WithZone("eth0")
	// reach pings all pairs concurrently (a lost ping costs 1s each).
	reach := func(want bool, why string) {
		t.Helper()
		var wg sync.WaitGroup
		for _, c := range []struct {
			from *NetNS
			to   netip.Addr
		}{{a, v4B.Addr()}, {a, v6B.Addr()}, {a, llB}, {b, v4A.Addr()}, {b, v6A.Addr()}} {
			wg.Go(func() {
				var got bool
				if want {
					got = waitPing(t, c.from, c.to, 5*time.Second)
				} else {
					got = c.from.Ping(t, c.to)
				}
				if got != want {
					t.Errorf("%s: ping %s -> %v = %v, want %v", why, c.from.Name(), c.to, got, want)
				}
			})
		}
		wg.Wait()
	}
	// The switch sees the hosts' traffic (tcpdump makes br0 promiscuous).
	c := lan.Switch().Capture(t, "br0", "icmp or icmp6")
	*pids = append(*pids, c.p.pid)
	reach(true, "initially")
	var echo bool
	for _, p := range ReadPackets(t, c.Stop(t)) {
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		icmp, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if eth != nil && ip != nil && icmp != nil && icmp.TypeCode.Type() == layers.ICMPv4TypeEchoRequest &&
			eth.SrcMAC.String() == HostMAC(1).String() && eth.DstMAC.String() == HostMAC(2).String() &&
			ip.SrcIP.Equal(v4A.Addr().AsSlice()) && ip.DstIP.Equal(v4B.Addr().AsSlice()) {
			echo = true
		}
	}
	if !echo {
		t.Errorf("capture on the switch's br0 has no echo request %v -> %v from %v", v4A.Addr(), v4B.Addr(), HostMAC(1))
	}

	a.SetLink(t, "eth0", false)
	reach(false, "a's eth0 down")
	a.SetLink(t, "eth0", true)
	reach(true, "a's eth0 up again")
	if !a.HasAddr(t, "eth0", v6A.Addr()) || !a.HasAddr(t, "eth0", eui64LinkLocal(HostMAC(1))) {
		t.Errorf("IPv6 addresses lost over down/up: %v", a.Addrs(t, "eth0"))
	}

	lan.SetPort(t, a, false)
	if out := a.Run(t, "ip", "link", "show", "eth0"); !strings.Contains(out, "NO-CARRIER") {
		t.Errorf("a's port down, eth0 has carrier:\n%s", out)
	}
	reach(false, "a's switch port down")
	lan.SetPort(t, a, true)
	reach(true, "a's switch port up again")
}

func TestSysctlRefusesHostKeys(t *testing.T) {
	t.Parallel()
	ns := NewNetNS(t, "tpsysctl")
	ft := &fatalTB{TB: t}
	goexitSafe(func() { ns.Sysctl(ft, "kernel.core_pattern", "x") })
	if !ft.fatal || !strings.Contains(ft.msg, "only net/* keys") {
		t.Errorf("Sysctl(kernel.core_pattern): fatal=%v %q", ft.fatal, ft.msg)
	}
}

// keyCase is one TSIG variant of a DNS role test: name "nokey" with no key,
// or "tsig" with a fresh key.
type keyCase struct {
	name string
	key  *TSIGKey
}

// forEachKey runs f as parallel subtests of t, once per keyCase ("nokey",
// "tsig"). Each subtest first registers requireGone (so that check runs
// after every other cleanup; see trackGone) for the namespace names and
// PIDs f appends to *names and *pids.
func forEachKey(t *testing.T, f func(t *testing.T, tc keyCase, names *[]string, pids *[]int)) {
	for _, tc := range []keyCase{{"nokey", nil}, {"tsig", testKey()}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			names, pids := trackGone(t)
			f(t, tc, names, pids)
		})
	}
}

// goexitSafe runs f in a goroutine of its own and waits until it returns
// or ends it with runtime.Goexit (as fatalTB's and skipTB's Fatalf do).
func goexitSafe(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// wantFatal runs f with a fatalTB standing in for t (in a goroutine of its
// own, see goexitSafe) and fails t unless f called Fatalf with a message
// containing want.
func wantFatal(t *testing.T, want string, f func(tb testing.TB)) {
	t.Helper()
	ft := &fatalTB{TB: t}
	goexitSafe(func() { f(ft) })
	if !ft.fatal || !strings.Contains(ft.msg, want) {
		t.Errorf("fatal %v %q, want one containing %q", ft.fatal, ft.msg, want)
	}
}
