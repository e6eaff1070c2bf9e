package balancer

import (
	"github.com/dnslb/dnslb/internal/health"
	"strconv"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the balancer's atomic counters at scrape time, so the
// hot path touches no Prometheus objects except the latency histogram.
type collector struct{ b *Balancer }

var (
	descQueries = prometheus.NewDesc("dnslb_backend_queries_total",
		"Queries forwarded to a backend (UDP queries and TCP messages).", []string{"backend"}, nil)
	descResponses = prometheus.NewDesc("dnslb_backend_responses_total",
		"Answers relayed from a backend, by response code.", []string{"backend", "rcode"}, nil)
	descTimeouts = prometheus.NewDesc("dnslb_backend_timeouts_total",
		"UDP queries a backend did not answer within timeouts.udp.", []string{"backend"}, nil)
	descUnmatched = prometheus.NewDesc("dnslb_backend_unmatched_answers_total",
		"Answers from a backend that matched no in-flight query (ID or question mismatch, late, malformed).", []string{"backend"}, nil)
	descOutstanding = prometheus.NewDesc("dnslb_backend_outstanding",
		"UDP queries in flight to a backend.", []string{"backend"}, nil)
	descBackendTCP = prometheus.NewDesc("dnslb_backend_tcp_connections",
		"Open proxied TCP connections to a backend.", []string{"backend"}, nil)
	descLatencyEWMA = prometheus.NewDesc("dnslb_backend_latency_ewma_seconds",
		"Moving average of a backend's UDP answer latency, used by the least-connection tie-break.", []string{"backend"}, nil)
	descWeight = prometheus.NewDesc("dnslb_backend_weight",
		"Configured weight of a backend.", []string{"backend"}, nil)
	descEligible = prometheus.NewDesc("dnslb_backend_eligible",
		"1 if the backend may receive new queries (active, up, configured), else 0.", []string{"backend"}, nil)
	descUp = prometheus.NewDesc("dnslb_backend_up",
		"1 if health checks say the backend is up (or it is not checked), 0 if pending or down.", []string{"backend"}, nil)
	descRetried = prometheus.NewDesc("dnslb_backend_retried_total",
		"UDP queries that timed out on a backend and were retried (on another backend, or on this one if it alone was answering).", []string{"backend"}, nil)
	descDropped = prometheus.NewDesc("dnslb_frontend_dropped_total",
		"Packets or connections dropped instead of relayed, by reason.", []string{"reason"}, nil)
	descAnswered = prometheus.NewDesc("dnslb_frontend_answered_total",
		"Queries dnslb answered itself instead of a backend, by reason (all_down, over_limit, notify, notify_stranger, cookie, formerr, backend_failed, no_backend).", []string{"reason"}, nil)
	descLatency = prometheus.NewDesc("dnslb_backend_latency_seconds",
		"Time from forwarding a UDP query to receiving its answer, per backend.", []string{"backend"}, nil)
	descCaseChanged = prometheus.NewDesc("dnslb_backend_answers_case_changed_total",
		"Answers relayed whose question differs from the query's in letter case only (matched case-insensitively).", []string{"backend"}, nil)
	descNoQuestion = prometheus.NewDesc("dnslb_backend_answers_without_question_total",
		"Error answers (rcode other than NOERROR and NXDOMAIN) relayed without a question section, matched to their query by ID and source only.", []string{"backend"}, nil)
	descNotify = prometheus.NewDesc("dnslb_frontend_notify_answered_total",
		"DNS NOTIFYs answered by the balancer itself (notify enabled): NOERROR to primaries, REFUSED to others.", []string{"rcode"}, nil)
	descNotifySigned = prometheus.NewDesc("dnslb_frontend_notify_signed_total",
		"NOERROR answers to TSIG-signed NOTIFYs that the balancer signed with the request's key.", nil, nil)
	descTCP = prometheus.NewDesc("dnslb_tcp_connections",
		"Open client TCP connections.", nil, nil)
	descRRLLimited = prometheus.NewDesc("dnslb_rrl_limited_total",
		"UDP answers over their rrl rate, by response class (positive, nxdomain, error, any) and action (dropped, slipped: sent as TC=1, log_only: sent anyway).", []string{"class", "action"}, nil)
	descRRLTable = prometheus.NewDesc("dnslb_rrl_table_bytes",
		"Memory of the rrl account table (fixed: rrl.table_size × 32 bytes); 0 when rrl is off.", nil, nil)
	descClientAddress = prometheus.NewDesc("dnslb_backend_client_address",
		"How a backend learns the client's address: 1 for its client_address mode (none, proxy_v2, ecs).", []string{"backend", "mode"}, nil)
)

// Describe sends every metric description (prometheus.Collector).
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueries, descResponses, descTimeouts, descUnmatched,
		descOutstanding, descBackendTCP, descLatencyEWMA, descWeight, descEligible, descUp, descRetried, descDropped, descAnswered, descCaseChanged, descNoQuestion, descLatency, descNotify, descNotifySigned, descTCP, descRRLLimited, descRRLTable, descClientAddress} {
		ch <- d
	}
}

// Collect sends the current values (prometheus.Collector).
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	// A backend whose address changed is, for a moment, both retiring and
	// configured under one name: sum them so each label set appears once.
	type agg struct {
		s        BackendStats
		eligible bool
		current  bool
	}
	var order []string
	byName := map[string]*agg{}
	for _, be := range c.b.pool.all() {
		s := be.stats()
		a, ok := byName[s.Name]
		if !ok {
			a = &agg{s: s}
			byName[s.Name] = a
			order = append(order, s.Name)
		} else {
			a.s.Queries += s.Queries
			a.s.TCPQueries += s.TCPQueries
			a.s.Timeouts += s.Timeouts
			a.s.Retried += s.Retried
			a.s.Unmatched += s.Unmatched
			a.s.CaseChanged += s.CaseChanged
			a.s.NoQuestion += s.NoQuestion
			a.s.Latencies = a.s.Latencies.add(s.Latencies)
			a.s.Outstanding += s.Outstanding
			a.s.TCPActive += s.TCPActive
			for i := range s.Responses {
				a.s.Responses[i] += s.Responses[i]
			}
		}
		if !s.Removed {
			a.current = true
			a.s.Weight, a.s.Latency, a.s.Health, a.s.ClientAddress = s.Weight, s.Latency, s.Health, s.ClientAddress
			a.eligible = be.eligible()
		}
	}
	for _, name := range order {
		a := byName[name]
		s := a.s
		ch <- prometheus.MustNewConstMetric(descQueries, prometheus.CounterValue, float64(s.Queries+s.TCPQueries), name)
		for rc, n := range s.Responses {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descResponses, prometheus.CounterValue, float64(n), name, RcodeName(rc))
			}
		}
		ch <- prometheus.MustNewConstMetric(descTimeouts, prometheus.CounterValue, float64(s.Timeouts), name)
		ch <- prometheus.MustNewConstMetric(descRetried, prometheus.CounterValue, float64(s.Retried), name)
		ch <- prometheus.MustNewConstMetric(descUnmatched, prometheus.CounterValue, float64(s.Unmatched), name)
		ch <- prometheus.MustNewConstMetric(descCaseChanged, prometheus.CounterValue, float64(s.CaseChanged), name)
		ch <- prometheus.MustNewConstMetric(descNoQuestion, prometheus.CounterValue, float64(s.NoQuestion), name)
		buckets := make(map[float64]uint64, len(LatencyBounds))
		for i, le := range LatencyBounds {
			buckets[le] = s.Latencies.Cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(descLatency, s.Latencies.Count, s.Latencies.Sum.Seconds(), buckets, name)
		ch <- prometheus.MustNewConstMetric(descOutstanding, prometheus.GaugeValue, float64(s.Outstanding), name)
		ch <- prometheus.MustNewConstMetric(descBackendTCP, prometheus.GaugeValue, float64(s.TCPActive), name)
		ch <- prometheus.MustNewConstMetric(descLatencyEWMA, prometheus.GaugeValue, s.Latency.Seconds(), name)
		if a.current {
			ch <- prometheus.MustNewConstMetric(descWeight, prometheus.GaugeValue, float64(s.Weight), name)
			ch <- prometheus.MustNewConstMetric(descClientAddress, prometheus.GaugeValue, 1, name, s.ClientAddress.String())
		}
		eligible := 0.0
		if a.eligible {
			eligible = 1
		}
		ch <- prometheus.MustNewConstMetric(descEligible, prometheus.GaugeValue, eligible, name)
		up := 0.0
		if a.current && s.Health == health.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, name)
	}
	for r := dropReason(1); r < numDropReasons; r++ {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(c.b.ctr.drops[r].Load()), r.String())
	}
	for k := answerKind(0); k < numAnswerKinds; k++ {
		ch <- prometheus.MustNewConstMetric(descAnswered, prometheus.CounterValue, float64(c.b.ctr.answers[k].Load()), k.String())
	}
	ch <- prometheus.MustNewConstMetric(descNotify, prometheus.CounterValue, float64(c.b.ctr.notifies[0].Load()), "NOERROR")
	ch <- prometheus.MustNewConstMetric(descNotify, prometheus.CounterValue, float64(c.b.ctr.notifies[1].Load()), "REFUSED")
	ch <- prometheus.MustNewConstMetric(descNotifySigned, prometheus.CounterValue, float64(c.b.ctr.signedNotifies.Load()))
	ch <- prometheus.MustNewConstMetric(descTCP, prometheus.GaugeValue, float64(c.b.tcpf.conns.Load()))
	st := c.b.RRL()
	for class, byAction := range st.Limited {
		for action, n := range byAction {
			ch <- prometheus.MustNewConstMetric(descRRLLimited, prometheus.CounterValue, float64(n), class, action)
		}
	}
	ch <- prometheus.MustNewConstMetric(descRRLTable, prometheus.GaugeValue, float64(st.TableBytes))
}

// DropReasons lists the reason labels of dnslb_frontend_dropped_total.
func DropReasons() []string {
	var out []string
	for r := dropReason(1); r < numDropReasons; r++ {
		out = append(out, r.String())
	}
	return out
}

// AnswerReasons lists the reason labels of dnslb_frontend_answered_total.
func AnswerReasons() []string {
	var out []string
	for k := answerKind(0); k < numAnswerKinds; k++ {
		out = append(out, k.String())
	}
	return out
}

// RcodeName returns the mnemonic of a 4-bit response code.
func RcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}
