package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// `xdpspike measure` samples, at the start and the end of a window:
//   - the forwarder's counters (its shared stats file);
//   - the forwarder's CPU time: the scheduler's runtime of each of its
//     threads (/proc/PID/task/*/schedstat, ns) and utime+stime from
//     /proc/PID/stat;
//   - the runtime of the kernel threads named by -comm prefixes (the
//     threaded NAPI pollers of the proxy's veth, which run its receive
//     path: XDP program and copy into the UMEM, or the IP/UDP stack up to
//     the socket queue);
//   - every CPU's busy time from /proc/stat (all but idle and iowait);
// and prints one JSON line.

type cpuSample struct {
	User, Nice, System, Idle, Iowait, IRQ, Softirq, Steal uint64 // USER_HZ ticks
}

func (c cpuSample) busy() uint64 {
	return c.User + c.Nice + c.System + c.IRQ + c.Softirq + c.Steal
}

type sample struct {
	t        time.Time
	counters [numStats]uint64
	taskNS   uint64 // forwarder threads' runtime
	statTick uint64 // forwarder utime+stime
	commNS   uint64 // matching kernel threads' runtime
	cpus     []cpuSample
	comms    []string
}

type result struct {
	Round    int     `json:"round"`
	Variant  string  `json:"variant"`
	Load     string  `json:"load"`
	Offered  int     `json:"offered_qps"`
	Secs     float64 `json:"secs"`
	Queries  uint64  `json:"queries"`
	Answers  uint64  `json:"answers"`
	Dropped  uint64  `json:"dropped"`
	Batches  uint64  `json:"batches"`
	Kicks    uint64  `json:"kicks"`
	Polls    uint64  `json:"polls"`
	ProcS    float64 `json:"proc_s"`      // forwarder threads, schedstat
	ProcStat float64 `json:"proc_stat_s"` // forwarder utime+stime
	NapiS    float64 `json:"napi_s"`      // proxy veth NAPI threads
	Comms    []string
	CPUBusyS []float64 `json:"cpu_busy_s"`
	CPUSirqS []float64 `json:"cpu_softirq_s"`
	CPUStlS  []float64 `json:"cpu_steal_s"`
	GunLog   string    `json:"gun_log,omitempty"`
	PerfLog  string    `json:"perf_log,omitempty"`
}

func readCPUs() ([]cpuSample, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cpuSample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "cpu") || strings.HasPrefix(l, "cpu ") {
			continue
		}
		fs := strings.Fields(l)
		v := make([]uint64, 8)
		for i := range v {
			if i+1 < len(fs) {
				v[i], _ = strconv.ParseUint(fs[i+1], 10, 64)
			}
		}
		out = append(out, cpuSample{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]})
	}
	return out, sc.Err()
}

func schedRuntime(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	fs := strings.Fields(string(b))
	if len(fs) == 0 {
		return 0
	}
	v, _ := strconv.ParseUint(fs[0], 10, 64)
	return v
}

func procStatTicks(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	fs := strings.Fields(s[i+1:])
	// fields after ')': state(0) ... utime is field 14 overall = index 11 here
	if len(fs) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(fs[11], 10, 64)
	st, _ := strconv.ParseUint(fs[12], 10, 64)
	return u + st
}

// tasksRuntime sums the runtime of the threads of pids, keyed by TID so
// that start and end can be matched.
func tasksRuntime(pids []int) map[int]uint64 {
	m := map[int]uint64{}
	for _, pid := range pids {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			m[tid] = schedRuntime(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
		}
	}
	return m
}

// commThreads finds kernel threads whose name starts with one of prefixes.
func commThreads(prefixes []string) map[int]string {
	m := map[int]string{}
	if len(prefixes) == 0 {
		return m
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(b))
		for _, p := range prefixes {
			if strings.HasPrefix(c, p) {
				m[pid] = c
			}
		}
	}
	return m
}

func runMeasure(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	statsPath := fs.String("stats", "", "forwarder's shared counters file")
	pidList := fs.String("pids", "", "forwarder PIDs, comma-separated")
	comm := fs.String("comm", "", "kernel thread name prefixes to account too, comma-separated (e.g. napi/xsp0-)")
	warmup := fs.Duration("warmup", 2*time.Second, "wait before the window")
	dur := fs.Duration("dur", 8*time.Second, "window")
	var r result
	fs.IntVar(&r.Round, "round", 0, "round number (label)")
	fs.StringVar(&r.Variant, "variant", "", "label")
	fs.StringVar(&r.Load, "load", "", "label")
	fs.IntVar(&r.Offered, "offered", 0, "offered qps (label; 0 = as fast as the generator goes)")
	fs.StringVar(&r.GunLog, "gun-log", "", "load generator output to read in the report")
	fs.StringVar(&r.PerfLog, "perf-log", "", "perf report file to show in the report")
	alive := fs.Int("alive", 0, "fail if this PID (the load generator) is gone at the end of the window")
	fs.Parse(args)

	var pids []int
	for _, p := range strings.Split(*pidList, ",") {
		if p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil {
			return err
		}
		pids = append(pids, v)
	}
	var prefixes []string
	if *comm != "" {
		prefixes = strings.Split(*comm, ",")
	}
	time.Sleep(*warmup)
	comms := commThreads(prefixes) // NAPI threads live as long as the interface
	take := func() (sample, map[int]uint64, map[int]uint64, error) {
		var s sample
		var err error
		s.t = time.Now()
		if s.counters, err = readStats(*statsPath); err != nil {
			return s, nil, nil, err
		}
		tasks := tasksRuntime(pids)
		cm := map[int]uint64{}
		for tid, name := range comms {
			cm[tid] = schedRuntime(fmt.Sprintf("/proc/%d/schedstat", tid))
			s.comms = append(s.comms, name)
		}
		for _, p := range pids {
			s.statTick += procStatTicks(p)
		}
		s.cpus, err = readCPUs()
		return s, tasks, cm, err
	}
	a, at, ac, err := take()
	if err != nil {
		return err
	}
	time.Sleep(*dur)
	b, bt, bc, err := take()
	if err != nil {
		return err
	}
	if *alive > 0 {
		if err := unix.Kill(*alive, 0); err != nil {
			return fmt.Errorf("load generator %d ended before the window did: make its duration longer", *alive)
		}
	}
	r.Secs = b.t.Sub(a.t).Seconds()
	r.Queries = b.counters[statQueries] - a.counters[statQueries]
	r.Answers = b.counters[statAnswers] - a.counters[statAnswers]
	r.Dropped = b.counters[statDropped] - a.counters[statDropped]
	r.Batches = b.counters[statBatches] - a.counters[statBatches]
	r.Kicks = b.counters[statKicks] - a.counters[statKicks]
	r.Polls = b.counters[statPolls] - a.counters[statPolls]
	var ns uint64
	for tid, v := range bt {
		ns += v - at[tid] // a thread born in the window started at 0
	}
	r.ProcS = float64(ns) / 1e9
	r.ProcStat = float64(b.statTick-a.statTick) / 100
	ns = 0
	for tid, v := range bc {
		if v0, ok := ac[tid]; ok {
			ns += v - v0
		}
	}
	r.NapiS = float64(ns) / 1e9
	r.Comms = b.comms
	for i := range b.cpus {
		if i >= len(a.cpus) {
			break
		}
		r.CPUBusyS = append(r.CPUBusyS, float64(b.cpus[i].busy()-a.cpus[i].busy())/100)
		r.CPUSirqS = append(r.CPUSirqS, float64(b.cpus[i].Softirq-a.cpus[i].Softirq)/100)
		r.CPUStlS = append(r.CPUStlS, float64(b.cpus[i].Steal-a.cpus[i].Steal)/100)
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}
