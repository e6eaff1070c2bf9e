package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// The reflection attack (issue 16): an attacker floods the VIP with
// queries whose source is spoofed to a victim's /24, asking for the
// largest answers there are (ANY, a 1 KB TXT), while normal clients query
// from other prefixes. With rrl off dnslb reflects and amplifies the
// flood at the victim; with rrl on the victim's prefix gets its rate of
// answers, slips (TC=1) and nothing else, and the normal clients lose
// nothing.
const (
	reflectRate     = 20000 // spoofed queries per second
	reflectDuration = 5 * time.Second
	legitPrefixes   = 20  // normal clients, one /24 each
	legitRate       = 100 // queries per second per normal client (2k qps in all)
)

var (
	reflectVictim = netip.MustParsePrefix("10.79.1.0/24")
	reflectVIP    = netip.MustParseAddr("10.79.0.1")
)

// reflectZone is example.test. with answers worth reflecting: a 1 KB TXT
// and a name with many types (ANY).
func reflectZone() string {
	long := strings.Repeat("x", 250)
	z := testpeer.ZoneText(testpeer.ZoneSpec{Name: "example.test."}, "nsd")
	z += fmt.Sprintf("big\tIN\tTXT\t%q %q %q %q\n", long, long, long, long)
	z += "any\tIN\tA\t192.0.2.1\nany\tIN\tAAAA\t2001:db8::1\nany\tIN\tMX\t10 mail.example.test.\n"
	z += fmt.Sprintf("any\tIN\tTXT\t%q %q\n", long, long)
	return z
}

// reflectSite is the attack's LAN: dnslb (10.79.0.1, the VIP, with NSD on
// its loopback), the attacker (10.79.0.20), the normal clients' host
// (10.79.0.10, plus 10.80.N.10 for N = 1..legitPrefixes) and the victim
// (10.79.0.30), to which dnslb routes the victim's /24.
type reflectSite struct {
	lb, attacker, clients, victim *testpeer.NetNS
}

func newReflectSite(t *testing.T) *reflectSite {
	t.Helper()
	requirePeers(t)
	lan := testpeer.NewLAN(t, "rr")
	s := &reflectSite{
		lb:       lan.AddHost(t, "lb", netip.MustParsePrefix("10.79.0.1/24")),
		attacker: lan.AddHost(t, "at", netip.MustParsePrefix("10.79.0.20/24")),
		clients:  lan.AddHost(t, "cl", netip.MustParsePrefix("10.79.0.10/24")),
		victim:   lan.AddHost(t, "vi", netip.MustParsePrefix("10.79.0.30/24")),
	}
	for i := 1; i <= legitPrefixes; i++ {
		s.clients.Run(t, "ip", "addr", "add", fmt.Sprintf("10.80.%d.10/32", i), "dev", "eth0")
	}
	s.lb.Run(t, "ip", "route", "add", reflectVictim.String(), "via", "10.79.0.30")
	s.lb.Run(t, "ip", "route", "add", "10.80.0.0/16", "via", "10.79.0.10")
	for _, ns := range []*testpeer.NetNS{s.lb, s.victim} {
		ns.Sysctl(t, "net.ipv4.conf.all.rp_filter", "0")
		ns.Sysctl(t, "net.ipv4.conf.eth0.rp_filter", "0")
	}
	testpeer.StartNSD(t, testpeer.NSDOptions{Name: "nsd", Addr: netip.MustParseAddrPort("127.0.0.11:5301"), NetNS: s.lb.Name(), Zone: reflectZone()})
	return s
}

// reflectRun is what one run measured.
type reflectRun struct {
	sentPackets, sentBytes     int64 // spoofed queries (IP bytes)
	victimPackets, victimBytes int64 // received by the victim's host (IP bytes)
	legitSent, legitLost       int64
	slipped, dropped           float64 // dnslb's rrl counters
}

// amplification is the bytes reflected at the victim per byte of query.
func (r reflectRun) amplification() float64 {
	return float64(r.victimBytes) / float64(r.sentBytes)
}

// TestReflectionAttack measures bytes at the victim's prefix with rrl off
// and on, the normal clients' loss (0 expected), and the share of the
// victim's answers that are slips.
func TestReflectionAttack(t *testing.T) {
	testpeer.RequireTool(t, "nsd")
	// rates matter here: measure the binary operators run, not the race
	// detector's
	plain := plainBinary(t)
	raceBinary := binary
	binary = plain
	defer func() { binary = raceBinary }()

	s := newReflectSite(t)
	listen := netip.AddrPortFrom(reflectVIP, 53)
	base := lbConfig([]netip.AddrPort{listen}, "127.0.0.1:9053", [][2]string{{"nsd", "127.0.0.11:5301"}}, "")
	off := s.run(t, base)
	on := s.run(t, base+"rrl:\n  enabled: true\n")
	for _, r := range []struct {
		name string
		r    reflectRun
	}{{"off", off}, {"on", on}} {
		t.Logf("rrl %-3s: %d spoofed queries (%d B) → victim got %d packets, %d B: amplification %.2f; normal clients lost %d of %d; rrl dropped %.0f, slipped %.0f",
			r.name, r.r.sentPackets, r.r.sentBytes, r.r.victimPackets, r.r.victimBytes, r.r.amplification(), r.r.legitLost, r.r.legitSent, r.r.dropped, r.r.slipped)
	}
	if on.victimPackets > 0 {
		t.Logf("rrl on: %.1f%% of the victim's answers were TC=1 slips; bytes at the victim %.3f× of rrl off",
			100*on.slipped/float64(on.victimPackets), float64(on.victimBytes)/float64(off.victimBytes))
	}
	if off.amplification() < 5 {
		t.Errorf("rrl off: amplification %.2f, expected the flood to be reflected (>5)", off.amplification())
	}
	if on.amplification() > 1.5 {
		t.Errorf("rrl on: amplification %.2f, want at most 1.5", on.amplification())
	}
	if on.legitLost != 0 || off.legitLost != 0 {
		t.Errorf("normal clients lost %d (rrl off) and %d (rrl on) queries, want 0", off.legitLost, on.legitLost)
	}
}

// run starts dnslb with cfg, floods it while the normal clients query,
// stops it and returns the counts.
func (s *reflectSite) run(t *testing.T, cfg string) reflectRun {
	t.Helper()
	l := startLB(t, s.lb, cfg, netip.AddrPortFrom(reflectVIP, 53), "127.0.0.1:9053")
	defer func() { l.signal(unix.SIGTERM); l.waitExit(15 * time.Second) }()
	var r reflectRun
	rxPackets0, rxBytes0 := linkRX(t, s.victim)
	var wg sync.WaitGroup
	var sent, lost atomic.Int64
	stop := make(chan struct{})
	for i := 1; i <= legitPrefixes; i++ {
		src := netip.MustParseAddr(fmt.Sprintf("10.80.%d.10", i))
		var conn *net.UDPConn
		s.clients.Do(t, func() {
			var err error
			conn, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(netip.AddrPortFrom(reflectVIP, 53)))
			if err != nil {
				t.Error(err)
			}
		})
		if conn == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			legitClient(conn, stop, &sent, &lost)
		}()
	}
	time.Sleep(200 * time.Millisecond) // the normal clients are running before the flood
	r.sentPackets, r.sentBytes = s.flood(t)
	time.Sleep(300 * time.Millisecond) // the last answers arrive
	close(stop)
	wg.Wait()
	rxPackets1, rxBytes1 := linkRX(t, s.victim)
	r.victimPackets = rxPackets1 - rxPackets0
	r.victimBytes = rxBytes1 - rxBytes0 - 14*r.victimPackets // without Ethernet headers
	r.legitSent, r.legitLost = sent.Load(), lost.Load()
	m := l.metricsIn(t)
	for _, class := range []string{"positive", "nxdomain", "error", "any"} {
		r.slipped += m[fmt.Sprintf(`dnslb_rrl_limited_total{action="slipped",class=%q}`, class)]
		r.dropped += m[fmt.Sprintf(`dnslb_rrl_limited_total{action="dropped",class=%q}`, class)]
	}
	return r
}

// legitClient queries its own name at legitRate until stop, each query
// waiting up to 1s for its answer and retried once (as a resolver
// would); it counts the queries sent and those unanswered after the
// retry.
func legitClient(conn *net.UDPConn, stop chan struct{}, sent, lost *atomic.Int64) {
	tick := time.NewTicker(time.Second / legitRate)
	defer tick.Stop()
	buf := make([]byte, 4096)
	for id := uint16(1); id < 2000; id++ { // bounded: 20s at legitRate
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		q := new(dns.Msg)
		q.SetQuestion("whoami.example.test.", dns.TypeTXT)
		q.Id = id
		b, _ := q.Pack()
		sent.Add(1)
		answered := false
		for try := 0; try < 2 && !answered; try++ {
			if _, err := conn.Write(b); err != nil {
				continue
			}
			deadline := time.Now().Add(time.Second)
			for !answered {
				conn.SetReadDeadline(deadline)
				k, err := conn.Read(buf)
				if err != nil {
					break
				}
				answered = k >= 2 && uint16(buf[0])<<8|uint16(buf[1]) == id
			}
		}
		if !answered {
			lost.Add(1)
		}
	}
}

// flood sends reflectRate spoofed queries a second for reflectDuration
// from the attacker's host: sources in the victim's /24, each query
// alternating between ANY for any.example.test. and TXT for
// big.example.test., with EDNS (4096) to get the whole answer over UDP.
// It returns the packets and IP bytes sent.
func (s *reflectSite) flood(t *testing.T) (packets, bytes int64) {
	t.Helper()
	var fd int
	s.attacker.Do(t, func() {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW); err != nil {
			t.Fatalf("raw socket: %v", err)
		}
	})
	defer unix.Close(fd)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	// a few hundred distinct packets, sent in turn
	pkts := make([][]byte, 512)
	for i := range pkts {
		q := new(dns.Msg)
		if i%2 == 0 {
			q.SetQuestion("any.example.test.", dns.TypeANY)
		} else {
			q.SetQuestion("big.example.test.", dns.TypeTXT)
		}
		q.Id = uint16(rand.IntN(65536))
		q.SetEdns0(4096, false)
		payload, _ := q.Pack()
		v := reflectVictim.Addr().As4()
		v[3] = byte(1 + i%254)
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP(v[:]), DstIP: reflectVIP.AsSlice()}
		udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + rand.IntN(60000)), DstPort: 53}
		_ = udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, udp, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		pkts[i] = buf.Bytes()
	}
	to := &unix.SockaddrInet4{Addr: reflectVIP.As4()}
	const perTick = reflectRate / 1000 // every millisecond
	start := time.Now()
	total := int64(reflectRate * reflectDuration / time.Second)
	for packets < total && time.Since(start) < 2*reflectDuration {
		// catch up to the schedule, a millisecond's worth at a time
		due := min(total, int64(time.Since(start)*reflectRate/time.Second)+perTick)
		for ; packets < due; packets++ {
			p := pkts[packets%int64(len(pkts))]
			if err := unix.Sendto(fd, p, 0, to); err == nil {
				bytes += int64(len(p))
			}
		}
		time.Sleep(time.Millisecond)
	}
	if took := time.Since(start); took > reflectDuration*3/2 {
		t.Logf("the flood ran slow: %d queries in %v (%.0f/s)", packets, took, float64(packets)/took.Seconds())
	}
	return packets, bytes
}

// linkRX returns the packets and bytes eth0 of ns received so far.
func linkRX(t *testing.T, ns *testpeer.NetNS) (packets, bytes int64) {
	t.Helper()
	var out []struct {
		Stats64 struct {
			RX struct {
				Bytes   int64 `json:"bytes"`
				Packets int64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(ns.Run(t, "ip", "-s", "-j", "link", "show", "eth0")), &out); err != nil || len(out) != 1 {
		t.Fatalf("ip -s -j link: %v", err)
	}
	return out[0].Stats64.RX.Packets, out[0].Stats64.RX.Bytes
}

// metricsIn scrapes the admin listener's /metrics from inside dnslb's
// namespace and returns each sample by its name and labels.
func (l *lb) metricsIn(t *testing.T) map[string]float64 {
	t.Helper()
	var conn net.Conn
	dial := func() {
		var err error
		if conn, err = net.DialTimeout("tcp", l.admin, 3*time.Second); err != nil {
			t.Fatalf("admin %s: %v", l.admin, err)
		}
	}
	if l.ns != nil {
		l.ns.Do(t, dial)
	} else {
		dial()
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", l.admin)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

var (
	plainOnce sync.Once
	plainPath string
	plainErr  error
)

// plainBinary builds dnslb without the race detector, once, for tests
// that measure rates.
func plainBinary(t *testing.T) string {
	t.Helper()
	plainOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dnslb-plain-")
		if err != nil {
			plainErr = err
			return
		}
		plainPath = filepath.Join(dir, "dnslb")
		out, err := exec.Command("go", "build", "-o", plainPath, "github.com/dnslb/dnslb/cmd/dnslb").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainPath
}
