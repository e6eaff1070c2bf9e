package testpeer

// PowerDNS Authoritative Server (pdns_server) with the bind backend, as
// a backend that learns the client's address from dnslb: a PROXY v2
// header (proxy-protocol-from) or an EDNS Client Subnet option
// (edns-subnet-processing). StartPDNS, PDNS.QueryLog, PDNS.AXFRLog.
//
// Facts about PowerDNS Authoritative 4.7.3 (Debian 12 packages
// pdns-server and pdns-backend-bind 4.7.3-2), measured on this machine
// by TestPDNSProxyProtocol and TestPDNSECS (headers built with
// go-proxyproto):
//
// proxy-protocol-from (a list of sources that must send a header).
//   - From a listed source, a query needs a header. Without one it is
//     dropped: UDP silently, TCP by a reset ("PROXYv2 header was
//     invalid" in the log). There is no way to have both on one
//     address: PowerDNS requires the header from a listed source and
//     refuses it from any other.
//   - A PROXY header from a listed source: the query is answered and
//     every check uses the proxied client (allow-axfr-ips, ECS). UDP:
//     one header per datagram; TCP: one at the start of the connection,
//     then any number of queries on it.
//   - A LOCAL header from a listed source is accepted (UDP and TCP); the
//     client is then 0.0.0.0 port 0 (logged "Remote ADDR(0.0.0.0)"), so
//     an ACL such as allow-axfr-ips sees 0.0.0.0, not the sender.
//   - A PROXY header from an unlisted source: dropped (UDP), the plain
//     query from there is answered as usual.
//   - The query log (log-dns-queries) names both: "Remote 10.77.0.1
//     (10.88.1.10) wants 'www.example.test|A', ..." over UDP, "TCP
//     Remote ..." over TCP; AXFRs are logged as "AXFR-out zone
//     'example.test', client '10.77.0.1(10.88.1.10)', transfer
//     initiated / AXFR finished" or "..., client '10.88.2.20:PORT',
//     denied: client IP has no permission".
//
// edns-subnet-processing=yes.
//   - The query log shows the subnet: "Remote 10.77.0.1<-10.88.1.0/24
//     wants ...". The answer echoes the ECS option with scope prefix 0
//     (the bind backend does not tailor answers) when the query had one.
//
// How StartPDNS runs it: `pdns_server --config-dir=DIR` with DIR/pdns.conf
// (launch=bind, bind-config=DIR/named.conf, guardian=no, daemon=no,
// disable-syslog=yes, log-timestamp=no, socket-dir=DIR for the control
// socket, every cache off so that every query is logged, no security
// poll (security-poll-suffix empty: no query leaves the test), one
// receiver and one distributor thread), in the foreground as root,
// logging to stderr (LogPath). The Debian pdns.service is never started.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	// pdnsReadyTimeout bounds the wait for a started pdns_server to answer.
	pdnsReadyTimeout = 15 * time.Second
	// pdnsStopGrace is how long pdns_server gets after SIGTERM.
	pdnsStopGrace = 5 * time.Second
	// pdnsPortTries is how often StartPDNS picks a new port when
	// pdns_server cannot bind an auto-picked one.
	pdnsPortTries = 3
	// pdnsProbeTimeout bounds one readiness probe.
	pdnsProbeTimeout = 300 * time.Millisecond
)

// PDNSOptions configures StartPDNS.
type PDNSOptions struct {
	// Name labels the server: its server-id (CH TXT id.server), the
	// whoami TXT of its zones, part of file names. Default "pdns".
	Name string
	// Addr is where pdns_server listens, UDP and TCP (local-address,
	// local-port). Port 0 picks a free one. A specific address, not
	// 0.0.0.0 or ::.
	Addr netip.AddrPort
	// NetNS, if set, runs pdns_server in this namespace; nil runs it in
	// the test's own (then use a loopback Addr).
	NetNS *NetNS
	// Zones are served from zone files (ZoneText) by the bind backend.
	Zones []ZoneSpec
	// ProxyFrom is proxy-protocol-from: sources that must put a PROXY v2
	// header in front of every query (and may not send one without).
	// Empty: no PROXY protocol.
	ProxyFrom []netip.Prefix
	// ECS sets edns-subnet-processing=yes.
	ECS bool
	// AllowAXFR is allow-axfr-ips; empty keeps PowerDNS's default
	// (127.0.0.0/8 and ::1).
	AllowAXFR []netip.Prefix
}

// PDNS is a pdns_server started by StartPDNS.
type PDNS struct {
	Name     string
	Addr     netip.AddrPort // with the port actually used
	PID      int
	Dir      string // temp dir: pdns.conf, named.conf, zone files, control socket
	ConfPath string // pdns.conf
	LogPath  string // pdns_server's stdout and stderr: its whole log

	ns        *NetNS
	zones     []ZoneSpec
	proxyFrom []netip.Prefix
	autoPort  bool
	bin       string

	serverProc
}

// StartPDNS writes pdns.conf, named.conf and the zone files into a temp
// dir and runs `pdns_server --config-dir=DIR` in the foreground inside
// o.NetNS, in its own process group (as root its own PID namespace). It
// waits at most 15s until pdns_server answers SOA of the first zone over
// UDP; the probe goes from Addr's own address, behind a LOCAL header if
// ProxyFrom covers that address. If an auto-picked port is taken, it
// retries with another (3 tries). Cleanup (t's or the namespace's) sends
// SIGTERM, SIGKILL to the group after 5s, and waits. Skips loudly if
// pdns_server or the bind backend (pdns-backend-bind), or with NetNS
// root or ip, is missing.
func StartPDNS(t testing.TB, o PDNSOptions) *PDNS {
	t.Helper()
	bin := sbinTool(t, "pdns_server", "pdns-server")
	requirePDNSBindBackend(t)
	o.Name = checkServer(t, "PowerDNS", o.NetNS != nil, o.Name, "pdns", o.Addr)
	if len(o.Zones) == 0 {
		t.Fatalf("testpeer: PowerDNS %q: no Zones", o.Name)
	}
	if o.Addr.Addr().IsUnspecified() {
		t.Fatalf("testpeer: PowerDNS %q: Addr %v: want a specific address", o.Name, o.Addr)
	}
	o.Addr = netip.AddrPortFrom(o.Addr.Addr().Unmap(), o.Addr.Port())
	dir := t.TempDir()
	p := &PDNS{
		Name:      o.Name,
		Addr:      o.Addr,
		Dir:       dir,
		ConfPath:  filepath.Join(dir, "pdns.conf"),
		LogPath:   filepath.Join(dir, "pdns-"+o.Name+".log"),
		ns:        o.NetNS,
		zones:     checkZones(t, "PowerDNS "+o.Name, o.Zones),
		proxyFrom: o.ProxyFrom,
		autoPort:  o.Addr.Port() == 0,
		bin:       bin,
	}
	for _, z := range p.zones {
		path := filepath.Join(dir, zoneFileName(z.Name))
		if err := os.WriteFile(path, []byte(ZoneText(z, p.Name)), 0o644); err != nil {
			t.Fatalf("testpeer: PowerDNS %q: write zone %s: %v", p.Name, z.Name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(p.namedConf()), 0o644); err != nil {
		t.Fatalf("testpeer: PowerDNS %q: write named.conf: %v", p.Name, err)
	}
	t.Cleanup(func() {
		p.Stop()
		reportStop(t, &p.mu, &p.stopErr, fmt.Sprintf("testpeer: PowerDNS %q: stop", p.Name), func() string {
			return fmt.Sprintf("testpeer: PowerDNS %q on %v (pid %d, dir %s):\n%s", p.Name, p.Addr, p.PID, p.Dir, p.logTail())
		})
	})
	nsName := o.NetNS.nameOrEmpty()
	registerServer(t, p, nsName, func() netip.AddrPort {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.Addr
	}, p.logTail)

	for try := 1; ; try++ {
		if p.autoPort {
			ap, err := freePortIn(nsName, o.Addr.Addr())
			if err != nil {
				t.Fatalf("testpeer: PowerDNS %q: pick a port: %v", p.Name, err)
			}
			p.mu.Lock()
			p.Addr = ap
			p.mu.Unlock()
		}
		conf := p.conf(o)
		if err := os.WriteFile(p.ConfPath, []byte(conf), 0o644); err != nil {
			t.Fatalf("testpeer: PowerDNS %q: write pdns.conf: %v", p.Name, err)
		}
		retry, err := p.start(t, nsName)
		if err == nil {
			return p
		}
		if retry && try < pdnsPortTries {
			t.Logf("testpeer: PowerDNS %q: %v; trying another port", p.Name, err)
			_ = os.Rename(p.LogPath, fmt.Sprintf("%s.try%d", p.LogPath, try))
			continue
		}
		t.Fatalf("testpeer: PowerDNS %q on %v: %v\n%s\n--- %s\n%s", p.Name, p.Addr, err, p.logTail(), p.ConfPath, numbered(conf))
	}
}

// requirePDNSBindBackend skips unless PowerDNS's bind backend is
// installed (package pdns-backend-bind: libbindbackend.so in PowerDNS's
// module directory).
func requirePDNSBindBackend(t testing.TB) {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/*/pdns/libbindbackend.so")
	if more, _ := filepath.Glob("/usr/lib/pdns/libbindbackend.so"); len(more) > 0 {
		matches = append(matches, more...)
	}
	if len(matches) == 0 {
		t.Skipf("SKIP: PowerDNS bind backend not installed (apt-get install pdns-backend-bind)")
	}
}

// start runs pdns_server and waits until it answers. On error it is
// stopped; retry says the port was taken.
func (p *PDNS) start(t testing.TB, nsName string) (retry bool, err error) {
	t.Helper()
	pr := p.launch(t, fmt.Sprintf("PowerDNS %q", p.Name), p.ns, nsName, p.Dir, p.LogPath, &p.PID, p.bin, "--config-dir="+p.Dir)
	if retry, err = p.waitReady(pr); err != nil {
		keepFirstErr(&p.mu, &p.stopErr, pr.stopGroup(pdnsStopGrace))
	}
	return retry, err
}

// waitReady polls SOA of the first zone until pdns_server answers it,
// exits, or pdnsReadyTimeout passes.
func (p *PDNS) waitReady(pr *proc) (retry bool, err error) {
	deadline := time.Now().Add(pdnsReadyTimeout)
	src := p.Addr.Addr()
	h := NoProxyHeader
	for _, pf := range p.proxyFrom {
		if pf.Contains(src) {
			h = ProxyLocal
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(p.zones[0].Name, dns.TypeSOA)
	var lastErr error
	for {
		if pr.exited() {
			return p.autoPort && strings.Contains(p.Log(), "Address already in use"),
				fmt.Errorf("pdns_server (pid %d) exited before answering: %v", pr.pid, pr.err)
		}
		r, err := ExchangeFrom(p.ns, src, p.Addr, "udp", h, m, pdnsProbeTimeout)
		switch {
		case err != nil:
			lastErr = err
		case r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0:
			lastErr = fmt.Errorf("SOA %s: rcode %s, %d answers", m.Question[0].Name, dns.RcodeToString[r.Rcode], len(r.Answer))
		default:
			return false, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("no SOA answer within %v (probe from %v, %v): %v", pdnsReadyTimeout, src, h, lastErr)
		}
		time.Sleep(serialPoll)
	}
}

// Stop stops pdns_server (SIGTERM, SIGKILL to its group after 5s) and
// waits for it. It is idempotent.
func (p *PDNS) Stop() { p.stopProc(pdnsStopGrace) }

// Running reports whether pdns_server is alive.
func (p *PDNS) Running() bool { return p.running() }

// Log returns pdns_server's whole log so far.
func (p *PDNS) Log() string { return readLog(p.LogPath) }

func (p *PDNS) logTail() string {
	return "--- " + p.LogPath + "\n" + tail(p.LogPath, 40)
}

// PDNSQuery is one query in PowerDNS's query log (log-dns-queries).
type PDNSQuery struct {
	TCP bool
	// Remote is the address the query came from (dnslb's).
	Remote netip.Addr
	// Proxied is the client a PROXY header named (0.0.0.0 for a LOCAL
	// header); invalid when the query had no header.
	Proxied netip.Addr
	// ECS is the subnet of the query's ECS option (with
	// edns-subnet-processing); invalid when there was none.
	ECS  netip.Prefix
	Name string // as logged, without the final dot: "www.example.test"
	Type string // "A", "SOA", ...
	Line string
}

// Client is the address PowerDNS takes for the client: the proxied one
// if there was a header, else Remote.
func (q PDNSQuery) Client() netip.Addr {
	if q.Proxied.IsValid() {
		return q.Proxied
	}
	return q.Remote
}

// pdnsQueryRE matches a log-dns-queries line of 4.7:
// "[TCP ]Remote ADDR[(PROXIED)][<-ECS] wants 'NAME|TYPE', do = 0, ...".
var pdnsQueryRE = regexp.MustCompile(`^(TCP )?Remote ([^ (<]+)(?:\(([^)]*)\))?(?:<-(\S+))? wants '(.*)\|([A-Za-z0-9]+)'`)

// QueryLog returns the queries pdns_server logged so far, in order.
func (p *PDNS) QueryLog() []PDNSQuery {
	var out []PDNSQuery
	for _, line := range strings.Split(p.Log(), "\n") {
		m := pdnsQueryRE.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		q := PDNSQuery{TCP: m[1] != "", Name: m[5], Type: m[6], Line: line}
		q.Remote, _ = netip.ParseAddr(m[2])
		if m[3] != "" {
			q.Proxied, _ = netip.ParseAddr(m[3])
		}
		if m[4] != "" {
			q.ECS, _ = netip.ParsePrefix(m[4])
		}
		out = append(out, q)
	}
	return out
}

// QueriesFor returns the logged queries for name (with or without the
// final dot, any case) and type.
func (p *PDNS) QueriesFor(name string, qtype uint16) []PDNSQuery {
	want := strings.ToLower(strings.TrimSuffix(name, "."))
	var out []PDNSQuery
	for _, q := range p.QueryLog() {
		if strings.ToLower(strings.TrimSuffix(q.Name, ".")) == want && q.Type == dns.TypeToString[qtype] {
			out = append(out, q)
		}
	}
	return out
}

// PDNSXFR is one AXFR-out log line.
type PDNSXFR struct {
	Zone   string // as logged, without the final dot
	Client string // as logged: "10.77.0.1(10.88.1.10)" or "10.88.1.10:PORT"
	Event  string // "transfer initiated", "AXFR finished", "denied: ...", "failed: ..."
	Line   string
}

var pdnsXFRRE = regexp.MustCompile(`AXFR-out zone '([^']*)', client '([^']*)', (.*)$`)

// AXFRLog returns the AXFR-out lines logged so far, in order.
func (p *PDNS) AXFRLog() []PDNSXFR {
	var out []PDNSXFR
	for _, line := range strings.Split(p.Log(), "\n") {
		if m := pdnsXFRRE.FindStringSubmatch(line); m != nil {
			out = append(out, PDNSXFR{Zone: m[1], Client: m[2], Event: m[3], Line: line})
		}
	}
	return out
}

// namedConf is the bind backend's zone list.
func (p *PDNS) namedConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "// written by dnslb internal/testpeer for PowerDNS %s (bind backend)\n", p.Name)
	for _, z := range p.zones {
		fmt.Fprintf(&b, "zone %q { type master; file %q; };\n", strings.TrimSuffix(z.Name, "."), filepath.Join(p.Dir, zoneFileName(z.Name)))
	}
	return b.String()
}

// conf returns pdns.conf for PowerDNS 4.7 (settings checked against
// `pdns_server --help` of 4.7.3).
func (p *PDNS) conf(o PDNSOptions) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	prefixes := func(ps []netip.Prefix) string {
		var s []string
		for _, pf := range ps {
			s = append(s, pf.Masked().String())
		}
		return strings.Join(s, ",")
	}
	w("# written by dnslb internal/testpeer for %s", p.Name)
	w("launch=bind")
	w("bind-config=%s", filepath.Join(p.Dir, "named.conf"))
	w("local-address=%s", p.Addr.Addr())
	w("local-port=%d", p.Addr.Port())
	w("socket-dir=%s", p.Dir)
	w("guardian=no")
	w("daemon=no")
	w("disable-syslog=yes")
	w("log-timestamp=no")
	// 6 (info) shows the query log lines; 7 (debug) adds much noise.
	w("loglevel=6")
	w("log-dns-queries=yes")
	w("server-id=%s", p.Name)
	// No secpoll query (it would go to the system's resolver).
	w("security-poll-suffix=")
	w("receiver-threads=1")
	w("distributor-threads=1")
	// Every cache off: every query reaches the backend and the log.
	w("cache-ttl=0")
	w("query-cache-ttl=0")
	w("negquery-cache-ttl=0")
	w("zone-cache-refresh-interval=0")
	if len(o.ProxyFrom) > 0 {
		w("proxy-protocol-from=%s", prefixes(o.ProxyFrom))
	}
	if o.ECS {
		w("edns-subnet-processing=yes")
	}
	if len(o.AllowAXFR) > 0 {
		w("allow-axfr-ips=%s", prefixes(o.AllowAXFR))
	}
	return b.String()
}
