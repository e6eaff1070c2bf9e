package balancer

import (
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds, in seconds, of the answer latency
// histogram (dnslb_backend_latency_seconds, and BackendStats.Latencies):
// fine below a millisecond, where a healthy backend answers.
var LatencyBounds = [...]float64{.00005, .0001, .0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// latencyHist counts a backend's UDP answer latencies per bucket (the last
// one is +Inf), lock-free and without allocating: the hot path observes,
// the metrics collector and the status page read.
type latencyHist struct {
	counts [len(LatencyBounds) + 1]atomic.Uint64
	sumNS  atomic.Uint64
}

func (h *latencyHist) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(LatencyBounds) && s > LatencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(uint64(d))
}

// Latencies is a snapshot of a latency histogram: cumulative counts per
// bound of LatencyBounds, the total count (the +Inf bucket) and the sum.
type Latencies struct {
	Cumulative [len(LatencyBounds)]uint64
	Count      uint64
	Sum        time.Duration
}

func (h *latencyHist) snapshot() Latencies {
	var l Latencies
	var run uint64
	for i := range LatencyBounds {
		run += h.counts[i].Load()
		l.Cumulative[i] = run
	}
	l.Count = run + h.counts[len(LatencyBounds)].Load()
	l.Sum = time.Duration(h.sumNS.Load())
	return l
}

// add sums two snapshots (a backend retiring while its name is configured
// again, reported once).
func (l Latencies) add(o Latencies) Latencies {
	for i := range l.Cumulative {
		l.Cumulative[i] += o.Cumulative[i]
	}
	l.Count += o.Count
	l.Sum += o.Sum
	return l
}
