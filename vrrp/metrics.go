package vrrp

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one instance's Prometheus series.
type metrics struct {
	state         prometheus.Gauge
	transitions   *prometheus.CounterVec
	sent          prometheus.Counter
	received      prometheus.Counter
	sendErrors    prometheus.Counter
	invalid       *prometheus.CounterVec
	announcements prometheus.Counter
	vrid          string
	reg           prometheus.Registerer
}

// unregister removes the instance's series (an instance removed by a
// reload; one of the same name may come back).
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.all() {
		m.reg.Unregister(c)
	}
}

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.state, m.transitions, m.sent, m.received, m.sendErrors, m.invalid, m.announcements}
}

func newMetrics(r prometheus.Registerer, instance string, vrid uint8, family string) (*metrics, error) {
	l := prometheus.Labels{"instance": instance, "vrid": strconv.Itoa(int(vrid)), "family": family}
	m := &metrics{
		state: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dnslb_vrrp_state", ConstLabels: l,
			Help: "VRRP state: 0 init, 1 backup, 2 master, 3 fault."}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_vrrp_transitions_total", ConstLabels: l,
			Help: "VRRP state changes, by the state entered."}, []string{"state"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "dnslb_vrrp_adverts_sent_total", ConstLabels: l,
			Help: "VRRP adverts sent."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "dnslb_vrrp_adverts_received_total", ConstLabels: l,
			Help: "Valid VRRP adverts received for this VRID."}),
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "dnslb_vrrp_send_errors_total", ConstLabels: l,
			Help: "VRRP adverts that could not be sent."}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_vrrp_adverts_invalid_total", ConstLabels: l,
			Help: "VRRP packets ignored, by reason (ttl, checksum, version, truncated, malformed, other_vrid, auth, interval, overload)."}, []string{"reason"}),
		announcements: prometheus.NewCounter(prometheus.CounterOpts{Name: "dnslb_vrrp_announcements_total", ConstLabels: l,
			Help: "Gratuitous ARP / unsolicited NA rounds sent for the VIPs."}),
		vrid: l["vrid"],
		reg:  r,
	}
	if r != nil {
		for _, c := range m.all() {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("vrrp: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
