package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Feature variants (-variants): the cost of one dnslb feature, measured
// as the ratio of a target with the feature to the same target without,
// within each round.
//
//   - rrl: dnslb with rrl on in log_only mode (every answer accounted,
//     none limited, so dnsperf sees the same answers) against dnslb, both
//     in front of the NSD servers.
//   - proxy_v2: dnslb with client_address: proxy_v2 and dnsdist with
//     useProxyProtocol, each against itself without, in front of two Knot
//     servers that accept PROXY v2 from 127.0.0.0/8 (NSD 4.6 cannot).

// Addresses of the two Knot backends of the proxy_v2 variant.
const (
	knot1Addr = "127.0.0.23:5303"
	knot2Addr = "127.0.0.24:5304"
)

// target is one thing dnsperf measures: a proxy ("dnslb", "dnsdist", or
// "" for NSD direct), the feature it runs with ("", "rrl", "proxy_v2")
// and the backends ("nsd" or "knot"). Its name is proxy[+feature][@knot].
type target struct {
	proxy, feature, backend string
}

func parseTarget(name string) (target, error) {
	if name == "nsd" {
		return target{backend: "nsd"}, nil
	}
	rest, backend, atKnot := strings.Cut(name, "@")
	proxy, feature, _ := strings.Cut(rest, "+")
	t := target{proxy: proxy, feature: feature, backend: "nsd"}
	if atKnot {
		t.backend = backend
	}
	if feature == "proxy_v2" {
		t.backend = "knot"
	}
	if (proxy != "dnslb" && proxy != "dnsdist") || (feature != "" && feature != "rrl" && feature != "proxy_v2") ||
		(t.backend != "nsd" && t.backend != "knot") || (feature == "rrl" && proxy != "dnslb") {
		return t, fmt.Errorf("unknown target %q", name)
	}
	return t, nil
}

// variant reports whether t measures a feature (or its Knot reference)
// rather than the main comparison.
func (t target) variant() bool { return t.feature != "" || t.backend == "knot" }

// backends returns the addresses of t's two backends.
func (t target) backends() (string, string) {
	if t.backend == "knot" {
		return knot1Addr, knot2Addr
	}
	return ns1Addr, ns2Addr
}

// variantTargets lists the targets the variants add to each round.
func variantTargets(variants []string) []string {
	var out []string
	for _, v := range variants {
		switch v {
		case "rrl":
			out = append(out, "dnslb+rrl")
		case "proxy_v2":
			out = append(out, "dnslb@knot", "dnslb+proxy_v2", "dnsdist@knot", "dnsdist+proxy_v2")
		}
	}
	return out
}

// startKnots runs the two Knot servers of the proxy_v2 variant, serving
// the bench zone and accepting PROXY v2 over UDP from loopback.
func startKnots(ps *procs, o options, work string) error {
	for i, addr := range []string{knot1Addr, knot2Addr} {
		dir := filepath.Join(work, "knot"+strconv.Itoa(i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return err
		}
		conf := fmt.Sprintf(`server:
    rundir: %q
    listen: %s@%s
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    proxy-allowlist: 127.0.0.0/8
log:
  - target: stderr
    any: warning
database:
    storage: %q
template:
  - id: default
    storage: %q
    semantic-checks: off
zone:
  - domain: %s
    file: %q
`, dir, host, port, dir, dir, zoneName, filepath.Join(work, "bench.test.zone"))
		path := filepath.Join(dir, "knot.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return err
		}
		if _, err := ps.start(filepath.Join(dir, "stdout.log"), "taskset", "-c", o.loadCPUs, "knotd", "-c", path); err != nil {
			return err
		}
	}
	for _, addr := range []string{knot1Addr, knot2Addr} {
		if err := waitAnswer(addr, 10*time.Second); err != nil {
			return fmt.Errorf("knotd %s: %w (see %s)", addr, err, work)
		}
	}
	return nil
}

// printVariants writes, per load, the cost of each feature as the ratio
// of the target with it to the target without (CPU per query, qps),
// min–max over the per-round ratios.
func printVariants(w io.Writer, o options, all []result) {
	if len(o.variants) == 0 || o.only != "" {
		return
	}
	type pair struct{ what, with, without string }
	var pairs []pair
	for _, v := range o.variants {
		switch v {
		case "rrl":
			pairs = append(pairs, pair{"dnslb rrl on (log_only) / off, NSD backends", "dnslb+rrl", "dnslb"})
		case "proxy_v2":
			pairs = append(pairs,
				pair{"dnslb client_address proxy_v2 / none, Knot backends", "dnslb+proxy_v2", "dnslb@knot"},
				pair{"dnsdist useProxyProtocol / none, Knot backends", "dnsdist+proxy_v2", "dnsdist@knot"},
				pair{"dnslb proxy_v2 / dnsdist useProxyProtocol, Knot backends", "dnslb+proxy_v2", "dnsdist+proxy_v2"})
		}
	}
	for _, load := range []string{"max", strconv.Itoa(o.loads[0])} {
		title := "max throughput"
		if load != "max" {
			title = "fixed offered load " + load + " qps"
		}
		fmt.Fprintf(w, "\n### feature cost, %s\n\n", title)
		fmt.Fprintln(w, "| ratio | CPU µs/query | qps | lost (with) |")
		fmt.Fprintln(w, "|---|---|---|---|")
		for _, p := range pairs {
			a, b := pick(all, p.with, load), pick(all, p.without, load)
			if len(a) == 0 || len(a) != len(b) {
				continue
			}
			ratio := func(f func(result) float64) string {
				var rs []float64
				for i := range a {
					if f(b[i]) > 0 {
						rs = append(rs, f(a[i])/f(b[i]))
					}
				}
				if len(rs) == 0 {
					return "–"
				}
				return minMax(rs, "%.2f")
			}
			lost := 0
			for _, r := range a {
				lost += r.lost
			}
			fmt.Fprintf(w, "| %s | %s | %s | %d of %d |\n", p.what,
				ratio(func(r result) float64 { return r.cpuUS }), ratio(func(r result) float64 { return r.qps }), lost, sum(a))
		}
	}
}
