package config

import (
	"reflect"
	"slices"
	"time"
)

// HealthCheck holds the health check settings: the global section
// health_check ([Config].HealthCheck), or one backend's effective check, the
// global section merged with backends[i].health_check ([Backend].HealthCheck).
type HealthCheck struct {
	// Enabled is health_check.enabled. For the global section it defaults
	// to true when the file has a health_check section and to false when
	// it has none; DNSLB_HEALTH_CHECK_ENABLED overrides either. A backend
	// is checked only when both the global section and its own (default
	// true) are enabled. When false, neither active probes nor passive
	// detection apply.
	Enabled bool `mapstructure:"enabled"`
	// Query is the probe sent to each backend (health_check.query).
	Query HealthQuery `mapstructure:"query"`
	// Expect says which answers count as healthy (health_check.expect).
	Expect HealthExpect `mapstructure:"expect"`
	// Transport is "udp" (default) or "tcp" (health_check.transport).
	Transport string `mapstructure:"transport" enum:"udp|tcp"`
	// Interval is the time between two probes of one backend
	// (health_check.interval), in [100ms, 1h]; default 1s.
	Interval time.Duration `mapstructure:"interval" range:"[100ms, 1h0m0s]"`
	// Timeout is how long a probe waits for its answer
	// (health_check.timeout), in (0s, Interval]; default 500ms.
	Timeout time.Duration `mapstructure:"timeout" range:"(0s, 1h0m0s]" note:"at most interval"`
	// Rise is how many consecutive successful probes mark a down backend
	// up (health_check.rise), 1-100; default 2.
	Rise int `mapstructure:"rise" range:"1-100"`
	// Fall is how many consecutive failed probes mark an up backend down
	// (health_check.fall), 1-100; default 3.
	Fall int `mapstructure:"fall" range:"1-100"`
	// ProxyV2 says what the probes of a backend with client_address:
	// proxy_v2 (or proxy_v2_udp, probing over UDP) carry
	// (health_check.proxy_v2): "self" (default), a PROXY v2
	// header naming dnslb's own probe socket, for backends that require a
	// header on every query (PowerDNS proxy-protocol-from, Unbound
	// proxy-protocol-port), or "none", no header, for backends that also
	// take plain queries from dnslb (Knot proxy-allowlist).
	ProxyV2 string `mapstructure:"proxy_v2" enum:"self|none" note:"probes of proxy_v2 backends: a header naming dnslb, or none"`
	// AllDown says what to do when every backend is down
	// (health_check.all_down, global only): "fail_open" (default) sends
	// queries to all of them as if they were up, "refuse" answers REFUSED.
	AllDown string `mapstructure:"all_down" enum:"fail_open|refuse" globalonly:"health_check"`
	// Passive holds the passive failure detection settings
	// (health_check.passive, global only).
	Passive HealthPassive `mapstructure:"passive" globalonly:"health_check"`
}

// HealthQuery is the question a health check probe asks.
type HealthQuery struct {
	// Name is the query name (query.name), fully qualified (it ends with a
	// dot); case is kept as written. Required when checks are enabled.
	Name string `mapstructure:"name" kind:"domain" note:"required when enabled"`
	// Type is the query type (query.type: a type name such as SOA, A or
	// TXT, in any case); default SOA. Meta types (OPT, TSIG, TKEY, AXFR,
	// IXFR) are rejected.
	Type uint16 `mapstructure:"type" kind:"qtype"`
	// Class is the query class (query.class: IN, CH, HS, CS or ANY, in any
	// case); default IN.
	Class uint16 `mapstructure:"class" kind:"qclass"`
	// RD is whether the probe sets the Recursion Desired bit (query.rd);
	// default false.
	RD bool `mapstructure:"rd"`
}

// HealthExpect says which answers to a probe count as healthy. An answer
// that does not arrive within the timeout, does not parse or does not match
// the query is a failure.
type HealthExpect struct {
	// Rcodes lists the acceptable response codes (expect.rcodes: names
	// such as NOERROR or NXDOMAIN, in any case), in file order without
	// duplicates; default [NOERROR].
	Rcodes []int `mapstructure:"rcodes" kind:"rcode"`
	// Authoritative requires the AA bit (expect.authoritative); default
	// false.
	Authoritative bool `mapstructure:"authoritative"`
	// AnswerContains, when not empty, requires some RR of the answer
	// section whose text form (dns.RR.String) contains it
	// (expect.answer_contains); default "".
	AnswerContains string `mapstructure:"answer_contains" note:"\"\" checks nothing"`
}

// HealthPassive holds the passive failure detection settings, which judge
// a backend from the queries it is sent rather than from probes.
type HealthPassive struct {
	// MaxConsecutiveTimeouts marks a backend down after this many client
	// queries in a row timed out (passive.max_consecutive_timeouts),
	// 0-1000; default 5, 0 disables passive detection.
	MaxConsecutiveTimeouts int `mapstructure:"max_consecutive_timeouts" range:"0-1000" note:"0 disables"`
	// MaxDownPercent caps passive detection (passive.max_down_percent),
	// 1-100; default 50: it takes a backend down only while fewer than
	// this share of the backends (at least one) is down already, so that
	// an overloaded pool is not shrunk onto fewer backends (a cascade).
	// Probes still take any backend down.
	MaxDownPercent int `mapstructure:"max_down_percent" range:"1-100"`
}

// Equal reports whether h and o hold the same settings.
func (h HealthCheck) Equal(o HealthCheck) bool {
	return sameSettings(reflect.ValueOf(h), reflect.ValueOf(o))
}

// clone returns a copy of h that shares no memory with it.
func (h HealthCheck) clone() HealthCheck {
	h.Expect.Rcodes = slices.Clone(h.Expect.Rcodes)
	return h
}
