package notifydup

import (
	"fmt"

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
	pending    *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
	soaQueries *prometheus.CounterVec
	untracked  prometheus.Counter
	converge   prometheus.Histogram
}

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
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_notify_pending_zones",
			Help: "Zones whose notified serial a backend has not been seen to serve yet."}, []string{"backend"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_notify_oldest_pending_seconds",
			Help: "Age of the oldest NOTIFY a backend has not converged to yet (0 when none)."}, []string{"backend"}),
		soaQueries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_notify_soa_queries_total",
			Help: "SOA queries sent to a backend to track convergence."}, []string{"backend"}),
		untracked: prometheus.NewCounter(prometheus.CounterOpts{Name: "dnslb_notify_untracked_total",
			Help: "Copies not tracked because the tracking table was full (copied once, never re-sent)."}),
		converge: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dnslb_notify_convergence_seconds",
			Help:    "Time from a NOTIFY's copy to a backend serving its serial.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120, 300}}),
	}
	for _, res := range results {
		m.received.WithLabelValues(res)
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.received, m.copies, m.copyErrors, m.resends, m.pending, m.oldest, m.soaQueries, m.untracked, m.converge} {
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
