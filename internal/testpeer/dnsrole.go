package testpeer

// DNS primaries and secondaries for NOTIFY tests: NSD 4.6.1 (NSDOptions
// Zones/Primary/PrimaryAddr, NSD.SetSerial) and Knot DNS 3.2.6 (knot.go).
//
// Facts checked on this machine (Debian 12) with the tests in
// dnsrole_test.go and knot_test.go (captures decoded by DNSMessages):
//
// NOTIFY transport.
//   - NSD 4.6.1 sends NOTIFY over UDP only (xfrd-notify.c has no TCP
//     path), from an ephemeral port: one socket per zone and notify round,
//     so all targets and retries of that round share the source port. It
//     takes a reply only from the target's address and port (source:
//     cmp_addr_equal); any other reply is ignored, and the NOTIFY retried.
//   - Knot 3.2.6 sends NOTIFY over TCP, not UDP: one connection per NOTIFY
//     (SYN, query, reply, FIN), to the targets one after another. A target
//     that answers with RST fails at once ("notify, outgoing, remote ...,
//     failed (connection reset)"); one without ARP answer blocks the
//     round ~3s. The project's belief is right. (Both accept NOTIFY over
//     UDP and TCP as secondaries.)
//   - Both send NOTIFYs when they start (for every zone with notify
//     targets), and after a reload that changed the serial. The NOTIFY
//     carries the new SOA in the answer section; signed with TSIG when the
//     target's ACL names a key.
//
// NSD's retries (per target, per change; notify-retry default 5).
//   - Unanswered: 5 NOTIFYs in all, 3s apart (XFRD_NOTIFY_RETRY_TIMOUT),
//     then "error: xfrd: zone Z: max notify send count reached, ADDR@53
//     unreachable" 15s after the first. ICMP port unreachable is ignored.
//     Measured here (captures, idle machine): sends at 0, 3.0, 6.0, 9.0,
//     12.0 s, give-up logged ~15.1 s after NSD started. NSD compares the
//     timeout in whole seconds (time(NULL)), so a gap may be 2-3 s; on a
//     loaded machine one gap was 4.5 s. TestNSDNotifyRetries checks the
//     first three and the refusing case.
//   - Answered with an error rcode (REFUSED, NOTAUTH, ...): the next try
//     goes out at once, so a refusing target gets 5 NOTIFYs within ~1ms,
//     and NSD logs "received notify response error REFUSED from ADDR"
//     for each. NOTIMP counts as done (RFC 1996; from the source).
//   - A new serial while a round is running ends it and starts a new one
//     (new socket, the old serial's retries stop).
//
// Answers to a NOTIFY from a source the secondary does not allow (the
// ACL is the address, plus the key when TSIG is configured):
//   - NSD: REFUSED, with AA=1 and the question section dropped (QDCOUNT
//     0!); logged at verbosity 2 as "notify for Z from ADDR refused, no acl
//     matches." Signed by the key if the query was validly signed. Same for
//     an unsigned NOTIFY from the primary's address when the ACL needs the
//     key. A NOTIFY for a zone NSD does not serve: NXDOMAIN (AA=1, no
//     question). A NOTIFY signed with the right key name but a wrong
//     secret: NOTAUTH (TSIG error BADSIG).
//   - Knot: NOTAUTH, AA=0, question kept; also for zones it does not
//     serve. A signed NOTIFY from a wrong address gets TSIG error BADKEY
//     in the signed reply, a wrong secret BADSIG. Not logged at info level.
//   - Neither transfers after a refused NOTIFY (checked: serial unchanged
//     1.5s later, though the primary has a newer one).
//
// After an accepted NOTIFY (NOERROR, AA=1) NSD asks the primary for IXFR
// over TCP at once; Knot first asks SOA over TCP, then IXFR on the same
// connection. An NSD primary without IXFR history answers AXFR-style; a
// Knot primary logs "incomplete history, fallback to AXFR". A new serial
// reaches the secondaries ~20-50ms after SetSerial. NSD secondaries here
// run with xfrd-reload-timeout: 0 (default 1s holds a second reload within
// a second of the first).
//
// SetSerial mechanism.
//   - NSD: rewrite the zone file, set its mtime later than before, SIGHUP
//     the nsd main process. NSD 4.6 reloads zone files whose mtime changed
//     on SIGHUP (nsd(8)); xfrd then sees the new serial and notifies. No
//     nsd-control / remote-control needed (control-enable stays no).
//     SetSerial repeats SIGHUP each second until NSD serves the serial
//     (a SIGHUP during a running reload would otherwise be lost).
//   - Knot: rewrite the file, `knotc -s DIR/knot.sock -b zone-reload Z`;
//     Knot notifies after a reload that changed the serial.
//
// Config used (see NSD.conf/nsdRole.conf and Knot.conf for all of it):
//
//	NSD primary:   zone: name, zonefile, notify: ADDR@PORT KEY|NOKEY,
//	               provide-xfr: PREFIX KEY|NOKEY [, notify-retry: N],
//	               outgoing-interface: ADDR (its own)
//	NSD secondary: zone: name, allow-notify: PRIMARY KEY|NOKEY,
//	               request-xfr: PRIMARY@PORT KEY|NOKEY (no zonefile),
//	               outgoing-interface: ADDR; xfrd-reload-timeout: 0
//	Knot primary:  remote notifyN (address, via ADDR, key), acl
//	               provide_xfr (action transfer), zone file, notify:
//	Knot secondary: remote primary (address, via ADDR, key), acl
//	               notify_from_primary (address, key, action notify),
//	               master: primary, zonefile-sync: -1
//
// Knot runs as root (server.user unset) with rundir, storage, journal,
// timers and control socket in its temp dir; knotd -c CONF stays in the
// foreground and logs to stdout at info level. The Debian package's
// knot.service is not used (and not started: no systemd here).

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	// setSerialTimeout bounds SetSerial's wait until the primary itself
	// serves the new serial.
	setSerialTimeout = 5 * time.Second
	// serialPoll is how often WaitSerial (and SetSerial) ask.
	serialPoll = 20 * time.Millisecond
	// serialQueryTimeout bounds one SOA query of SOASerial.
	serialQueryTimeout = 500 * time.Millisecond
)

// TSIGKey is an HMAC key shared by a primary and its secondaries.
type TSIGKey struct {
	Name      string // key name, a domain name, e.g. "xfr.test."
	Algorithm string // e.g. "hmac-sha256" (default when empty)
	Secret    string // base64
}

// NewTSIGKey returns an hmac-sha256 key called name with a random 32-byte
// secret.
func NewTSIGKey(name string) TSIGKey {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return TSIGKey{Name: dns.Fqdn(name), Algorithm: "hmac-sha256", Secret: base64.StdEncoding.EncodeToString(b)}
}

// algorithm returns Algorithm or its default.
func (k *TSIGKey) algorithm() string {
	if k.Algorithm == "" {
		return "hmac-sha256"
	}
	return strings.ToLower(k.Algorithm)
}

// DNSAlgorithm returns the algorithm as miekg/dns names it (dns.HmacSHA256
// etc.), for signing a message with Msg.SetTsig.
func (k *TSIGKey) DNSAlgorithm() string { return dns.Fqdn(k.algorithm()) }

// Client returns a dns.Client with the key's secret installed (sign a
// message with m.SetTsig(k.Name, k.DNSAlgorithm(), 300, time.Now().Unix())).
func (k *TSIGKey) Client(network string, timeout time.Duration) *dns.Client {
	return &dns.Client{Net: network, Timeout: timeout, TsigSecret: map[string]string{dns.Fqdn(k.Name): k.Secret}}
}

var (
	zoneNameRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+$`)
	tsigAlgRE  = regexp.MustCompile(`^hmac-(md5|sha1|sha224|sha256|sha384|sha512)$`)
)

func (k *TSIGKey) validate(t testing.TB) {
	t.Helper()
	if !zoneNameRE.MatchString(dns.Fqdn(k.Name)) {
		t.Fatalf("testpeer: TSIG key name %q: want a plain domain name", k.Name)
	}
	if !tsigAlgRE.MatchString(k.algorithm()) {
		t.Fatalf("testpeer: TSIG key %s: algorithm %q: want hmac-sha256 etc.", k.Name, k.Algorithm)
	}
	if b, err := base64.StdEncoding.DecodeString(k.Secret); err != nil || len(b) == 0 {
		t.Fatalf("testpeer: TSIG key %s: secret is not base64: %v", k.Name, err)
	}
}

// validatedKey validates key and returns a copy with a fully qualified
// Name, so callers may change neither; nil stays nil.
func validatedKey(t testing.TB, key *TSIGKey) *TSIGKey {
	t.Helper()
	if key == nil {
		return nil
	}
	k := *key
	k.validate(t)
	k.Name = dns.Fqdn(k.Name)
	return &k
}

// checkRole checks the role fields NSDOptions and KnotOptions share, for
// the server described by server (e.g. `NSD "ns1"`): exactly one of
// primary and primaryAddr; no primary-only field on a secondary
// (primaryOnly: one is set; primaryOnlyNames: their names, for the
// message); NotifyTo targets with an address and a port.
func checkRole(t testing.TB, server string, primary bool, primaryAddr netip.Addr, primaryOnly bool, primaryOnlyNames string, notifyTo []netip.AddrPort) {
	t.Helper()
	switch {
	case primary && primaryAddr.IsValid():
		t.Fatalf("testpeer: %s: Primary and PrimaryAddr both set", server)
	case !primary && !primaryAddr.IsValid():
		t.Fatalf("testpeer: %s: Zones need Primary or PrimaryAddr", server)
	case !primary && primaryOnly:
		t.Fatalf("testpeer: %s: %s are for primaries", server, primaryOnlyNames)
	}
	for _, a := range notifyTo {
		if !a.IsValid() || a.Port() == 0 {
			t.Fatalf("testpeer: %s: NotifyTo %v: want ADDR:PORT", server, a)
		}
	}
}

// roleDefaults returns primaryPort, or 53 if it is 0, and provideXFR, or
// 0.0.0.0/0 and ::/0 if it is empty.
func roleDefaults(primaryPort uint16, provideXFR []netip.Prefix) (uint16, []netip.Prefix) {
	if primaryPort == 0 {
		primaryPort = 53
	}
	if len(provideXFR) == 0 {
		provideXFR = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	}
	return primaryPort, provideXFR
}

// writeZoneFile writes z's zone file (ZoneText for server) into dir and
// gives it an mtime later than any it had before (recorded in mtimes,
// which mu guards), so that a reload sees the file changed.
func writeZoneFile(t testing.TB, dir string, z ZoneSpec, server string, mu *sync.Mutex, mtimes map[string]time.Time) {
	t.Helper()
	path := filepath.Join(dir, zoneFileName(z.Name))
	if err := os.WriteFile(path, []byte(ZoneText(z, server)), 0o644); err != nil {
		t.Fatalf("testpeer: write zone %s: %v", z.Name, err)
	}
	mu.Lock()
	defer mu.Unlock()
	mt := time.Now()
	if last, ok := mtimes[z.Name]; ok && !mt.After(last.Add(time.Second)) {
		mt = last.Add(time.Second)
	}
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatalf("testpeer: zone %s: set mtime: %v", z.Name, err)
	}
	mtimes[z.Name] = mt
}

// ZoneSpec is one zone a server serves.
type ZoneSpec struct {
	Name    string // e.g. "example.test."
	Serial  uint32 // initial SOA serial (primaries); 0 means 1
	Records string // extra records (zone file lines relative to the origin); primaries only
}

// ZoneText returns the zone file a primary called server serves for z:
//
//	$ORIGIN <z.Name>
//	$TTL 300
//	@       SOA  ns1 hostmaster <serial> 3600 900 604800 300
//	@       NS   ns1
//	ns1     A    192.0.2.53
//	whoami  TXT  "<server>"      (secondaries serve the primary's name)
//	<z.Records>
//
// with serial z.Serial (1 if 0). Refresh is an hour, so secondaries learn
// of changes by NOTIFY only (and once at their start).
func ZoneText(z ZoneSpec, server string) string {
	serial := z.Serial
	if serial == 0 {
		serial = 1
	}
	name := dns.Fqdn(z.Name)
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL %d\n", name, defaultZoneTTL)
	fmt.Fprintf(&b, "@\tIN\tSOA\tns1.%[1]s hostmaster.%[1]s %d 3600 900 604800 300\n", name, serial)
	fmt.Fprintf(&b, "@\tIN\tNS\tns1.%s\n", name)
	b.WriteString("ns1\tIN\tA\t192.0.2.53\n")
	fmt.Fprintf(&b, "whoami\tIN\tTXT\t%q\n", server)
	if z.Records != "" {
		b.WriteString(strings.TrimRight(z.Records, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

// zoneFileName is the file a zone is kept in, inside a server's dir.
func zoneFileName(zone string) string {
	return strings.ToLower(strings.TrimSuffix(dns.Fqdn(zone), ".")) + ".zone"
}

// checkZones validates specs (names, no duplicates) and returns them with
// fully qualified lower-case names.
func checkZones(t testing.TB, server string, specs []ZoneSpec) []ZoneSpec {
	t.Helper()
	seen := map[string]bool{}
	out := make([]ZoneSpec, len(specs))
	for i, z := range specs {
		z.Name = strings.ToLower(dns.Fqdn(z.Name))
		if !zoneNameRE.MatchString(z.Name) {
			t.Fatalf("testpeer: %s: zone %q: want a plain domain name", server, z.Name)
		}
		if seen[z.Name] {
			t.Fatalf("testpeer: %s: zone %s given twice", server, z.Name)
		}
		seen[z.Name] = true
		if z.Serial == 0 {
			z.Serial = 1
		}
		out[i] = z
	}
	return out
}

// nsdRole is what NSDOptions' role fields configure.
type nsdRole struct {
	zones       []ZoneSpec
	primary     bool
	notifyTo    []netip.AddrPort
	provideXFR  []netip.Prefix
	primaryAddr netip.Addr
	primaryPort uint16
	tsig        *TSIGKey
	verb        int
	notifyRetry int

	mu     sync.Mutex
	mtimes map[string]time.Time // zone -> mtime we last gave its file
}

// newNSDRole validates o's role fields; nil if none is set.
func newNSDRole(t testing.TB, o NSDOptions) *nsdRole {
	t.Helper()
	if len(o.Zones) == 0 {
		if o.Primary || len(o.NotifyTo) > 0 || o.PrimaryAddr.IsValid() || o.TSIG != nil ||
			len(o.ProvideXFRTo) > 0 || o.NotifyRetry != 0 || o.PrimaryPort != 0 {
			t.Fatalf("testpeer: NSD %q: Primary, NotifyTo, PrimaryAddr, TSIG, ... need Zones", o.Name)
		}
		if o.Verbosity != 0 {
			return &nsdRole{verb: o.Verbosity} // example.test. as before
		}
		return nil
	}
	if o.Zone != "" {
		t.Fatalf("testpeer: NSD %q: give Zone or Zones, not both", o.Name)
	}
	r := &nsdRole{
		zones:       checkZones(t, "NSD "+o.Name, o.Zones),
		primary:     o.Primary,
		notifyTo:    o.NotifyTo,
		provideXFR:  o.ProvideXFRTo,
		primaryAddr: o.PrimaryAddr.Unmap(),
		primaryPort: o.PrimaryPort,
		verb:        o.Verbosity,
		notifyRetry: o.NotifyRetry,
		mtimes:      map[string]time.Time{},
	}
	r.tsig = validatedKey(t, o.TSIG)
	checkRole(t, fmt.Sprintf("NSD %q", o.Name), r.primary, r.primaryAddr,
		len(r.notifyTo) > 0 || len(r.provideXFR) > 0 || r.notifyRetry != 0,
		"NotifyTo, ProvideXFRTo and NotifyRetry", r.notifyTo)
	r.primaryPort, r.provideXFR = roleDefaults(r.primaryPort, r.provideXFR)
	return r
}

// secondary reports whether the zones are secondary zones (nil-safe).
func (r *nsdRole) secondary() bool { return r.hasZones() && !r.primary }

func (r *nsdRole) verbosity() int {
	if r == nil || r.verb == 0 {
		return 1
	}
	return r.verb
}

// keyRef is how an ACL entry names the key.
func (r *nsdRole) keyRef() string {
	if r.tsig == nil {
		return "NOKEY"
	}
	return r.tsig.Name
}

// conf writes the key: and zone: clauses for r.zones.
func (r *nsdRole) conf(w func(string, ...any), n *NSD) {
	if r.tsig != nil {
		w("key:")
		w("\tname: %q", r.tsig.Name)
		w("\talgorithm: %s", r.tsig.algorithm())
		w("\tsecret: %q", r.tsig.Secret)
	}
	// NOTIFYs (primary) and transfers (secondary) leave from the address
	// NSD listens on: on 127/8 the kernel would pick 127.0.0.1, which
	// a peer's ACL for the server's address would refuse.
	src := n.Addr.Addr().Unmap()
	for _, z := range r.zones {
		w("zone:")
		w("\tname: %q", z.Name)
		w("\toutgoing-interface: %s", src)
		if r.primary {
			w("\tzonefile: %q", filepath.Join(n.Dir, zoneFileName(z.Name)))
			for _, a := range r.notifyTo {
				w("\tnotify: %s@%d %s", a.Addr().Unmap(), a.Port(), r.keyRef())
			}
			if r.notifyRetry > 0 {
				w("\tnotify-retry: %d", r.notifyRetry)
			}
			for _, p := range r.provideXFR {
				w("\tprovide-xfr: %s %s", p.Masked(), r.keyRef())
			}
			continue
		}
		// Secondary: no zonefile, so NSD writes nothing; it serves
		// SERVFAIL until the first transfer.
		w("\tallow-notify: %s %s", r.primaryAddr, r.keyRef())
		w("\trequest-xfr: %s@%d %s", r.primaryAddr, r.primaryPort, r.keyRef())
	}
}

// writeZoneFiles writes the primary's zone files.
func (r *nsdRole) writeZoneFiles(t testing.TB, n *NSD) {
	t.Helper()
	if !r.primary {
		return
	}
	for _, z := range r.zones {
		r.writeZone(t, n.Dir, z, n.Name)
	}
}

// writeZone writes z's file with an mtime later than any it had before:
// NSD reloads a zone file on SIGHUP only if its mtime changed.
func (r *nsdRole) writeZone(t testing.TB, dir string, z ZoneSpec, server string) {
	t.Helper()
	writeZoneFile(t, dir, z, server, &r.mu, r.mtimes)
}

// zone returns the index of zone in r.zones, or -1.
func (r *nsdRole) zone(name string) int {
	name = strings.ToLower(dns.Fqdn(name))
	for i, z := range r.zones {
		if z.Name == name {
			return i
		}
	}
	return -1
}

// probeZone is the zone NSD's readiness probe asks SOA for.
func (n *NSD) probeZone() string {
	if n.role.hasZones() {
		return n.role.zones[0].Name
	}
	return Zone
}

// SetSerial makes a primary NSD serve zone with a new SOA serial and
// notify its NotifyTo targets: it rewrites the zone file (ZoneText with
// the serial), gives it a newer mtime, and sends NSD SIGHUP, which makes
// NSD 4.6 reload changed zone files; xfrd then sees the new serial and
// sends NOTIFYs (see the top of dnsrole.go). It waits at most 5s until
// NSD itself answers the new serial (repeating SIGHUP each second, as a
// SIGHUP during a running reload is not queued) and fails the test with
// NSD's log otherwise. No remote control (nsd-control) is needed.
func (n *NSD) SetSerial(t testing.TB, zone string, serial uint32) {
	t.Helper()
	if n.role == nil || !n.role.primary {
		t.Fatalf("testpeer: NSD %q: SetSerial: not a primary (NSDOptions.Primary)", n.Name)
	}
	i := n.role.zone(zone)
	if i < 0 {
		t.Fatalf("testpeer: NSD %q: SetSerial: zone %s not served", n.Name, zone)
	}
	n.role.mu.Lock()
	n.role.zones[i].Serial = serial
	z := n.role.zones[i]
	n.role.mu.Unlock()
	n.role.writeZone(t, n.Dir, z, n.Name)

	deadline := time.Now().Add(setSerialTimeout)
	var lastHUP time.Time
	for {
		if time.Since(lastHUP) >= time.Second {
			n.mu.Lock()
			pid, running := n.PID, n.p != nil && !n.p.exited()
			n.mu.Unlock()
			if !running {
				t.Fatalf("testpeer: NSD %q: SetSerial: not running\n%s", n.Name, n.logTail())
			}
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				t.Fatalf("testpeer: NSD %q: SIGHUP pid %d: %v", n.Name, pid, err)
			}
			lastHUP = time.Now()
		}
		if got, ok := soaSerialIn(n.NetNS, n.Addr, z.Name); ok == nil && got == serial {
			return
		}
		if time.Now().After(deadline) {
			got, err := soaSerialIn(n.NetNS, n.Addr, z.Name)
			t.Fatalf("testpeer: NSD %q: SetSerial %s %d: still serving %d (%v) after %v\n%s",
				n.Name, z.Name, serial, got, err, setSerialTimeout, n.logTail())
		}
		time.Sleep(serialPoll)
	}
}

// SOASerial asks server (over UDP, from inside ns; nil: the test's own
// namespace) for zone's SOA and returns its serial. ok is false if there
// is no authoritative answer with an SOA (any rcode but NOERROR, AA unset,
// a network error or timeout of 0.5s).
func SOASerial(t testing.TB, ns *NetNS, server netip.AddrPort, zone string) (uint32, bool) {
	t.Helper()
	name := ""
	if ns != nil {
		name = ns.name
	}
	serial, err := soaSerialIn(name, server, zone)
	return serial, err == nil
}

// soaSerialIn is SOASerial from inside the named netns ("" = current),
// saying why it got no serial.
func soaSerialIn(nsName string, server netip.AddrPort, zone string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	var r *dns.Msg
	var err error
	q := func() {
		c := &dns.Client{Net: "udp", Timeout: serialQueryTimeout}
		r, _, err = c.Exchange(m, server.String())
	}
	if nsName == "" {
		if err := checkStaysLocal(server); err != nil {
			return 0, err
		}
		q()
	} else if nerr := inNetNS(nsName, q); nerr != nil {
		return 0, nerr
	}
	if err != nil {
		return 0, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return 0, fmt.Errorf("%w: rcode %s", errNoSOA, dns.RcodeToString[r.Rcode])
	}
	if !r.Authoritative {
		return 0, fmt.Errorf("%w: AA=0", errNoSOA)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, dns.Fqdn(zone)) {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("%w: %d answer records", errNoSOA, len(r.Answer))
}

// errLeaves is returned for a query that would leave the machine.
var errLeaves = errors.New("refusing to query a non-loopback address from the test's own network namespace (it would leave the machine): pass the NetNS to query from")

// checkStaysLocal returns errLeaves if server is not a loopback address
// and the calling thread is in the test process's own network namespace
// (not inside NetNS.Do), where such a query would be routed off the host.
func checkStaysLocal(server netip.AddrPort) error {
	if server.Addr().Unmap().IsLoopback() {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := threadNetNS()
	if err != nil {
		return err
	}
	if origNetNSErr != nil {
		return origNetNSErr
	}
	if cur == origNetNS {
		return fmt.Errorf("%w: %v", errLeaves, server)
	}
	return nil
}

// origNetNS identifies the network namespace the test process started in,
// read at package init, before any thread entered a NetNS. (Any thread,
// the main one included, may later be inside one during NetNS.Do, so
// /proc/PID/ns/net cannot tell.)
var origNetNS, origNetNSErr = threadNetNS()

// threadNetNS returns the device and inode of the calling thread's
// network namespace; lock the thread around it.
func threadNetNS() ([2]uint64, error) {
	fi, err := os.Stat("/proc/thread-self/ns/net")
	if err != nil {
		return [2]uint64{}, fmt.Errorf("read this thread's netns: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return [2]uint64{}, fmt.Errorf("read this thread's netns: no stat_t")
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}

// errNoSOA wraps soaSerialIn's errors for answers without a usable SOA:
// the server answered (it is up) but not with the zone's SOA.
var errNoSOA = errors.New("no authoritative SOA answer")

// WaitSerial asks server (from inside ns; nil: the test's namespace) for
// zone's SOA every 20ms until its serial is at least serial (plain
// comparison, no RFC 1982 arithmetic), and returns how long that took. On
// timeout it fails the test with the last answer and, if server is an NSD
// or Knot started by this package, the tail of its log.
func WaitSerial(t testing.TB, ns *NetNS, server netip.AddrPort, zone string, serial uint32, timeout time.Duration) time.Duration {
	t.Helper()
	name := ""
	if ns != nil {
		name = ns.name
	}
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		got, err := soaSerialIn(name, server, zone)
		if err == nil && got >= serial {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			last := fmt.Sprintf("serial %d", got)
			if err != nil {
				last = err.Error()
			}
			t.Fatalf("testpeer: %v zone %s: serial %d not reached within %v (last: %s)\n%s",
				server, dns.Fqdn(zone), serial, timeout, last, serverLog(t.Name(), name, server))
		}
		time.Sleep(serialPoll)
	}
}

// servers maps a server started by this package to its namespace,
// address, test and log tail, for WaitSerial's failure message.
var servers = struct {
	sync.Mutex
	m map[any]serverEntry
}{m: map[any]serverEntry{}}

type serverEntry struct {
	test string // t.Name() of the test that started it
	ns   string
	addr func() netip.AddrPort
	log  func() string
}

// registerServer records a server for serverLog until t's cleanup. The
// key identifies the server (its *NSD or *Knot).
func registerServer(t testing.TB, key any, ns string, addr func() netip.AddrPort, log func() string) {
	servers.Lock()
	servers.m[key] = serverEntry{test: t.Name(), ns: ns, addr: addr, log: log}
	servers.Unlock()
	t.Cleanup(func() {
		servers.Lock()
		delete(servers.m, key)
		servers.Unlock()
	})
}

// serverLog returns the log tail of the registered server at addr: the
// one in netns ns if there is one, else those started by test (or its
// parent or subtests; parallel tests may use the same addresses in their
// own namespaces), or a note that there is none.
func serverLog(test, ns string, addr netip.AddrPort) string {
	related := func(a, b string) bool {
		return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
	}
	servers.Lock()
	var found, sameTest []serverEntry
	for _, e := range servers.m {
		switch {
		case e.addr() != addr:
		case e.ns == ns:
			found = append(found, e)
		case related(e.test, test):
			sameTest = append(sameTest, e)
		}
	}
	servers.Unlock()
	if len(found) == 0 {
		found = sameTest
	}
	if len(found) == 0 {
		return "(no server started by testpeer at that address: no log)"
	}
	var b strings.Builder
	for _, e := range found {
		b.WriteString(e.log())
	}
	return b.String()
}

// hasZones reports whether r configures Zones (nil-safe).
func (r *nsdRole) hasZones() bool { return r != nil && len(r.zones) > 0 }
