package testpeer

// Unbound as a resolver behind dnslb that learns the client's address
// from a PROXY v2 header (proxy-protocol-port) and applies its
// access-control rules to it. It answers from local zones only (no
// internet, nothing leaves the test). StartUnbound, Unbound.QueryLog.
//
// Facts about Unbound 1.17.1 (Debian 12 package unbound 1.17.1-2),
// measured on this machine by TestUnboundProxyProtocol (headers built
// with go-proxyproto):
//
// proxy-protocol-port (a port on which every query must carry a header).
//   - There is no list of senders allowed to send a header: any sender
//     that reaches the port may name any client. access-control is
//     checked twice: first on the sender (the proxy; "deny": dropped,
//     "refuse": REFUSED), then on the proxied client. So an allowlist of
//     proxies is "access-control: PROXY/32 allow" plus deny for every
//     other source that can reach the port, and the port must not be
//     reachable from the client prefixes that are allowed as proxied
//     clients (they would pass the first check): listen on an address
//     only dnslb reaches, or firewall the port.
//   - A query without a header is dropped: UDP silently ("error:
//     proxy_protocol: could not match PROXYv2 header" in the log), TCP
//     by a reset.
//   - A LOCAL header is accepted; the client is then the sender itself.
//   - access-control refuse for the proxied client: the answer is
//     REFUSED with the question section removed (QDCOUNT 0). deny: no
//     answer at all. A client put in a view whose local zones are
//     "refuse" (access-control-view; UnboundOptions.RefuseView) gets
//     REFUSED with the question kept.
//   - The query log (log-queries, log-replies) names the proxied client:
//     "info: 10.88.1.10 www.example.test. A IN" and "info: 10.88.1.10
//     www.example.test. A IN NOERROR 0.000000 1 50"; a refused one
//     "info: 10.88.2.20 null TYPE0 CLASS0 REFUSED ...". A query refused
//     because of its sender is logged under the client its header names.
//
// How StartUnbound runs it: `unbound -d -c DIR/unbound.conf` in the
// foreground as root (username "", chroot "", do-daemonize no,
// use-syslog no, logging to stderr: LogPath), pidfile and directory in
// DIR, one thread, module-config "iterator" (no validator, no trust
// anchor to update), remote-control off, local-zone "." static so that
// no name is ever looked up outside (unknown names: NXDOMAIN), each
// zone a static local zone with its ZoneText as local-data. The Debian
// unbound.service is never started.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	// unboundReadyTimeout bounds the wait for "start of service".
	unboundReadyTimeout = 15 * time.Second
	// unboundStopGrace is how long unbound gets after SIGTERM.
	unboundStopGrace = 3 * time.Second
	// unboundPortTries is how often StartUnbound picks a new port when
	// unbound cannot bind an auto-picked one.
	unboundPortTries = 3
)

// UnboundACL is one access-control line: Prefix and Action (allow,
// deny, refuse, allow_setrd, allow_snoop, deny_non_local,
// refuse_non_local).
type UnboundACL struct {
	Prefix netip.Prefix
	Action string
}

var unboundACLActions = map[string]bool{
	"allow": true, "deny": true, "refuse": true, "allow_setrd": true, "allow_snoop": true,
	"deny_non_local": true, "refuse_non_local": true,
}

// UnboundOptions configures StartUnbound.
type UnboundOptions struct {
	// Name labels the server: its identity (CH TXT id.server), the
	// whoami TXT of its zones, part of file names. Default "unbound".
	Name string
	// Addr is where unbound listens, UDP and TCP (interface: ADDR@PORT).
	// Port 0 picks a free one.
	Addr netip.AddrPort
	// NetNS, if set, runs unbound in this namespace; nil runs it in the
	// test's own (then use a loopback Addr).
	NetNS *NetNS
	// Zones are served as static local zones with ZoneText as
	// local-data; default one zone, example.test.
	Zones []ZoneSpec
	// ProxyProtocol makes Addr's port a proxy-protocol-port: every query
	// must start with a PROXY v2 header.
	ProxyProtocol bool
	// AccessControl are the access-control lines (the most specific
	// prefix wins); default allow 0.0.0.0/0 and ::/0.
	AccessControl []UnboundACL
	// RefuseView puts these clients in a view "refused" whose local
	// zones ("." and every zone) are of type refuse: they get REFUSED
	// with the question section kept, unlike access-control refuse
	// (which removes it; a load balancer that matches answers by their
	// question cannot relay that one).
	RefuseView []netip.Prefix
	// Verbosity is unbound's verbosity; default 1.
	Verbosity int
}

// Unbound is an unbound started by StartUnbound.
type Unbound struct {
	Name     string
	Addr     netip.AddrPort // with the port actually used
	PID      int
	Dir      string
	ConfPath string
	LogPath  string // unbound's stdout and stderr: its whole log

	ns       *NetNS
	zones    []ZoneSpec
	autoPort bool
	bin      string

	serverProc
}

// StartUnbound writes unbound.conf into a temp dir, checks it with
// unbound-checkconf, and runs `unbound -d -c unbound.conf` inside
// o.NetNS, in its own process group (as root its own PID namespace). It
// waits at most 15s for "start of service" in its log (its sockets are
// open by then; a probe query could be refused or dropped by
// AccessControl, so none is used). If an auto-picked port is taken, it
// retries with another (3 tries). Cleanup (t's or the namespace's)
// sends SIGTERM, SIGKILL to the group after 3s, and waits. Skips loudly
// if unbound or unbound-checkconf (or, with NetNS, root or ip) is
// missing.
func StartUnbound(t testing.TB, o UnboundOptions) *Unbound {
	t.Helper()
	bin := sbinTool(t, "unbound", "unbound")
	checkconf := sbinTool(t, "unbound-checkconf", "unbound")
	o.Name = checkServer(t, "Unbound", o.NetNS != nil, o.Name, "unbound", o.Addr)
	if len(o.Zones) == 0 {
		o.Zones = []ZoneSpec{{Name: Zone}}
	}
	if len(o.AccessControl) == 0 {
		o.AccessControl = []UnboundACL{
			{netip.MustParsePrefix("0.0.0.0/0"), "allow"},
			{netip.MustParsePrefix("::/0"), "allow"},
		}
	}
	for _, a := range o.AccessControl {
		if !a.Prefix.IsValid() || !unboundACLActions[a.Action] {
			t.Fatalf("testpeer: Unbound %q: access-control %v %q: want a prefix and one of allow, deny, refuse, allow_setrd, allow_snoop, deny_non_local, refuse_non_local", o.Name, a.Prefix, a.Action)
		}
	}
	if o.Verbosity == 0 {
		o.Verbosity = 1
	}
	o.Addr = netip.AddrPortFrom(o.Addr.Addr().Unmap(), o.Addr.Port())
	dir := t.TempDir()
	u := &Unbound{
		Name:     o.Name,
		Addr:     o.Addr,
		Dir:      dir,
		ConfPath: filepath.Join(dir, "unbound.conf"),
		LogPath:  filepath.Join(dir, "unbound-"+o.Name+".log"),
		ns:       o.NetNS,
		zones:    checkZones(t, "Unbound "+o.Name, o.Zones),
		autoPort: o.Addr.Port() == 0,
		bin:      bin,
	}
	t.Cleanup(func() {
		u.Stop()
		reportStop(t, &u.mu, &u.stopErr, fmt.Sprintf("testpeer: Unbound %q: stop", u.Name), func() string {
			return fmt.Sprintf("testpeer: Unbound %q on %v (pid %d, dir %s):\n%s", u.Name, u.Addr, u.PID, u.Dir, u.logTail())
		})
	})
	nsName := o.NetNS.nameOrEmpty()
	registerServer(t, u, nsName, func() netip.AddrPort {
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.Addr
	}, u.logTail)

	for try := 1; ; try++ {
		if u.autoPort {
			ap, err := freePortIn(nsName, o.Addr.Addr())
			if err != nil {
				t.Fatalf("testpeer: Unbound %q: pick a port: %v", u.Name, err)
			}
			u.mu.Lock()
			u.Addr = ap
			u.mu.Unlock()
		}
		conf, err := u.conf(o)
		if err != nil {
			t.Fatalf("testpeer: Unbound %q: %v", u.Name, err)
		}
		if err := os.WriteFile(u.ConfPath, []byte(conf), 0o644); err != nil {
			t.Fatalf("testpeer: Unbound %q: write unbound.conf: %v", u.Name, err)
		}
		if out, err := runBounded(checkconf, u.ConfPath); err != nil {
			t.Fatalf("testpeer: Unbound %q: unbound-checkconf: %v\n%s\n--- %s\n%s", u.Name, err, strings.TrimSpace(out), u.ConfPath, numbered(conf))
		}
		retry, err := u.start(t, nsName)
		if err == nil {
			return u
		}
		if retry && try < unboundPortTries {
			t.Logf("testpeer: Unbound %q: %v; trying another port", u.Name, err)
			_ = os.Rename(u.LogPath, fmt.Sprintf("%s.try%d", u.LogPath, try))
			continue
		}
		t.Fatalf("testpeer: Unbound %q on %v: %v\n%s", u.Name, u.Addr, err, u.logTail())
	}
}

func (u *Unbound) start(t testing.TB, nsName string) (retry bool, err error) {
	t.Helper()
	pr := u.launch(t, fmt.Sprintf("Unbound %q", u.Name), u.ns, nsName, u.Dir, u.LogPath, &u.PID, u.bin, "-d", "-c", u.ConfPath)
	deadline := time.Now().Add(unboundReadyTimeout)
	for {
		log := u.Log()
		switch {
		case strings.Contains(log, "start of service"):
			return false, nil
		case pr.exited():
			return u.autoPort && strings.Contains(log, "Address already in use"),
				fmt.Errorf("unbound (pid %d) exited before its start of service: %v", pr.pid, pr.err)
		case time.Now().After(deadline):
			keepFirstErr(&u.mu, &u.stopErr, pr.stopGroup(unboundStopGrace))
			return false, fmt.Errorf("no \"start of service\" within %v", unboundReadyTimeout)
		}
		time.Sleep(serialPoll)
	}
}

// Stop stops unbound (SIGTERM, SIGKILL to its group after 3s) and waits
// for it. It is idempotent.
func (u *Unbound) Stop() { u.stopProc(unboundStopGrace) }

// Running reports whether unbound is alive.
func (u *Unbound) Running() bool { return u.running() }

// Log returns unbound's whole log so far.
func (u *Unbound) Log() string { return readLog(u.LogPath) }

func (u *Unbound) logTail() string {
	return "--- " + u.LogPath + "\n" + tail(u.LogPath, 40)
}

// UnboundQuery is one line of unbound's query log: a query (log-queries)
// or a reply (log-replies, Rcode set).
type UnboundQuery struct {
	Client netip.Addr // the client unbound took: the proxied one behind a header
	Name   string     // "www.example.test." ("null" for a refused query)
	Type   string
	Rcode  string // "" for a query line
	Line   string
}

// QueryLog returns the query and reply lines unbound logged so far, in
// order.
func (u *Unbound) QueryLog() []UnboundQuery {
	var out []UnboundQuery
	for _, line := range strings.Split(u.Log(), "\n") {
		_, rest, ok := strings.Cut(line, "] info: ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 4 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue // another info line, e.g. "start of service"
		}
		q := UnboundQuery{Client: a, Name: f[1], Type: f[2], Line: line}
		if len(f) >= 5 {
			q.Rcode = f[4]
		}
		out = append(out, q)
	}
	return out
}

// Replies returns the reply lines for client (any client if invalid).
func (u *Unbound) Replies(client netip.Addr) []UnboundQuery {
	var out []UnboundQuery
	for _, q := range u.QueryLog() {
		if q.Rcode != "" && (!client.IsValid() || q.Client == client) {
			out = append(out, q)
		}
	}
	return out
}

// conf returns unbound.conf for Unbound 1.17 (options checked against
// unbound.conf(5) of 1.17.1).
func (u *Unbound) conf(o UnboundOptions) (string, error) {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# written by dnslb internal/testpeer for %s", u.Name)
	w("server:")
	w("    interface: %s@%d", u.Addr.Addr(), u.Addr.Port())
	w("    port: %d", u.Addr.Port())
	if o.ProxyProtocol {
		w("    proxy-protocol-port: %d", u.Addr.Port())
	}
	w("    interface-automatic: no")
	w("    do-daemonize: no")
	w(`    chroot: ""`)
	w(`    username: ""`)
	w("    directory: %q", u.Dir)
	w("    pidfile: %q", filepath.Join(u.Dir, "unbound.pid"))
	w("    use-syslog: no")
	w(`    logfile: ""`)
	w("    verbosity: %d", o.Verbosity)
	w("    log-queries: yes")
	w("    log-replies: yes")
	w("    num-threads: 1")
	w("    so-reuseport: no")
	w("    identity: %q", u.Name)
	w(`    module-config: "iterator"`)
	w("    do-ip4: yes")
	w("    do-ip6: yes")
	for _, a := range o.AccessControl {
		w("    access-control: %s %s", a.Prefix.Masked(), a.Action)
	}
	for _, p := range o.RefuseView {
		w("    access-control-view: %s refused", p.Masked())
	}
	// Nothing is ever looked up outside: names outside the zones get
	// NXDOMAIN from the root's static zone.
	w(`    local-zone: "." static`)
	for _, z := range u.zones {
		w("    local-zone: %q static", z.Name)
		zp := dns.NewZoneParser(strings.NewReader(ZoneText(z, u.Name)), z.Name, "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			s := strings.Join(strings.Fields(rr.String()), " ")
			if strings.Contains(s, "'") {
				return "", fmt.Errorf("zone %s: record %q: a single quote cannot be put in local-data", z.Name, s)
			}
			w("    local-data: '%s'", s)
		}
		if err := zp.Err(); err != nil {
			return "", fmt.Errorf("zone %s: %v", z.Name, err)
		}
	}
	if len(o.RefuseView) > 0 {
		w("view:")
		w(`    name: "refused"`)
		w(`    local-zone: "." refuse`)
		for _, z := range u.zones {
			w("    local-zone: %q refuse", z.Name)
		}
	}
	w("remote-control:")
	w("    control-enable: no")
	return b.String(), nil
}
