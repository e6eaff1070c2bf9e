package testpeer

// BIRD 2 (Debian bird2) for the bgp integration tests, as a router or as
// the routing daemon of a dnslb node: `bird -f -c <conf> -s <ctl> -P
// <pid>` started by the test in a namespace with its own config, control
// socket, pid file and log in a temp dir (no system service), stopped by
// PID; read with `birdc -s <ctl>`.

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// BIRDOptions describe a BIRD daemon.
type BIRDOptions struct {
	NetNS *NetNS // required
	// Config is bird.conf, used as is after a first line that sends
	// BIRD's log to a file in its directory.
	Config string
}

// BIRD is a running bird.
type BIRD struct {
	Dir, ConfPath, LogPath, Ctl string
	ns                          *NetNS
	p                           *proc
}

// StartBIRD writes bird.conf, starts bird in o.NetNS (own process group,
// stopped by PID on cleanup) and waits at most 5s until birdc reaches it.
// Skips loudly without root, bird or birdc.
func StartBIRD(t testing.TB, o BIRDOptions) *BIRD {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "bird")
	RequireTool(t, "birdc")
	dir, err := os.MkdirTemp("", "dnslb-bird-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b := &BIRD{Dir: dir, ConfPath: filepath.Join(dir, "bird.conf"), LogPath: filepath.Join(dir, "bird.log"),
		Ctl: filepath.Join(dir, "bird.ctl"), ns: o.NetNS}
	conf := fmt.Sprintf("log %q all;\n", b.LogPath) + o.Config
	if err := os.WriteFile(b.ConfPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "bird.out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("ip", "netns", "exec", o.NetNS.name, "bird", "-f", "-c", b.ConfPath, "-s", b.Ctl,
		"-P", filepath.Join(dir, "bird.pid"))
	cmd.Stdout, cmd.Stderr = out, out
	p, err := startProc(cmd, false)
	if err != nil {
		t.Fatalf("testpeer: start bird: %v", err)
	}
	b.p = p
	o.NetNS.track(p)
	t.Cleanup(func() {
		if err := p.stop(termGrace); err != nil {
			t.Errorf("testpeer: bird: %v", err)
		}
		if t.Failed() {
			t.Logf("testpeer: bird log:\n%s\n%s", tail(b.LogPath, 30), tail(outPath, 10))
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := b.birdc("show", "status"); err == nil {
			return b
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("testpeer: bird did not start:\n%s\n%s", tail(outPath, 20), tail(b.LogPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *BIRD) birdc(args ...string) (string, error) {
	return runBounded(append([]string{"birdc", "-s", b.Ctl}, args...)...)
}

// Birdc runs one birdc command ("show", "route", ...) and returns its
// output.
func (b *BIRD) Birdc(t testing.TB, args ...string) string {
	t.Helper()
	out, err := b.birdc(args...)
	if err != nil {
		t.Fatalf("testpeer: birdc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ShowRoute returns `birdc show route for <prefix> all`.
func (b *BIRD) ShowRoute(t testing.TB, prefix string) string {
	t.Helper()
	return b.Birdc(t, "show", "route", "for", prefix, "all")
}

var birdVia = regexp.MustCompile(`(?m)^\s+via (\S+) on `)

// NextHops returns the next hop of every route BIRD holds for prefix (all
// of them, not only the best: `show route for <prefix>`), none when it
// has no route. A prefix in the table but not this exact one (a covering
// route) does not count.
func (b *BIRD) NextHops(t testing.TB, prefix string) []netip.Addr {
	t.Helper()
	out, err := b.birdc("show", "route", "for", prefix)
	if strings.Contains(out, "Network not found") {
		return nil
	}
	if err != nil {
		t.Fatalf("testpeer: birdc show route for %s: %v\n%s", prefix, err, out)
	}
	if !strings.Contains(out, prefix+" ") {
		return nil
	}
	var hops []netip.Addr
	for _, m := range birdVia.FindAllStringSubmatch(out, -1) {
		if a, err := netip.ParseAddr(m[1]); err == nil {
			hops = append(hops, a)
		}
	}
	return hops
}

// ProtocolState returns the state of protocol name as `birdc show
// protocols` prints it ("up", "start", ...), with its info ("Established").
func (b *BIRD) ProtocolState(t testing.TB, name string) string {
	t.Helper()
	for _, line := range strings.Split(b.Birdc(t, "show", "protocols", name), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == name {
			return strings.Join(append([]string{f[3]}, f[5:]...), " ")
		}
	}
	return "unknown"
}

// KernelNextHops returns the next hops of the kernel's route to prefix in
// BIRD's namespace (what BIRD exported to the kernel).
func (b *BIRD) KernelNextHops(t testing.TB, prefix string) []netip.Addr {
	t.Helper()
	return kernelNextHops(t, b.ns, prefix)
}

// Log returns BIRD's log.
func (b *BIRD) Log() string {
	s, _ := os.ReadFile(b.LogPath)
	return string(s)
}

// BIRDRouterConfig is a bird.conf for a router: BGP sessions with every
// neighbour (eBGP, hold time hold, connect retry 2s, import all, export
// none) and a kernel protocol that installs the best routes in the
// namespace's kernel, with ECMP (merge paths) when ecmp.
func BIRDRouterConfig(routerID netip.Addr, as uint32, neighbors []BGPPeer, hold time.Duration, ecmp bool) string {
	h := int(hold / time.Second)
	if h == 0 {
		h = 9
	}
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nprotocol device { scan time 1; }\n", routerID)
	merge := ""
	if ecmp {
		merge = " merge paths on;"
	}
	fmt.Fprintf(&b, "protocol kernel { ipv4 { export all; };%s }\nprotocol kernel { ipv6 { export all; };%s }\n", merge, merge)
	for i, n := range neighbors {
		fam := "ipv4"
		if n.Address.Is6() {
			fam = "ipv6"
		}
		fmt.Fprintf(&b, "protocol bgp n%d {\n  local as %d;\n  neighbor %s as %d;\n  hold time %d;\n  keepalive time %d;\n  connect retry time 2;\n  error wait time 1, 10;\n  %s { import all; export none; };\n}\n",
			i+1, as, n.Address, n.AS, h, max(1, h/3), fam)
	}
	return b.String()
}
