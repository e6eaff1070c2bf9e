package testpeer

// BIND 9 (named) as a primary or secondary for NOTIFY tests, beside NSD
// and Knot (dnsrole.go, knot.go): StartBIND, BIND.SetSerial, ...
//
// Facts about BIND 9.18.49 (Debian 12 package 1:9.18.49-1~deb12u3),
// measured on this machine with tcpdump captures decoded by DNSMessages.
// Checked by TestBINDNotifyRetries unless marked (explored: seen in longer
// captures, up to 100s, while this file was written, not under test).
//
// NOTIFY transport and source.
//   - UDP only. No TCP, not even after the retries to a silent target ran
//     out (explored: nothing in 100s; 9.18 has no TCP fallback for
//     NOTIFY). Signed with TSIG when also-notify names a key.
//   - From notify-source (StartBIND sets it to Addr's address) and an
//     ephemeral port (32768-60999): one socket per NOTIFY, i.e. per zone,
//     target and round. Its retries reuse that source port and message ID.
//     The socket is connected: a reply is taken only from the target's
//     address and port; one from another port is answered by the kernel
//     with ICMP port unreachable and the NOTIFY counts as unanswered.
//
// Retries, per NOTIFY (zone, target, round).
//   - No answer: 3 sends, 5s apart (0, 5, 10s), the same message each
//     time; at 15s "notify to ADDR#PORT failed: timed out" and "...:
//     retries exceeded" (debug 2/1, notify category), then nothing more.
//   - ICMP port unreachable: final at once. Logged "notify to ADDR#PORT
//     failed: connection refused"; never retried.
//   - Any answer (REFUSED, NOTAUTH, SERVFAIL, NOERROR): final, no retry.
//     Logged "notify response from ADDR#PORT: REFUSED" (debug 3).
//     (SERVFAIL: explored; NOERROR: TestBINDPrimaryNotifiesSecondaries.)
//   - A new round (new serial) does not cancel the old round's retries:
//     a silent target gets both rounds' NOTIFYs, each on its own timer.
//
// When BIND notifies.
//   - At start, for every zone with targets ("sending notifies (serial
//     N)"), and after `rndc reload` loaded a changed zone file, and on
//     `rndc notify ZONE` (same serial).
//   - notify-delay (default 5s): a round goes out at once only if the
//     zone's previous round (the startup one included) began at least 5s
//     before; otherwise 5s after it, merging every change and `rndc
//     notify` in between into one round with the newest serial. So a
//     SetSerial within 5s of the start (or of a previous SetSerial) is
//     notified up to 5s later: measured 5.0s after the startup round for
//     a change 1.5s after it.
//   - notify-rate and startup-notify-rate (default 20/s) pace NOTIFYs in
//     ticks of 0.5s, 10 per tick: in a burst the first NOTIFY leaves at
//     once, the next 10 0.5s later, and so on. 200 zones with one target
//     each need ~10s at start. Raise them with Options ("notify-rate
//     1000; startup-notify-rate 1000;"; "notify-delay 0;" removes the
//     hold-down), as TestBINDManyZones does.
//
// BIND as a secondary (TestBINDPrimaryNotifiesSecondaries).
//   - Without a zone file it transfers every zone at start (SERVFAIL
//     until then), paced by serial-query-rate (default 20/s: 200 zones
//     took 10.2s, 0.6s with "serial-query-rate 1000;"; explored).
//   - It accepts NOTIFY from a zone's primaries by address alone: with
//     TSIG configured, an unsigned NOTIFY from the primary's address gets
//     NOERROR (the SOA query and transfer it triggers are signed).
//     allow-notify adds other sources. A NOTIFY from a stranger gets
//     REFUSED with AA=0 and the question kept; named logs only "received
//     notify for zone" at info.
//   - After an accepted NOTIFY it asks IXFR over TCP at once; a BIND
//     primary without a journal for the zone (zone files only) answers
//     AXFR-style ("IXFR version not in journal, falling back to AXFR").
//
// How StartBIND runs named (see BIND.conf for all of it).
//   - named listens only on addresses an interface has (it scans them),
//     unlike NSD and Knot: in the test's own namespace that is 127.0.0.1
//     or ::1, never 127.0.0.31; in a NetNS StartBIND adds such loopback
//     addresses to lo.
//   - `named -f -L LOG -n 2 -c named.conf`: foreground without forking,
//     config's logging statement honoured (-g would log only to stderr
//     and ignore it), early messages (listening, control channel, fatal
//     errors) to the same LOG via -L. A taken listen port is fatal
//     ("unable to listen on any configured interfaces"); a taken control
//     port is not ("couldn't add command channel"): StartBIND retries
//     both with new ports.
//   - Primary: "notify explicit" + also-notify (never the zones' NS
//     records: nothing leaves the test's namespaces) or "notify no";
//     allow-transfer (with TSIG the ARM's nested ACL: address and key).
//     Secondary: "notify no", primaries { ADDR port P [key K]; }, no file.
//     Both: recursion no, dnssec-validation no (no trust anchor upkeep).
//   - rndc through a control channel on 127.0.0.1 in named's namespace
//     with a key of its own (rndc.conf in the temp dir). `rndc reload
//     ZONE` skips a zone whose file is not newer than its last load, so
//     SetSerial gives the file a newer mtime; SetSerial costs ~50ms
//     (mostly running rndc), SetSerials of 200 zones ~0.5s.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	// bindReadyTimeout bounds the wait for a started named to answer.
	bindReadyTimeout = 15 * time.Second
	// bindStopGrace is how long named gets after SIGTERM before SIGKILL.
	bindStopGrace = 5 * time.Second
	// bindPortTries is how often StartBIND picks new ports when named
	// cannot bind an auto-picked one (another test took it meanwhile).
	bindPortTries = 3
	// bindRndcKey names the control channel's key (not a TSIGKey name
	// a test would pick).
	bindRndcKey = "testpeer-rndc"
	// bindWorkers is named's -n: worker threads. Two are plenty for a
	// test and keep many parallel servers light.
	bindWorkers = "2"
)

// bindToolPackages maps BIND's commands to the Debian packages that
// provide them, for bindTool's skip message.
var bindToolPackages = map[string]string{
	"named":           "bind9",
	"named-checkconf": "bind9-utils",
	"rndc":            "bind9-utils",
}

// bindTool returns the path of one of BIND's commands: from PATH, else
// /usr/sbin or /usr/bin (root's PATH may lack sbin). It skips loudly if
// the command is not installed.
func bindTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	pkg := bindToolPackages[name]
	if pkg == "" {
		pkg = name
	}
	t.Skipf("SKIP: %s not installed (apt-get install %s)", name, pkg)
	return ""
}

// BINDOptions configures StartBIND. The fields mean what KnotOptions'
// fields mean.
type BINDOptions struct {
	// Name labels the server: the whoami TXT of its primary zones, its
	// server-id/hostname, part of file names and messages. Default
	// "bind". Letters, digits, '.', '_', '-' only.
	Name string
	// Addr is where named listens (UDP and TCP), e.g. 10.78.0.2:53. Port
	// 0 picks a free one. named listens only on addresses an interface
	// has: in the test's own namespace that is 127.0.0.1 (or ::1); in a
	// NetNS, a loopback address lo lacks (e.g. 127.0.0.31) is added to lo
	// first.
	Addr netip.AddrPort
	// NetNS, if set, runs named in this namespace (e.g. a LAN host); nil
	// runs it in the test's own namespace (then use a loopback Addr).
	NetNS *NetNS
	// Zones are the zones served: primary zones from zone files
	// (ZoneText) if Primary, else secondary zones of PrimaryAddr. One
	// zone statement each; hundreds are fine.
	Zones []ZoneSpec
	// Primary makes Zones primary zones, notifying NotifyTo ("notify
	// explicit" + also-notify) and allowing transfers to ProvideXFRTo.
	Primary bool
	// NotifyTo are the primary's NOTIFY targets (also-notify); none
	// means "notify no".
	NotifyTo []netip.AddrPort
	// ProvideXFRTo is the primary's allow-transfer ACL; default
	// 0.0.0.0/0, ::/0.
	ProvideXFRTo []netip.Prefix
	// PrimaryAddr makes Zones secondary zones transferred from
	// PrimaryAddr port PrimaryPort ("primaries"), with allow-notify
	// { PrimaryAddr; }. (BIND accepts NOTIFY from a zone's primaries
	// whatever allow-notify says.)
	PrimaryAddr netip.Addr
	// PrimaryPort is the primary's port; default 53.
	PrimaryPort uint16
	// TSIG, if set, signs NOTIFYs (primary) and SOA queries and
	// transfers (secondary), and allow-transfer requires it.
	TSIG *TSIGKey
	// Options are extra statements for the options block, verbatim
	// (e.g. "serial-query-rate 100; notify-rate 100;"). Do not repeat
	// one StartBIND writes (see BIND.conf): named-checkconf rejects a
	// statement given twice.
	Options string
}

// BIND is a named started by StartBIND.
type BIND struct {
	Name         string
	Addr         netip.AddrPort // with the port actually used
	PID          int            // named (leader of its process group); changes if StartBIND retried
	Dir          string         // temp dir: named.conf, zone files, keys, logs
	ConfPath     string         // named.conf
	LogPath      string         // named's log (-L and the logging statement)
	OutPath      string         // named's stdout and stderr (normally empty)
	RndcConfPath string         // for rndc -c (Rndc does that)
	ControlAddr  netip.AddrPort // rndc control channel (127.0.0.1 in named's namespace)

	ns       *NetNS
	zones    []ZoneSpec
	primary  bool
	autoPort bool
	named    string // path of named
	rndc     string // path of rndc

	serverProc
	mtimes map[string]time.Time // under mu
}

// StartBIND writes named.conf (directory, pid file, session key, managed
// keys, dump and statistics files and logs all in a temp dir; recursion
// and DNSSEC validation off), an rndc.conf for its control channel (a
// free port on 127.0.0.1 in named's namespace) and, for a primary, the
// zone files (ZoneText); it checks the config with `named-checkconf -z`
// and runs `named -f -L LOG -n 2 -c named.conf` (foreground, as root,
// logging to LogPath) inside o.NetNS, in its own process group (as root
// also its own PID namespace). It waits at most 15s until named answers
// SOA on Addr (a primary with its first zone's serial, a secondary with
// any rcode: its zones may not be transferred yet) and its control
// channel listens. If an auto-picked port turns out taken, it retries
// with new ports (3 tries). Cleanup (t's or the namespace's, whichever
// first) sends SIGTERM, SIGKILL to the group after 5s, and waits; it
// runs even if StartBIND fails. Skips loudly if named, named-checkconf
// or rndc (or, with NetNS, root or ip) is missing.
//
// NOTIFYs, SOA queries and transfers leave from Addr's address
// (notify-source, transfer-source).
func StartBIND(t testing.TB, o BINDOptions) *BIND {
	t.Helper()
	named := bindTool(t, "named")
	checkconf := bindTool(t, "named-checkconf")
	rndc := bindTool(t, "rndc")
	o.Name = checkServer(t, "BIND", o.NetNS != nil, o.Name, "bind", o.Addr)
	if len(o.Zones) == 0 {
		t.Fatalf("testpeer: BIND %q: no Zones", o.Name)
	}
	checkRole(t, fmt.Sprintf("BIND %q", o.Name), o.Primary, o.PrimaryAddr,
		len(o.NotifyTo) > 0 || len(o.ProvideXFRTo) > 0,
		"NotifyTo and ProvideXFRTo", o.NotifyTo)
	o.TSIG = validatedKey(t, o.TSIG)
	o.PrimaryAddr = o.PrimaryAddr.Unmap()
	o.PrimaryPort, o.ProvideXFRTo = roleDefaults(o.PrimaryPort, o.ProvideXFRTo)
	o.Addr = netip.AddrPortFrom(o.Addr.Addr().Unmap(), o.Addr.Port())
	nsName := o.NetNS.nameOrEmpty()
	prepareBINDAddr(t, o.Name, o.NetNS, o.Addr.Addr())

	dir := t.TempDir()
	b := &BIND{
		Name:         o.Name,
		Addr:         o.Addr,
		Dir:          dir,
		ConfPath:     filepath.Join(dir, "named.conf"),
		LogPath:      filepath.Join(dir, "named-"+o.Name+".log"),
		OutPath:      filepath.Join(dir, "named-"+o.Name+".out"),
		RndcConfPath: filepath.Join(dir, "rndc.conf"),
		ns:           o.NetNS,
		zones:        checkZones(t, "BIND "+o.Name, o.Zones),
		primary:      o.Primary,
		autoPort:     o.Addr.Port() == 0,
		named:        named,
		rndc:         rndc,
		mtimes:       map[string]time.Time{},
	}
	if b.primary {
		for _, z := range b.zones {
			b.writeZone(t, z)
		}
	}
	rkey := NewTSIGKey(bindRndcKey)
	// Registered before the first start, so a failing start is cleaned
	// up too. Runs before t.TempDir's removal (cleanups are LIFO).
	t.Cleanup(func() {
		b.Stop()
		reportStop(t, &b.mu, &b.stopErr, fmt.Sprintf("testpeer: BIND %q: stop", b.Name), func() string {
			return fmt.Sprintf("testpeer: BIND %q on %v (pid %d, dir %s):\n%s", b.Name, b.Addr, b.PID, b.Dir, b.logTail())
		})
	})
	registerServer(t, b, nsName, func() netip.AddrPort {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.Addr
	}, b.logTail)

	for try := 1; ; try++ {
		if b.autoPort {
			ap, err := freePortIn(nsName, o.Addr.Addr())
			if err != nil {
				t.Fatalf("testpeer: BIND %q: pick a port: %v", b.Name, err)
			}
			b.mu.Lock()
			b.Addr = ap
			b.mu.Unlock()
		}
		ctl, err := freePortIn(nsName, netip.MustParseAddr("127.0.0.1"))
		if err != nil {
			t.Fatalf("testpeer: BIND %q: pick a control port: %v", b.Name, err)
		}
		b.ControlAddr = ctl
		conf := b.conf(o, rkey)
		if err := os.WriteFile(b.ConfPath, []byte(conf), 0o644); err != nil {
			t.Fatalf("testpeer: write named.conf: %v", err)
		}
		if err := os.WriteFile(b.RndcConfPath, []byte(b.rndcConf(rkey)), 0o600); err != nil {
			t.Fatalf("testpeer: write rndc.conf: %v", err)
		}
		if out, err := runBounded(checkconf, "-z", b.ConfPath); err != nil {
			t.Fatalf("testpeer: BIND %q: named-checkconf -z: %v\n%s\n--- %s\n%s", b.Name, err, bindLastLines(out, 20), b.ConfPath, numbered(conf))
		}
		retry, err := b.start(t, nsName)
		if err == nil {
			return b
		}
		if retry && try < bindPortTries {
			t.Logf("testpeer: BIND %q: %v; trying other ports", b.Name, err)
			_ = os.Rename(b.LogPath, fmt.Sprintf("%s.try%d", b.LogPath, try))
			continue
		}
		t.Fatalf("testpeer: BIND %q on %v: %v\n%s", b.Name, b.Addr, err, b.logTail())
	}
}

// prepareBINDAddr makes sure named can listen on a: named listens only
// on addresses an interface has (it scans them), unlike NSD and Knot,
// which bind any address of 127/8. In a NetNS a missing loopback address
// is added to lo; in the test's own namespace, where nothing may be
// changed, a missing address fails the test.
func prepareBINDAddr(t testing.TB, name string, ns *NetNS, a netip.Addr) {
	t.Helper()
	if ns != nil {
		if a.IsLoopback() && !ns.HasAddr(t, "lo", a) {
			ns.AddLoopbackAddr(t, a.String())
		}
		return
	}
	if !a.IsLoopback() {
		t.Fatalf("testpeer: BIND %q: Addr %v in the test's own namespace: want a loopback address (or give a NetNS)", name, a)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("testpeer: BIND %q: list interface addresses: %v", name, err)
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
			return
		}
	}
	t.Fatalf("testpeer: BIND %q: Addr %v is on no interface of the test's namespace, and named listens only on interface addresses: use 127.0.0.1 or ::1 there, or give a NetNS", name, a)
}

// start runs named and waits until it is ready (see StartBIND). On error
// named is stopped; retry says whether the error was a port taken by
// someone else, so that other ports may help.
func (b *BIND) start(t testing.TB, nsName string) (retry bool, err error) {
	t.Helper()
	// -f: foreground, config's logging statement honoured (-g would
	// ignore it and log to stderr only). -L: messages before the config
	// is loaded (listening, control channel, errors) go to the same log.
	p := b.launch(t, fmt.Sprintf("BIND %q", b.Name), b.ns, nsName, b.Dir, b.OutPath, &b.PID,
		b.named, "-f", "-L", b.LogPath, "-n", bindWorkers, "-c", b.ConfPath)
	if retry, err = b.waitReady(nsName, p); err != nil {
		keepFirstErr(&b.mu, &b.stopErr, p.stopGroup(bindStopGrace))
	}
	return retry, err
}

// waitReady polls SOA of the first zone until named answers (see
// StartBIND) and its control channel listens, it exits, or
// bindReadyTimeout passes.
func (b *BIND) waitReady(nsName string, p *proc) (retry bool, err error) {
	deadline := time.Now().Add(bindReadyTimeout)
	z := b.zones[0]
	// named writes ADDR#PORT.
	ctlOK := fmt.Sprintf("command channel listening on %s#%d", b.ControlAddr.Addr(), b.ControlAddr.Port())
	var lastErr error
	for {
		if p.exited() {
			log := b.Log()
			return b.autoPort && strings.Contains(log, "unable to listen on any configured interfaces"),
				fmt.Errorf("named (pid %d) exited before answering: %v", p.pid, p.err)
		}
		serial, err := soaSerialIn(nsName, b.Addr, z.Name)
		answered := false
		switch {
		case err == nil && b.primary && serial != z.Serial:
			lastErr = fmt.Errorf("serves serial %d, want %d", serial, z.Serial)
		case err == nil:
			answered = true
		case !b.primary && errors.Is(err, errNoSOA):
			answered = true // a secondary answering at all is ready
		default:
			lastErr = err
		}
		if answered {
			log := b.Log()
			if strings.Contains(log, ctlOK) {
				return false, nil
			}
			if strings.Contains(log, "couldn't add command channel") {
				return true, fmt.Errorf("control channel %v not set up (see log)", b.ControlAddr)
			}
			lastErr = fmt.Errorf("answers, but no %q in the log yet", ctlOK)
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("not ready within %v: %v", bindReadyTimeout, lastErr)
		}
		time.Sleep(serialPoll)
	}
}

// Stop stops named (SIGTERM, SIGKILL to its process group after 5s) and
// waits for it. It is idempotent.
func (b *BIND) Stop() { b.stopProc(bindStopGrace) }

// Running reports whether named is alive.
func (b *BIND) Running() bool { return b.running() }

// Log returns named's whole log so far.
func (b *BIND) Log() string { return readLog(b.LogPath) }

func (b *BIND) logTail() string {
	s := "--- " + b.LogPath + "\n" + tail(b.LogPath, 40)
	if fi, err := os.Stat(b.OutPath); err == nil && fi.Size() > 0 {
		s += "--- " + b.OutPath + "\n" + tail(b.OutPath, 20)
	}
	return s
}

// rndcArgs returns the command line of `rndc -c RNDCCONF args...`,
// inside named's namespace.
func (b *BIND) rndcArgs(args ...string) []string {
	cmd := append([]string{b.rndc, "-c", b.RndcConfPath}, args...)
	if ns := b.ns.nameOrEmpty(); ns != "" {
		cmd = append([]string{"ip", "netns", "exec", ns}, cmd...)
	}
	return cmd
}

// Rndc runs `rndc -c RNDCCONF ARGS...` (in named's namespace, bounded)
// and returns its output; a failure fails the test with named's log.
// E.g. b.Rndc(t, "status"), b.Rndc(t, "zonestatus", "example.test").
func (b *BIND) Rndc(t testing.TB, args ...string) string {
	t.Helper()
	out, err := runBounded(b.rndcArgs(args...)...)
	if err != nil {
		t.Fatalf("testpeer: BIND %q: rndc %s: %v\n%s\n%s", b.Name, strings.Join(args, " "), err, strings.TrimSpace(out), b.logTail())
	}
	return out
}

// zoneIndex returns the index of zone in b.zones, or -1.
func (b *BIND) zoneIndex(zone string) int {
	name := strings.ToLower(dns.Fqdn(zone))
	for i := range b.zones {
		if b.zones[i].Name == name {
			return i
		}
	}
	return -1
}

// SetSerial makes a primary BIND serve zone with a new SOA serial and
// notify its NotifyTo targets: it rewrites the zone file (ZoneText with
// the serial, a newer mtime) and runs `rndc reload ZONE`. It then waits
// at most 5s until named answers the new serial, and fails the test with
// named's log otherwise. named notifies after loading the changed zone,
// but not before notify-delay (5s) has passed since the zone's previous
// NOTIFY round, startup included (see the top of bind.go).
func (b *BIND) SetSerial(t testing.TB, zone string, serial uint32) {
	t.Helper()
	if !b.primary {
		t.Fatalf("testpeer: BIND %q: SetSerial: not a primary (BINDOptions.Primary)", b.Name)
	}
	b.mu.Lock()
	i := b.zoneIndex(zone)
	var z ZoneSpec
	if i >= 0 {
		b.zones[i].Serial = serial
		z = b.zones[i]
	}
	b.mu.Unlock()
	if i < 0 {
		t.Fatalf("testpeer: BIND %q: SetSerial: zone %s not served", b.Name, zone)
	}
	b.writeZone(t, z)
	out := b.Rndc(t, "reload", z.Name)
	deadline := time.Now().Add(setSerialTimeout)
	for {
		got, err := soaSerialIn(b.ns.nameOrEmpty(), b.Addr, z.Name)
		if err == nil && got == serial {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: BIND %q: SetSerial %s %d: still serving %d (%v) %v after rndc reload (%s)\n%s",
				b.Name, z.Name, serial, got, err, setSerialTimeout, strings.TrimSpace(out), b.logTail())
		}
		time.Sleep(serialPoll)
	}
}

// SetSerials is SetSerial for many zones at once (every zone if none is
// named): it rewrites their zone files with serial and runs one `rndc
// reload` (named reloads the zones whose files changed), then waits until
// named serves serial in each (5s, plus 20ms per zone). Use it for
// hundreds of zones: SetSerial costs an rndc run per zone.
func (b *BIND) SetSerials(t testing.TB, serial uint32, zones ...string) {
	t.Helper()
	if !b.primary {
		t.Fatalf("testpeer: BIND %q: SetSerials: not a primary (BINDOptions.Primary)", b.Name)
	}
	var changed []ZoneSpec
	b.mu.Lock()
	if len(zones) == 0 {
		for _, z := range b.zones {
			zones = append(zones, z.Name)
		}
	}
	for _, zone := range zones {
		i := b.zoneIndex(zone)
		if i < 0 {
			b.mu.Unlock()
			t.Fatalf("testpeer: BIND %q: SetSerials: zone %s not served", b.Name, zone)
		}
		b.zones[i].Serial = serial
		changed = append(changed, b.zones[i])
	}
	b.mu.Unlock()
	for _, z := range changed {
		b.writeZone(t, z)
	}
	out := b.Rndc(t, "reload")
	timeout := setSerialTimeout + time.Duration(len(changed))*20*time.Millisecond
	deadline := time.Now().Add(timeout)
	nsName := b.ns.nameOrEmpty()
	for _, z := range changed {
		for {
			got, err := soaSerialIn(nsName, b.Addr, z.Name)
			if err == nil && got == serial {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testpeer: BIND %q: SetSerials %d: %s still served with %d (%v) %v after rndc reload (%s)\n%s",
					b.Name, serial, z.Name, got, err, timeout, strings.TrimSpace(out), b.logTail())
			}
			time.Sleep(serialPoll)
		}
	}
}

// Notify makes a primary BIND send NOTIFYs for zone again, with the
// serial it serves (`rndc notify ZONE`), to every target; like any round
// it waits for notify-delay (5s) after the previous one.
func (b *BIND) Notify(t testing.TB, zone string) {
	t.Helper()
	if !b.primary {
		t.Fatalf("testpeer: BIND %q: Notify: not a primary (BINDOptions.Primary)", b.Name)
	}
	if b.zoneIndex(zone) < 0 {
		t.Fatalf("testpeer: BIND %q: Notify: zone %s not served", b.Name, zone)
	}
	b.Rndc(t, "notify", strings.ToLower(dns.Fqdn(zone)))
}

// Serial asks named (over UDP, from its namespace) for zone's SOA and
// returns the serial; an error says why there is none (no authoritative
// answer with an SOA, e.g. SERVFAIL from a secondary not transferred
// yet, or a timeout of 0.5s).
func (b *BIND) Serial(t testing.TB, zone string) (uint32, error) {
	t.Helper()
	return soaSerialIn(b.ns.nameOrEmpty(), b.Addr, zone)
}

// WaitSerial is the package's WaitSerial for this server: it waits at
// most timeout until named serves zone with a serial of at least serial,
// returns how long that took, and fails the test with named's log tail
// otherwise.
func (b *BIND) WaitSerial(t testing.TB, zone string, serial uint32, timeout time.Duration) time.Duration {
	t.Helper()
	return WaitSerial(t, b.ns, b.Addr, zone, serial, timeout)
}

// writeZone writes z's zone file with an mtime later than before: `rndc
// reload` skips a zone whose file is not newer than its last load.
func (b *BIND) writeZone(t testing.TB, z ZoneSpec) {
	t.Helper()
	writeZoneFile(t, b.Dir, z, b.Name, &b.mu, b.mtimes)
}

// rndcConf returns rndc.conf for the control channel.
func (b *BIND) rndcConf(key TSIGKey) string {
	return fmt.Sprintf("key %q {\n\talgorithm %s;\n\tsecret %q;\n};\noptions {\n\tdefault-key %q;\n\tdefault-server %s;\n\tdefault-port %d;\n};\n",
		bindRndcKey, key.algorithm(), key.Secret, bindRndcKey, b.ControlAddr.Addr(), b.ControlAddr.Port())
}

// conf returns named.conf for BIND 9.18 (statements checked against the
// 9.18 ARM and named-checkconf).
func (b *BIND) conf(o BINDOptions, rkey TSIGKey) string {
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	q := func(v string) string { return fmt.Sprintf("%q", v) }
	f := func(name string) string { return q(filepath.Join(b.Dir, name)) }
	ip := b.Addr.Addr()
	keyRef := ""
	if o.TSIG != nil {
		keyRef = " key " + q(o.TSIG.Name)
	}
	src := func(kind string) { // notify-source, transfer-source
		if ip.Is4() {
			w("\t%s %s;", kind, ip)
		} else {
			w("\t%s-v6 %s;", kind, ip)
		}
	}

	w("# written by dnslb internal/testpeer for %s", b.Name)
	w("options {")
	w("\tdirectory %s;", q(b.Dir))
	w("\tpid-file %s;", f("named.pid"))
	w("\tsession-keyfile %s;", f("session.key"))
	w("\tmanaged-keys-directory %s;", q(b.Dir))
	w("\tdump-file %s;", f("named_dump.db"))
	w("\tstatistics-file %s;", f("named.stats"))
	w("\tmemstatistics-file %s;", f("named.memstats"))
	w("\tsecroots-file %s;", f("named.secroots"))
	w("\trecursing-file %s;", f("named.recursing"))
	if ip.Is4() {
		w("\tlisten-on port %d { %s; };", b.Addr.Port(), ip)
		w("\tlisten-on-v6 { none; };")
	} else {
		w("\tlisten-on { none; };")
		w("\tlisten-on-v6 port %d { %s; };", b.Addr.Port(), ip)
	}
	w("\trecursion no;")
	// No trust anchors: nothing to refresh, no query leaves the host.
	w("\tdnssec-validation no;")
	w("\tserver-id %s;", q(b.Name))
	w("\thostname %s;", q(b.Name))
	w("\tversion none;")
	w("\tzone-statistics no;")
	// NOTIFYs, refresh queries and transfers leave from Addr's address
	// (the kernel would pick another on 127/8 or a multi-address host).
	src("notify-source")
	src("transfer-source")
	if b.primary {
		if len(o.NotifyTo) > 0 {
			// explicit: only also-notify, never the zone's NS records.
			w("\tnotify explicit;")
			w("\talso-notify {")
			for _, a := range o.NotifyTo {
				w("\t\t%s port %d%s;", a.Addr().Unmap(), a.Port(), keyRef)
			}
			w("\t};")
		} else {
			w("\tnotify no;")
		}
		var acl []string
		for _, p := range o.ProvideXFRTo {
			if o.TSIG != nil {
				acl = append(acl, "!"+p.Masked().String())
			} else {
				acl = append(acl, p.Masked().String())
			}
		}
		if o.TSIG != nil {
			// From these prefixes and signed with the key (ARM's nested
			// ACL idiom: other addresses match the negated list and are
			// refused; these fall through to the key).
			w("\tallow-transfer { !{ %s; any; }; key %s; };", strings.Join(acl, "; "), q(o.TSIG.Name))
		} else {
			w("\tallow-transfer { %s; };", strings.Join(acl, "; "))
		}
	} else {
		w("\tnotify no;")
		w("\tallow-notify { %s; };", o.PrimaryAddr)
		w("\tallow-transfer { none; };")
	}
	for _, line := range strings.Split(strings.TrimSpace(o.Options), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			w("\t%s", line)
		}
	}
	w("};")

	w("key %s {", q(bindRndcKey))
	w("\talgorithm %s;", rkey.algorithm())
	w("\tsecret %s;", q(rkey.Secret))
	w("};")
	w("controls {")
	w("\tinet %s port %d allow { %s; } keys { %s; };", b.ControlAddr.Addr(), b.ControlAddr.Port(), b.ControlAddr.Addr(), q(bindRndcKey))
	w("};")
	if o.TSIG != nil {
		w("key %s {", q(o.TSIG.Name))
		w("\talgorithm %s;", o.TSIG.algorithm())
		w("\tsecret %s;", q(o.TSIG.Secret))
		w("};")
	}

	// One file, LogPath (also -L's): info for everything, debug 3 for
	// the notify category ("sending notify to ...", "notify to ...
	// failed: ...", "notify response from ...: REFUSED").
	w("logging {")
	for _, ch := range []struct{ name, sev string }{{"tp_main", "info"}, {"tp_notify", "debug 3"}} {
		w("\tchannel %s {", ch.name)
		w("\t\tfile %s;", q(b.LogPath))
		w("\t\tseverity %s;", ch.sev)
		w("\t\tprint-time yes;")
		w("\t\tprint-category yes;")
		w("\t\tprint-severity yes;")
		w("\t};")
	}
	for _, c := range []string{"default", "general", "xfer-in", "xfer-out", "zoneload", "security", "network"} {
		w("\tcategory %s { tp_main; };", c)
	}
	w("\tcategory notify { tp_notify; };")
	w("\tcategory lame-servers { null; };")
	w("};")

	for _, z := range b.zones {
		w("zone %s {", q(z.Name))
		if b.primary {
			w("\ttype primary;")
			w("\tfile %s;", f(zoneFileName(z.Name)))
		} else {
			// No file: transferred zones live in memory only.
			w("\ttype secondary;")
			w("\tprimaries { %s port %d%s; };", o.PrimaryAddr, o.PrimaryPort, keyRef)
		}
		w("};")
	}
	return s.String()
}

// bindLastLines returns the last n lines of s.
func bindLastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
