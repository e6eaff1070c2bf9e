package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
)

// printTables writes one markdown table per load: each target's figures as
// median [min–max] over rounds, then the dnslb/dnsdist ratios, each ratio
// computed within one round.
func printTables(w io.Writer, o options, all []result) {
	loads := []string{"max"}
	for _, l := range o.loads {
		loads = append(loads, strconv.Itoa(l))
	}
	fmt.Fprintf(w, "\n%d rounds of %ds; proxy on CPU %s, NSD and dnsperf on CPU %s\n", o.rounds, o.seconds, o.proxyCPUs, o.loadCPUs)
	for _, load := range loads {
		title := "closed loop (dnsperf -c " + strconv.Itoa(o.clients) + " -q " + strconv.Itoa(o.outstand) + " -t 1): max throughput"
		if load != "max" {
			title = "fixed offered load " + load + " qps"
		}
		fmt.Fprintf(w, "\n### %s\n\n", title)
		fmt.Fprintln(w, "| target | qps | CPU µs/query | lost | p50 ms | p99 ms |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, t := range []string{"dnslb", "dnsdist", "nsd"} {
			rs := pick(all, t, load)
			if len(rs) == 0 {
				continue
			}
			name := t
			if t == "nsd" {
				name = "nsd (direct, reference)"
			}
			lost := 0
			for _, r := range rs {
				lost += r.lost
			}
			cpu, p50, p99 := "–", "–", "–"
			if t != "nsd" {
				cpu = spread(rs, func(r result) float64 { return r.cpuUS }, "%.2f")
			}
			if rs[0].p50 > 0 {
				p50 = spread(rs, func(r result) float64 { return r.p50 }, "%.3f")
				p99 = spread(rs, func(r result) float64 { return r.p99 }, "%.3f")
			}
			fmt.Fprintf(w, "| %s | %s | %s | %d of %d | %s | %s |\n", name,
				spread(rs, func(r result) float64 { return r.qps }, "%.0f"), cpu, lost, sum(rs), p50, p99)
		}
		a, b := pick(all, "dnslb", load), pick(all, "dnsdist", load)
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
		p50, p99 := "–", "–"
		if a[0].p50 > 0 {
			p50 = ratio(func(r result) float64 { return r.p50 })
			p99 = ratio(func(r result) float64 { return r.p99 })
		}
		fmt.Fprintf(w, "| **dnslb / dnsdist** | %s | %s | | %s | %s |\n",
			ratio(func(r result) float64 { return r.qps }), ratio(func(r result) float64 { return r.cpuUS }), p50, p99)
	}
	fmt.Fprintln(w, "\nqps, CPU, p50 and p99: median [min–max] over rounds; ratios: min–max of the per-round ratios.")
}

func pick(all []result, target, load string) []result {
	var out []result
	for _, r := range all {
		if r.target == target && r.load == load {
			out = append(out, r)
		}
	}
	return out
}

func sum(rs []result) int {
	n := 0
	for _, r := range rs {
		n += r.sent
	}
	return n
}

// spread formats the median and range of f over rs.
func spread(rs []result, f func(result) float64, format string) string {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	if len(v) == 1 {
		return fmt.Sprintf(format, med)
	}
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", med, v[0], v[len(v)-1])
}

func minMax(v []float64, format string) string {
	lo, hi := slices.Min(v), slices.Max(v)
	if len(v) == 1 {
		return fmt.Sprintf(format, lo)
	}
	return fmt.Sprintf(format+"–"+format, lo, hi)
}
