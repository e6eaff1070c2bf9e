package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// defaultHC is the health check of a file without a health_check section.
func defaultHC() HealthCheck {
	return HealthCheck{
		Enabled:   false,
		Query:     HealthQuery{Type: dns.TypeSOA, Class: dns.ClassINET},
		Expect:    HealthExpect{Rcodes: []int{dns.RcodeSuccess}},
		Transport: "udp",
		ProxyV2:   "self",
		Interval:  time.Second,
		Timeout:   500 * time.Millisecond,
		Rise:      2,
		Fall:      3,
		AllDown:   "fail_open",
		Passive:   HealthPassive{MaxConsecutiveTimeouts: 5, MaxDownPercent: 50},
	}
}

// enabledHC is defaultHC enabled with query name example.test.
func enabledHC() HealthCheck {
	h := defaultHC()
	h.Enabled = true
	h.Query.Name = "example.test."
	return h
}

// hcSection is the smallest enabled global health_check section.
const hcSection = "health_check: {query: {name: example.test}}\n"

func TestHealthCheckDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       HealthCheck
	}{
		{"absent", "", defaultHC()},
		{"null", "health_check:\n", defaultHC()},
		{"empty mapping counts as absent", "health_check: {}\n", defaultHC()},
		{"only the name", hcSection, enabledHC()},
		{"disabled keeps its values", "health_check: {enabled: false, interval: 5s}\n",
			func() HealthCheck { h := defaultHC(); h.Interval = 5 * time.Second; return h }()},
		{"disabled needs no name", "health_check: {enabled: false}\n", defaultHC()},
		{"every key", "health_check:\n" +
			"  enabled: true\n" +
			"  query: {name: Example.ORG., type: txt, class: ch, rd: true}\n" +
			"  expect: {rcodes: [NXDOMAIN, noerror, ServFail], authoritative: true, answer_contains: 'v=spf1'}\n" +
			"  transport: TCP\n  interval: 1h\n  timeout: 1h\n  rise: 100\n  fall: 1\n  proxy_v2: NONE\n" +
			"  all_down: refuse\n  passive: {max_consecutive_timeouts: 0}\n",
			HealthCheck{
				Enabled:   true,
				Query:     HealthQuery{Name: "Example.ORG.", Type: dns.TypeTXT, Class: dns.ClassCHAOS, RD: true},
				Expect:    HealthExpect{Rcodes: []int{dns.RcodeNameError, dns.RcodeSuccess, dns.RcodeServerFailure}, Authoritative: true, AnswerContains: "v=spf1"},
				Transport: "tcp",
				ProxyV2:   "none",
				Interval:  time.Hour,
				Timeout:   time.Hour,
				Rise:      100,
				Fall:      1,
				AllDown:   "refuse",
				Passive:   HealthPassive{MaxConsecutiveTimeouts: 0, MaxDownPercent: 50},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			cfg := mustParse(t, withDefaults(tc.yaml))
			checkSame(t, "HealthCheck", cfg.HealthCheck, tc.want)
			// Without overrides every backend has exactly the global check.
			checkSame(t, "Backends[0].HealthCheck", cfg.Backends[0].HealthCheck, tc.want)
		})
	}
}

func TestHealthCheckAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(HealthCheck) bool
	}{
		{"root name", "health_check: {query: {name: .}}\n",
			func(h HealthCheck) bool { return h.Query.Name == "." }},
		{"fully qualified name kept", "health_check: {query: {name: a.example.}}\n",
			func(h HealthCheck) bool { return h.Query.Name == "a.example." }},
		{"name case kept", "health_check: {query: {name: ExAmple.Test}}\n",
			func(h HealthCheck) bool { return h.Query.Name == "ExAmple.Test." }},
		{"type and class any case", "health_check: {query: {name: x, type: aaaa, class: Hs}}\n",
			func(h HealthCheck) bool { return h.Query.Type == dns.TypeAAAA && h.Query.Class == dns.ClassHESIOD }},
		{"rcodes as one string", "health_check: {query: {name: x}, expect: {rcodes: 'noerror, NXDOMAIN refused'}}\n",
			func(h HealthCheck) bool {
				return slices.Equal(h.Expect.Rcodes, []int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeRefused})
			}},
		{"NOTIMPL alias", "health_check: {query: {name: x}, expect: {rcodes: [NOTIMPL]}}\n",
			func(h HealthCheck) bool { return slices.Equal(h.Expect.Rcodes, []int{dns.RcodeNotImplemented}) }},
		{"booleans as words", "health_check: {enabled: 'yes', query: {name: x, rd: 'On'}, expect: {authoritative: 'TRUE'}}\n",
			func(h HealthCheck) bool { return h.Enabled && h.Query.RD && h.Expect.Authoritative }},
		{"quoted integers", "health_check: {query: {name: x}, rise: '5', passive: {max_consecutive_timeouts: '1000'}}\n",
			func(h HealthCheck) bool { return h.Rise == 5 && h.Passive.MaxConsecutiveTimeouts == 1000 }},
		{"interval at the minimum, timeout equal", "health_check: {query: {name: x}, interval: 100ms, timeout: 100ms}\n",
			func(h HealthCheck) bool { return h.Interval == 100*time.Millisecond && h.Timeout == h.Interval }},
		{"null keys keep defaults", "health_check: {query: {name: x, type: ~}, interval: ~, passive: ~}\n",
			func(h HealthCheck) bool {
				return h.Query.Type == dns.TypeSOA && h.Interval == time.Second && h.Passive.MaxConsecutiveTimeouts == 5
			}},
		{"upper-case keys", "Health_Check: {Query: {Name: x}, Rise: 4}\n",
			func(h HealthCheck) bool { return h.Enabled && h.Rise == 4 }},
		{"answer_contains a number", "health_check: {query: {name: x}, expect: {answer_contains: 42}}\n",
			func(h HealthCheck) bool { return h.Expect.AnswerContains == "42" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, withDefaults(tc.yaml), nil, func(c *Config) HealthCheck { return c.HealthCheck }, tc.check)
		})
	}
}

func TestHealthCheckProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string   // completed by withDefaults
		want []string // every problem, in order
	}{
		// global section: shape and unknown keys
		{"not a mapping", "health_check: yes\n",
			[]string{"health_check: must be a mapping, not a string"}},
		{"unknown key", "health_check: {query: {name: x}, intervall: 1s}\n",
			[]string{"health_check.intervall: unknown key"}},
		{"unknown query key", "health_check: {query: {name: x, nmae: y}}\n",
			[]string{"health_check.query.nmae: unknown key"}},
		{"unknown expect and passive keys", "health_check: {query: {name: x}, expect: {rcode: [NOERROR]}, passive: {max: 1}}\n",
			[]string{"health_check.expect.rcode: unknown key", "health_check.passive.max: unknown key"}},
		{"query not a mapping", "health_check: {query: example.org. A}\n",
			[]string{"health_check.query: must be a mapping, not a string"}},
		{"expect not a mapping", "health_check: {query: {name: x}, expect: [NOERROR]}\n",
			[]string{"health_check.expect: must be a mapping, not a list"}},
		{"passive not a mapping", "health_check: {query: {name: x}, passive: 5}\n",
			[]string{"health_check.passive: must be a mapping, not a number"}},

		// enabled
		{"enabled not a boolean", "health_check: {enabled: maybe, query: {name: x}}\n",
			[]string{`health_check.enabled: "maybe": not a boolean (true or false)`}},
		{"enabled a list", "health_check: {enabled: [true], query: {name: x}}\n",
			[]string{"health_check.enabled: must be a boolean, not a list"}},
		{"enabled a number", "health_check: {enabled: 1, query: {name: x}}\n",
			[]string{`health_check.enabled: "1": not a boolean (true or false)`}},

		// query
		{"name required", "health_check: {interval: 2s}\n",
			[]string{"health_check.query.name: required"}},
		{"name empty", "health_check: {query: {name: ''}}\n",
			[]string{"health_check.query.name: required"}},
		{"name required with enabled true", "health_check: {enabled: true, query: {type: A}}\n",
			[]string{"health_check.query.name: required"}},
		{"name invalid", "health_check: {query: {name: 'a..b'}}\n",
			[]string{`health_check.query.name: "a..b": not a domain name`}},
		{"name invalid even when disabled", "health_check: {enabled: false, query: {name: '.a'}}\n",
			[]string{`health_check.query.name: ".a": not a domain name`}},
		{"name too long", "health_check: {query: {name: " + strings.Repeat("a", 64) + ".test}}\n",
			[]string{`health_check.query.name: "` + strings.Repeat("a", 64) + `.test": not a domain name`}},
		{"name a mapping", "health_check: {query: {name: {a: 1}}}\n",
			[]string{"health_check.query.name: must be a string, not a mapping"}},
		{"type unknown", "health_check: {query: {name: x, type: AAA}}\n",
			[]string{`health_check.query.type: "AAA": unknown type`}},
		{"type a number", "health_check: {query: {name: x, type: 1}}\n",
			[]string{`health_check.query.type: "1": unknown type`}},
		{"type AXFR", "health_check: {query: {name: x, type: axfr}}\n",
			[]string{`health_check.query.type: "axfr": not usable in a health check query`}},
		{"type OPT", "health_check: {query: {name: x, type: OPT}}\n",
			[]string{`health_check.query.type: "OPT": not usable in a health check query`}},
		{"class unknown", "health_check: {query: {name: x, class: INET}}\n",
			[]string{`health_check.query.class: "INET": unknown class`}},
		{"class NONE", "health_check: {query: {name: x, class: none}}\n",
			[]string{`health_check.query.class: "none": not usable in a health check query`}},
		{"rd not a boolean", "health_check: {query: {name: x, rd: 2}}\n",
			[]string{`health_check.query.rd: "2": not a boolean (true or false)`}},

		// expect
		{"rcode unknown", "health_check: {query: {name: x}, expect: {rcodes: [NOERROR, NOPE]}}\n",
			[]string{`health_check.expect.rcodes[1]: "NOPE": unknown rcode`}},
		{"rcode a number", "health_check: {query: {name: x}, expect: {rcodes: [0]}}\n",
			[]string{`health_check.expect.rcodes[0]: "0": unknown rcode`}},
		{"rcode a list", "health_check: {query: {name: x}, expect: {rcodes: [[NOERROR]]}}\n",
			[]string{"health_check.expect.rcodes[0]: must be a string, not a list"}},
		{"rcode duplicate", "health_check: {query: {name: x}, expect: {rcodes: [NOERROR, NXDOMAIN, noerror]}}\n",
			[]string{"health_check.expect.rcodes[2]: duplicate of health_check.expect.rcodes[0]"}},
		{"rcodes empty", "health_check: {query: {name: x}, expect: {rcodes: []}}\n",
			[]string{"health_check.expect.rcodes: required"}},
		{"rcodes a mapping", "health_check: {query: {name: x}, expect: {rcodes: {NOERROR: 1}}}\n",
			[]string{"health_check.expect.rcodes: must be a list of rcode names such as NOERROR, not a mapping"}},
		{"authoritative not a boolean", "health_check: {query: {name: x}, expect: {authoritative: aa}}\n",
			[]string{`health_check.expect.authoritative: "aa": not a boolean (true or false)`}},
		{"answer_contains a list", "health_check: {query: {name: x}, expect: {answer_contains: [a]}}\n",
			[]string{"health_check.expect.answer_contains: must be a string, not a list"}},

		// transport, interval, timeout
		{"transport unknown", "health_check: {query: {name: x}, transport: quic}\n",
			[]string{`health_check.transport: "quic": must be one of udp, tcp`}},
		{"interval too short", "health_check: {query: {name: x}, interval: 50ms, timeout: 10ms}\n",
			[]string{"health_check.interval: 50ms out of range [100ms, 1h0m0s]"}},
		{"interval too long", "health_check: {query: {name: x}, interval: 61m}\n",
			[]string{"health_check.interval: 1h1m0s out of range [100ms, 1h0m0s]"}},
		{"interval without unit", "health_check: {query: {name: x}, interval: 5}\n",
			[]string{`health_check.interval: "5": not a duration (use units, e.g. 500ms)`}},
		{"interval not a duration", "health_check: {query: {name: x}, interval: often}\n",
			[]string{`health_check.interval: "often": not a duration`}},
		{"timeout zero", "health_check: {query: {name: x}, timeout: 0s}\n",
			[]string{"health_check.timeout: 0s out of range (0s, 1h0m0s]"}},
		{"timeout negative", "health_check: {query: {name: x}, timeout: -1s}\n",
			[]string{"health_check.timeout: -1s out of range (0s, 1h0m0s]"}},
		{"timeout exceeds interval", "health_check: {query: {name: x}, timeout: 2s}\n",
			[]string{"health_check.timeout: 2s exceeds health_check.interval (1s)"}},
		{"default timeout exceeds interval", "health_check: {query: {name: x}, interval: 200ms}\n",
			[]string{"health_check.timeout: 500ms exceeds health_check.interval (200ms)"}},
		{"timeout not compared to a bad interval", "health_check: {query: {name: x}, interval: 50ms, timeout: 2s}\n",
			[]string{"health_check.interval: 50ms out of range [100ms, 1h0m0s]"}},

		// rise, fall, all_down, passive
		{"rise zero", "health_check: {query: {name: x}, rise: 0}\n",
			[]string{"health_check.rise: 0 out of range 1-100"}},
		{"fall too big", "health_check: {query: {name: x}, fall: 101}\n",
			[]string{"health_check.fall: 101 out of range 1-100"}},
		{"fall not an integer", "health_check: {query: {name: x}, fall: few}\n",
			[]string{`health_check.fall: "few": not an integer`}},
		{"all_down unknown", "health_check: {query: {name: x}, all_down: fail_closed}\n",
			[]string{`health_check.all_down: "fail_closed": must be one of fail_open, refuse`}},
		{"max_consecutive_timeouts negative", "health_check: {query: {name: x}, passive: {max_consecutive_timeouts: -1}}\n",
			[]string{"health_check.passive.max_consecutive_timeouts: -1 out of range 0-1000"}},
		{"max_consecutive_timeouts too big", "health_check: {query: {name: x}, passive: {max_consecutive_timeouts: 1001}}\n",
			[]string{"health_check.passive.max_consecutive_timeouts: 1001 out of range 0-1000"}},
		{"max_down_percent zero", "health_check: {query: {name: x}, passive: {max_down_percent: 0}}\n",
			[]string{"health_check.passive.max_down_percent: 0 out of range 1-100"}},

		{"problems in schema order", "health_check:\n" +
			"  zzz: 1\n  fall: 0\n  rise: 0\n  interval: 5\n  transport: x\n" +
			"  expect: {rcodes: [X], bogus: 1}\n  query: {type: Y, nmae: x}\n  enabled: z\n  all_down: q\n",
			[]string{
				`health_check.enabled: "z": not a boolean (true or false)`,
				"health_check.query.name: required",
				`health_check.query.type: "Y": unknown type`,
				"health_check.query.nmae: unknown key",
				`health_check.expect.rcodes[0]: "X": unknown rcode`,
				"health_check.expect.bogus: unknown key",
				`health_check.transport: "x": must be one of udp, tcp`,
				`health_check.interval: "5": not a duration (use units, e.g. 500ms)`,
				"health_check.rise: 0 out of range 1-100",
				"health_check.fall: 0 out of range 1-100",
				`health_check.all_down: "q": must be one of fail_open, refuse`,
				"health_check.zzz: unknown key",
			}},

		// backends[i].health_check
		{"backend section without global", "backends: [{name: a, address: '10.0.0.1:53', health_check: {rise: 3}}]\n",
			[]string{"backends[0].health_check: needs the global health_check section (it sets the defaults)"}},
		{"backend section with global disabled",
			"backends: [{name: a, address: '10.0.0.1:53', health_check: {enabled: false}}]\nhealth_check: {enabled: false}\n",
			[]string{"backends[0].health_check: needs the global health_check section (it sets the defaults)"}},
		{"backend section without global still validated", "backends: [{name: a, address: '10.0.0.1:53', health_check: {rise: 0}}]\n",
			[]string{
				"backends[0].health_check: needs the global health_check section (it sets the defaults)",
				"backends[0].health_check.rise: 0 out of range 1-100",
			}},
		{"backend empty section without global is no override", "backends: [{name: a, address: '10.0.0.1:53', health_check: {}}]\ntimeouts: {udp: 0s}\n",
			[]string{"timeouts.udp: 0s out of range (0s, 30s]"}},
		{"backend section not a mapping", "backends: [{name: a, address: '10.0.0.1:53', health_check: 'off'}]\n" + hcSection,
			[]string{"backends[0].health_check: must be a mapping, not a string"}},
		{"backend all_down", "backends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: '10.0.0.2:53', health_check: {all_down: refuse}}\n" + hcSection,
			[]string{"backends[1].health_check.all_down: only allowed in the global health_check section"}},
		{"backend passive", "backends: [{name: a, address: '10.0.0.1:53', health_check: {passive: {max_consecutive_timeouts: 1}}}]\n" + hcSection,
			[]string{"backends[0].health_check.passive: only allowed in the global health_check section"}},
		{"backend unknown keys", "backends: [{name: a, address: '10.0.0.1:53', health_check: {riise: 1, query: {nmae: x}, expect: {aa: true}}}]\n" + hcSection,
			[]string{
				"backends[0].health_check.query.nmae: unknown key",
				"backends[0].health_check.expect.aa: unknown key",
				"backends[0].health_check.riise: unknown key",
			}},
		{"backend rise", "backends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: '10.0.0.2:53'}\n- {name: c, address: '10.0.0.3:53', health_check: {rise: 0}}\n" + hcSection,
			[]string{"backends[2].health_check.rise: 0 out of range 1-100"}},
		{"backend values", "backends: [{name: a, address: '10.0.0.1:53', health_check: {enabled: x, query: {name: 'a..b', type: AAA, class: X, rd: 3}, expect: {rcodes: [NOPE], authoritative: x}, transport: quic, interval: 1d, timeout: 0s, fall: 0}}]\n" + hcSection,
			[]string{
				`backends[0].health_check.enabled: "x": not a boolean (true or false)`,
				`backends[0].health_check.query.name: "a..b": not a domain name`,
				`backends[0].health_check.query.type: "AAA": unknown type`,
				`backends[0].health_check.query.class: "X": unknown class`,
				`backends[0].health_check.query.rd: "3": not a boolean (true or false)`,
				`backends[0].health_check.expect.rcodes[0]: "NOPE": unknown rcode`,
				`backends[0].health_check.expect.authoritative: "x": not a boolean (true or false)`,
				`backends[0].health_check.transport: "quic": must be one of udp, tcp`,
				`backends[0].health_check.interval: "1d": not a duration`,
				"backends[0].health_check.timeout: 0s out of range (0s, 1h0m0s]",
				"backends[0].health_check.fall: 0 out of range 1-100",
			}},
		{"backend empty name", "backends: [{name: a, address: '10.0.0.1:53', health_check: {query: {name: ''}}}]\n" + hcSection,
			[]string{"backends[0].health_check.query.name: required"}},
		{"backend query not a mapping", "backends: [{name: a, address: '10.0.0.1:53', health_check: {query: x}}]\n" + hcSection,
			[]string{"backends[0].health_check.query: must be a mapping, not a string"}},
		{"backend problems before the global ones", "backends: [{name: a, address: '10.0.0.1:53', health_check: {rise: 0}}]\nhealth_check: {query: {name: x}, fall: 0}\n",
			[]string{"backends[0].health_check.rise: 0 out of range 1-100", "health_check.fall: 0 out of range 1-100"}},
		{"global problem reported once", "backends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: '10.0.0.2:53', health_check: {rise: 3}}\nhealth_check: {rise: 0}\n",
			[]string{"health_check.query.name: required", "health_check.rise: 0 out of range 1-100"}},
		{"broken global section does not cascade", "backends: [{name: a, address: '10.0.0.1:53', health_check: {rise: 3}}]\nhealth_check: [x]\n",
			[]string{"health_check: must be a mapping, not a list"}},

		// timeout against interval, merged per backend
		{"backend timeout exceeds global interval", "backends: [{name: a, address: '10.0.0.1:53', health_check: {timeout: 2s}}]\n" + hcSection,
			[]string{"backends[0].health_check.timeout: 2s exceeds health_check.interval (1s)"}},
		{"backend timeout exceeds its interval", "backends: [{name: a, address: '10.0.0.1:53', health_check: {interval: 2s, timeout: 3s}}]\n" + hcSection,
			[]string{"backends[0].health_check.timeout: 3s exceeds backends[0].health_check.interval (2s)"}},
		{"backend interval below global timeout", "backends: [{name: a, address: '10.0.0.1:53', health_check: {interval: 200ms}}]\n" + hcSection,
			[]string{"backends[0].health_check.interval: 200ms is shorter than health_check.timeout (500ms)"}},
		{"backend interval below set global timeout", "backends: [{name: a, address: '10.0.0.1:53', health_check: {interval: 1s}}]\nhealth_check: {query: {name: x}, interval: 5s, timeout: 2s}\n",
			[]string{"backends[0].health_check.interval: 1s is shorter than health_check.timeout (2s)"}},
		{"global pair broken, backend inherits", "backends: [{name: a, address: '10.0.0.1:53', health_check: {rise: 3}}]\nhealth_check: {query: {name: x}, timeout: 2s}\n",
			[]string{"health_check.timeout: 2s exceeds health_check.interval (1s)"}},
		{"global pair broken, backend interval not compared", "backends: [{name: a, address: '10.0.0.1:53', health_check: {interval: 1500ms}}]\nhealth_check: {query: {name: x}, timeout: 2s}\n",
			[]string{"health_check.timeout: 2s exceeds health_check.interval (1s)"}},
		{"backend with bad interval not compared", "backends: [{name: a, address: '10.0.0.1:53', health_check: {interval: 10ms, timeout: 2s}}]\n" + hcSection,
			[]string{"backends[0].health_check.interval: 10ms out of range [100ms, 1h0m0s]"}},

		// timeouts.udp_retry
		{"udp_retry not a boolean", "timeouts: {udp_retry: twice}\n",
			[]string{`timeouts.udp_retry: "twice": not a boolean (true or false)`}},
		{"udp_retry a number", "timeouts: {udp_retry: 1}\n",
			[]string{`timeouts.udp_retry: "1": not a boolean (true or false)`}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), nil, tc.want) })
	}
}

func TestHealthCheckMerge(t *testing.T) {
	const global = "health_check:\n" +
		"  query: {name: example.test, type: SOA, rd: true}\n" +
		"  expect: {rcodes: [NOERROR, NXDOMAIN], authoritative: true, answer_contains: ns1}\n" +
		"  transport: udp\n  interval: 2s\n  timeout: 1s\n  rise: 4\n  fall: 5\n" +
		"  all_down: refuse\n  passive: {max_consecutive_timeouts: 7}\n"
	base := HealthCheck{
		Enabled:   true,
		Query:     HealthQuery{Name: "example.test.", Type: dns.TypeSOA, Class: dns.ClassINET, RD: true},
		Expect:    HealthExpect{Rcodes: []int{dns.RcodeSuccess, dns.RcodeNameError}, Authoritative: true, AnswerContains: "ns1"},
		Transport: "udp",
		ProxyV2:   "self",
		Interval:  2 * time.Second,
		Timeout:   time.Second,
		Rise:      4,
		Fall:      5,
		AllDown:   "refuse",
		Passive:   HealthPassive{MaxConsecutiveTimeouts: 7, MaxDownPercent: 50},
	}
	for _, tc := range []struct {
		name     string
		override string // the value of backends[0].health_check
		edit     func(*HealthCheck)
	}{
		{"no override", "", func(*HealthCheck) {}},
		{"null override", "~", func(*HealthCheck) {}},
		{"empty override", "{}", func(*HealthCheck) {}},
		{"one query key keeps the others", "{query: {type: A}}",
			func(h *HealthCheck) { h.Query.Type = dns.TypeA }},
		{"query name only", "{query: {name: other.test.}}",
			func(h *HealthCheck) { h.Query.Name = "other.test." }},
		{"query class and rd", "{query: {class: CH, rd: false}}",
			func(h *HealthCheck) { h.Query.Class, h.Query.RD = dns.ClassCHAOS, false }},
		{"one expect key keeps the others", "{expect: {authoritative: false}}",
			func(h *HealthCheck) { h.Expect.Authoritative = false }},
		{"rcodes replaced whole", "{expect: {rcodes: [REFUSED]}}",
			func(h *HealthCheck) { h.Expect.Rcodes = []int{dns.RcodeRefused} }},
		{"answer_contains cleared", "{expect: {answer_contains: ''}}",
			func(h *HealthCheck) { h.Expect.AnswerContains = "" }},
		{"scalars", "{transport: tcp, interval: 10s, timeout: 3s, rise: 1, fall: 9}",
			func(h *HealthCheck) {
				h.Transport, h.Interval, h.Timeout, h.Rise, h.Fall = "tcp", 10*time.Second, 3*time.Second, 1, 9
			}},
		{"interval alone", "{interval: 1500ms}",
			func(h *HealthCheck) { h.Interval = 1500 * time.Millisecond }},
		{"disabled", "{enabled: false}",
			func(h *HealthCheck) { h.Enabled = false }},
		{"enabled true is the default", "{enabled: true, query: ~}",
			func(*HealthCheck) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			doc := "listen: ['127.0.0.1:53']\nbackends:\n- name: a\n  address: 10.0.0.1:53\n"
			if tc.override != "" {
				doc += "  health_check: " + tc.override + "\n"
			}
			doc += "- {name: b, address: '10.0.0.2:53'}\n" + global
			cfg := mustParse(t, doc)
			want := base.clone()
			tc.edit(&want)
			checkSame(t, "Backends[0].HealthCheck", cfg.Backends[0].HealthCheck, want)
			// The global section and the other backends are untouched.
			checkSame(t, "HealthCheck", cfg.HealthCheck, base)
			checkSame(t, "Backends[1].HealthCheck", cfg.Backends[1].HealthCheck, base)
		})
	}
}

// TestHealthCheckNoSharing checks that backends do not share the rcodes
// slice with the global section or each other.
func TestHealthCheckNoSharing(t *testing.T) {
	isolateEnv(t)
	cfg := mustParse(t, "listen: ['127.0.0.1:53']\nbackends: [{name: a, address: '10.0.0.1:53'}, {name: b, address: '10.0.0.2:53'}]\n"+hcSection)
	cfg.Backends[0].HealthCheck.Expect.Rcodes[0] = 99
	if cfg.HealthCheck.Expect.Rcodes[0] != 0 || cfg.Backends[1].HealthCheck.Expect.Rcodes[0] != 0 {
		t.Error("rcodes slice shared between backends")
	}
}

func TestHealthCheckEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string // completed by withDefaults
		env   map[string]string
		check func(*Config) bool
	}{
		{"enabled and name from env only", "",
			map[string]string{"DNSLB_HEALTH_CHECK_ENABLED": "true", "DNSLB_HEALTH_CHECK_QUERY_NAME": "example.test"},
			func(c *Config) bool {
				return reflect.DeepEqual(c.HealthCheck, enabledHC()) && reflect.DeepEqual(c.Backends[0].HealthCheck, enabledHC())
			}},
		{"env disables the file's section", hcSection,
			map[string]string{"DNSLB_HEALTH_CHECK_ENABLED": "false"},
			func(c *Config) bool { return !c.HealthCheck.Enabled && !c.Backends[0].HealthCheck.Enabled }},
		{"env disabled without section ignores other variables", "",
			map[string]string{"DNSLB_HEALTH_CHECK_ENABLED": "off", "DNSLB_HEALTH_CHECK_INTERVAL": "3s"},
			func(c *Config) bool { return !c.HealthCheck.Enabled && c.HealthCheck.Interval == 3*time.Second }},
		{"env beats file", "health_check: {query: {name: a.test, type: A}, interval: 2s, expect: {authoritative: false}}\n",
			map[string]string{
				"DNSLB_HEALTH_CHECK_QUERY_NAME":             "b.test.",
				"DNSLB_HEALTH_CHECK_QUERY_TYPE":             "txt",
				"DNSLB_HEALTH_CHECK_INTERVAL":               "5s",
				"DNSLB_HEALTH_CHECK_EXPECT_AUTHORITATIVE":   "true",
				"DNSLB_HEALTH_CHECK_EXPECT_ANSWER_CONTAINS": "hello",
			},
			func(c *Config) bool {
				h := c.HealthCheck
				return h.Query.Name == "b.test." && h.Query.Type == dns.TypeTXT && h.Interval == 5*time.Second &&
					h.Expect.Authoritative && h.Expect.AnswerContains == "hello"
			}},
		{"env beats default", hcSection,
			map[string]string{
				"DNSLB_HEALTH_CHECK_QUERY_CLASS":                      "ch",
				"DNSLB_HEALTH_CHECK_QUERY_RD":                         "true",
				"DNSLB_HEALTH_CHECK_TRANSPORT":                        "tcp",
				"DNSLB_HEALTH_CHECK_TIMEOUT":                          "250ms",
				"DNSLB_HEALTH_CHECK_RISE":                             "7",
				"DNSLB_HEALTH_CHECK_FALL":                             " 8 ",
				"DNSLB_HEALTH_CHECK_ALL_DOWN":                         "REFUSE",
				"DNSLB_HEALTH_CHECK_PASSIVE_MAX_CONSECUTIVE_TIMEOUTS": "0",
			},
			func(c *Config) bool {
				h := c.HealthCheck
				return h.Query.Class == dns.ClassCHAOS && h.Query.RD && h.Transport == "tcp" &&
					h.Timeout == 250*time.Millisecond && h.Rise == 7 && h.Fall == 8 && h.AllDown == "refuse" &&
					h.Passive.MaxConsecutiveTimeouts == 0
			}},
		{"rcodes separated by commas and spaces", hcSection,
			map[string]string{"DNSLB_HEALTH_CHECK_EXPECT_RCODES": "noerror, NXDOMAIN  refused,"},
			func(c *Config) bool {
				return slices.Equal(c.HealthCheck.Expect.Rcodes, []int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeRefused})
			}},
		{"env reaches backends that do not override", "backends: [{name: a, address: '10.0.0.1:53', health_check: {rise: 9}}, {name: b, address: '10.0.0.2:53'}]\n" + hcSection,
			map[string]string{"DNSLB_HEALTH_CHECK_RISE": "4", "DNSLB_HEALTH_CHECK_FALL": "6"},
			func(c *Config) bool {
				a, b := c.Backends[0].HealthCheck, c.Backends[1].HealthCheck
				return a.Rise == 9 && a.Fall == 6 && b.Rise == 4 && b.Fall == 6
			}},
		{"udp_retry default", "",
			nil,
			func(c *Config) bool { return c.Timeouts.UDPRetry }},
		{"udp_retry from file", "timeouts: {udp_retry: false}\n",
			nil,
			func(c *Config) bool { return !c.Timeouts.UDPRetry }},
		{"udp_retry from env", "timeouts: {udp_retry: true}\n",
			map[string]string{"DNSLB_TIMEOUTS_UDP_RETRY": "FALSE"},
			func(c *Config) bool { return !c.Timeouts.UDPRetry }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, withDefaults(tc.yaml), tc.env, func(c *Config) *Config { return c }, tc.check)
		})
	}
}

func TestHealthCheckEnvProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string // completed by withDefaults
		env  map[string]string
		want []string
	}{
		{"enabled from env needs a name", "",
			map[string]string{"DNSLB_HEALTH_CHECK_ENABLED": "true"},
			[]string{"health_check.query.name: required"}},
		{"empty name variable", hcSection,
			map[string]string{"DNSLB_HEALTH_CHECK_QUERY_NAME": ""},
			[]string{"health_check.query.name: required"}},
		{"variable without section", "",
			map[string]string{"DNSLB_HEALTH_CHECK_QUERY_NAME": "example.test", "DNSLB_HEALTH_CHECK_INTERVAL": "2s"},
			[]string{
				"health_check: DNSLB_HEALTH_CHECK_QUERY_NAME is set but the file has no health_check section (add one, or set DNSLB_HEALTH_CHECK_ENABLED)",
				"health_check: DNSLB_HEALTH_CHECK_INTERVAL is set but the file has no health_check section (add one, or set DNSLB_HEALTH_CHECK_ENABLED)",
			}},
		{"bad enabled", hcSection,
			map[string]string{"DNSLB_HEALTH_CHECK_ENABLED": "sometimes"},
			[]string{`health_check.enabled: "sometimes": not a boolean (true or false)`}},
		{"bad values", hcSection,
			map[string]string{
				"DNSLB_HEALTH_CHECK_QUERY_TYPE":                       "AAA",
				"DNSLB_HEALTH_CHECK_EXPECT_RCODES":                    "NOERROR,NOPE",
				"DNSLB_HEALTH_CHECK_EXPECT_AUTHORITATIVE":             "1",
				"DNSLB_HEALTH_CHECK_INTERVAL":                         "50ms",
				"DNSLB_HEALTH_CHECK_PASSIVE_MAX_CONSECUTIVE_TIMEOUTS": "many",
			},
			[]string{
				`health_check.query.type: "AAA": unknown type`,
				`health_check.expect.rcodes[1]: "NOPE": unknown rcode`,
				`health_check.expect.authoritative: "1": not a boolean (true or false)`,
				"health_check.interval: 50ms out of range [100ms, 1h0m0s]",
				`health_check.passive.max_consecutive_timeouts: "many": not an integer`,
			}},
		{"empty rcodes variable", hcSection,
			map[string]string{"DNSLB_HEALTH_CHECK_EXPECT_RCODES": " , "},
			[]string{"health_check.expect.rcodes: required"}},
		{"env timeout exceeds file interval", "health_check: {query: {name: x}, interval: 1s}\n",
			map[string]string{"DNSLB_HEALTH_CHECK_TIMEOUT": "1500ms"},
			[]string{"health_check.timeout: 1.5s exceeds health_check.interval (1s)"}},
		{"env disables, backend overrides remain", "backends: [{name: a, address: '10.0.0.1:53', health_check: {rise: 3}}]\n" + hcSection,
			map[string]string{"DNSLB_HEALTH_CHECK_ENABLED": "false"},
			[]string{"backends[0].health_check: needs the global health_check section (it sets the defaults)"}},
		{"subsection variable hides keys", hcSection,
			map[string]string{"DNSLB_HEALTH_CHECK_PASSIVE": "1"},
			[]string{"health_check.passive.max_consecutive_timeouts: hidden by the environment variable DNSLB_HEALTH_CHECK_PASSIVE (unset it)",
				"health_check.passive.max_down_percent: hidden by the environment variable DNSLB_HEALTH_CHECK_PASSIVE (unset it)"}},
		{"bad udp_retry", "",
			map[string]string{"DNSLB_TIMEOUTS_UDP_RETRY": "twice"},
			[]string{`timeouts.udp_retry: "twice": not a boolean (true or false)`}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), tc.env, tc.want) })
	}
}

func TestHealthCheckEqual(t *testing.T) {
	a := enabledHC()
	if !a.Equal(a.clone()) {
		t.Error("a clone differs")
	}
	for name, edit := range map[string]func(*HealthCheck){
		"enabled":         func(h *HealthCheck) { h.Enabled = false },
		"query":           func(h *HealthCheck) { h.Query.RD = true },
		"rcodes":          func(h *HealthCheck) { h.Expect.Rcodes = append(h.Expect.Rcodes, 3) },
		"authoritative":   func(h *HealthCheck) { h.Expect.Authoritative = true },
		"answer_contains": func(h *HealthCheck) { h.Expect.AnswerContains = "x" },
		"transport":       func(h *HealthCheck) { h.Transport = "tcp" },
		"interval":        func(h *HealthCheck) { h.Interval++ },
		"timeout":         func(h *HealthCheck) { h.Timeout++ },
		"rise":            func(h *HealthCheck) { h.Rise++ },
		"fall":            func(h *HealthCheck) { h.Fall++ },
		"all_down":        func(h *HealthCheck) { h.AllDown = "refuse" },
		"passive":         func(h *HealthCheck) { h.Passive.MaxConsecutiveTimeouts++ },
	} {
		b := a.clone()
		edit(&b)
		if a.Equal(b) || b.Equal(a) {
			t.Errorf("%s: change not seen by Equal", name)
		}
	}
}
