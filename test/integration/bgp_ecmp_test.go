package integration

import (
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/testpeer"
)

// clientLoad sends whoami queries to the VIP from each source address
// (one UDP socket each, made inside ns), one every `every` per source,
// and counts who answered and what was lost (no answer within 250ms).
type clientLoad struct {
	mu      sync.Mutex
	byNode  map[string]int
	lost    int
	last    map[string]time.Time // last answer per node
	lostAt  []time.Time
	stop    chan struct{}
	stopped sync.WaitGroup
}

func startClients(t *testing.T, ns *testpeer.NetNS, sources []netip.Addr, every time.Duration) *clientLoad {
	t.Helper()
	c := &clientLoad{byNode: map[string]int{}, last: map[string]time.Time{}, stop: make(chan struct{})}
	var conns []*net.UDPConn
	ns.Do(t, func() {
		for _, s := range sources {
			conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(s, 0)))
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn)
		}
	})
	for i, conn := range conns {
		c.stopped.Add(1)
		go func() {
			defer c.stopped.Done()
			defer conn.Close()
			buf := make([]byte, 1500)
			id := uint16(i) << 8
			for {
				select {
				case <-c.stop:
					return
				default:
				}
				id++
				m := new(dns.Msg)
				m.SetQuestion(testpeer.WhoamiName, dns.TypeTXT)
				m.Id = id
				q, _ := m.Pack()
				conn.WriteToUDPAddrPort(q, anycastVIP)
				conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
				who := ""
				for who == "" {
					n, _, err := conn.ReadFromUDPAddrPort(buf)
					if err != nil {
						break
					}
					r := new(dns.Msg)
					if r.Unpack(buf[:n]) != nil || r.Id != id {
						continue
					}
					who = "?"
					for _, rr := range r.Answer {
						if txt, ok := rr.(*dns.TXT); ok {
							who = strings.Join(txt.Txt, "")
						}
					}
				}
				c.mu.Lock()
				if who == "" {
					c.lost++
					c.lostAt = append(c.lostAt, time.Now())
				} else {
					c.byNode[who]++
					c.last[who] = time.Now()
				}
				c.mu.Unlock()
				time.Sleep(every)
			}
		}()
	}
	return c
}

// snapshot returns the counts so far and resets them.
func (c *clientLoad) snapshot() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	by, lost := c.byNode, c.lost
	c.byNode, c.lost, c.lostAt = map[string]int{}, 0, nil
	return by, lost
}

func (c *clientLoad) end() {
	close(c.stop)
	c.stopped.Wait()
}

// runDNSPerf runs one dnsperf per source address in ns for dur against
// the VIP and returns the summed queries per second.
func runDNSPerf(t *testing.T, ns *testpeer.NetNS, sources []netip.Addr, dur time.Duration) float64 {
	t.Helper()
	testpeer.RequireTool(t, "dnsperf")
	data := t.TempDir() + "/queries"
	writeFile(t, data, strings.Repeat("example.test. SOA\nwww.example.test. A\n", 50))
	re := regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0.0
	for _, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command("ip", "netns", "exec", ns.Name(), "dnsperf", "-s", anycastVIP.Addr().String(), "-a", s.String(),
				"-d", data, "-l", strconv.Itoa(int(dur.Seconds())), "-q", "50", "-t", "1").CombinedOutput()
			if err != nil {
				t.Errorf("dnsperf: %v\n%s", err, out)
				return
			}
			if m := re.FindSubmatch(out); m != nil {
				v, _ := strconv.ParseFloat(string(m[1]), 64)
				mu.Lock()
				total += v
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return total
}

// TestBGPFRRECMP: three active nodes, each with its own NSD, announce the
// VIP to FRR (maximum-paths 8), whose kernel route gets three next hops;
// clients on 50 source addresses spread over the nodes. Measured: the
// shares, aggregate qps with three nodes and with one, what a node whose
// backend dies still gets (time until none, queries lost), and SIGTERM
// with withdraw_delay 2s (no query lost).
// ecmpHosts adds an ECMP test's router and client to lan: the router at
// 10.99.0.1/24 forwards, and the client has n source addresses from
// 10.99.0.100 on and a route to the VIP via the router. ICMP redirects
// are off on both, since a redirect would send the client straight to
// one node.
func ecmpHosts(t *testing.T, lan *testpeer.LAN, n int) (rh, client *testpeer.NetNS, routerAddr netip.Addr, sources []netip.Addr) {
	t.Helper()
	routerAddr = netip.MustParseAddr("10.99.0.1")
	rh = lan.AddHost(t, "router", netip.PrefixFrom(routerAddr, 24))
	var clientAddrs []netip.Prefix
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, 99, 0, byte(100 + i)})
		sources = append(sources, a)
		clientAddrs = append(clientAddrs, netip.PrefixFrom(a, 24))
	}
	client = lan.AddHost(t, "client", clientAddrs...)
	client.Run(t, "ip", "route", "add", bgpPrefix(), "via", routerAddr.String())
	rh.Sysctl(t, "net/ipv4/ip_forward", "1")
	rh.Sysctl(t, "net/ipv4/conf/all/send_redirects", "0")
	rh.Sysctl(t, "net/ipv4/conf/eth0/send_redirects", "0")
	client.Sysctl(t, "net/ipv4/conf/all/accept_redirects", "0")
	client.Sysctl(t, "net/ipv4/conf/eth0/accept_redirects", "0")
	return rh, client, routerAddr, sources
}

// checkShares fails t unless every node answered some of load's queries
// and none was lost; it logs the shares.
func checkShares(t *testing.T, load *clientLoad, nodes []*bgpNode, what string) {
	t.Helper()
	by, lost := load.snapshot()
	t.Logf("MEASURED: shares over %d nodes %s: %v, lost %d", len(nodes), what, by, lost)
	for _, n := range nodes {
		if by[n.name] == 0 {
			t.Errorf("node %s got no query through the ECMP route: %v", n.name, by)
		}
	}
	if lost > 0 {
		t.Errorf("%d queries lost in steady state", lost)
	}
}

func TestBGPFRRECMP(t *testing.T) {
	requirePeers(t)
	lan := testpeer.NewLAN(t, "bgpe")
	rh, client, routerAddr, sources := ecmpHosts(t, lan, 50)

	nodes := startBGPNodes(t, lan, 3, func(i int, addr netip.Addr) string {
		return bgpNodeConfig(addr, routerAddr, 65000, "  mode: active\n  withdraw_delay: 2s\n")
	})
	var peers []testpeer.BGPPeer
	var addrs []netip.Addr
	for _, n := range nodes {
		peers = append(peers, testpeer.BGPPeer{Address: n.addr, AS: 65053})
		addrs = append(addrs, n.addr)
	}
	router := testpeer.StartFRR(t, testpeer.FRROptions{NetNS: rh, AS: 65000, RouterID: routerAddr, Neighbors: peers, MaxPaths: 8})
	waitHops := func(want []netip.Addr, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		slices.SortFunc(want, netip.Addr.Compare)
		for {
			got := router.KernelNextHops(t, bgpPrefix())
			slices.SortFunc(got, netip.Addr.Compare)
			if slices.Equal(got, want) {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("kernel next hops %v, want %v; FRR:\n%s", got, want, router.Vtysh(t, "show ip route "+bgpPrefix()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	took := waitHops(addrs, 30*time.Second)
	t.Logf("MEASURED: FRR RIB %v, kernel ECMP route with 3 next hops %v after FRR started", router.RIBNextHops(t, bgpPrefix()), took.Round(time.Millisecond))

	qps3 := runDNSPerf(t, client, sources[:8], 5*time.Second)

	// Shares: every source sends a query every 20ms for 3s.
	load := startClients(t, client, sources, 20*time.Millisecond)
	time.Sleep(3 * time.Second)
	checkShares(t, load, nodes, "from 50 sources in 3s")

	// Backend death on node3: its route goes; measure until no query
	// reaches it and what is lost meanwhile.
	nodes[2].nsd.Kill(t)
	killed := time.Now()
	routeGone := waitHops(addrs[:2], 10*time.Second)
	time.Sleep(2 * time.Second)
	load.mu.Lock()
	lastOn3 := load.last[nodes[2].name].Sub(killed)
	lostKill := load.lost
	load.mu.Unlock()
	by, _ := load.snapshot()
	t.Logf("MEASURED: node3 backend killed -> kernel route without node3 after %v; last answer via node3 %v after the kill; lost %d; next 2s shares %v",
		routeGone.Round(time.Millisecond), lastOn3.Round(time.Millisecond), lostKill, by)

	// SIGTERM on node2 with withdraw_delay 2s: nothing lost.
	nodes[2].nsd.Restart(t)
	waitHops(addrs, 10*time.Second)
	time.Sleep(time.Second)
	load.snapshot()
	sig := time.Now()
	nodes[1].lb.signal(syscall.SIGTERM)
	gone := waitHops([]netip.Addr{addrs[0], addrs[2]}, 10*time.Second)
	nodes[1].lb.waitExit(15 * time.Second)
	exited := time.Since(sig)
	time.Sleep(time.Second)
	by, lost := load.snapshot()
	t.Logf("MEASURED: SIGTERM node2 (withdraw_delay 2s) -> route without node2 after %v, exit after %v; lost %d; shares %v",
		gone.Round(time.Millisecond), exited.Round(time.Millisecond), lost, by)
	if lost != 0 {
		t.Errorf("SIGTERM with withdraw_delay lost %d queries", lost)
	}
	load.end()

	// Aggregate qps: three nodes (above) vs one (node2 stopped, node3's
	// backend killed and its route withdrawn).
	nodes[2].nsd.Kill(t)
	waitHops(addrs[:1], 10*time.Second)
	qps1 := runDNSPerf(t, client, sources[:8], 5*time.Second)
	t.Logf("MEASURED: aggregate qps (8 dnsperf, one per source, 2 vCPUs shared by every namespace): 3 nodes %.0f, 1 node %.0f (x%.2f)",
		qps3, qps1, qps3/max(qps1, 1))
}
