package testpeer

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	// nsdReadyTimeout bounds the wait for a started NSD to answer SOA.
	nsdReadyTimeout = 15 * time.Second
	// nsdPortTries is how often StartNSD picks a new port when NSD cannot
	// bind an auto-picked one (another test took it meanwhile).
	nsdPortTries = 3
)

// validName is what NSDOptions.Name may look like: it ends up in the zone
// file, nsd.conf and file names unescaped.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// checkServer does the checks StartNSD and StartKnot share: for a server
// in a namespace (inNetNS) it skips unless running as root with ip
// installed; it returns name, or def if name is empty, after checking that
// it matches validName and that addr has an IP address. kind ("NSD",
// "Knot") names the server software in messages.
func checkServer(t testing.TB, kind string, inNetNS bool, name, def string, addr netip.AddrPort) string {
	t.Helper()
	if inNetNS {
		RequireRoot(t)
		RequireTool(t, "ip")
	}
	if name == "" {
		name = def
	}
	if !validName.MatchString(name) {
		t.Fatalf("testpeer: %s name %q: want %s", kind, name, validName)
	}
	if !addr.Addr().IsValid() {
		t.Fatalf("testpeer: %s %q: Addr %v has no IP address", kind, name, addr)
	}
	return name
}

// NSDOptions configures StartNSD. The zero value of every field but Addr is
// a safe default.
type NSDOptions struct {
	// Name labels the server: it is the text of whoami.example.test. TXT,
	// NSD's identity (CH TXT id.server) and part of log file names.
	// Default "nsd". Letters, digits, '.', '_', '-' only.
	Name string
	// Addr is where NSD listens, UDP and TCP, e.g. 127.0.0.11:5301.
	// Port 0 picks a free port (and retries if NSD loses the race for it).
	Addr netip.AddrPort
	// ExtraAddrs are more addresses NSD listens on, with Addr's port (of
	// Addr's family), e.g. to stand for many backends at once.
	ExtraAddrs []netip.Addr
	// NetNS, if set, runs NSD inside this namespace (ip netns exec), e.g.
	// NetNS.Name(). The readiness probe is then sent from inside it too.
	NetNS string
	// Zone, if set, is the complete zone file text served as example.test.
	// instead of DefaultZone(Name). It must contain an SOA record.
	Zone string

	// The fields below make NSD a primary or a secondary of Zones (see
	// dnsrole.go). All zero: one zone, example.test., as before.

	// Zones, if set, are served instead of example.test. (Zone is then
	// not used). As a primary NSD serves them from zone files it writes
	// (ZoneText); otherwise they are secondary zones of PrimaryAddr.
	Zones []ZoneSpec
	// Primary makes Zones primary zones: "notify:" each of NotifyTo and
	// "provide-xfr:" ProvideXFRTo.
	Primary bool
	// NotifyTo are the primary's NOTIFY targets ("notify: ADDR@PORT
	// KEY|NOKEY"), e.g. the VIP:53 or each secondary.
	NotifyTo []netip.AddrPort
	// ProvideXFRTo is the primary's provide-xfr ACL; default 0.0.0.0/0
	// and ::/0.
	ProvideXFRTo []netip.Prefix
	// PrimaryAddr makes Zones secondary zones: "allow-notify:" from this
	// address only and "request-xfr:" from PrimaryAddr@PrimaryPort.
	PrimaryAddr netip.Addr
	// PrimaryPort is the primary's port for transfers; default 53.
	PrimaryPort uint16
	// TSIG, if set, is required on NOTIFY and transfers (both sides).
	TSIG *TSIGKey
	// Verbosity is NSD's verbosity; default 1. At 2 NSD logs every
	// NOTIFY it accepts or refuses and every transfer.
	Verbosity int
	// NotifyRetry sets the primary's notify-retry (NOTIFYs sent per
	// target and change, first one included); default NSD's own, 5.
	NotifyRetry int
	// TCPQueryCount sets tcp-query-count: NSD closes a TCP connection
	// after answering this many queries on it; 0 is NSD's default
	// (unlimited).
	TCPQueryCount int
}

// NSD is a running (or stopped) NSD started by StartNSD.
type NSD struct {
	Name  string
	Addr  netip.AddrPort // with the port actually used
	NetNS string
	PID   int    // PID of the current nsd process; changes on Restart
	Dir   string // temp dir holding nsd.conf, the zone and the logs

	ConfPath string // nsd.conf
	LogPath  string // NSD's logfile
	OutPath  string // NSD's stdout+stderr (messages before the logfile opens)

	extra    []netip.Addr // NSDOptions.ExtraAddrs
	tcpCount int          // NSDOptions.TCPQueryCount
	autoPort bool         // Addr's port was picked by us and may be re-picked
	noZone   bool         // serve no zone (RemoveZone): answers REFUSED
	role     *nsdRole     // Zones and their role, nil for example.test. alone

	mu      sync.Mutex
	p       *proc
	stopErr error // first error from stopping a process; reported at cleanup
}

// StartNSD writes nsd.conf and the zone into t.TempDir(), starts
// `nsd -d -c nsd.conf` in its own process group, and waits at most 5s until
// it answers SOA example.test. over UDP. t.Cleanup kills it by PID
// (SIGTERM, SIGKILL to the group after 2s) and waits for it. On failure the test fails
// with the tail of NSD's log. Skips if nsd (or, with NetNS, root or ip) is
// missing.
//
// With Zones, the probe asks SOA of the first zone: a primary must answer
// it, a secondary is ready once it answers at all (SERVFAIL until its
// first transfer). See dnsrole.go for the roles, SetSerial and the NOTIFY
// behaviour of NSD 4.6.1.
func StartNSD(t testing.TB, o NSDOptions) *NSD {
	t.Helper()
	RequireTool(t, "nsd")
	o.Name = checkServer(t, "NSD", o.NetNS != "", o.Name, "nsd", o.Addr)

	dir := t.TempDir()
	file := "nsd-" + o.Name
	n := &NSD{
		Name:     o.Name,
		Addr:     o.Addr,
		NetNS:    o.NetNS,
		Dir:      dir,
		ConfPath: filepath.Join(dir, "nsd.conf"),
		LogPath:  filepath.Join(dir, file+".log"),
		OutPath:  filepath.Join(dir, file+".out"),
		autoPort: o.Addr.Port() == 0,
		extra:    o.ExtraAddrs,
		tcpCount: o.TCPQueryCount,
	}
	n.role = newNSDRole(t, o)
	if n.role.hasZones() {
		n.role.writeZoneFiles(t, n)
	} else {
		zone := o.Zone
		if zone == "" {
			zone = DefaultZone(o.Name)
		}
		if err := os.WriteFile(n.zonePath(), []byte(zone), 0o644); err != nil {
			t.Fatalf("testpeer: write zone: %v", err)
		}
	}
	// Registered before the first start, so a failing start is cleaned
	// up too. Runs before t.TempDir's removal (cleanups are LIFO).
	t.Cleanup(func() { n.cleanup(t) })
	registerServer(t, n, n.NetNS, func() netip.AddrPort { return n.Addr }, n.logTail)

	for try := 1; ; try++ {
		if n.autoPort {
			ap, err := freePortIn(n.NetNS, o.Addr.Addr())
			if err != nil {
				t.Fatalf("testpeer: NSD %q: pick a port: %v", n.Name, err)
			}
			n.Addr = ap
		}
		if err := os.WriteFile(n.ConfPath, []byte(n.conf()), 0o644); err != nil {
			t.Fatalf("testpeer: write nsd.conf: %v", err)
		}
		err := n.start()
		if err == nil {
			return n
		}
		if n.autoPort && try < nsdPortTries && n.bindFailed() {
			t.Logf("testpeer: NSD %q could not bind %v, trying another port", n.Name, n.Addr)
			// Fresh logs, so the next attempt is judged on its own.
			_ = os.Remove(n.LogPath)
			_ = os.Remove(n.OutPath)
			continue
		}
		t.Fatalf("testpeer: NSD %q on %v: %v\n%s", n.Name, n.Addr, err, n.logTail())
	}
}

// Stop kills NSD (SIGTERM to its PID, SIGKILL to its process group after
// 2s) and waits for it. It is idempotent and safe to call on a stopped NSD.
func (n *NSD) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return
	}
	if err := n.p.stop(termGrace); err != nil && n.stopErr == nil {
		n.stopErr = err
	}
	n.p = nil
}

// Kill sends SIGKILL to NSD's process group (a crash: no goodbye, its
// sockets vanish) and waits for it.
func (n *NSD) Kill(t testing.TB) {
	t.Helper()
	n.signalGroup(t, syscall.SIGKILL)
	n.Stop()
}

// Restart stops NSD if it runs and starts it again with the same config
// and address, waiting until it answers. PID changes.
func (n *NSD) Restart(t testing.TB) {
	t.Helper()
	n.Stop()
	if err := n.start(); err != nil {
		t.Fatalf("testpeer: restart NSD %q on %v: %v\n%s", n.Name, n.Addr, err, n.logTail())
	}
}

// Running reports whether the nsd process is alive.
func (n *NSD) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p != nil && !n.p.exited()
}

func (n *NSD) zonePath() string { return filepath.Join(n.Dir, "example.test.zone") }

// start runs nsd and waits until it answers; on error nsd is stopped.
func (n *NSD) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		return fmt.Errorf("already running (pid %d)", n.p.pid)
	}
	out, err := os.OpenFile(n.OutPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	args := []string{"nsd", "-d", "-c", n.ConfPath}
	if n.NetNS != "" {
		args = append([]string{"ip", "netns", "exec", n.NetNS}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = n.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	// As root, a PID namespace of its own: see startProc.
	p, err := startProc(cmd, os.Geteuid() == 0)
	if err != nil {
		return fmt.Errorf("start %q: %w", strings.Join(args, " "), err)
	}
	n.p, n.PID = p, p.pid
	if err := n.waitReady(p); err != nil {
		if serr := p.stop(termGrace); serr != nil && n.stopErr == nil {
			n.stopErr = serr
		}
		n.p = nil
		return err
	}
	return nil
}

// waitReady polls SOA over UDP until NSD answers, it exits, or
// nsdReadyTimeout passes.
func (n *NSD) waitReady(p *proc) error {
	deadline := time.Now().Add(nsdReadyTimeout)
	m := new(dns.Msg)
	m.SetQuestion(n.probeZone(), dns.TypeSOA)
	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("nsd (pid %d) exited before answering: %v", p.pid, p.err)
		}
		lastErr = n.probe(m)
		if lastErr == nil {
			return nil
		}
		// NSD serves SERVFAIL when the zone did not load: no point waiting.
		if errors.Is(lastErr, errNotReady) && n.logHasError() {
			return fmt.Errorf("zone did not load: %v", lastErr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SOA answer within %v: %v", nsdReadyTimeout, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *NSD) probe(m *dns.Msg) error {
	var r *dns.Msg
	var err error
	q := func() {
		c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
		r, _, err = c.Exchange(m, n.Addr.String())
	}
	if n.NetNS == "" {
		q()
	} else if nerr := inNetNS(n.NetNS, q); nerr != nil {
		return nerr
	}
	if err != nil {
		return err
	}
	if n.noZone || n.role.secondary() {
		// Any answer means it is serving (REFUSED without zones;
		// SERVFAIL for a secondary zone not transferred yet).
		return nil
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return fmt.Errorf("%w: rcode %s, %d answers", errNotReady, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	if _, ok := r.Answer[0].(*dns.SOA); !ok {
		return fmt.Errorf("%w: answer %v", errNotReady, r.Answer[0])
	}
	return nil
}

func (n *NSD) cleanup(t testing.TB) {
	n.Stop()
	reportStop(t, &n.mu, &n.stopErr, fmt.Sprintf("testpeer: stop NSD %q", n.Name), func() string {
		return fmt.Sprintf("testpeer: NSD %q on %v (dir %s):\n%s", n.Name, n.Addr, n.Dir, n.logTail())
	})
}

// bindFailed reports whether NSD's output says the address was taken.
func (n *NSD) bindFailed() bool {
	for _, path := range []string{n.LogPath, n.OutPath} {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte("already in use")) {
			return true
		}
	}
	return false
}

// logHasError reports whether NSD's logfile has an "error:" line.
func (n *NSD) logHasError() bool {
	b, _ := os.ReadFile(n.LogPath)
	return bytes.Contains(b, []byte(" error: "))
}

// logTail returns the last lines of NSD's logfile and stdout/stderr.
func (n *NSD) logTail() string {
	return "--- " + n.LogPath + "\n" + tail(n.LogPath, 20) +
		"--- " + n.OutPath + "\n" + tail(n.OutPath, 20)
}

// conf returns nsd.conf for NSD 4.6 (option names checked against
// nsd.conf(5) of NSD 4.6.1). Every file NSD writes lives in n.Dir.
func (n *NSD) conf() string {
	ip := n.Addr.Addr().Unmap()
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# written by dnslb internal/testpeer for %s", n.Name)
	w("server:")
	w("\tusername: \"\"")
	w("\tchroot: \"\"")
	w("\tzonesdir: %q", n.Dir)
	w("\tdatabase: \"\"") // no nsd.db
	w("\tzonefiles-write: 0")
	w("\tzonelistfile: %q", filepath.Join(n.Dir, "zone.list"))
	w("\txfrdfile: %q", filepath.Join(n.Dir, "xfrd.state"))
	w("\txfrdir: %q", n.Dir)
	w("\tpidfile: %q", filepath.Join(n.Dir, "nsd.pid"))
	w("\tcookie-secret-file: %q", filepath.Join(n.Dir, "cookiesecrets.txt"))
	w("\tlogfile: %q", n.LogPath)
	w("\tverbosity: %d", n.role.verbosity())
	if n.role.secondary() {
		// Serve a transferred zone at once: by default xfrd waits 1s
		// after a reload before it reloads again.
		w("\txfrd-reload-timeout: 0")
	}
	w("\tserver-count: 1")
	if n.tcpCount > 0 {
		w("\ttcp-query-count: %d", n.tcpCount)
	}
	w("\tidentity: %q", n.Name)
	w("\thide-version: yes")
	// RRL must never drop a test's burst of queries.
	w("\trrl-ratelimit: 0")
	w("\trrl-whitelist-ratelimit: 0")
	// NSD 4.6 caps UDP answers at 1232 bytes by default; honour the
	// client's EDNS size up to 4096 so "medium" fits in one datagram.
	w("\tipv4-edns-size: 4096")
	w("\tipv6-edns-size: 4096")
	w("\tip-address: %s@%d", ip.String(), n.Addr.Port())
	for _, extra := range n.extra {
		w("\tip-address: %s@%d", extra.String(), n.Addr.Port())
	}
	w("\tdo-ip4: %s", yesNo(ip.Is4()))
	w("\tdo-ip6: %s", yesNo(ip.Is6()))
	w("remote-control:")
	w("\tcontrol-enable: no")
	if n.noZone {
		return b.String()
	}
	if n.role.hasZones() {
		n.role.conf(w, n)
		return b.String()
	}
	w("zone:")
	w("\tname: %q", Zone)
	w("\tzonefile: %q", n.zonePath())
	w("\tprovide-xfr: 0.0.0.0/0 NOKEY")
	w("\tprovide-xfr: ::0/0 NOKEY")
	return b.String()
}

// tail returns the last lines of the file at path, or a note why not.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	if len(b) == 0 {
		return "(empty)\n"
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n") + "\n"
}

// Freeze stops every process of this NSD with SIGSTOP: its sockets stay
// open but nothing is answered and no ICMP error is sent, like a server
// that hangs or a path that blackholes packets. Thaw resumes it; t's
// cleanup thaws it too.
func (n *NSD) Freeze(t testing.TB) {
	t.Helper()
	n.signalGroup(t, syscall.SIGSTOP)
	t.Cleanup(func() { _ = syscall.Kill(-n.PID, syscall.SIGCONT) })
}

// Thaw resumes an NSD stopped by Freeze.
func (n *NSD) Thaw(t testing.TB) {
	t.Helper()
	n.signalGroup(t, syscall.SIGCONT)
}

func (n *NSD) signalGroup(t testing.TB, sig syscall.Signal) {
	t.Helper()
	n.mu.Lock()
	pid := n.PID
	n.mu.Unlock()
	if err := syscall.Kill(-pid, sig); err != nil {
		t.Fatalf("testpeer: %s: signal %v to process group %d: %v", n.Name, sig, pid, err)
	}
}

// RemoveZone restarts NSD with no zone configured, as when an operator
// removes the zone from one server: it then answers REFUSED for
// example.test. RestoreZone puts it back.
func (n *NSD) RemoveZone(t testing.TB) { n.setZone(t, false) }

// RestoreZone restarts NSD serving example.test. again.
func (n *NSD) RestoreZone(t testing.TB) { n.setZone(t, true) }

func (n *NSD) setZone(t testing.TB, on bool) {
	t.Helper()
	n.Stop()
	n.mu.Lock()
	n.noZone = !on
	n.mu.Unlock()
	if err := os.WriteFile(n.ConfPath, []byte(n.conf()), 0o644); err != nil {
		t.Fatal(err)
	}
	n.Restart(t)
}
