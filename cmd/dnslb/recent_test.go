package main

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	reg := prometheus.NewRegistry()
	q := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_backend_queries_total", Help: "h"}, []string{"backend"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dnslb_backend_latency_seconds", Help: "h", Buckets: []float64{.001, .01, .1}}, []string{"backend"})
	reg.MustRegister(q, h)
	for i := 0; i < 1000; i++ { // before the window: slow
		q.WithLabelValues("a").Inc()
		h.WithLabelValues("a").Observe(0.05)
	}
	r := &recentStats{gather: reg}
	r.sample()
	for i := 0; i < 100; i++ { // in the window: fast
		q.WithLabelValues("a").Inc()
		h.WithLabelValues("a").Observe(0.0005)
	}
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
