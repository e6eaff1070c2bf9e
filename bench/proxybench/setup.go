package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// writeZoneAndQueries writes the zone both NSD servers serve and the
// dnsperf query file: A, AAAA and MX for 1000 names plus 10% NXDOMAIN.
func writeZoneAndQueries(work, queries string) error {
	z, err := os.Create(filepath.Join(work, "bench.test.zone"))
	if err != nil {
		return err
	}
	defer z.Close()
	zw := bufio.NewWriter(z)
	fmt.Fprintf(zw, "$ORIGIN %s\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 127.0.0.21\nwww A 192.0.2.1\n", zoneName)
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(zw, "h%d A 192.0.2.%d\nh%d AAAA 2001:db8::%x\nh%d MX 10 mail\n", i, i%250+1, i, i+1, i)
	}
	if err := zw.Flush(); err != nil {
		return err
	}
	q, err := os.Create(queries)
	if err != nil {
		return err
	}
	defer q.Close()
	qw := bufio.NewWriter(q)
	types := []string{"A", "AAAA", "MX"}
	for i := 0; i < 10000; i++ {
		if i%10 == 9 {
			fmt.Fprintf(qw, "nx%d.%s A\n", i, zoneName)
			continue
		}
		fmt.Fprintf(qw, "h%d.%s %s\n", (i*7)%1000, zoneName, types[i%3])
	}
	return qw.Flush()
}

// startNSD runs one NSD server (procs processes, rate limiting off) serving
// the bench zone on addr, pinned to cpus.
func startNSD(ps *procs, work, name, addr, cpus string, procs int) error {
	dir := filepath.Join(work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`server:
  ip-address: %s@%s
  server-count: %d
  username: ""
  chroot: ""
  zonesdir: %q
  database: ""
  pidfile: %q
  xfrdfile: %q
  zonelistfile: %q
  xfrdir: %q
  logfile: %q
  rrl-ratelimit: 0
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: %s
  zonefile: %q
`, host, port, max(procs, 1), dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"), filepath.Join(dir, "zone.list"),
		dir, filepath.Join(dir, "nsd.log"), zoneName, filepath.Join(work, "bench.test.zone"))
	path := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	_, err = ps.start(filepath.Join(dir, "stdout.log"), "taskset", "-c", cpus, "nsd", "-d", "-c", path)
	return err
}

// startDnslb runs dnslb pinned to the proxy CPUs with a config equivalent
// to dnsdist's: the two backends, health checks every second, no cache
// (dnslb has none).
func startDnslb(ps *procs, o options, work string, v target) (*exec.Cmd, error) {
	pprof := ""
	if o.profile != "" {
		pprof = "\n  pprof: true"
	}
	b1, b2 := v.backends()
	mode := "none"
	if v.feature == "proxy_v2" {
		mode = "proxy_v2"
	}
	extra := o.dnslbYAML
	if v.feature == "rrl" {
		// every decision made and counted, nothing limited: the cost of
		// the accounting, with the same answers as without
		extra += "\nrrl:\n  enabled: true\n  log_only: true\n"
	}
	conf := fmt.Sprintf(`listen: [%q]
backends:
  - {name: ns1, address: %q, client_address: %s}
  - {name: ns2, address: %q, client_address: %s}
timeouts:
  udp: 1s
admin:
  listen: %q%s
log:
  level: warn
health_check:
  query: {name: %s, type: SOA}
  interval: 1s
  timeout: 500ms
%s
`, dnslbAddr, b1, mode, b2, mode, dnslbAdmin, pprof, zoneName, extra)
	path := filepath.Join(work, "dnslb.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command(o.dnslb, "check-config", "-config", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dnslb config: %s", out)
	}
	return ps.start(filepath.Join(work, "dnslb.log"), "taskset", "-c", o.proxyCPUs, o.dnslb, "run", "-config", path)
}

// startDnsdist runs dnsdist pinned to the proxy CPUs: the same two
// backends, leastOutstanding, no packet cache, no security polling.
func startDnsdist(ps *procs, o options, work string, v target) (*exec.Cmd, error) {
	b1, b2 := v.backends()
	proxy, forceUp := "false", ""
	if v.feature == "proxy_v2" {
		proxy = "true"
		// dnsdist 1.7 marks Knot down: its health checks carry a PROXY v2
		// LOCAL header, which Knot 3.2 drops (dnslb's probes name their
		// own socket with a PROXY header instead); keep both up.
		forceUp = "getServer(0):setUp()\ngetServer(1):setUp()\n"
	}
	conf := fmt.Sprintf(`setSecurityPollSuffix("")
setLocal(%q)
newServer({address=%q, name="ns1", useProxyProtocol=%s})
newServer({address=%q, name="ns2", useProxyProtocol=%s})
setServerPolicy(leastOutstanding)
%s`, dnsdistAddr, b1, proxy, b2, proxy, forceUp)
	path := filepath.Join(work, "dnsdist.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return ps.start(filepath.Join(work, "dnsdist.log"), "taskset", "-c", o.proxyCPUs, "dnsdist", "--supervised", "--disable-syslog", "-C", path)
}

// fetchProfile saves a CPU profile of dnslb taken over secs seconds from
// its admin API (admin.pprof: true).
func fetchProfile(path string, secs int) error {
	c := &http.Client{Timeout: time.Duration(secs+10) * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", dnslbAdmin, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
