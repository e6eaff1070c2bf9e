package testpeer

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	// knotReadyTimeout bounds the wait for a started knotd to answer.
	knotReadyTimeout = 10 * time.Second
	// knotStopGrace is how long knotd gets after SIGTERM before SIGKILL.
	knotStopGrace = 3 * time.Second
	// maxUnixPath is the longest path a unix socket address may hold.
	maxUnixPath = 107
)

// KnotOptions configures StartKnot.
type KnotOptions struct {
	// Name labels the server: Knot's identity, whoami TXT of its primary
	// zones, part of log messages. Default "knot". Letters, digits, '.',
	// '_', '-' only.
	Name string
	// Addr is where knotd listens (UDP and TCP), e.g. 10.78.0.13:53.
	// Port 0 picks a free one.
	Addr netip.AddrPort
	// NetNS, if set, runs knotd in this namespace (e.g. a LAN host);
	// nil runs it in the test's own namespace (then use a loopback Addr).
	NetNS *NetNS
	// Zones are the zones served: primary zones from zone files
	// (ZoneText) if Primary, else secondary zones of PrimaryAddr.
	Zones []ZoneSpec
	// Primary makes Zones primary zones, notifying NotifyTo and allowing
	// transfers to ProvideXFRTo.
	Primary bool
	// NotifyTo are the primary's NOTIFY targets (remotes in "notify:").
	NotifyTo []netip.AddrPort
	// ProvideXFRTo is the primary's transfer ACL; default 0.0.0.0/0, ::/0.
	ProvideXFRTo []netip.Prefix
	// PrimaryAddr makes Zones secondary zones: an ACL allows NOTIFY from
	// this address only, and transfers come from PrimaryAddr@PrimaryPort.
	PrimaryAddr netip.Addr
	// PrimaryPort is the primary's port; default 53.
	PrimaryPort uint16
	// TSIG, if set, is required on NOTIFY and transfers (both sides).
	TSIG *TSIGKey
	// Journal makes a primary keep the differences between the zone file
	// versions it loads (zonefile-load: difference), so that it answers
	// IXFR incrementally.
	Journal bool
	// ProxyAllowlist sets server.proxy-allowlist: the sources that may
	// put a PROXY v2 header in front of UDP queries (Knot 3.2 takes none
	// over TCP). See the PROXY protocol facts below.
	ProxyAllowlist []netip.Prefix
	// Whoami loads mod-whoami on every zone: an A (AAAA) query for a
	// zone's apex is answered with the client's IPv4 (IPv6) address as
	// knotd sees it, the proxied client's behind a PROXY header. Knot
	// 3.2 has no query log that names clients (not even at debug level;
	// mod-stats counts no addresses; mod-dnstap is a separate package),
	// so this is how a test sees the address Knot took. The zones'
	// apexes must have no A/AAAA records of their own (ZoneText has
	// none).
	Whoami bool
}

// PROXY protocol facts: Knot 3.2.6 with server.proxy-allowlist, measured by
// TestKnotProxyAllowlist (headers built with go-proxyproto):
//   - UDP from an allowlisted source: a PROXY header is taken (the
//     proxied client is the remote address, mod-whoami answers it); a
//     query without a header is answered as usual (the remote is the
//     sender); a LOCAL header is dropped without an answer.
//   - UDP from any other source: a PROXY header is dropped, a plain
//     query answered.
//   - TCP: a connection starting with a PROXY header is closed without
//     an answer (knot.conf(5): "TCP is not supported"), plain TCP
//     queries are answered.
//   - Nothing is logged for any of these at info or debug level.

// Knot is a knotd started by StartKnot.
type Knot struct {
	Name     string
	Addr     netip.AddrPort // with the port actually used
	PID      int            // knotd (leader of its process group)
	Dir      string         // temp dir: config, zone files, databases, log
	ConfPath string
	LogPath  string // knotd's stdout and stderr (its log, at info level)
	SockPath string // control socket, for knotc -s

	ns      *NetNS
	p       *proc
	zones   []ZoneSpec
	primary bool

	mu      sync.Mutex
	mtimes  map[string]time.Time
	stopErr error
}

// StartKnot writes knot.conf (every file, socket and database in a temp
// dir: nothing in /run or /var/lib), checks it with `knotc conf-check`,
// and runs `knotd -c knot.conf` in the foreground inside o.NetNS, in its
// own process group (as root also its own PID namespace), logging at info
// level to LogPath. It waits at most 10s until knotd answers SOA on Addr:
// a primary with its first zone's serial, a secondary with any rcode (its
// zones may not be transferred yet). Cleanup (t's or the namespace's,
// whichever first) sends SIGTERM, SIGKILL to the group after 3s, and
// waits. Skips loudly if knotd/knotc (or, with NetNS, root or ip) is
// missing. NOTIFYs and transfers leave from Addr's address ("via").
func StartKnot(t testing.TB, o KnotOptions) *Knot {
	t.Helper()
	RequireTool(t, "knotd")
	RequireTool(t, "knotc")
	o.Name = checkServer(t, "Knot", o.NetNS != nil, o.Name, "knot", o.Addr)
	if len(o.Zones) == 0 {
		t.Fatalf("testpeer: Knot %q: no Zones", o.Name)
	}
	checkRole(t, fmt.Sprintf("Knot %q", o.Name), o.Primary, o.PrimaryAddr,
		len(o.NotifyTo) > 0 || len(o.ProvideXFRTo) > 0,
		"NotifyTo and ProvideXFRTo", o.NotifyTo)
	o.TSIG = validatedKey(t, o.TSIG)
	o.PrimaryPort, o.ProvideXFRTo = roleDefaults(o.PrimaryPort, o.ProvideXFRTo)
	nsName := o.NetNS.nameOrEmpty()

	dir := t.TempDir()
	k := &Knot{
		Name:     o.Name,
		Addr:     o.Addr,
		Dir:      dir,
		ConfPath: filepath.Join(dir, "knot.conf"),
		LogPath:  filepath.Join(dir, "knot-"+o.Name+".log"),
		SockPath: filepath.Join(dir, "knot.sock"),
		ns:       o.NetNS,
		zones:    checkZones(t, "Knot "+o.Name, o.Zones),
		primary:  o.Primary,
		mtimes:   map[string]time.Time{},
	}
	if len(k.SockPath) > maxUnixPath {
		short, err := os.MkdirTemp("", "tpknot-")
		if err != nil {
			t.Fatalf("testpeer: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(short) })
		k.SockPath = filepath.Join(short, "knot.sock")
	}
	if k.Addr.Port() == 0 {
		ap, err := freePortIn(nsName, k.Addr.Addr())
		if err != nil {
			t.Fatalf("testpeer: Knot %q: pick a port: %v", k.Name, err)
		}
		k.Addr = ap
	}
	if k.primary {
		for _, z := range k.zones {
			k.writeZone(t, z)
		}
	}
	conf := k.conf(o)
	if err := os.WriteFile(k.ConfPath, []byte(conf), 0o644); err != nil {
		t.Fatalf("testpeer: write knot.conf: %v", err)
	}
	if out, err := runBounded("knotc", "-c", k.ConfPath, "conf-check"); err != nil {
		t.Fatalf("testpeer: Knot %q: knotc conf-check: %v\n%s\n--- %s\n%s", k.Name, err, strings.TrimSpace(out), k.ConfPath, numbered(conf))
	}

	// knotd handles SIGTERM.
	p := launchProc(t, fmt.Sprintf("Knot %q", k.Name), o.NetNS, nsName, dir, k.LogPath, "knotd", "-c", k.ConfPath)
	k.p, k.PID = p, p.pid
	t.Cleanup(func() {
		k.Stop()
		reportStop(t, &k.mu, &k.stopErr, fmt.Sprintf("testpeer: Knot %q: stop", k.Name), func() string {
			return fmt.Sprintf("testpeer: Knot %q on %v (pid %d, dir %s):\n%s", k.Name, k.Addr, k.PID, k.Dir, k.logTail())
		})
	})
	registerServer(t, k, nsName, func() netip.AddrPort { return k.Addr }, k.logTail)

	if err := k.waitReady(nsName); err != nil {
		t.Fatalf("testpeer: Knot %q on %v: %v\n%s", k.Name, k.Addr, err, k.logTail())
	}
	return k
}

// waitReady polls SOA of the first zone until knotd answers (see
// StartKnot), it exits, or knotReadyTimeout passes.
func (k *Knot) waitReady(nsName string) error {
	deadline := time.Now().Add(knotReadyTimeout)
	z := k.zones[0]
	var lastErr error
	for {
		if k.p.exited() {
			return fmt.Errorf("knotd (pid %d) exited before answering: %v", k.PID, k.p.err)
		}
		serial, err := soaSerialIn(nsName, k.Addr, z.Name)
		switch {
		case err == nil && k.primary && serial != z.Serial:
			lastErr = fmt.Errorf("serves serial %d, want %d", serial, z.Serial)
		case err == nil:
			return nil
		case !k.primary && errors.Is(err, errNoSOA):
			return nil // a secondary answering at all is ready
		default:
			lastErr = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SOA answer within %v: %v", knotReadyTimeout, lastErr)
		}
		time.Sleep(serialPoll)
	}
}

// Stop stops knotd (SIGTERM, SIGKILL to its process group after 3s) and
// waits for it. It is idempotent.
func (k *Knot) Stop() {
	keepFirstErr(&k.mu, &k.stopErr, k.p.stopGroup(knotStopGrace))
}

// Running reports whether knotd is alive.
func (k *Knot) Running() bool { return !k.p.exited() }

// Log returns knotd's whole log so far.
func (k *Knot) Log() string {
	b, _ := os.ReadFile(k.LogPath)
	return string(b)
}

func (k *Knot) logTail() string {
	return "--- " + k.LogPath + "\n" + tail(k.LogPath, 30)
}

// SetSerial makes a primary Knot serve zone with a new SOA serial and
// notify its NotifyTo targets: it rewrites the zone file (ZoneText with
// the serial, a newer mtime) and runs `knotc -s SOCK -b zone-reload ZONE`
// (blocking until the reload is done); Knot sends NOTIFYs after a reload
// that changed the serial. It then waits at most 5s until knotd answers
// the new serial, and fails the test with Knot's log otherwise.
//
// Knot runs a zone's events one at a time, so the reload waits for a
// NOTIFY round of that zone still in progress: NOTIFYs go to the targets
// one after another over TCP, and an unreachable target (no ARP answer)
// holds the round up ~3s.
func (k *Knot) SetSerial(t testing.TB, zone string, serial uint32) {
	t.Helper()
	if !k.primary {
		t.Fatalf("testpeer: Knot %q: SetSerial: not a primary (KnotOptions.Primary)", k.Name)
	}
	name := strings.ToLower(dns.Fqdn(zone))
	var z ZoneSpec
	k.mu.Lock()
	i := -1
	for j := range k.zones {
		if k.zones[j].Name == name {
			i = j
		}
	}
	if i >= 0 {
		k.zones[i].Serial = serial
		z = k.zones[i]
	}
	k.mu.Unlock()
	if i < 0 {
		t.Fatalf("testpeer: Knot %q: SetSerial: zone %s not served", k.Name, zone)
	}
	k.writeZone(t, z)
	if out, err := runBounded("knotc", "-s", k.SockPath, "-t", "10", "-b", "zone-reload", z.Name); err != nil {
		t.Fatalf("testpeer: Knot %q: knotc zone-reload %s: %v\n%s\n%s", k.Name, z.Name, err, strings.TrimSpace(out), k.logTail())
	}
	nsName := k.ns.nameOrEmpty()
	deadline := time.Now().Add(setSerialTimeout)
	for {
		got, err := soaSerialIn(nsName, k.Addr, z.Name)
		if err == nil && got == serial {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: Knot %q: SetSerial %s %d: still serving %d (%v) after %v\n%s",
				k.Name, z.Name, serial, got, err, setSerialTimeout, k.logTail())
		}
		time.Sleep(serialPoll)
	}
}

// Knotc runs `knotc -s SOCK ARGS...` (bounded) and returns its output; a
// failure fails the test. E.g. k.Knotc(t, "zone-notify", "example.test.").
func (k *Knot) Knotc(t testing.TB, args ...string) string {
	t.Helper()
	out, err := runBounded(append([]string{"knotc", "-s", k.SockPath, "-t", "10"}, args...)...)
	if err != nil {
		t.Fatalf("testpeer: Knot %q: knotc %s: %v\n%s", k.Name, strings.Join(args, " "), err, out)
	}
	return out
}

// writeZone writes z's zone file with an mtime later than before.
func (k *Knot) writeZone(t testing.TB, z ZoneSpec) {
	t.Helper()
	writeZoneFile(t, k.Dir, z, k.Name, &k.mu, k.mtimes)
}

// conf returns knot.conf for Knot 3.2 (items checked against knot.conf(5)
// of 3.2.6).
func (k *Knot) conf(o KnotOptions) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	keyLine := func() {
		if o.TSIG != nil {
			w("    key: %s", o.TSIG.Name)
		}
	}
	// Outgoing NOTIFYs, SOA queries and transfers leave from the listen
	// address (on 127/8 the kernel would pick 127.0.0.1).
	via := func() { w("    via: %s", k.Addr.Addr().Unmap()) }
	w("# written by dnslb internal/testpeer for %s", k.Name)
	w("server:")
	w("    identity: %s", q(k.Name))
	w("    rundir: %s", q(k.Dir))
	w("    pidfile: %s", q(filepath.Join(k.Dir, "knot.pid")))
	w("    listen: %s@%d", k.Addr.Addr().Unmap(), k.Addr.Port())
	w("    udp-workers: 1")
	w("    tcp-workers: 1")
	// Events of one zone run one at a time (a reload waits for a
	// running NOTIFY of that zone); more workers let zones overlap.
	w("    background-workers: 4")
	if len(o.ProxyAllowlist) > 0 {
		var ps []string
		for _, p := range o.ProxyAllowlist {
			ps = append(ps, p.Masked().String())
		}
		w("    proxy-allowlist: [%s]", strings.Join(ps, ", "))
	}
	w("database:")
	w("    storage: %s", q(k.Dir))
	// Small LMDB maps: the defaults reserve up to 20G of address space.
	w("    journal-db-max-size: 64M")
	w("    kasp-db-max-size: 8M")
	w("    timer-db-max-size: 8M")
	w("    catalog-db-max-size: 8M")
	w("control:")
	w("    listen: %s", q(k.SockPath))
	w("log:")
	w("  - target: stdout")
	w("    any: info")
	if o.TSIG != nil {
		w("key:")
		w("  - id: %s", o.TSIG.Name)
		w("    algorithm: %s", o.TSIG.algorithm())
		w("    secret: %s", o.TSIG.Secret)
	}
	w("remote:")
	if k.primary {
		for i, a := range o.NotifyTo {
			w("  - id: notify%d", i)
			w("    address: %s@%d", a.Addr().Unmap(), a.Port())
			if a.Addr().Unmap().Is4() == k.Addr.Addr().Unmap().Is4() {
				via()
			}
			keyLine()
		}
	} else {
		w("  - id: primary")
		w("    address: %s@%d", o.PrimaryAddr.Unmap(), o.PrimaryPort)
		if o.PrimaryAddr.Unmap().Is4() == k.Addr.Addr().Unmap().Is4() {
			via()
		}
		keyLine()
	}
	w("acl:")
	if k.primary {
		var ps []string
		for _, p := range o.ProvideXFRTo {
			ps = append(ps, p.Masked().String())
		}
		w("  - id: provide_xfr")
		w("    address: [%s]", strings.Join(ps, ", "))
		w("    action: transfer")
		keyLine()
	} else {
		w("  - id: notify_from_primary")
		w("    address: %s", o.PrimaryAddr.Unmap())
		w("    action: notify")
		keyLine()
	}
	w("template:")
	w("  - id: default")
	w("    storage: %s", q(k.Dir))
	w("    journal-max-usage: 4M")
	if k.primary {
		if o.Journal {
			// Reloads compute the difference into the journal: IXFR
			// requests get it.
			w("    zonefile-load: difference")
		} else {
			// Reloads load the whole file; IXFR requests get AXFR then.
			w("    zonefile-load: whole")
		}
		w("    acl: provide_xfr")
		if len(o.NotifyTo) > 0 {
			var ids []string
			for i := range o.NotifyTo {
				ids = append(ids, fmt.Sprintf("notify%d", i))
			}
			w("    notify: [%s]", strings.Join(ids, ", "))
		}
	} else {
		// Never write transferred zones to files (they live in memory
		// and the journal).
		w("    zonefile-sync: -1")
		w("    master: primary")
		w("    acl: notify_from_primary")
	}
	w("zone:")
	for _, z := range k.zones {
		w("  - domain: %s", z.Name)
		if k.primary {
			w("    file: %s", q(filepath.Join(k.Dir, zoneFileName(z.Name))))
		}
		if o.Whoami {
			w("    module: mod-whoami")
		}
	}
	return b.String()
}
