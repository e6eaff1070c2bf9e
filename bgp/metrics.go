package bgp

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Announcer's.
type metrics struct {
	announced *prometheus.GaugeVec
	changes   *prometheus.CounterVec
	failures  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		announced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dnslb_bgp_announced", Help: "1 while the prefix is announced (or its kernel route is in place), else 0.",
		}, []string{"prefix"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnslb_bgp_route_changes_total", Help: "Announcements and withdrawals made, by action (announce, withdraw).",
		}, []string{"action"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnslb_bgp_route_failures_total", Help: "Announcements and withdrawals that failed (retried), by action.",
		}, []string{"action"}),
	}
	for _, a := range []string{"announce", "withdraw"} {
		m.changes.WithLabelValues(a)
		m.failures.WithLabelValues(a)
	}
	if reg != nil {
		reg.MustRegister(m.announced, m.changes, m.failures)
	}
	return m
}
