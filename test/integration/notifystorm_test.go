package integration

// The NOTIFY storm harness (issue 18, `make scale`; docs/performance.md,
// "NOTIFY storms"). One LAN:
//
//	p   10.79.0.2   NSD primary of N zones, notifying the VIP
//	lb  10.79.0.1   dnslb, VIP 10.79.0.53, notify on
//	s1  10.79.0.11  NSD secondary      ┐
//	s2  10.79.0.12  Knot secondary     ├ the VIP's backends
//	s3  10.79.0.13  NSD secondary      ┘
//	c   10.79.0.20  the client stream (5,000 qps through the VIP)
//
// The secondaries start from zone files at serial 1 (as if transferred
// before), the primary's start-up NOTIFYs go to a sink standing in for the
// VIP, then dnslb starts, the stream starts, and after a quiet "before"
// phase every zone file on the primary gets serial 2 and the primary is
// reloaded: it notifies all N zones through dnslb. The run ends when every
// zone serves serial 2 on every secondary (checked by a final sweep of
// SOA queries) and an "after" phase has passed. Zone files, server state
// and logs live on /dev/shm when it has room (stormRoot).
//
// Convergence times come from the secondaries' logs (NSD: "zone Z
// received update to serial 2", Knot: "[Z] refresh, ... serial 1 -> 2"),
// so measuring adds no query load; their clocks are this machine's.

import (
	"bytes"
	"cmp"
	endian "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/dnslb/dnslb/internal/dnswire"
	"github.com/dnslb/dnslb/internal/testpeer"
)

// stormEnv are the harness's knobs (make scale passes them).
const (
	envStormN      = "DNSLB_STORM_N"       // zones (default 5000)
	envStormNotify = "DNSLB_STORM_NOTIFY"  // extra lines for dnslb's notify section, e.g. "  track_qps: 2000\n"
	envStormReport = "DNSLB_STORM_REPORT"  // file to write the report table to (appended)
	envStormQPS    = "DNSLB_STORM_QPS"     // client stream rate (default 5000)
	envStormProf   = "DNSLB_STORM_PROFILE" // file for a CPU profile of dnslb over the storm's first 60 s
	envStormLimit  = "DNSLB_STORM_LIMIT"   // how long the storm may take to converge (default 120 s + N/100 s)
	envStormNSD    = "DNSLB_STORM_NSD"     // extra server lines for the NSD secondaries, e.g. "\txfrd-reload-timeout: 10\n"
)

// Memory per zone measured at N=100,000 on this machine kind: the peak
// PSS of the primary, the three secondaries and dnslb together, 3,159 MiB
// (docs/performance.md, "NOTIFY storms").
const stormBytesPerZone = 32 << 10

// stormFileBytesPerZone is what the run's files take per zone on tmpfs:
// two zone files (serial 1 and 2) of one 4 KiB page each, and Knot's
// journal and timer databases.
const stormFileBytesPerZone = 9 << 10

// stormRoot returns the directory for the run's zone files, server state
// and logs: a fresh directory on /dev/shm when that is a tmpfs with room
// for them, else t.TempDir(). On the root file system the NSD secondaries'
// transfer temp files (one per transfer, xfrdir) cost ext4 inode
// allocation in the kernel, and deleting 2*N zone files after the run
// took about a minute at N=100,000; neither is a cost of DNS service.
func stormRoot(t *testing.T, n int) (dir string, onTmpfs bool) {
	t.Helper()
	var fs unix.Statfs_t
	need := int64(n) * stormFileBytesPerZone
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC || int64(fs.Bavail)*fs.Bsize < need+(1<<30) {
		return t.TempDir(), false
	}
	dir, err := os.MkdirTemp("/dev/shm", "dnslb-storm-")
	if err != nil {
		t.Fatalf("storm directory on /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir, true
}

var (
	stormPrimary = netip.MustParseAddr("10.79.0.2")
	stormVIP     = netip.MustParseAddrPort("10.79.0.53:53")
	stormSecs    = []netip.AddrPort{netip.MustParseAddrPort("10.79.0.11:53"), netip.MustParseAddrPort("10.79.0.12:53"), netip.MustParseAddrPort("10.79.0.13:53")}
	stormNames   = []string{"s1", "s2", "s3"}
	stormKinds   = []string{"nsd", "knot", "nsd"}
)

func stormZone(i int) string { return fmt.Sprintf("z%06d.storm.", i) }

// stormIndex is the inverse of stormZone for i < n.
func stormIndex(name string, n int) (int, bool) {
	if len(name) != len("z000000.storm.") || name[0] != 'z' || !strings.HasSuffix(name, ".storm.") {
		return 0, false
	}
	i, err := strconv.Atoi(name[1:7])
	return i, err == nil && i >= 0 && i < n
}

func stormZoneText(i int, serial uint32) []byte {
	return fmt.Appendf(nil, "$ORIGIN %s\n$TTL 300\n@ IN SOA ns1 hostmaster %d 86400 3600 604800 300\n@ IN NS ns1\nns1 IN A 10.79.0.2\nwww IN A 192.0.2.%d\n",
		stormZone(i), serial, 1+i%250)
}

// writeStormZones writes the N zone files (serial) into dir.
func writeStormZones(t *testing.T, dir string, n int, serial uint32) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				p := filepath.Join(dir, strings.TrimSuffix(stormZone(i), ".")+".zone")
				if err := os.WriteFile(p, stormZoneText(i, serial), 0o644); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func nsdStormConf(dir, seedDir string, addr netip.Addr, n int, primary bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("server:")
	w("\tusername: \"\"\n\tchroot: \"\"\n\tzonesdir: %q\n\tdatabase: \"\"\n\tzonefiles-write: 0", dir)
	w("\tzonelistfile: %q\n\txfrdfile: %q\n\txfrdir: %q\n\tpidfile: %q", filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"), dir, filepath.Join(dir, "nsd.pid"))
	w("\tcookie-secret-file: %q\n\tlogfile: %q\n\tverbosity: 1", filepath.Join(dir, "cookiesecrets.txt"), filepath.Join(dir, "nsd.log"))
	w("\tserver-count: 1\n\trrl-ratelimit: 0\n\trrl-whitelist-ratelimit: 0\n\thide-version: yes")
	w("\tip-address: %s@53\n\tdo-ip4: yes\n\tdo-ip6: no\n\ttcp-count: 1000", addr)
	w("remote-control:\n\tcontrol-enable: no")
	w("pattern:\n\tname: p")
	if primary {
		w("\tnotify: %s NOKEY\n\tprovide-xfr: 0.0.0.0/0 NOKEY", stormVIP.Addr())
	} else {
		w("\tallow-notify: %s NOKEY\n\trequest-xfr: %s@53 NOKEY", stormPrimary, stormPrimary)
	}
	// No outgoing-interface (the namespace has one address): with it
	// xfrd binds each transfer's socket to a random port it picks
	// itself, and among tens of thousands of ports in TIME_WAIT that
	// costs it a getrandom and a bind per try.
	// NSD's own xfrd-reload-timeout (1 s): 10 s saved CPU at 100,000
	// zones but slowed the secondaries at 400,000 (docs/performance.md,
	// "Fewer NSD reloads"); DNSLB_STORM_NSD can set it.
	if extra := os.Getenv(envStormNSD); extra != "" && !primary {
		w("server:\n%s", extra)
	}
	for i := range n {
		z := stormZone(i)
		w("zone:\n\tname: %s\n\tzonefile: %q\n\tinclude-pattern: p", z, filepath.Join(seedDir, strings.TrimSuffix(z, ".")+".zone"))
	}
	return b.String()
}

func knotStormConf(dir, seedDir string, addr netip.Addr, n int) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("server:\n    rundir: %q\n    pidfile: %q\n    listen: %s@53", dir, filepath.Join(dir, "knot.pid"), addr)
	w("    udp-workers: 2\n    tcp-workers: 2\n    background-workers: 4")
	w("database:\n    storage: %q\n    journal-db-max-size: 2G\n    timer-db-max-size: 2G\n    kasp-db-max-size: 8M\n    catalog-db-max-size: 8M", dir)
	w("control:\n    listen: %q", filepath.Join(dir, "knot.sock"))
	w("log:\n  - target: stdout\n    any: info")
	// No via (the namespace has one address): binding the source before
	// connecting made the kernel search the bind table for a free port
	// on every transfer, and with ~36,000 connections in TIME_WAIT that
	// search took 40% of the machine during the start-up refreshes.
	w("remote:\n  - id: primary\n    address: %s@53", stormPrimary)
	w("acl:\n  - id: notify_from_primary\n    address: %s\n    action: notify", stormPrimary)
	w("template:\n  - id: default\n    storage: %q\n    file: %q", dir, filepath.Join(seedDir, "%s.zone"))
	w("    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n    master: primary\n    acl: notify_from_primary")
	w("zone:")
	for i := range n {
		w("  - domain: %s", stormZone(i))
	}
	return b.String()
}

// stormServer is one DNS server of the harness.
type stormServer struct {
	name, kind string
	ns         *testpeer.NetNS
	addr       netip.AddrPort
	dir        string
	log        string // its log file
	cmd        *exec.Cmd
	started    time.Duration // until it answered the last zone
}

// startStormServer writes the config and starts the server; it waits
// until the last zone answers (a primary: with serial 1).
func startStormServer(t *testing.T, s *stormServer, n int, seedDir string, primary bool) {
	t.Helper()
	t0 := time.Now()
	switch s.kind {
	case "nsd":
		conf := filepath.Join(s.dir, "nsd.conf")
		writeFile(t, conf, nsdStormConf(s.dir, seedDir, s.addr.Addr(), n, primary))
		s.log = filepath.Join(s.dir, "nsd.log")
		s.cmd = s.ns.Start(t, "nsd", "-d", "-c", conf)
	case "knot":
		conf := filepath.Join(s.dir, "knot.conf")
		writeFile(t, conf, knotStormConf(s.dir, seedDir, s.addr.Addr(), n))
		// ns.Start logs stdout to a file of its own: find it by asking
		// knotd to log to a file instead.
		s.log = filepath.Join(s.dir, "knot.log")
		s.cmd = s.ns.Start(t, "sh", "-c", "exec knotd -c "+conf+" >"+s.log+" 2>&1")
	}
	last := stormZone(n - 1)
	deadline := time.Now().Add(time.Duration(60+n/400) * time.Second) // Knot loads ~1,000 zones/s here
	for {
		serial, ok := stormSOA(t, s.ns, s.addr, last)
		if ok && (!primary || serial == 1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (%s) did not serve %s within %v:\n%s", s.name, s.kind, last, time.Since(t0).Round(time.Second), tailFile(s.log, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.started = time.Since(t0)
	t.Logf("%s (%s, %d zones) serving after %v", s.name, s.kind, n, s.started.Round(100*time.Millisecond))
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stormSOA asks server for zone's SOA serial from inside ns.
func stormSOA(t *testing.T, ns *testpeer.NetNS, server netip.AddrPort, zone string) (uint32, bool) {
	var serial uint32
	var ok bool
	ns.Do(t, func() {
		m := new(dns.Msg)
		m.SetQuestion(zone, dns.TypeSOA)
		c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
		r, _, err := c.Exchange(m, server.String())
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			if soa, is := r.Answer[0].(*dns.SOA); is {
				serial, ok = soa.Serial, true
			}
		}
	})
	return serial, ok
}

// notifySink answers every NOTIFY to addr (in ns) with NOERROR until
// stopped, standing in for the VIP while the primary sends its start-up
// NOTIFYs. It returns the count of distinct zones notified.
type notifySink struct {
	conn  net.PacketConn
	mu    sync.Mutex
	zones map[string]bool
	first time.Time // the first NOTIFY
	last  time.Time
	done  chan struct{}
}

func startNotifySink(t *testing.T, ns *testpeer.NetNS, addr netip.AddrPort) *notifySink {
	t.Helper()
	s := &notifySink{zones: map[string]bool{}, done: make(chan struct{})}
	ns.Do(t, func() {
		var err error
		s.conn, err = net.ListenPacket("udp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
	})
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, from, err := s.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil || m.Opcode != dns.OpcodeNotify || len(m.Question) != 1 {
				continue
			}
			r := new(dns.Msg)
			r.SetReply(m)
			r.Authoritative = true
			if out, err := r.Pack(); err == nil {
				s.conn.WriteTo(out, from)
			}
			s.mu.Lock()
			s.zones[m.Question[0].Name] = true
			s.last = time.Now()
			if s.first.IsZero() {
				s.first = s.last
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *notifySink) stop() { s.conn.Close(); <-s.done }

func (s *notifySink) state() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.zones), s.last
}

// clientStream sends queries for www.<random zone> A to the VIP at a fixed
// rate from one socket and records each answer's latency by phase. A
// query unanswered after 2 s is lost.
type clientStream struct {
	conn  *net.UDPConn
	n     int
	qps   int
	phase atomic.Int32
	stop  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	slots [65536]streamSlot
	ph    [3]streamPhase
	start time.Time // when the stream started: lostAt counts from here
	// lostAt counts lost queries by the second they were sent in, late
	// (answered after 2 s) and never answered apart.
	lostAt map[int][2]int
}

type streamSlot struct {
	sent  time.Time
	phase int8
	busy  bool
}

type streamPhase struct {
	sent, answered, errors, lost int
	lat                          []time.Duration
}

var phaseNames = []string{"before", "during", "after"}

func startClientStream(t *testing.T, ns *testpeer.NetNS, vip netip.AddrPort, n, qps int) *clientStream {
	t.Helper()
	c := &clientStream{n: n, qps: qps, stop: make(chan struct{}), done: make(chan struct{}), start: time.Now(), lostAt: map[int][2]int{}}
	ns.Do(t, func() {
		var err error
		c.conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(vip))
		if err != nil {
			t.Fatal(err)
		}
	})
	c.conn.SetReadBuffer(4 << 20)
	go c.read()
	go c.send()
	t.Cleanup(func() { c.finish() })
	return c
}

func (c *clientStream) send() {
	defer close(c.done)
	start := time.Now()
	sent := 0
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	// One packed query, its ID and zone number patched in place: the
	// stream shares the machine with what it measures, so it packs and
	// parses nothing per query.
	m := new(dns.Msg)
	m.SetQuestion("www."+stormZone(0), dns.TypeA)
	out, err := m.Pack()
	if err != nil {
		panic(err)
	}
	digits := bytes.Index(out, []byte("z000000")) + 1
	for id := uint16(0); ; {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds() * float64(c.qps))
		for ; sent < due; sent++ {
			endian.BigEndian.PutUint16(out, id)
			for i, z := 5, rng.IntN(c.n); i >= 0; i, z = i-1, z/10 {
				out[digits+i] = byte('0' + z%10)
			}
			now := time.Now()
			ph := int8(c.phase.Load())
			c.mu.Lock()
			sl := &c.slots[id]
			if sl.busy { // wrapped around: unanswered for 13 s
				c.lose(sl, false)
			}
			*sl = streamSlot{sent: now, phase: ph, busy: true}
			c.ph[ph].sent++
			c.mu.Unlock()
			c.conn.Write(out)
			id++
		}
	}
}

func (c *clientStream) read() {
	buf := make([]byte, 4096)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		if n < 12 || buf[2]&0x80 == 0 { // a header with QR set
			continue
		}
		_, answers, _, _ := dnswire.Counts(buf[:n])
		id, rcode := endian.BigEndian.Uint16(buf), buf[3]&0x0f
		c.mu.Lock()
		sl := &c.slots[id]
		if sl.busy {
			sl.busy = false
			lat := now.Sub(sl.sent)
			p := &c.ph[sl.phase]
			switch {
			case lat > 2*time.Second:
				c.lose(sl, true)
			case rcode != dns.RcodeSuccess || answers == 0:
				p.errors++
			default:
				p.answered++
				p.lat = append(p.lat, lat)
			}
		}
		c.mu.Unlock()
	}
}

// finish stops sending, waits 2 s for the last answers, and counts what
// is still unanswered as lost.
func (c *clientStream) finish() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	<-c.done
	time.Sleep(2 * time.Second)
	c.conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.slots {
		if sl := &c.slots[i]; sl.busy {
			sl.busy = false
			c.lose(sl, false)
		}
	}
}

// lose counts sl's query as lost (c.mu held): late, or never answered.
func (c *clientStream) lose(sl *streamSlot, late bool) {
	c.ph[sl.phase].lost++
	sec := int(sl.sent.Sub(c.start) / time.Second)
	v := c.lostAt[sec]
	if late {
		v[0]++
	} else {
		v[1]++
	}
	c.lostAt[sec] = v
}

// lossTimeline lists the seconds (from ref) in which lost queries were
// sent: "+12s 3 late/1 none, ...".
func (c *clientStream) lossTimeline(ref time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	secs := slices.Sorted(maps.Keys(c.lostAt))
	var out []string
	for _, s := range secs {
		v := c.lostAt[s]
		at := c.start.Add(time.Duration(s) * time.Second).Sub(ref).Round(time.Second)
		out = append(out, fmt.Sprintf("%+v %d late/%d none", at, v[0], v[1]))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func (c *clientStream) summary(ph int) (sent, lost, errs int, p50, p99 time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.ph[ph]
	slices.Sort(p.lat)
	return p.sent, p.lost, p.errors, pct(p.lat, 0.5), pct(p.lat, 0.99)
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// Convergence lines in the secondaries' logs: NSD 4.6 at verbosity 1,
// Knot 3.2 at info. Their timestamps have millisecond (NSD) or second
// (Knot) resolution.
var (
	nsdUpdated  = regexp.MustCompile(`^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\] nsd\[\d+\]: info: zone (\S+) received update to serial 2 `)
	knotUpdated = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(?:[+-]\d{2}:?\d{2}|Z)? info: \[(\S+)\] refresh, remote \S+(?: address \S+)?, zone updated, .*serial 1 -> 2`)
)

// convLog follows a secondary's log and records when each zone was seen
// at serial 2; read only reads what was added since the last call.
type convLog struct {
	path, kind string
	off        int64
	partial    string
	at         map[string]time.Time
}

func newConvLog(path, kind string) *convLog {
	return &convLog{path: path, kind: kind, at: map[string]time.Time{}}
}

func (c *convLog) read() map[string]time.Time {
	f, err := os.Open(c.path)
	if err != nil {
		return c.at
	}
	defer f.Close()
	if _, err := f.Seek(c.off, 0); err != nil {
		return c.at
	}
	b, _ := io.ReadAll(f)
	c.off += int64(len(b))
	text := c.partial + string(b)
	end := strings.LastIndexByte(text, '\n')
	if end < 0 {
		c.partial = text
		return c.at
	}
	c.partial = text[end+1:]
	for _, line := range strings.Split(text[:end], "\n") {
		var m []string
		var layout string
		switch c.kind {
		case "nsd":
			if !strings.Contains(line, "received update to serial 2") {
				continue
			}
			m, layout = nsdUpdated.FindStringSubmatch(line), "2006-01-02 15:04:05.999"
		case "knot":
			if !strings.Contains(line, "serial 1 -> 2") {
				continue
			}
			m, layout = knotUpdated.FindStringSubmatch(line), "2006-01-02T15:04:05.999999"
		}
		if m == nil {
			continue
		}
		at, err := time.ParseInLocation(layout, m[1], time.Local)
		if err != nil {
			continue
		}
		z := strings.ToLower(dns.Fqdn(m[2]))
		if _, seen := c.at[z]; !seen {
			c.at[z] = at
		}
	}
	return c.at
}

// stormSample is one second of dnslb's metrics.
type stormSample struct {
	at      time.Time
	metrics map[string]float64
	rss     int64 // KiB
	softnet int64 // the machine's backlog drops so far (softnetDrops)
}

// softnetDrops is the machine's packets dropped because a CPU's input
// backlog was full (/proc/net/softnet_stat, second column, all CPUs):
// veth pairs deliver through it, so a burst larger than
// net.core.netdev_max_backlog loses packets of every namespace.
func softnetDrops() int64 {
	b, _ := os.ReadFile("/proc/net/softnet_stat")
	var sum int64
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			v, _ := strconv.ParseInt(f[1], 16, 64)
			sum += v
		}
	}
	return sum
}

// readMetrics fetches /metrics inside the lb namespace.
func readMetrics(ns *testpeer.NetNS) map[string]float64 {
	out, err := exec.Command("ip", "netns", "exec", ns.Name(), "curl", "-s", "-m", "2", "http://127.0.0.1:9053/metrics").Output()
	if err != nil {
		return nil
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "dnslb_notify_") && !strings.HasPrefix(line, "dnslb_backend_") && !strings.HasPrefix(line, "dnslb_frontend_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// procStatus reads a field of /proc/PID/status in KiB.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}

// nsRSS sums the proportional set size (KiB; pages shared between a
// server's processes counted once) of every process in a namespace.
func nsRSS(ns *testpeer.NetNS) int64 {
	out, err := exec.Command("ip", "netns", "pids", ns.Name()).Output()
	if err != nil {
		return 0
	}
	var sum int64
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			sum += pss(pid)
		}
	}
	return sum
}

// nsCPU sums the CPU ticks of every process in a namespace.
func nsCPU(ns *testpeer.NetNS) int64 {
	out, err := exec.Command("ip", "netns", "pids", ns.Name()).Output()
	if err != nil {
		return 0
	}
	var sum int64
	for _, f := range strings.Fields(string(out)) {
		b, err := os.ReadFile("/proc/" + f + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			fs := strings.Fields(s[i+1:])
			if len(fs) > 14 { // utime, stime, cutime, cstime (reaped children: NSD's reloads)
				for _, f := range fs[11:15] {
					v, _ := strconv.ParseInt(f, 10, 64)
					sum += v
				}
			}
		}
	}
	return sum
}

// settle waits until the namespaces together use under 10% of a CPU
// over two seconds (start-up refreshes done), at most max.
func settle(t *testing.T, nss []*testpeer.NetNS, max time.Duration) time.Duration {
	t0 := time.Now()
	cpu := func() int64 {
		var s int64
		for _, ns := range nss {
			s += nsCPU(ns)
		}
		return s
	}
	prev := cpu()
	for time.Since(t0) < max {
		time.Sleep(2 * time.Second)
		cur := cpu()
		if cur-prev < 20 { // ticks are 10 ms: < 0.2 s of CPU in 2 s
			return time.Since(t0)
		}
		prev = cur
	}
	t.Logf("servers still busy after %v; going on", max)
	return time.Since(t0)
}

func memAvailable() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemAvailable:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v << 10
		}
	}
	return 0
}

// TestNotifyStorm: every zone of the primary changes at once and the
// primary notifies them all through dnslb (N zones, DNSLB_STORM_N,
// default 5000). Every zone must reach the new serial on every secondary,
// the client stream through the VIP must lose nothing, and dnslb's NOTIFY
// path must drop nothing. `make scale N=...` runs it with figures.
func TestNotifyStorm(t *testing.T) {
	requirePeers(t)
	needBinary(t)
	testpeer.RequireTool(t, "knotd")
	testpeer.RequireTool(t, "curl")
	n := 5000
	if v := os.Getenv(envStormN); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("%s=%q: want a number of zones >= 10", envStormN, v)
		}
	}
	qps := 5000
	if v := os.Getenv(envStormQPS); v != "" {
		qps, _ = strconv.Atoi(v)
	}
	need := int64(n) * (stormBytesPerZone + stormFileBytesPerZone)
	if avail := memAvailable(); avail < need+(1<<30) {
		t.Skipf("NOTIFY storm of %d zones needs about %d MiB of memory (%d KiB per zone for the servers and dnslb, %d KiB for files on tmpfs, plus 1 GiB spare); %d MiB available: skipped",
			n, need>>20, stormBytesPerZone>>10, stormFileBytesPerZone>>10, avail>>20)
	}
	t.Logf("NOTIFY storm of %d zones: needs about %d MiB of memory, %d MiB available", n, need>>20, memAvailable()>>20)
	runStart := time.Now()

	lan := testpeer.NewLAN(t, "st")
	pHost := lan.AddHost(t, "p", prefix("10.79.0.2/24"))
	lbHost := lan.AddHost(t, "lb", prefix("10.79.0.1/24"))
	var secHosts []*testpeer.NetNS
	for i, name := range stormNames {
		h := lan.AddHost(t, name, netip.PrefixFrom(stormSecs[i].Addr(), 24))
		// A secondary opens a TCP connection per refresh and transfer, all
		// to the primary's port 53, and each port stays taken through
		// TIME_WAIT (60 s): the default range (28,232 ports) allows ~470
		// a second, and Knot failed thousands of refreshes with "address
		// already in use". Operators of large secondaries widen the range
		// and let new connections reuse TIME_WAIT ports; so does the
		// harness.
		h.Sysctl(t, "net.ipv4.ip_local_port_range", "1024 65535")
		h.Sysctl(t, "net.ipv4.tcp_tw_reuse", "1")
		secHosts = append(secHosts, h)
	}
	cHost := lan.AddHost(t, "c", prefix("10.79.0.20/24"))
	lbHost.Run(t, "ip", "addr", "add", "10.79.0.53/24", "dev", "eth0")

	root, onTmpfs := stormRoot(t, n)
	t.Logf("files in %s (tmpfs: %v)", root, onTmpfs)
	// seed holds serial 1 (the secondaries' zone files, and the
	// primary's until the storm), next serial 2, written later so its
	// mtimes are newer; the primary reads primary/cur, a symbolic link
	// that the storm swings from seed to next.
	seed, next, primDir := filepath.Join(root, "seed"), filepath.Join(root, "next"), filepath.Join(root, "primary")
	t0 := time.Now()
	writeStormZones(t, seed, n, 1)
	writeStormZones(t, next, n, 2)
	if err := os.MkdirAll(primDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(primDir, "cur")
	if err := os.Symlink(seed, cur); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote 2 x %d zone files in %v", n, time.Since(t0).Round(100*time.Millisecond))

	// The VIP's stand-in takes the primary's start-up NOTIFYs.
	sink := startNotifySink(t, lbHost, stormVIP)
	primary := &stormServer{name: "primary", kind: "nsd", ns: pHost, addr: netip.AddrPortFrom(stormPrimary, 53), dir: primDir}
	startStormServer(t, primary, n, cur, true)
	secs := make([]*stormServer, 3)
	var wg sync.WaitGroup
	for i := range secs {
		dir := filepath.Join(root, stormNames[i])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		secs[i] = &stormServer{name: stormNames[i], kind: stormKinds[i], ns: secHosts[i], addr: stormSecs[i], dir: dir}
	}
	for _, s := range secs {
		wg.Add(1)
		go func() { defer wg.Done(); startStormServer(t, s, n, seed, false) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for deadline := time.Now().Add(time.Duration(30+n/500) * time.Second); ; {
		got, last := sink.state()
		if got >= n && time.Since(last) > time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("start-up NOTIFYs: %d of %d zones seen by the sink; going on", got, n)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	sink.stop()
	if got, last := sink.state(); got > 1 {
		d := last.Sub(sink.first)
		t.Logf("primary's start-up NOTIFYs: %d zones in %v to a sink that answers at once: %.0f/s", got, d.Round(10*time.Millisecond), float64(got)/max(d.Seconds(), 0.001))
	}
	servers := append([]*testpeer.NetNS{pHost}, secHosts...)
	t.Logf("start-up refreshes settled after %v", settle(t, servers, time.Duration(30+n/1000)*time.Second).Round(time.Second))

	notifyExtra := os.Getenv(envStormNotify)
	cfg := fmt.Sprintf("listen: [%q]\nbackends:\n", stormVIP.String())
	for i, name := range stormNames {
		cfg += fmt.Sprintf("  - name: %s\n    address: %q\n", name, stormSecs[i].String())
	}
	profile := os.Getenv(envStormProf)
	cfg += fmt.Sprintf("admin:\n  listen: 127.0.0.1:9053\n  pprof: %v\nlog:\n  level: info\n", profile != "") +
		"health_check:\n  query: {name: " + stormZone(0) + ", type: SOA}\n" +
		"notify:\n  interface: eth0\n  primaries: [10.79.0.2]\n" + notifyExtra
	l := startLB(t, lbHost, cfg, stormVIP, "127.0.0.1:9053")
	lbPID := l.cmd.Process.Pid

	// Sample dnslb once a second for the whole run.
	var samples []stormSample
	var smu sync.Mutex
	stopSampling := make(chan struct{})
	samplingDone := make(chan struct{})
	serverNS := append([]*testpeer.NetNS{pHost}, secHosts...)
	serverPeak := make([]int64, len(serverNS)) // KiB, sampled every 5 s
	go func() {
		defer close(samplingDone)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for i := 0; ; i++ {
			if i%5 == 0 {
				for j, ns := range serverNS {
					if r := nsRSS(ns); r > 0 {
						smu.Lock()
						serverPeak[j] = max(serverPeak[j], r)
						smu.Unlock()
					}
				}
			}
			m := readMetrics(lbHost)
			s := stormSample{at: time.Now(), metrics: m, rss: procStatus(lbPID, "VmRSS"), softnet: softnetDrops()}
			smu.Lock()
			samples = append(samples, s)
			smu.Unlock()
			select {
			case <-stopSampling:
				return
			case <-tk.C:
			}
		}
	}()
	defer func() {
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
		}
		<-samplingDone
	}()

	stream := startClientStream(t, cHost, stormVIP, n, qps)
	const phaseLen = 10 * time.Second
	idle0 := sysCPU()
	time.Sleep(phaseLen)
	idle1 := sysCPU()
	busyBefore := 100 * float64(idle1[0]+idle1[1]-idle0[0]-idle0[1]) / float64(max(1, idle1[2]-idle0[2]))

	// The storm: serial 2 in every zone file (the link swung at once),
	// one reload.
	if err := os.Symlink(next, cur+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cur+".new", cur); err != nil {
		t.Fatal(err)
	}
	nsAll := append([]*testpeer.NetNS{pHost, lbHost}, secHosts...)
	cpuBefore := make([]int64, len(nsAll))
	for i, ns := range nsAll {
		cpuBefore[i] = nsCPU(ns)
	}
	sysBefore := sysCPU()
	stream.phase.Store(1)
	storm := time.Now()
	primary.cmd.Process.Signal(syscall.SIGHUP)
	if profile != "" {
		go exec.Command("ip", "netns", "exec", lbHost.Name(), "curl", "-s", "-o", profile, "http://127.0.0.1:9053/debug/pprof/profile?seconds=60").Run()
	}
	// A SIGHUP during a reload is lost, so it is sent again, but each
	// time after twice as long: every SIGHUP NSD takes re-reads all N
	// zone files (at 400,000 zones a re-send every 5 s kept the primary
	// reloading for 6m43s).
	for hup := 5 * time.Second; ; {
		if s, ok := stormSOA(t, pHost, primary.addr, stormZone(n-1)); ok && s == 2 {
			break
		}
		if time.Since(storm) > hup {
			primary.cmd.Process.Signal(syscall.SIGHUP)
			hup *= 2
		}
		if time.Since(storm) > time.Duration(60+n/1000)*time.Second {
			t.Fatalf("primary did not serve serial 2 after %v:\n%s", time.Since(storm), tailFile(primary.log, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	reloaded := time.Since(storm)
	t.Logf("primary serves serial 2 after %v", reloaded.Round(100*time.Millisecond))

	// Wait until every secondary logged every zone, bounded.
	limit := time.Duration(120+n/100) * time.Second // copied at notify.copy_qps (200/s); 100k: 1120 s
	if v := os.Getenv(envStormLimit); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration such as 50m", envStormLimit, v)
		}
		limit = d
	}
	var conv []map[string]time.Time
	var logs []*convLog
	for _, s := range secs {
		logs = append(logs, newConvLog(s.log, s.kind))
	}
	for {
		conv = conv[:0]
		all := true
		var counts []string
		for i, s := range secs {
			c := logs[i].read()
			conv = append(conv, c)
			counts = append(counts, fmt.Sprintf("%s=%d", s.name, len(c)))
			if len(c) < n {
				all = false
			}
		}
		if all {
			break
		}
		if time.Since(storm) > limit {
			t.Errorf("after %v not every zone converged: %s", limit, strings.Join(counts, " "))
			break
		}
		time.Sleep(2 * time.Second)
	}
	convergedAll := time.Since(storm)
	var cpuUse []string
	for i, ns := range nsAll {
		name := []string{"primary", "dnslb", "s1", "s2", "s3"}[i]
		cpuUse = append(cpuUse, fmt.Sprintf("%s %.1fs", name, float64(nsCPU(ns)-cpuBefore[i])/100))
	}
	sysAfter := sysCPU()
	cpuUse = append(cpuUse, fmt.Sprintf("whole machine busy %.0fs of %.0fs (user %.0fs, system+irq %.0fs)",
		float64(sysAfter[0]+sysAfter[1]-sysBefore[0]-sysBefore[1])/100, float64(sysAfter[2]-sysBefore[2])/100,
		float64(sysAfter[0]-sysBefore[0])/100, float64(sysAfter[1]-sysBefore[1])/100))
	stream.phase.Store(2)
	time.Sleep(phaseLen)
	stream.finish()

	// The final sweep: every zone on every secondary at serial 2.
	var notConverged []string
	for i, s := range secs {
		bad := stormSweep(t, s.ns, s.addr, n)
		for _, z := range bad {
			if len(notConverged) < 10 {
				notConverged = append(notConverged, s.name+":"+z)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s (%s): %d of %d zones not at serial 2, e.g. %v", s.name, s.kind, len(bad), n, bad[:min(5, len(bad))])
		}
		_ = i
	}
	close(stopSampling)
	<-samplingDone
	time.Sleep(time.Second)
	rssAfter := procStatus(lbPID, "VmRSS")
	rssPeak := procStatus(lbPID, "VmHWM")
	status := l.status()

	// The report.
	var rep bytes.Buffer
	fmt.Fprintf(&rep, "NOTIFY storm: %d zones, 3 secondaries (NSD, Knot, NSD), client stream %d qps; notify extra %q\n", n, qps, strings.TrimSpace(notifyExtra))
	fmt.Fprintf(&rep, "  machine (%d CPUs) busy %.0f%% in the before phase (other work on the host included)\n", runtime.NumCPU(), busyBefore)
	fmt.Fprintf(&rep, "  start-up: primary %v, s1 %v, s2 %v, s3 %v; primary reloaded %v after SIGHUP\n", primary.started.Round(100*time.Millisecond),
		secs[0].started.Round(100*time.Millisecond), secs[1].started.Round(100*time.Millisecond), secs[2].started.Round(100*time.Millisecond), reloaded.Round(100*time.Millisecond))
	var all []time.Duration
	for i, s := range secs {
		var ds []time.Duration
		for _, at := range conv[i] {
			ds = append(ds, max(0, at.Sub(storm)))
		}
		slices.Sort(ds)
		all = append(all, ds...)
		fmt.Fprintf(&rep, "  %s (%s): %d/%d converged; 50%% %v, 99%% %v, 100%% %v\n", s.name, s.kind, len(ds), n, pct(ds, 0.5).Round(100*time.Millisecond),
			pct(ds, 0.99).Round(100*time.Millisecond), pctMax(ds, n).Round(100*time.Millisecond))
	}
	slices.Sort(all)
	fmt.Fprintf(&rep, "  all %d zone x backend pairs: 50%% %v, 99%% %v, 100%% %v (from the primary's reload signal)\n", 3*n,
		pct(all, 0.5).Round(100*time.Millisecond), pct(all, 0.99).Round(100*time.Millisecond), pctMax(all, 3*n).Round(100*time.Millisecond))
	stormReport(&rep, samples, storm, storm.Add(convergedAll))
	fmt.Fprintf(&rep, "  CPU used from the storm to the last convergence (%v): %s\n", convergedAll.Round(time.Second), strings.Join(cpuUse, ", "))
	var drops []string
	for i, ns := range nsAll {
		drops = append(drops, fmt.Sprintf("%s %s", []string{"primary", "dnslb", "s1", "s2", "s3"}[i], udpErrors(ns)))
	}
	drops = append(drops, "client "+udpErrors(cHost))
	fmt.Fprintf(&rep, "  UDP receive errors (RcvbufErrors/InErrors) and conntrack entries: %s\n", strings.Join(drops, ", "))
	fmt.Fprintf(&rep, "  dnslb's sockets with drops (local address: drops): %s\n", sockDrops(lbHost))
	fmt.Fprintf(&rep, "  dnslb RSS: peak %d MiB, after %d MiB (VmHWM, VmRSS)\n", rssPeak>>10, rssAfter>>10)
	smu.Lock()
	var total int64 = rssPeak
	var peaks []string
	for j, name := range []string{"primary", "s1", "s2", "s3"} {
		peaks = append(peaks, fmt.Sprintf("%s %d MiB", name, serverPeak[j]>>10))
		total += serverPeak[j]
	}
	smu.Unlock()
	fmt.Fprintf(&rep, "  servers' memory peak (PSS of all processes of each, sampled every 5 s): %s; with dnslb %d MiB = %d KiB per zone\n",
		strings.Join(peaks, ", "), total>>10, total/int64(n))
	for ph := range 3 {
		sent, lost, errs, p50, p99 := stream.summary(ph)
		fmt.Fprintf(&rep, "  client stream %-6s: sent %d, lost %d, errors %d, p50 %v, p99 %v\n", phaseNames[ph], sent, lost, errs,
			p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		if lost > 0 {
			t.Errorf("client stream lost %d queries %s the storm", lost, phaseNames[ph])
		}
	}
	fmt.Fprintf(&rep, "  client queries lost, by the second they were sent in from the storm: %s\n", stream.lossTimeline(storm))
	if nt := status.Notify; nt != nil {
		b, _ := json.Marshal(nt)
		fmt.Fprintf(&rep, "  dnslb status notify: %s\n", b)
	}
	for _, srv := range append([]*stormServer{primary}, secs...) {
		fmt.Fprintf(&rep, "  %s log: %s\n", srv.name, logProblems(srv.log))
	}
	fmt.Fprintf(&rep, "  run took %v\n", time.Since(runStart).Round(time.Second))
	t.Log("\n" + rep.String())
	if p := os.Getenv(envStormReport); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			f.Write(rep.Bytes())
			f.Close()
		}
	}
	// NOTIFY path: nothing dropped.
	if len(samples) > 0 {
		last := samples[len(samples)-1].metrics
		for _, r := range []string{"rate_limited", "overload", "malformed", "stopping"} {
			if v := last[fmt.Sprintf(`dnslb_notify_received_total{result=%q}`, r)]; v > 0 {
				t.Errorf("dnslb dropped %v NOTIFYs as %s", v, r)
			}
		}
	}
}

// pctMax is the time of the last pair, or -1 when not all n converged.
func pctMax(d []time.Duration, n int) time.Duration {
	if len(d) < n {
		return -1
	}
	return d[len(d)-1]
}

// stormSweep asks server the SOA of every zone (pipelined, 2,000 in
// flight) and returns the zones not at serial 2.
func stormSweep(t *testing.T, ns *testpeer.NetNS, server netip.AddrPort, n int) []string {
	var conn *net.UDPConn
	ns.Do(t, func() {
		var err error
		conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
		if err != nil {
			t.Fatal(err)
		}
	})
	defer conn.Close()
	conn.SetReadBuffer(4 << 20)
	ok := make([]bool, n)
	last := map[int]string{} // what a zone not at serial 2 answered last
	for pass := 0; pass < 5; pass++ {
		if pass > 0 {
			time.Sleep(time.Second) // a dropped burst is not dropped again
		}
		var todo []int
		for i := range n {
			if !ok[i] {
				todo = append(todo, i)
			}
		}
		if len(todo) == 0 {
			break
		}
		var mu sync.Mutex
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			buf := make([]byte, 4096)
			for {
				conn.SetReadDeadline(time.Now().Add(time.Second))
				k, err := conn.Read(buf)
				if err != nil {
					return
				}
				m := new(dns.Msg)
				if m.Unpack(buf[:k]) != nil || len(m.Question) != 1 {
					continue
				}
				mu.Lock()
				// By name, not ID: IDs repeat every 65,536 queries.
				if i, has := stormIndex(m.Question[0].Name, n); has {
					if soa, is := firstSOA(m); is && soa.Serial == 2 {
						ok[i] = true
					} else if is {
						last[i] = fmt.Sprintf("serial %d", soa.Serial)
					} else {
						last[i] = dns.RcodeToString[m.Rcode] + " without SOA"
					}
				}
				mu.Unlock()
			}
		}()
		for j, i := range todo {
			// Bursts of 100 at most (10k qps): Knot's two UDP workers
			// dropped the tail of bursts of 2,000, the same blocks of
			// consecutive zones on every pass (461 "no answer" at
			// 400,000 zones, though it served them all).
			if j%100 == 99 {
				time.Sleep(10 * time.Millisecond)
			}
			m := new(dns.Msg)
			m.SetQuestion(stormZone(i), dns.TypeSOA)
			m.Id = uint16(j)
			out, _ := m.Pack()
			conn.Write(out)
		}
		<-readDone
	}
	var bad []string
	for i := range n {
		if !ok[i] {
			what := last[i]
			if what == "" {
				what = "no answer"
			}
			bad = append(bad, stormZone(i)+" ("+what+")")
		}
	}
	return bad
}

// firstSOA is m's first answer record if it is a SOA.
func firstSOA(m *dns.Msg) (*dns.SOA, bool) {
	if len(m.Answer) == 0 {
		return nil, false
	}
	soa, ok := m.Answer[0].(*dns.SOA)
	return soa, ok
}

// histQuantile is the upper bound of the bucket of histogram name (from
// a readMetrics map) that holds quantile q, or "-" with no samples.
func histQuantile(m map[string]float64, name string, q float64) string {
	total := m[name+"_count"]
	if total == 0 {
		return "-"
	}
	type bucket struct {
		le    float64
		count float64
	}
	var bs []bucket
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, name+`_bucket{le="`); ok {
			le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64)
			if err == nil {
				bs = append(bs, bucket{le, v})
			}
		}
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	for _, b := range bs {
		if b.count >= q*total {
			if math.IsInf(b.le, 1) {
				return "inf"
			}
			return time.Duration(b.le * float64(time.Second)).String()
		}
	}
	return "inf"
}

// stormReport adds dnslb's figures from the per-second samples: the
// NOTIFY rate accepted, copies and drops, tracking SOA queries per
// backend per second, and the peak pending count.
func stormReport(rep *bytes.Buffer, samples []stormSample, from, to time.Time) {
	if len(samples) < 2 {
		return
	}
	last := samples[len(samples)-1].metrics
	rate := func(series string) (peak float64) {
		for i := 1; i < len(samples); i++ {
			a, b := samples[i-1], samples[i]
			if a.metrics == nil || b.metrics == nil {
				continue
			}
			if d := b.at.Sub(a.at).Seconds(); d > 0 {
				peak = max(peak, (b.metrics[series]-a.metrics[series])/d)
			}
		}
		return peak
	}
	copied := `dnslb_notify_received_total{result="copied"}`
	accepted := last[copied] + last[`dnslb_notify_received_total{result="duplicate"}`]
	fmt.Fprintf(rep, "  NOTIFYs accepted: %.0f (copied %.0f), peak %.0f/s, mean %.0f/s over the storm\n", accepted, last[copied], rate(copied),
		last[copied]/max(1, to.Sub(from).Seconds()))
	var drops []string
	for _, r := range results() {
		if r == "copied" || r == "duplicate" {
			continue
		}
		if v := last[fmt.Sprintf(`dnslb_notify_received_total{result=%q}`, r)]; v > 0 {
			drops = append(drops, fmt.Sprintf("%s=%.0f", r, v))
		}
	}
	fmt.Fprintf(rep, "  NOTIFYs not copied: %s; untracked copies %.0f\n", orNone(drops), last["dnslb_notify_untracked_total"])
	fmt.Fprintf(rep, "  NOTIFY answer latency (receipt to ack, dnslb_notify_ack_seconds): p50 <=%s, p99 <=%s, max <=%s\n",
		histQuantile(last, "dnslb_notify_ack_seconds", 0.5), histQuantile(last, "dnslb_notify_ack_seconds", 0.99), histQuantile(last, "dnslb_notify_ack_seconds", 1))
	for _, be := range stormNames {
		lbl := fmt.Sprintf(`{backend=%q}`, be)
		var peakPending, peakHeld, peakWindow float64
		for _, s := range samples {
			peakPending = max(peakPending, s.metrics["dnslb_notify_pending_zones"+lbl])
			peakHeld = max(peakHeld, s.metrics["dnslb_notify_copies_held"+lbl])
			peakWindow = max(peakWindow, s.metrics["dnslb_notify_copy_window"+lbl])
		}
		fmt.Fprintf(rep, "  %s: copies %.0f, copy errors %.0f, re-sends %.0f, given up %.0f; tracking SOA queries %.0f, peak %.0f/s; peak pending %.0f, held %.0f, window %.0f; client queries %.0f, timeouts %.0f\n", be,
			last["dnslb_notify_copies_total"+lbl], last["dnslb_notify_copy_errors_total"+lbl], last["dnslb_notify_resends_total"+lbl],
			last["dnslb_notify_given_up_total"+lbl], last["dnslb_notify_soa_queries_total"+lbl], rate("dnslb_notify_soa_queries_total"+lbl), peakPending, peakHeld, peakWindow,
			sumMetric(last, "dnslb_backend_queries_total{", lbl), sumMetric(last, "dnslb_backend_timeouts_total{", lbl))
	}
	lossCauses(rep, samples, from)
}

// lossCauses reports, by second from the storm, where queries can have
// been lost: the machine's input backlog drops (softnetDrops) and
// dnslb's backend timeouts (the busiest 8 seconds).
func lossCauses(rep *bytes.Buffer, samples []stormSample, from time.Time) {
	type sec struct {
		at    time.Duration
		n     float64
		label string
	}
	var before, during int64
	var drops, touts []sec
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		at := b.at.Sub(from).Round(time.Second)
		d := b.softnet - a.softnet
		if b.at.Before(from) {
			before += d
		} else {
			during += d
		}
		if d > 0 {
			drops = append(drops, sec{at, float64(d), fmt.Sprint(d)})
		}
		if b.at.Before(from) {
			continue // timeouts are reported from the storm on
		}
		var n float64
		var parts []string
		for _, be := range stormNames {
			lbl := fmt.Sprintf(`{backend=%q}`, be)
			if dt := sumMetric(b.metrics, "dnslb_backend_timeouts_total{", lbl) - sumMetric(a.metrics, "dnslb_backend_timeouts_total{", lbl); dt > 0 {
				n += dt
				parts = append(parts, fmt.Sprintf("%s=%.0f", be, dt))
			}
		}
		if n > 0 {
			touts = append(touts, sec{at, n, strings.Join(parts, " ")})
		}
	}
	top := func(s []sec) string {
		slices.SortStableFunc(s, func(x, y sec) int { return cmp.Compare(y.n, x.n) })
		s = s[:min(8, len(s))]
		slices.SortFunc(s, func(x, y sec) int { return cmp.Compare(x.at, y.at) })
		var out []string
		for _, v := range s {
			out = append(out, fmt.Sprintf("%+v %s", v.at, v.label))
		}
		return orNone(out)
	}
	fmt.Fprintf(rep, "  input backlog drops (softnet_stat, whole machine): %d before the storm, %d from it; busiest seconds: %s\n", before, during, top(drops))
	fmt.Fprintf(rep, "  dnslb backend timeouts, busiest seconds from the storm: %s\n", top(touts))
}

func results() []string {
	return []string{"copied", "duplicate", "stranger", "rate_limited", "malformed", "not_master", "overload", "stopping"}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}

// sumMetric adds the series of a metric whose labels include label
// (`{backend="s1"}`, braces dropped).
func sumMetric(m map[string]float64, prefix, label string) float64 {
	label = strings.Trim(label, "{}")
	var sum float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) && strings.Contains(k, label) {
			sum += v
		}
	}
	return sum
}

// udpErrors reads a namespace's UDP RcvbufErrors and InErrors
// (/proc/net/snmp) and its conntrack entry count.
func udpErrors(ns *testpeer.NetNS) string {
	out, _ := exec.Command("ip", "netns", "exec", ns.Name(), "sh", "-c", "cat /proc/net/snmp; echo; cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo -").Output()
	lines := strings.Split(string(out), "\n")
	res := "?"
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "Udp: InDatagrams") {
			h, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			get := func(name string) string {
				for j := range h {
					if h[j] == name && j < len(v) {
						return v[j]
					}
				}
				return "?"
			}
			res = get("RcvbufErrors") + "/" + get("InErrors")
		}
	}
	return res + " ct " + strings.TrimSpace(lines[len(lines)-2])
}

// logProblems counts a server log's error and warning lines and quotes
// the first few kinds (zone names and numbers blurred).
func logProblems(path string) string {
	b, _ := os.ReadFile(path)
	blur := regexp.MustCompile(`z\d{6}\.storm\.?|\d+`)
	kinds := map[string]int{}
	var order []string
	total := 0
	for _, line := range strings.Split(string(b), "\n") {
		l := strings.ToLower(line)
		if !strings.Contains(l, "error") && !strings.Contains(l, "warning") && !strings.Contains(l, "failed") {
			continue
		}
		total++
		k := blur.ReplaceAllString(line, "N")
		if i := strings.Index(k, "]: "); i >= 0 { // NSD's prefix
			k = k[i+3:]
		}
		if kinds[k]++; kinds[k] == 1 {
			order = append(order, k)
		}
	}
	if total == 0 {
		return "no errors or warnings"
	}
	var parts []string
	for _, k := range order[:min(4, len(order))] {
		parts = append(parts, fmt.Sprintf("%dx %q", kinds[k], k))
	}
	return fmt.Sprintf("%d error/warning lines: %s", total, strings.Join(parts, "; "))
}

// sysCPU returns the machine's user, system (with irq and softirq) and
// total CPU ticks from /proc/stat.
func sysCPU() [3]int64 {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var v [10]int64
	for i := 1; i < len(f) && i <= 10; i++ {
		v[i-1], _ = strconv.ParseInt(f[i], 10, 64)
	}
	var total int64
	for _, x := range v[:8] {
		total += x
	}
	return [3]int64{v[0] + v[1], v[2] + v[5] + v[6], total}
}

// sockDrops lists a namespace's UDP sockets that dropped datagrams
// (/proc/net/udp, last column), by local address.
func sockDrops(ns *testpeer.NetNS) string {
	out, _ := exec.Command("ip", "netns", "exec", ns.Name(), "cat", "/proc/net/udp").Output()
	var res []string
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 || f[len(f)-1] == "0" {
			continue
		}
		addr := f[1]
		if h, p, ok := strings.Cut(addr, ":"); ok && len(h) == 8 {
			var b [4]byte
			for i := range 4 {
				v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
				b[3-i] = byte(v)
			}
			port, _ := strconv.ParseUint(p, 16, 16)
			addr = netip.AddrPortFrom(netip.AddrFrom4(b), uint16(port)).String()
		}
		res = append(res, addr+": "+f[len(f)-1])
	}
	return orNone(res)
}

// pss reads a process's Pss (KiB) from /proc/PID/smaps_rollup.
func pss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Pss:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}
