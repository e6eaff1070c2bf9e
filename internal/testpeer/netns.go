package testpeer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

const (
	// maxNetNSName keeps names short enough for every tool (IFNAMSIZ-1).
	maxNetNSName = 15
	// cmdTimeout bounds every short command (ip, tc, Run).
	cmdTimeout = 60 * time.Second
)

// NetNS is a network namespace created by the test. Its loopback is up;
// 127.0.0.0/8 is all local on it, so servers may bind 127.0.0.11,
// 127.0.0.12, ... without AddLoopbackAddr.
type NetNS struct {
	name string

	mu      sync.Mutex
	procs   []*proc
	delays  []*delayLine
	clsact  map[string]bool // devices with a clsact qdisc added by us
	nextTun int
	deleted bool // cleanup has run
}

// NewNetNS creates namespace prefix + "-" + 6 random hex digits (at most
// 15 characters; prefix is shortened to fit) and brings lo up. t.Cleanup
// kills every process started in it (tracked PIDs first, then whatever
// `ip netns pids` still reports), then runs `ip netns del`. Skips loudly if
// not root or ip is missing.
func NewNetNS(t testing.TB, prefix string) *NetNS {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "ip")
	prefix = sanitizeName(prefix)
	if prefix == "" {
		prefix = "tp"
	}
	const suffixLen = 1 + 6
	if len(prefix) > maxNetNSName-suffixLen {
		prefix = prefix[:maxNetNSName-suffixLen]
	}
	sweepStale(t)
	var name string
	for try := 1; ; try++ {
		name = prefix + "-" + randHex(3)
		out, err := runBounded("ip", "netns", "add", name)
		if err == nil {
			break
		}
		switch {
		case strings.Contains(out, "File exists") && try < 3:
			continue
		case strings.Contains(out, "Operation not permitted"):
			t.Skipf("SKIP: cannot create a network namespace (ip netns add: %s): needs CAP_SYS_ADMIN in the initial user namespace", strings.TrimSpace(out))
		}
		t.Fatalf("testpeer: ip netns add %s: %v\n%s", name, err, out)
	}
	ns := &NetNS{name: name, clsact: map[string]bool{}}
	t.Cleanup(func() { ns.cleanup(t) })
	if err := writeMarker(name); err != nil {
		t.Fatalf("testpeer: netns %s: write owner marker in %s: %v", name, markerDir, err)
	}
	if out, err := runBounded("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		t.Fatalf("testpeer: netns %s: set lo up: %v\n%s", name, err, out)
	}
	return ns
}

// Name returns the namespace's name, as used by `ip netns exec`.
func (ns *NetNS) Name() string { return ns.name }

// nameOrEmpty is Name, or "" (the test's own namespace) for a nil ns.
func (ns *NetNS) nameOrEmpty() string {
	if ns == nil {
		return ""
	}
	return ns.name
}

// track adds p to the processes ns's cleanup kills; a nil ns (the test's
// own namespace) tracks nothing.
func (ns *NetNS) track(p *proc) {
	if ns == nil {
		return
	}
	ns.mu.Lock()
	ns.procs = append(ns.procs, p)
	ns.mu.Unlock()
}

// Run runs a command inside the namespace (ip netns exec), waits at most a
// minute, and returns its combined output. A non-zero exit fails the test
// with the output.
func (ns *NetNS) Run(t testing.TB, args ...string) string {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("testpeer: NetNS.Run: no command")
	}
	out, err := runBounded(append([]string{"ip", "netns", "exec", ns.name}, args...)...)
	if err != nil {
		t.Fatalf("testpeer: netns %s: %s: %v\n%s", ns.name, strings.Join(args, " "), err, out)
	}
	return out
}

// Start starts a long-running command inside the namespace, in its own
// process group, with stdout and stderr written to a file in t.TempDir().
// It is killed by PID (SIGTERM, SIGKILL after 2s) on t's cleanup or the
// namespace's, whichever comes first.
//
// The returned Cmd is already being waited for: callers may read
// Cmd.Process.Pid or signal it, but must not call Wait.
func (ns *NetNS) Start(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("testpeer: NetNS.Start: no command")
	}
	logPath := filepath.Join(t.TempDir(), sanitizeName(filepath.Base(args[0]))+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	defer f.Close() // the child has its own copy
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	p, err := startProc(cmd, false)
	if err != nil {
		t.Fatalf("testpeer: netns %s: start %s: %v", ns.name, strings.Join(args, " "), err)
	}
	ns.track(p)
	t.Cleanup(func() {
		if err := p.stop(termGrace); err != nil {
			t.Errorf("testpeer: netns %s: %v", ns.name, err)
		}
		if t.Failed() {
			t.Logf("testpeer: netns %s: %s (pid %d) output:\n%s", ns.name, strings.Join(args, " "), p.pid, tail(logPath, 20))
		}
	})
	return cmd
}

// Do runs f on the calling goroutine, locked to its OS thread, with that
// thread switched into the namespace; afterwards the thread is switched
// back and unlocked.
//
// Sockets created inside f belong to the namespace and stay there after f
// returns: that is how the test process's own Go DNS client (or a server
// listener) can live in the namespace while the rest of the test runs
// outside it. Only code on this goroutine is inside: goroutines that f
// starts run on other threads, in the original namespace; so create
// sockets in f itself (dns.Client.Exchange dials on the calling
// goroutine, so it works inside f).
func (ns *NetNS) Do(t testing.TB, f func()) {
	t.Helper()
	if err := inNetNS(ns.name, f); err != nil {
		t.Fatalf("testpeer: netns %s: %v", ns.name, err)
	}
}

// AddLoopbackAddr adds an address to lo inside the namespace, e.g.
// "fd00::11/128" or "127.0.0.13/32"; a bare address gets a host prefix.
// IPv6 addresses are added with nodad so they are usable at once.
// (IPv4 127.0.0.0/8 needs no adding: it is all local once lo is up.)
func (ns *NetNS) AddLoopbackAddr(t testing.TB, prefix string) {
	t.Helper()
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		a, aerr := netip.ParseAddr(prefix)
		if aerr != nil {
			t.Fatalf("testpeer: AddLoopbackAddr %q: not an address or prefix", prefix)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	args := []string{"ip", "-n", ns.name, "addr", "add", p.String(), "dev", "lo"}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	if out, err := runBounded(args...); err != nil {
		t.Fatalf("testpeer: netns %s: %s: %v\n%s", ns.name, strings.Join(args, " "), err, out)
	}
}

func (ns *NetNS) cleanup(t testing.TB) {
	ns.mu.Lock()
	if ns.deleted {
		ns.mu.Unlock()
		return
	}
	ns.deleted = true
	delays, procs := ns.delays, ns.procs
	ns.delays, ns.procs = nil, nil
	ns.mu.Unlock()

	for _, d := range delays {
		if err := d.close(); err != nil {
			t.Errorf("testpeer: netns %s: %v", ns.name, err)
		}
	}
	for _, p := range procs {
		if err := p.stop(termGrace); err != nil {
			t.Errorf("testpeer: netns %s: %v", ns.name, err)
		}
	}
	ns.killRemaining(t)
	if out, err := runBounded("ip", "netns", "del", ns.name); err != nil {
		t.Errorf("testpeer: ip netns del %s: %v\n%s", ns.name, err, out)
		return
	}
	if err := removeMarker(ns.name); err != nil {
		t.Errorf("testpeer: netns %s: %v", ns.name, err)
	}
}

// killRemaining SIGKILLs, by PID, every process `ip netns pids` still
// reports in the namespace (e.g. one a test backgrounded via Run).
func (ns *NetNS) killRemaining(t testing.TB) {
	killed, err := killNetNSPids(ns.name)
	if err != nil {
		t.Errorf("testpeer: netns %s: %v", ns.name, err)
	}
	for _, k := range killed {
		t.Logf("testpeer: netns %s: killed untracked pid %s", ns.name, k)
	}
}

// waitGone waits at most 2s for pid to exit (or become a zombie).
func waitGone(pid int) {
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// inNetNS runs f on a locked OS thread switched into the named namespace.
// If the thread cannot be switched back it stays locked, so the runtime
// discards it when the goroutine exits, and an error is returned.
func inNetNS(name string, f func()) (err error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	target, err := netns.GetFromName(name)
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	if err := netns.Set(target); err != nil {
		orig.Close()
		target.Close()
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	defer func() {
		if serr := netns.Set(orig); serr != nil {
			err = fmt.Errorf("switch back from netns %s: %w (thread left locked)", name, serr)
		} else {
			runtime.UnlockOSThread()
		}
		orig.Close()
		target.Close()
	}()
	f()
	return nil
}

// runBounded runs a short command with cmdTimeout and returns its combined
// output. On timeout its whole process group is killed.
func runBounded(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Format: pid (comm) state ...; comm may contain spaces and ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func procComm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// sanitizeName keeps letters, digits, '.', '_' and '-', replacing the rest.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
