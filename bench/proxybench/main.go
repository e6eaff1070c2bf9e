// Command proxybench measures dnslb against dnsdist on one machine: both
// proxies in front of the same two NSD servers, loaded by dnsperf, in
// alternating rounds. It prints one markdown table per load with qps, proxy
// CPU per answered query, lost queries and p50/p99 latency, and the
// dnslb/dnsdist ratios (min–max over rounds, each ratio taken within one
// round).
//
// It is run by bench/bench.sh (make bench), which installs the tools and
// builds dnslb. Every process it starts is pinned with taskset and killed
// on exit. Everything listens on 127.0.0.0/8.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Addresses of the two NSD backends and the proxies, all on loopback.
const (
	ns1Addr     = "127.0.0.21:5301"
	ns2Addr     = "127.0.0.22:5302"
	dnslbAddr   = "127.0.0.31:5300"
	dnsdistAddr = "127.0.0.32:5300"
	dnslbAdmin  = "127.0.0.31:9153"
	zoneName    = "bench.test."
)

type options struct {
	dnslb     string
	rounds    int
	seconds   int
	loads     []int
	proxyCPUs string
	loadCPUs  string
	clients   int
	outstand  int
	dnslbYAML string // extra YAML appended to dnslb's config
	only      string
	profile   string
	keep      bool
	scaling   string // ";"-separated CPU lists: dnslb's max throughput on each
	nsdProcs  int    // NSD server-count per backend
	variants  []string
}

func main() {
	var o options
	var loads string
	flag.StringVar(&o.dnslb, "dnslb", "bin/dnslb", "dnslb binary")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every proxy once, order alternating")
	flag.IntVar(&o.seconds, "seconds", 10, "seconds per dnsperf run")
	flag.StringVar(&loads, "loads", "20000,40000", "fixed offered loads in qps (comma separated)")
	flag.StringVar(&o.proxyCPUs, "proxy-cpus", "1", "taskset CPU list for the proxy under test")
	flag.StringVar(&o.loadCPUs, "load-cpus", "0", "taskset CPU list for NSD and dnsperf")
	flag.IntVar(&o.clients, "clients", 8, "dnsperf -c for the max-throughput run")
	flag.IntVar(&o.outstand, "outstanding", 200, "dnsperf -q for the max-throughput run")
	flag.StringVar(&o.dnslbYAML, "dnslb-yaml", "", "YAML appended to dnslb's config (e.g. a tuning: section)")
	flag.StringVar(&o.only, "only", "", "run only this target: dnslb | dnsdist | nsd")
	flag.StringVar(&o.profile, "profile", "", "write a CPU profile of dnslb's max-throughput run in the last round here")
	flag.IntVar(&o.nsdProcs, "nsd-procs", 1, "NSD server processes per backend (raise it with -load-cpus on bigger machines)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, dnsperf output)")
	var variants string
	flag.StringVar(&variants, "variants", "rrl,proxy_v2", `feature costs also measured (comma separated, "" for none): rrl (dnslb with rrl on, log_only, against off), proxy_v2 (dnslb client_address: proxy_v2 and dnsdist useProxyProtocol, against none, with Knot backends)`)
	flag.StringVar(&o.scaling, "scaling", "", `instead of the comparison, measure dnslb's max throughput pinned to each of these ";"-separated CPU lists (e.g. "1;1-2;1-4"), with one UDP worker per CPU`)
	flag.Parse()
	log.SetFlags(0)
	for _, s := range strings.Split(loads, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			log.Fatalf("proxybench: -loads: %q is not a positive number", s)
		}
		o.loads = append(o.loads, n)
	}
	for _, v := range strings.Split(variants, ",") {
		switch v = strings.TrimSpace(v); v {
		case "":
		case "rrl", "proxy_v2":
			o.variants = append(o.variants, v)
		default:
			log.Fatalf("proxybench: -variants: unknown %q (rrl, proxy_v2)", v)
		}
	}
	if err := run(o); err != nil {
		log.Fatalf("proxybench: %v", err)
	}
}

// procs tracks every process started, so they are all killed on exit.
type procs struct{ list []*exec.Cmd }

func (p *procs) start(logPath string, name string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.list = append(p.list, cmd)
	return cmd, nil
}

func (p *procs) stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	p.list = slices.DeleteFunc(p.list, func(c *exec.Cmd) bool { return c == cmd })
}

func (p *procs) stopAll() {
	for len(p.list) > 0 {
		p.stop(p.list[len(p.list)-1])
	}
}

// result is one dnsperf run against one target.
type result struct {
	target   string
	load     string // "max" or the offered qps
	qps      float64
	sent     int
	answered int
	lost     int
	cpuUS    float64 // proxy CPU µs per answered query (0 for nsd)
	p50, p99 float64 // milliseconds, from dnsperf -v lines
}

func run(o options) error {
	for _, tool := range []string{"nsd", "dnsperf", "dnsdist", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found in PATH (bench/bench.sh installs it)", tool)
		}
	}
	if _, err := os.Stat(o.dnslb); err != nil {
		return fmt.Errorf("dnslb binary: %v (make build)", err)
	}
	work, err := os.MkdirTemp("", "proxybench.")
	if err != nil {
		return err
	}
	if o.keep {
		log.Printf("work directory: %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	var ps procs
	defer ps.stopAll()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; ps.stopAll(); log.Fatal("proxybench: interrupted") }()

	queries := filepath.Join(work, "queries.txt")
	if err := writeZoneAndQueries(work, queries); err != nil {
		return err
	}
	for i, addr := range []string{ns1Addr, ns2Addr} {
		if err := startNSD(&ps, work, fmt.Sprintf("ns%d", i+1), addr, o.loadCPUs, o.nsdProcs); err != nil {
			return err
		}
	}
	for _, addr := range []string{ns1Addr, ns2Addr} {
		if err := waitAnswer(addr, 5*time.Second); err != nil {
			return fmt.Errorf("NSD %s: %w", addr, err)
		}
	}
	if slices.Contains(o.variants, "proxy_v2") {
		if err := startKnots(&ps, o, work); err != nil {
			return err
		}
	}
	if o.scaling != "" {
		return runScaling(&ps, o, work, queries)
	}
	targets := []string{"dnslb", "dnsdist"}
	if o.only != "" {
		targets = []string{o.only}
	} else {
		targets = append(targets, variantTargets(o.variants)...)
	}
	var all []result
	for r := 0; r < o.rounds; r++ {
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		if o.only == "" {
			order = append(order, "nsd")
		}
		for _, t := range order {
			log.Printf("round %d/%d: %s", r+1, o.rounds, t)
			res, err := runTarget(&ps, o, work, queries, t, r == o.rounds-1)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, t, err)
			}
			for _, x := range res {
				log.Printf("  %-8s %-6s %8.0f qps  %6.2f µs/q  lost %d  p50 %.3f ms  p99 %.3f ms",
					x.target, x.load, x.qps, x.cpuUS, x.lost, x.p50, x.p99)
			}
			all = append(all, res...)
		}
	}
	printTables(os.Stdout, o, all)
	printVariants(os.Stdout, o, all)
	return nil
}

// runTarget starts one proxy (or none, for nsd: dnsperf goes straight to
// ns1), runs the max-throughput and fixed-load measurements and stops it.
func runTarget(ps *procs, o options, work, queries, target string, last bool) ([]result, error) {
	var cmd *exec.Cmd
	var err error
	addr := ns1Addr
	v, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	switch v.proxy {
	case "dnslb":
		addr = dnslbAddr
		cmd, err = startDnslb(ps, o, work, v)
	case "dnsdist":
		addr = dnsdistAddr
		cmd, err = startDnsdist(ps, o, work, v)
	}
	if err != nil {
		return nil, err
	}
	defer ps.stop(cmd)
	if err := waitAnswer(addr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("%s not answering on %s: %w (see %s)", target, addr, err, work)
	}
	// Warm up: both backends seen healthy, caches and buffers grown.
	time.Sleep(2 * time.Second)
	if _, err := dnsperf(o, work, queries, addr, "warmup", []string{"-c", "8", "-q", "100", "-l", "1"}, false); err != nil {
		return nil, err
	}
	var out []result
	measure := func(load string, args []string, verbose bool) error {
		var profDone chan error
		if target == "dnslb" && last && load == "max" && o.profile != "" {
			profDone = make(chan error, 1)
			go func() { profDone <- fetchProfile(o.profile, o.seconds-1) }()
		}
		before := cpuTicks(cmd)
		res, err := dnsperf(o, work, queries, addr, target+"-"+load, args, verbose)
		if err != nil {
			return err
		}
		after := cpuTicks(cmd)
		if profDone != nil {
			if err := <-profDone; err != nil {
				log.Printf("profile: %v", err)
			}
		}
		res.target, res.load = target, load
		if cmd != nil && res.answered > 0 {
			res.cpuUS = float64(after-before) / float64(clockTicks) * 1e6 / float64(res.answered)
		}
		out = append(out, res)
		return nil
	}
	secs := strconv.Itoa(o.seconds)
	if err := measure("max", []string{"-c", strconv.Itoa(o.clients), "-q", strconv.Itoa(o.outstand), "-t", "1", "-l", secs}, false); err != nil {
		return nil, err
	}
	if o.scaling != "" {
		return out, nil
	}
	loads := o.loads
	if v.variant() {
		loads = loads[:1] // a feature's cost: max throughput and the first load
	}
	for _, qps := range loads {
		args := []string{"-c", "8", "-q", "500", "-t", "1", "-Q", strconv.Itoa(qps), "-l", secs}
		if err := measure(strconv.Itoa(qps), args, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// runScaling measures dnslb's max throughput on each CPU list of
// o.scaling, with tuning.udp_workers set to the number of CPUs (GOMAXPROCS
// follows the CPU affinity), o.rounds times each.
func runScaling(ps *procs, o options, work, queries string) error {
	type point struct {
		cpus    string
		workers int
		res     []result
	}
	var points []point
	for _, cpus := range strings.Split(o.scaling, ";") {
		n, err := countCPUs(cpus)
		if err != nil {
			return err
		}
		points = append(points, point{cpus: cpus, workers: n})
	}
	for r := 0; r < o.rounds; r++ {
		for i := range points {
			p := &points[i]
			oo := o
			oo.proxyCPUs = p.cpus
			oo.dnslbYAML = fmt.Sprintf("tuning:\n  udp_workers: %d\n%s", p.workers, o.dnslbYAML)
			log.Printf("round %d/%d: dnslb on CPUs %s, %d workers", r+1, o.rounds, p.cpus, p.workers)
			res, err := runTarget(ps, oo, work, queries, "dnslb", false)
			if err != nil {
				return err
			}
			log.Printf("  %8.0f qps  %6.2f µs/q  lost %d", res[0].qps, res[0].cpuUS, res[0].lost)
			p.res = append(p.res, res[0])
		}
	}
	fmt.Printf("\n### dnslb scaling: max throughput (dnsperf -c %d -q %d), load on CPU %s, %d rounds of %ds\n\n", o.clients, o.outstand, o.loadCPUs, o.rounds, o.seconds)
	fmt.Println("| dnslb CPUs | workers | qps | CPU µs/query | lost |")
	fmt.Println("|---|---|---|---|---|")
	for _, p := range points {
		lost := 0
		for _, r := range p.res {
			lost += r.lost
		}
		fmt.Printf("| %s | %d | %s | %s | %d of %d |\n", p.cpus, p.workers,
			spread(p.res, func(r result) float64 { return r.qps }, "%.0f"),
			spread(p.res, func(r result) float64 { return r.cpuUS }, "%.2f"), lost, sum(p.res))
	}
	return nil
}

// countCPUs counts the CPUs in a taskset list such as "1", "0,1" or "2-5".
func countCPUs(list string) (int, error) {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("-scaling: %q is not a CPU list", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("-scaling: %q is not a CPU list", list)
			}
		}
		n += b - a + 1
	}
	return n, nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTicks is the user+system CPU time of cmd's process so far, in ticks.
func cpuTicks(cmd *exec.Cmd) int64 {
	if cmd == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces) start at
	// field 3; utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func dnsperf(o options, work, queries, addr, name string, args []string, verbose bool) (result, error) {
	host, port, _ := net.SplitHostPort(addr)
	full := append([]string{"-c", o.loadCPUs, "dnsperf", "-s", host, "-p", port, "-d", queries}, args...)
	if verbose {
		full = append(full, "-v")
	}
	outPath := filepath.Join(work, "dnsperf-"+name+".txt")
	f, err := os.Create(outPath)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	cmd := exec.Command("taskset", full...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("dnsperf %s: %v (see %s)", name, err, outPath)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return result{}, err
	}
	return parseDnsperf(f)
}

// parseDnsperf reads dnsperf's summary and, with -v, its per-query lines
// ("> NOERROR name type 0.000123") for the latency percentiles.
func parseDnsperf(r io.Reader) (result, error) {
	var res result
	var lat []float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "> ") {
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil && f[1] != "T" {
				lat = append(lat, v*1000)
			}
			continue
		}
		line = strings.TrimSpace(line)
		field := func(prefix string) (float64, bool) {
			if !strings.HasPrefix(line, prefix) {
				return 0, false
			}
			v, err := strconv.ParseFloat(strings.Fields(strings.TrimPrefix(line, prefix))[0], 64)
			return v, err == nil
		}
		if v, ok := field("Queries sent:"); ok {
			res.sent = int(v)
		} else if v, ok := field("Queries completed:"); ok {
			res.answered = int(v)
		} else if v, ok := field("Queries lost:"); ok {
			res.lost = int(v)
		} else if v, ok := field("Queries per second:"); ok {
			res.qps = v
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if res.sent == 0 {
		return res, errors.New("dnsperf output has no summary")
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.p50 = percentile(lat, 0.50)
		res.p99 = percentile(lat, 0.99)
	}
	return res, nil
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// waitAnswer queries addr until it answers, or the time is up.
func waitAnswer(addr string, within time.Duration) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("www."+zoneName, dns.TypeA)
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		var r *dns.Msg
		if r, _, err = c.Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %s: %v", within, err)
}
