package testpeer

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lanReadyTimeout bounds the wait for a host's link-local address.
const lanReadyTimeout = 5 * time.Second

// LAN is an Ethernet segment for tests: a bridge inside its own namespace,
// with hosts (each its own namespace) attached by veth pairs.
//
// Layout, for host number i (1, 2, ... in AddHost order):
//
//	switch netns: br0 (bridge, up, no STP, forward_delay 0,
//	              mcast_snooping 0 so VRRP/ND multicast floods to every port)
//	              └── port<i> (veth, MAC 02:00:00:01:xx:yy) ═╗
//	host netns:   eth0 (veth, MAC 02:00:00:00:xx:yy)  <═══════╝
//
// where xx:yy is i as a 16-bit number, so host 1 is 02:00:00:00:00:01 and
// its EUI-64 link-local address is fe80::ff:fe00:1 (see HostMAC).
//
// Every namespace is a NetNS: cleanup (on the t passed to NewLAN or
// AddHost) kills what runs in it and deletes it, which also destroys the
// veth pairs and the bridge. Nothing is created outside the namespaces.
type LAN struct {
	sw *NetNS

	prefix string

	mu    sync.Mutex
	next  int // number of the last host reserved
	hosts []*NetNS
	index map[*NetNS]int // host -> i (1-based)
}

// NewLAN creates the switch namespace (prefix+"sw-"+random; the prefix is
// cut to 6 characters) with bridge br0 up: STP off, forward delay 0,
// multicast snooping off (so VRRP multicast floods to all ports). Cleanup
// deletes it. Skips loudly if not root or ip is missing.
func NewLAN(t testing.TB, prefix string) *LAN {
	t.Helper()
	prefix = sanitizeName(prefix)
	if prefix == "" {
		prefix = "lan"
	}
	// NewNetNS keeps at most 8 characters of its prefix; keep "sw" in them.
	swPrefix := prefix
	if len(swPrefix) > 6 {
		swPrefix = swPrefix[:6]
	}
	sw := NewNetNS(t, swPrefix+"sw")
	l := &LAN{sw: sw, prefix: prefix, index: map[*NetNS]int{}}
	for _, c := range [][]string{
		{"ip", "-n", sw.name, "link", "add", "br0", "address", "02:00:00:02:00:00", "type", "bridge",
			"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
		{"ip", "-n", sw.name, "link", "set", "br0", "up"},
	} {
		if out, err := runBounded(c...); err != nil {
			t.Fatalf("testpeer: LAN %s: %s: %v\n%s", sw.name, strings.Join(c, " "), err, out)
		}
	}
	return l
}

// Switch returns the switch namespace (holding br0 and the port<i> veths),
// e.g. to Capture on br0.
func (l *LAN) Switch() *NetNS { return l.sw }

// Hosts returns the hosts in AddHost order.
func (l *LAN) Hosts() []*NetNS {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*NetNS(nil), l.hosts...)
}

// HostMAC returns the MAC address of eth0 of host number i (1-based, in
// AddHost order): 02:00:00:00:xx:yy with xx:yy = i.
func HostMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)}
}

// MAC returns h's eth0 MAC address (HostMAC of its number), or nil if h is
// not a host of this LAN.
func (l *LAN) MAC(h *NetNS) net.HardwareAddr {
	l.mu.Lock()
	i, ok := l.index[h]
	l.mu.Unlock()
	if !ok {
		return nil
	}
	return HostMAC(i)
}

// AddHost creates a host namespace (named prefix+name+"-"+random, the
// prefix shortened so that name's first 8 characters fit)
// with "eth0", a veth whose peer port<i> is enslaved to br0, both up; lo
// up; and addrs on eth0 (IPv4 or IPv6 prefixes; IPv6 ones with nodad).
//
// On eth0 IPv6 is enabled (disable_ipv6=0, addrgenmode eui64), DAD is off
// (accept_dad=0: every address is usable at once, none is ever tentative;
// a test of DAD itself can turn it on with Sysctl) and keep_addr_on_down=1
// (static IPv6 addresses survive SetLink down/up, as IPv4 ones do). AddHost waits (at most 5s) until the fe80:: address
// exists and is not tentative. Cleanup deletes the namespace.
func (l *LAN) AddHost(t testing.TB, name string, addrs ...netip.Prefix) *NetNS {
	t.Helper()
	l.mu.Lock()
	l.next++
	i := l.next
	l.mu.Unlock()
	if i > 0xffff {
		t.Fatalf("testpeer: LAN %s: too many hosts", l.sw.name)
	}
	for _, p := range addrs {
		if !p.IsValid() {
			t.Fatalf("testpeer: LAN %s: AddHost %q: invalid prefix %v", l.sw.name, name, p)
		}
	}
	// NewNetNS keeps 8 characters of its prefix: keep the host's name in them.
	name = sanitizeName(name)
	if len(name) > 8 {
		name = name[:8]
	}
	hostPrefix := l.prefix
	if len(hostPrefix)+len(name) > 8 {
		hostPrefix = hostPrefix[:8-len(name)]
	}
	h := NewNetNS(t, hostPrefix+name)
	hostMAC := HostMAC(i)
	portMAC := net.HardwareAddr{0x02, 0, 0, 0x01, byte(i >> 8), byte(i)}
	port := "port" + strconv.Itoa(i)
	if out, err := runBounded("ip", "-n", l.sw.name, "link", "add", port, "address", portMAC.String(),
		"type", "veth", "peer", "name", "eth0", "address", hostMAC.String(), "netns", h.name); err != nil {
		t.Fatalf("testpeer: LAN %s: add veth %s <-> %s/eth0: %v\n%s", l.sw.name, port, h.name, err, out)
	}
	h.Sysctl(t, "net/ipv6/conf/eth0/disable_ipv6", "0")
	h.Sysctl(t, "net/ipv6/conf/eth0/accept_dad", "0")
	h.Sysctl(t, "net/ipv6/conf/eth0/keep_addr_on_down", "1")
	cmds := [][]string{
		{"ip", "-n", h.name, "link", "set", "eth0", "addrgenmode", "eui64"},
		{"ip", "-n", l.sw.name, "link", "set", port, "master", "br0", "up"},
		{"ip", "-n", h.name, "link", "set", "eth0", "up"},
	}
	for _, p := range addrs {
		c := []string{"ip", "-n", h.name, "addr", "add", p.String(), "dev", "eth0"}
		if p.Addr().Is6() {
			c = append(c, "nodad")
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if out, err := runBounded(c...); err != nil {
			t.Fatalf("testpeer: LAN %s: %s: %v\n%s", l.sw.name, strings.Join(c, " "), err, out)
		}
	}
	h.waitLinkLocal(t, "eth0", lanReadyTimeout)

	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.index[h] = i
	l.mu.Unlock()
	return h
}

// SetPort sets h's switch port (the veth peer of its eth0, in the switch
// namespace) down or up: like pulling h's cable. h's eth0 stays
// administratively up but loses carrier (operstate LOWERLAYERDOWN), unlike
// SetLink, which takes eth0 itself down.
func (l *LAN) SetPort(t testing.TB, h *NetNS, up bool) {
	t.Helper()
	l.mu.Lock()
	i, ok := l.index[h]
	l.mu.Unlock()
	if !ok {
		t.Fatalf("testpeer: LAN %s: SetPort: %v is not a host of this LAN", l.sw.name, h.name)
	}
	l.sw.SetLink(t, "port"+strconv.Itoa(i), up)
}

// SetLink sets iface in the namespace administratively up or down (ip link
// set), e.g. a LAN host's eth0 to simulate a node losing the network. On a
// LAN host, IPv4 and static IPv6 addresses survive down/up
// (keep_addr_on_down); the kernel removes the fe80:: address on down and
// makes it again (the same EUI-64 one, usable at once) on up.
func (ns *NetNS) SetLink(t testing.TB, iface string, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	c := []string{"ip", "-n", ns.name, "link", "set", "dev", iface, state}
	if out, err := runBounded(c...); err != nil {
		t.Fatalf("testpeer: netns %s: %s: %v\n%s", ns.name, strings.Join(c, " "), err, out)
	}
}

// Sysctl writes value to a sysctl of the namespace, e.g.
// Sysctl(t, "net/ipv6/conf/eth0/accept_dad", "0"). The key is a path under
// /proc/sys ('/'-separated, so interface names may contain dots); a key
// without '/' is taken as dotted (net.ipv4.ip_forward). Only net.* keys
// are per namespace; others are refused, so a test cannot change the host.
func (ns *NetNS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	key = strings.TrimPrefix(key, "/")
	if !strings.HasPrefix(key, "net/") || strings.Contains(key, "..") {
		t.Fatalf("testpeer: netns %s: Sysctl %q: only net/* keys are per namespace", ns.name, key)
	}
	var err error
	ns.Do(t, func() {
		// Opened on the thread that is inside the namespace, so this is
		// the namespace's own net sysctl.
		err = os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
	})
	if err != nil {
		t.Fatalf("testpeer: netns %s: sysctl %s=%s: %v", ns.name, key, value, err)
	}
}

// ifAddr is one entry of `ip -j addr`'s addr_info.
type ifAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Tentative bool   `json:"tentative"`
	DADFailed bool   `json:"dadfailed"`
}

// addrInfo returns iface's addresses as `ip -j addr show dev IFACE`
// reports them.
func (ns *NetNS) addrInfo(t testing.TB, iface string) []ifAddr {
	t.Helper()
	out, err := runBounded("ip", "-n", ns.name, "-j", "addr", "show", "dev", iface)
	if err != nil {
		t.Fatalf("testpeer: netns %s: ip -j addr show dev %s: %v\n%s", ns.name, iface, err, out)
	}
	var links []struct {
		AddrInfo []ifAddr `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("testpeer: netns %s: parse ip -j addr show dev %s: %v\n%s", ns.name, iface, err, out)
	}
	var all []ifAddr
	for _, l := range links {
		all = append(all, l.AddrInfo...)
	}
	return all
}

// Addrs returns the addresses configured on iface (IPv4 and IPv6,
// link-local included), with their prefix lengths and without zones.
func (ns *NetNS) Addrs(t testing.TB, iface string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, a := range ns.addrInfo(t, iface) {
		ip, err := netip.ParseAddr(a.Local)
		if err != nil {
			t.Fatalf("testpeer: netns %s: %s: bad address %q from ip: %v", ns.name, iface, a.Local, err)
		}
		ps = append(ps, netip.PrefixFrom(ip.WithZone(""), a.PrefixLen))
	}
	return ps
}

// HasAddr reports whether a is configured on iface (any prefix length;
// a's zone, if any, is ignored).
func (ns *NetNS) HasAddr(t testing.TB, iface string, a netip.Addr) bool {
	t.Helper()
	a = a.WithZone("").Unmap()
	for _, p := range ns.Addrs(t, iface) {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// LinkLocal returns iface's fe80::/10 address, without a zone (add
// .WithZone(iface) to dial it). Fails the test if there is none; a
// tentative one is returned too (on LAN hosts DAD is off, so none is).
func (ns *NetNS) LinkLocal(t testing.TB, iface string) netip.Addr {
	t.Helper()
	if a, ok := ns.linkLocal(t, iface); ok {
		return a
	}
	t.Fatalf("testpeer: netns %s: %s has no IPv6 link-local address:\n%v", ns.name, iface, ns.addrInfo(t, iface))
	return netip.Addr{}
}

func (ns *NetNS) linkLocal(t testing.TB, iface string) (netip.Addr, bool) {
	for _, a := range ns.addrInfo(t, iface) {
		ip, err := netip.ParseAddr(a.Local)
		if err == nil && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip.WithZone(""), !a.Tentative && !a.DADFailed
		}
	}
	return netip.Addr{}, false
}

// waitLinkLocal waits until iface has a usable (not tentative) link-local
// address.
func (ns *NetNS) waitLinkLocal(t testing.TB, iface string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, ok := ns.linkLocal(t, iface); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: netns %s: no usable IPv6 link-local address on %s after %v:\n%+v",
				ns.name, iface, timeout, ns.addrInfo(t, iface))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ping sends one ICMP echo request from inside the namespace (`ping -c1
// -W1`) and reports whether a reply came within a second. A link-local
// dst needs a zone (the interface). Skips loudly if ping is missing.
func (ns *NetNS) Ping(t testing.TB, dst netip.Addr) bool {
	t.Helper()
	RequireTool(t, "ping")
	out, err := runBounded("ip", "netns", "exec", ns.name, "ping", "-n", "-c1", "-W1", dst.String())
	if err != nil && !strings.Contains(out, "100% packet loss") && !strings.Contains(out, "unreachable") {
		// Not a plain "no reply": say why, but let the caller decide.
		t.Logf("testpeer: netns %s: ping %v: %v: %s", ns.name, dst, err, strings.TrimSpace(out))
	}
	return err == nil
}

// String returns the namespace's name.
func (l *LAN) String() string { return fmt.Sprintf("LAN(%s)", l.sw.name) }
