package testpeer

// FRR 8.4 (Debian) as the router of the bgp integration tests: zebra and
// bgpd started by the test in a namespace, each with its own config, pid
// file, zserv socket and vty directory in a temp dir (no system service),
// running as the frr user (root is not in the frrvty group the daemons
// check). zebra installs the best paths (ECMP with maximum-paths) in the
// namespace's kernel, so the namespace forwards by them.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FRROptions describe an FRR router.
type FRROptions struct {
	NetNS     *NetNS // required
	AS        uint32
	RouterID  netip.Addr
	Neighbors []BGPPeer
	// MaxPaths is maximum-paths (ECMP) for IPv4 and IPv6 unicast; 0: 1.
	MaxPaths int
	// HoldTime is every session's hold time; 0: 9s.
	HoldTime time.Duration
	// Extra is added to bgpd.conf's "router bgp" block.
	Extra string
	// Config, when set, is bgpd.conf as is: AS, RouterID, Neighbors,
	// MaxPaths, HoldTime and Extra are then ignored.
	Config string
}

// FRR is a running zebra + bgpd.
type FRR struct {
	Dir string
	ns  *NetNS
}

// StartFRR writes zebra.conf and bgpd.conf, starts zebra then bgpd in
// o.NetNS (own process groups, killed by PID on cleanup) and waits at
// most 5s until vtysh reaches both. Skips loudly without root or FRR.
func StartFRR(t testing.TB, o FRROptions) *FRR {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "vtysh")
	for _, d := range []string{"zebra", "bgpd"} {
		if _, err := os.Stat("/usr/lib/frr/" + d); err != nil {
			t.Skipf("SKIP: /usr/lib/frr/%s missing (apt-get install frr)", d)
		}
	}
	hold := int(o.HoldTime / time.Second)
	if hold == 0 {
		hold = 9
	}
	dir, err := os.MkdirTemp("", "dnslb-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil { // the daemons run as frr
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp network import-check\n", o.AS, o.RouterID)
	for _, n := range o.Neighbors {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers %d %d\n neighbor %s timers connect 2\n",
			n.Address, n.AS, n.Address, max(1, hold/3), hold, n.Address)
	}
	b.WriteString(o.Extra)
	paths := max(1, o.MaxPaths)
	for _, fam := range []string{"ipv4", "ipv6"} {
		fmt.Fprintf(&b, " address-family %s unicast\n  maximum-paths %d\n", fam, paths)
		for _, n := range o.Neighbors {
			if (fam == "ipv6") == n.Address.Is6() {
				fmt.Fprintf(&b, "  neighbor %s activate\n", n.Address)
			} else {
				fmt.Fprintf(&b, "  no neighbor %s activate\n", n.Address)
			}
		}
		b.WriteString(" exit-address-family\n")
	}
	bgpd := b.String()
	if o.Config != "" {
		bgpd = o.Config
	}
	files := map[string]string{"zebra.conf": "hostname router\n", "bgpd.conf": bgpd}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := &FRR{Dir: dir, ns: o.NetNS}
	for _, d := range []string{"zebra", "bgpd"} {
		logf, err := os.Create(filepath.Join(dir, d+".out"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", o.NetNS.name, "/usr/lib/frr/"+d,
			"-f", filepath.Join(dir, d+".conf"), "-i", filepath.Join(dir, d+".pid"), "-z", filepath.Join(dir, "zserv.api"),
			"--vty_socket", dir, "-u", "frr", "-g", "frr", "-P", "0", "--log", "file:"+filepath.Join(dir, d+".log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		p, err := startProc(cmd, false)
		logf.Close()
		if err != nil {
			t.Fatalf("testpeer: start %s: %v", d, err)
		}
		o.NetNS.track(p)
		t.Cleanup(func() {
			if err := p.stop(termGrace); err != nil {
				t.Errorf("testpeer: %s: %v", d, err)
			}
			if t.Failed() {
				t.Logf("testpeer: %s log:\n%s", d, tail(filepath.Join(dir, d+".log"), 20))
			}
		})
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, d+".vty")); err == nil {
				break
			}
			if p.exited() || time.Now().After(deadline) {
				t.Fatalf("testpeer: %s did not start:\n%s", d, tail(filepath.Join(dir, d+".out"), 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return f
}

// Vtysh runs one vtysh command against this router and returns its output.
func (f *FRR) Vtysh(t testing.TB, command string) string {
	t.Helper()
	out, err := runBounded("ip", "netns", "exec", f.ns.name, "vtysh", "--vty_socket", f.Dir, "-c", command)
	if err != nil {
		t.Fatalf("testpeer: vtysh -c %q: %v\n%s", command, err, out)
	}
	return out
}

// RIBNextHops returns the next hops of prefix in FRR's RIB (show ip route
// json; selected, installed route), none when it has no route.
func (f *FRR) RIBNextHops(t testing.TB, prefix string) []netip.Addr {
	t.Helper()
	cmd := "show ip route " + prefix + " json"
	if strings.Contains(prefix, ":") {
		cmd = "show ipv6 route " + prefix + " json"
	}
	var routes map[string][]struct {
		Selected bool `json:"selected"`
		Nexthops []struct {
			IP     string `json:"ip"`
			Active bool   `json:"active"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(f.Vtysh(t, cmd)), &routes); err != nil {
		t.Fatalf("testpeer: %s: %v", cmd, err)
	}
	var out []netip.Addr
	for _, r := range routes[prefix] {
		if !r.Selected {
			continue
		}
		for _, nh := range r.Nexthops {
			if a, err := netip.ParseAddr(nh.IP); err == nil && nh.Active {
				out = append(out, a)
			}
		}
	}
	return out
}

// KernelNextHops returns the next hops of the kernel's route to prefix in
// the router's namespace (what forwarding uses).
func (f *FRR) KernelNextHops(t testing.TB, prefix string) []netip.Addr {
	t.Helper()
	return kernelNextHops(t, f.ns, prefix)
}

// kernelNextHops returns the next hops of the kernel's route to prefix in
// ns's main table (one, or the nexthops of a multipath route).
func kernelNextHops(t testing.TB, ns *NetNS, prefix string) []netip.Addr {
	t.Helper()
	out, err := runBounded("ip", "-n", ns.name, "-j", "route", "show", prefix)
	if err != nil {
		t.Fatalf("testpeer: ip route show %s: %v\n%s", prefix, err, out)
	}
	var routes []struct {
		Gateway  string `json:"gateway"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("testpeer: ip -j route: %v\n%s", err, out)
	}
	var hops []netip.Addr
	for _, r := range routes {
		if a, err := netip.ParseAddr(r.Gateway); err == nil {
			hops = append(hops, a)
		}
		for _, nh := range r.Nexthops {
			if a, err := netip.ParseAddr(nh.Gateway); err == nil {
				hops = append(hops, a)
			}
		}
	}
	return hops
}
