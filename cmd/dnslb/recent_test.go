package main

import (
	"testing"
	"time"

	"github.com/dnslb/dnslb/balancer"
)

func TestQuantile(t *testing.T) {
	// 100 samples: 50 below 1ms, 40 in (1ms, 2ms], 10 in (2ms, 5ms]
	bs := []bucket{{0.001, 50}, {0.002, 90}, {0.005, 100}, {inf, 100}}
	if got := quantile(bs, 0.5); got != time.Millisecond {
		t.Errorf("p50 = %v, want 1ms", got)
	}
	if got := quantile(bs, 0.99); got < 4*time.Millisecond || got > 5*time.Millisecond {
		t.Errorf("p99 = %v, want within (4ms, 5ms]", got)
	}
	over := []bucket{{0.001, 0}, {inf, 10}} // everything above the last bound
	if got := quantile(over, 0.5); got != time.Millisecond {
		t.Errorf("+Inf bucket: %v, want the last finite bound", got)
	}
	if got := quantile([]bucket{{0.001, 0}, {inf, 0}}, 0.5); got != 0 {
		t.Errorf("no samples: %v", got)
	}
}

// TestRecentStatsWindow: the rate and percentiles come from the difference
// between the oldest and newest samples, not from the totals since start.
func TestRecentStatsWindow(t *testing.T) {
	// 1000 slow queries before the window (50ms), 100 fast ones in it
	// (0.5ms); bucket indexes from balancer.LatencyBounds
	slow, fast := bucketFor(0.05), bucketFor(0.0005)
	var st balancer.BackendStats
	st.Name = "a"
	set := func(nSlow, nFast uint64) {
		st.Queries = nSlow + nFast
		for i := range st.Latencies.Cumulative {
			st.Latencies.Cumulative[i] = 0
			if i >= slow {
				st.Latencies.Cumulative[i] += nSlow
			}
			if i >= fast {
				st.Latencies.Cumulative[i] += nFast
			}
		}
		st.Latencies.Count = nSlow + nFast
	}
	r := &recentStats{snapshot: func() []balancer.BackendStats { return []balancer.BackendStats{st} }}
	set(1000, 0)
	r.sample()
	set(1000, 100)
	r.sample()
	r.samples[0].at = r.samples[1].at.Add(-2 * time.Second)
	qps, p50, p99 := r.backend("a")
	if qps != 50 {
		t.Errorf("qps = %v, want 50 (100 queries in 2s)", qps)
	}
	if p50 > time.Millisecond || p99 > time.Millisecond {
		t.Errorf("p50 %v p99 %v: the window's fast answers should be under 1ms", p50, p99)
	}
}

// bucketFor is the index of the first bound of balancer.LatencyBounds at
// or above seconds.
func bucketFor(seconds float64) int {
	for i, le := range balancer.LatencyBounds {
		if seconds <= le {
			return i
		}
	}
	return len(balancer.LatencyBounds)
}
