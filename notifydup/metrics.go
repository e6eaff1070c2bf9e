package notifydup

import (
	"fmt"
	"math"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// results are the labels of dnslb_notify_received_total.
var results = []string{"copied", "duplicate", "stranger", "rate_limited", "malformed", "not_master", "overload", "stopping"}

// metrics are the dnslb_notify_* series.
type metrics struct {
	received   *prometheus.CounterVec
	copies     *prometheus.CounterVec
	copyErrors *prometheus.CounterVec
	resends    *prometheus.CounterVec
	// resendsDeferred: re-sends put off for want of copy pace.
	resendsDeferred *prometheus.CounterVec
	pending         *prometheus.GaugeVec
	oldest          *prometheus.GaugeVec
	held            *prometheus.GaugeVec
	window          *prometheus.GaugeVec
	soaQueries      *prometheus.CounterVec
	untracked       prometheus.Counter
	tracked         prometheus.Gauge
	trackRate       *prometheus.GaugeVec
	givenUp         *prometheus.CounterVec
	converge        prometheus.Histogram
	ack             prometheus.Histogram
}

// ackBuckets are the upper bounds of dnslb_notify_ack_seconds: a primary
// sends a NOTIFY again after about 1-3 s without an answer (NSD, BIND,
// Knot), and gives up after a few tries.
var ackBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 3, 5}

// convergeBuckets are the upper bounds of dnslb_notify_convergence_seconds.
var convergeBuckets = []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_received_total",
			Help: "NOTIFYs the balancer handed over, by result: copied, duplicate, stranger, rate_limited, malformed, not_master, overload, stopping."}, []string{"result"}),
		copies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_copies_total",
			Help: "NOTIFY copies sent to a backend (first copies and re-sends)."}, []string{"backend"}),
		copyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_copy_errors_total",
			Help: "NOTIFY copies that could not be sent to a backend."}, []string{"backend"}),
		resends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_resends_total",
			Help: "Copies sent again to a backend that looked stuck (still the old serial, no zone converging)."}, []string{"backend"}),
		resendsDeferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_resends_deferred_total",
			Help: "Re-sends put off because first copies were using the backend's notify.copy_qps; the zone is checked again later."}, []string{"backend"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_notify_pending_zones",
			Help: "Zones whose notified serial a backend has not been seen to serve yet."}, []string{"backend"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_notify_copies_held",
			Help: "Copies held back for a backend that has its window (dnslb_notify_copy_window) of copies unconfirmed; they go out as it confirms zones (counted in pending_zones too)."}, []string{"backend"}),
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_notify_copy_window",
			Help: fmt.Sprintf("Copies a backend may have unconfirmed before further ones are held: copy_qps x %g x its mean time to confirm, between %v and %v of copies.",
				cycleConfirmMultiple, defaultTiming.window, defaultTiming.maxCycle())}, []string{"backend"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_notify_oldest_pending_seconds",
			Help: "Age of the oldest NOTIFY a backend has not converged to yet (0 when none)."}, []string{"backend"}),
		soaQueries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_soa_queries_total",
			Help: "SOA queries sent to a backend to track convergence."}, []string{"backend"}),
		untracked: prometheus.NewCounter(prometheus.CounterOpts{Name: "dnslb_notify_untracked_total",
			Help: "Copies not tracked because the tracking table was full (notify.max_tracked): copied once, never re-sent."}),
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dnslb_notify_tracked_pairs",
			Help: "(zone, backend) pairs being tracked, all backends together (at most notify.max_tracked)."}),
		trackRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_notify_track_qps",
			Help: "Current pace of tracking SOA queries to a backend: notify.track_qps, halved while its answers time out."}, []string{"backend"}),
		givenUp: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_given_up_total",
			Help: "Zones a backend did not converge to after notify.retries re-sends: no longer tracked."}, []string{"backend"}),
		converge: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dnslb_notify_convergence_seconds",
			Help:    "Time from a NOTIFY's first copy to dnslb seeing a backend serve its serial (checks are paced by notify.track_qps).",
			Buckets: convergeBuckets}),
		ack: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dnslb_notify_ack_seconds",
			Help:    "Time from receiving a NOTIFY to answering it, once its copies are out (what the primary waits for; it sends again after 1-3 s).",
			Buckets: ackBuckets}),
	}
	for _, res := range results {
		m.received.WithLabelValues(res)
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.received, m.copies, m.copyErrors, m.resends, m.resendsDeferred, m.pending, m.held, m.window, m.oldest, m.soaQueries, m.untracked, m.tracked, m.trackRate, m.givenUp, m.converge, m.ack} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("notifydup: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// counterValues reads a counter vector with one label back, for Stats.
func counterValues(v *prometheus.CounterVec) map[string]uint64 {
	out := map[string]uint64{}
	ch := make(chan prometheus.Metric, 64)
	go func() { v.Collect(ch); close(ch) }()
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil || len(pb.Label) == 0 {
			continue
		}
		out[pb.Label[0].GetValue()] = uint64(pb.Counter.GetValue())
	}
	return out
}

// histogramBuckets reads a histogram back: cumulative counts per upper
// bound (the last one +Inf), the count and the sum.
func histogramBuckets(h prometheus.Histogram) (bounds []float64, counts []uint64, count uint64, sum float64) {
	var pb dto.Metric
	if h.Write(&pb) != nil || pb.Histogram == nil {
		return nil, nil, 0, 0
	}
	for _, b := range pb.Histogram.Bucket {
		bounds = append(bounds, b.GetUpperBound())
		counts = append(counts, b.GetCumulativeCount())
	}
	bounds = append(bounds, math.Inf(1))
	counts = append(counts, pb.Histogram.GetSampleCount())
	return bounds, counts, pb.Histogram.GetSampleCount(), pb.Histogram.GetSampleSum()
}

// counterValue reads one counter.
func counterValue(c prometheus.Counter) uint64 {
	var pb dto.Metric
	if c.Write(&pb) != nil || pb.Counter == nil {
		return 0
	}
	return uint64(pb.Counter.GetValue())
}
