package main

import (
	"sort"
	"sync"
	"time"

	"github.com/dnslb/dnslb/balancer"
)

// recentWindow is how far back `dnslb status` looks for a backend's query
// rate and latency percentiles; recentTick is how often it samples.
const (
	recentWindow = 10 * time.Second
	recentTick   = 2 * time.Second
)

// recentStats turns the balancer's cumulative counters into what an
// operator wants to see now: each backend's queries per second and
// p50/p99 answer latency over the last recentWindow, from the balancer's
// typed snapshots (no metric read back by name).
type recentStats struct {
	snapshot func() []balancer.BackendStats

	mu      sync.Mutex
	samples []recentSample // oldest first, spanning about recentWindow
}

type recentSample struct {
	at      time.Time
	queries map[string]float64
	latency map[string][]bucket // cumulative, by upper bound
}

type bucket struct {
	le    float64
	count float64
}

// run samples every recentTick until stop is closed.
func (r *recentStats) run(stop <-chan struct{}) {
	t := time.NewTicker(recentTick)
	defer t.Stop()
	r.sample()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.sample()
		}
	}
}

func (r *recentStats) sample() {
	s := recentSample{at: time.Now(), queries: map[string]float64{}, latency: map[string][]bucket{}}
	for _, b := range r.snapshot() {
		s.queries[b.Name] += float64(b.Queries + b.TCPQueries)
		bs := s.latency[b.Name]
		if bs == nil {
			bs = make([]bucket, len(balancer.LatencyBounds)+1)
			for i, le := range balancer.LatencyBounds {
				bs[i].le = le
			}
			bs[len(bs)-1].le = inf
		}
		for i := range balancer.LatencyBounds {
			bs[i].count += float64(b.Latencies.Cumulative[i])
		}
		bs[len(bs)-1].count += float64(b.Latencies.Count)
		s.latency[b.Name] = bs
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, s)
	for len(r.samples) > 2 && s.at.Sub(r.samples[1].at) >= recentWindow {
		r.samples = r.samples[1:]
	}
}

const inf = 1e308

// backend returns a backend's query rate and latency percentiles over the
// window; zero values when there is not enough data yet.
func (r *recentStats) backend(name string) (qps float64, p50, p99 time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) < 2 {
		return 0, 0, 0
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	if dt := last.at.Sub(first.at).Seconds(); dt > 0 {
		qps = max(0, last.queries[name]-first.queries[name]) / dt
	}
	a, b := first.latency[name], last.latency[name]
	if len(b) == 0 || len(a) != len(b) {
		a = make([]bucket, len(b)) // a backend added within the window: all of it
		for i := range b {
			a[i].le = b[i].le
		}
	}
	delta := make([]bucket, len(b))
	for i := range b {
		delta[i] = bucket{le: b[i].le, count: b[i].count - a[i].count}
	}
	return qps, quantile(delta, 0.5), quantile(delta, 0.99)
}

// quantile estimates the q-quantile from cumulative buckets the way
// Prometheus's histogram_quantile does: linear within the bucket, the
// highest finite bound for the +Inf bucket.
func quantile(bs []bucket, q float64) time.Duration {
	if len(bs) == 0 || bs[len(bs)-1].count <= 0 {
		return 0
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	rank := q * bs[len(bs)-1].count
	lower, prev := 0.0, 0.0
	for i, b := range bs {
		if b.count >= rank {
			if b.le == inf {
				if i == 0 {
					return 0
				}
				return time.Duration(bs[i-1].le * float64(time.Second))
			}
			frac := 0.0
			if b.count > prev {
				frac = (rank - prev) / (b.count - prev)
			}
			return time.Duration((lower + (b.le-lower)*frac) * float64(time.Second))
		}
		lower, prev = b.le, b.count
	}
	return 0
}
