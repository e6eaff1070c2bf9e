package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// `xdpspike report results.jsonl` turns measure's lines into markdown.
//
// Per packet means per datagram forwarded (a query out to the backend or
// an answer back to the client): the forwarder's CPU time (its threads plus
// the NAPI thread of its veth, which runs its receive path) over the
// window, divided by the packets it forwarded in that window.

type row struct {
	result
	pps       float64 // packets forwarded per second (both directions)
	qps       float64 // answers forwarded per second
	usPerPkt  float64 // (proc + napi) / packets
	napiShare float64
	cpu1Pct   float64
	cpu0Pct   float64
	gunSent   float64 // kxdpgun's own rates over its whole run
	gunRecv   float64
	gunPct    float64
}

var gunRe = regexp.MustCompile(`total (queries|replies):\s+(\d+) \((\d+) pps\)(?: \((\d+)%\))?`)

func readGun(path string) (sent, recv, pct float64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	for _, m := range gunRe.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[3], 64)
		if m[1] == "queries" {
			sent = v
		} else {
			recv = v
			pct, _ = strconv.ParseFloat(m[4], 64)
		}
	}
	return
}

func loadRows(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r.result); err != nil {
			return nil, err
		}
		pkts := float64(r.Queries + r.Answers)
		r.pps = pkts / r.Secs
		r.qps = float64(r.Answers) / r.Secs
		if pkts > 0 {
			r.usPerPkt = (r.ProcS + r.NapiS) / pkts * 1e6
		}
		if r.ProcS+r.NapiS > 0 {
			r.napiShare = r.NapiS / (r.ProcS + r.NapiS)
		}
		if len(r.CPUBusyS) > 1 {
			r.cpu0Pct = r.CPUBusyS[0] / r.Secs * 100
			r.cpu1Pct = r.CPUBusyS[1] / r.Secs * 100
		}
		r.gunSent, r.gunRecv, r.gunPct = readGun(r.GunLog)
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

func runReport(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: xdpspike report results.jsonl")
	}
	rows, err := loadRows(args[0])
	if err != nil {
		return err
	}
	writeReport(os.Stdout, rows)
	return nil
}

func writeReport(w io.Writer, rows []row) {
	var variants, loads []string
	seenV, seenL := map[string]bool{}, map[string]bool{}
	rounds := map[int]bool{}
	for _, r := range rows {
		if r.Round == 0 {
			continue // profiling runs
		}
		if !seenV[r.Variant] {
			seenV[r.Variant] = true
			variants = append(variants, r.Variant)
		}
		if !seenL[r.Load] {
			seenL[r.Load] = true
			loads = append(loads, r.Load)
		}
		rounds[r.Round] = true
	}
	var roundList []int
	for r := range rounds {
		roundList = append(roundList, r)
	}
	sort.Ints(roundList)
	get := func(round int, v, load string) *row {
		for i := range rows {
			if rows[i].Round == round && rows[i].Variant == v && rows[i].Load == load {
				return &rows[i]
			}
		}
		return nil
	}

	fmt.Fprintln(w, "#### Every run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| round | forwarder | load (offered qps) | forwarded qps | answered at client | forwarder CPU | µs CPU / packet | of which NAPI | CPU 0 / CPU 1 busy (all tasks) |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|")
	for _, round := range roundList {
		for _, v := range variants {
			for _, l := range loads {
				r := get(round, v, l)
				if r == nil {
					continue
				}
				fmt.Fprintf(w, "| %d | %s | %s (%s) | %s | %.0f%% | %.0f%% | %.2f | %.0f%% | %.0f%% / %.0f%% |\n",
					round, v, l, kfmt(float64(r.Offered)), kfmt(r.qps), r.gunPct, (r.ProcS+r.NapiS)/r.Secs*100, r.usPerPkt, r.napiShare*100, r.cpu0Pct, r.cpu1Pct)
			}
		}
	}
	fmt.Fprintln(w)

	// Ratios within each round: socket / xdp (higher = AF_XDP better).
	if !seenV["xdp"] {
		return
	}
	fmt.Fprintln(w, "#### Ratios within each round (socket ÷ AF_XDP; above 1 means AF_XDP is better)")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| round |")
	var cols []string
	for _, v := range variants {
		if v == "xdp" {
			continue
		}
		for _, l := range loads {
			cols = append(cols, v+"|"+l)
			fmt.Fprintf(w, " %s %s: CPU/packet |", v, l)
		}
		fmt.Fprintf(w, " %s: max rate (xdp ÷ socket) |", v)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---|")
	for range cols {
		fmt.Fprint(w, "---:|")
	}
	for _, v := range variants {
		if v != "xdp" {
			fmt.Fprint(w, "---:|")
		}
	}
	fmt.Fprintln(w)
	type agg struct{ min, max float64 }
	aggs := map[string]*agg{}
	note := func(k string, x float64) {
		a := aggs[k]
		if a == nil {
			a = &agg{math.Inf(1), math.Inf(-1)}
			aggs[k] = a
		}
		a.min, a.max = math.Min(a.min, x), math.Max(a.max, x)
	}
	for _, round := range roundList {
		fmt.Fprintf(w, "| %d |", round)
		for _, v := range variants {
			if v == "xdp" {
				continue
			}
			for _, l := range loads {
				s, x := get(round, v, l), get(round, "xdp", l)
				if s == nil || x == nil || x.usPerPkt == 0 {
					fmt.Fprint(w, " – |")
					continue
				}
				q := s.usPerPkt / x.usPerPkt
				note(v+" "+l+" CPU/packet", q)
				fmt.Fprintf(w, " %.2f× |", q)
			}
			s, x := get(round, v, "max"), get(round, "xdp", "max")
			if s == nil || x == nil || s.qps == 0 {
				fmt.Fprint(w, " – |")
				continue
			}
			q := x.qps / s.qps
			note(v+" max rate", q)
			fmt.Fprintf(w, " %.2f× |", q)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	var keys []string
	for k := range aggs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "- %s: %.2f–%.2f× over %d rounds\n", k, aggs[k].min, aggs[k].max, len(roundList))
	}
	fmt.Fprintln(w)

	// Profiles.
	for _, r := range rows {
		if r.Round != 0 || r.PerfLog == "" {
			continue
		}
		b, err := os.ReadFile(r.PerfLog)
		if err != nil || len(b) == 0 {
			continue
		}
		fmt.Fprintf(w, "#### perf on CPU 1, %s at max rate (%s qps forwarded, %.2f µs/packet)\n\n```\n%s```\n\n", r.Variant, kfmt(r.qps), r.usPerPkt, strings.TrimLeft(string(b), "\n"))
	}
}

func kfmt(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
