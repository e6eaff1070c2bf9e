package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
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
	Enabled bool
	// Query is the probe sent to each backend (health_check.query).
	Query HealthQuery
	// Expect says which answers count as healthy (health_check.expect).
	Expect HealthExpect
	// Transport is "udp" (default) or "tcp" (health_check.transport).
	Transport string
	// Interval is the time between two probes of one backend
	// (health_check.interval), in [100ms, 1h]; default 1s.
	Interval time.Duration
	// Timeout is how long a probe waits for its answer
	// (health_check.timeout), in (0s, Interval]; default 500ms.
	Timeout time.Duration
	// Rise is how many consecutive successful probes mark a down backend
	// up (health_check.rise), 1-100; default 2.
	Rise int
	// Fall is how many consecutive failed probes mark an up backend down
	// (health_check.fall), 1-100; default 3.
	Fall int
	// AllDown says what to do when every backend is down
	// (health_check.all_down, global only): "fail_open" (default) sends
	// queries to all of them as if they were up, "refuse" answers REFUSED.
	AllDown string
	// Passive holds the passive failure detection settings
	// (health_check.passive, global only).
	Passive HealthPassive
}

// HealthQuery is the question a health check probe asks.
type HealthQuery struct {
	// Name is the query name (query.name), fully qualified (it ends with a
	// dot); case is kept as written. Required when checks are enabled.
	Name string
	// Type is the query type (query.type: a type name such as SOA, A or
	// TXT, in any case); default SOA. Meta types (OPT, TSIG, TKEY, AXFR,
	// IXFR) are rejected.
	Type uint16
	// Class is the query class (query.class: IN, CH, HS, CS or ANY, in any
	// case); default IN.
	Class uint16
	// RD is whether the probe sets the Recursion Desired bit (query.rd);
	// default false.
	RD bool
}

// HealthExpect says which answers to a probe count as healthy. An answer
// that does not arrive within the timeout, does not parse or does not match
// the query is a failure.
type HealthExpect struct {
	// Rcodes lists the acceptable response codes (expect.rcodes: names
	// such as NOERROR or NXDOMAIN, in any case), in file order without
	// duplicates; default [NOERROR].
	Rcodes []int
	// Authoritative requires the AA bit (expect.authoritative); default
	// false.
	Authoritative bool
	// AnswerContains, when not empty, requires some RR of the answer
	// section whose text form (dns.RR.String) contains it
	// (expect.answer_contains); default "".
	AnswerContains string
}

// HealthPassive holds the passive failure detection settings, which judge
// a backend from the queries it is sent rather than from probes.
type HealthPassive struct {
	// MaxConsecutiveTimeouts marks a backend down after this many client
	// queries in a row timed out (passive.max_consecutive_timeouts),
	// 0-1000; default 5, 0 disables passive detection.
	MaxConsecutiveTimeouts int
}

// Equal reports whether h and o hold the same settings.
func (h HealthCheck) Equal(o HealthCheck) bool {
	return h.Enabled == o.Enabled &&
		h.Query == o.Query &&
		slices.Equal(h.Expect.Rcodes, o.Expect.Rcodes) &&
		h.Expect.Authoritative == o.Expect.Authoritative &&
		h.Expect.AnswerContains == o.Expect.AnswerContains &&
		h.Transport == o.Transport &&
		h.Interval == o.Interval &&
		h.Timeout == o.Timeout &&
		h.Rise == o.Rise &&
		h.Fall == o.Fall &&
		h.AllDown == o.AllDown &&
		h.Passive == o.Passive
}

// clone returns a copy of h that shares no memory with it.
func (h HealthCheck) clone() HealthCheck {
	h.Expect.Rcodes = slices.Clone(h.Expect.Rcodes)
	return h
}

// Known keys of the health_check mappings, in schema order. A backend's
// health_check accepts healthKeys but all_down and passive.
func healthKeys() []string {
	return []string{"enabled", "query", "expect", "transport", "interval", "timeout", "rise", "fall", "all_down", "passive"}
}
func healthQueryKeys() []string   { return []string{"name", "type", "class", "rd"} }
func healthExpectKeys() []string  { return []string{"rcodes", "authoritative", "answer_contains"} }
func healthPassiveKeys() []string { return []string{"max_consecutive_timeouts"} }

// healthGlobalOnly lists the keys only the global section may set.
func healthGlobalOnly() []string { return []string{"all_down", "passive"} }

// Allowed health check ranges.
const (
	minHealthInterval      = 100 * time.Millisecond
	maxHealthInterval      = time.Hour
	maxRiseFall            = 100
	maxConsecutiveTimeouts = 1000
)

// healthState is the decoded global section.
type healthState struct {
	// hc is the section, defaults filled in.
	hc HealthCheck
	// problems holds the section's problems, reported after log (schema
	// order) although the section is decoded before the backends.
	problems []Problem
	// undecided is set when whether checks are enabled is unknown: the
	// section is not a mapping or enabled is invalid. Backends then skip
	// the complaint that the global section is missing.
	undecided bool
	// badInterval and badTimeout are set when the global interval or
	// timeout is invalid, so backends inheriting it do not compare
	// against it.
	badInterval, badTimeout bool
}

// healthCheck decodes the global section health_check. Every scalar comes
// through viper (environment > file > default); the file decides only
// whether the section is present.
func (d *decoder) healthCheck() healthState {
	const path = "health_check"
	var s healthState
	// Without a section only DNSLB_HEALTH_CHECK_ENABLED turns checks on.
	m, present, ok := d.openSection(path)
	if !ok {
		s.undecided, s.badInterval, s.badTimeout = true, true, true
		s.problems = d.problems
		return s
	}
	s.hc.Enabled = present
	look := func(key string) (any, keyState) {
		if v, ok := d.scalar(path + "." + key); ok {
			return v, keySet
		}
		return nil, keyBad
	}
	st := d.healthWalk(path, m, nil, look, &s.hc)
	s.undecided = st["enabled"] == keyBad
	s.badInterval = st["interval"] != keySet
	s.badTimeout = st["timeout"] != keySet || !s.badInterval && s.hc.Timeout > s.hc.Interval
	s.problems = d.problems
	return s
}

// backendHealthCheck decodes v, the value of backends[i].health_check at
// path, and returns the backend's effective check: g's section with the
// keys v sets replaced.
func (d *decoder) backendHealthCheck(path string, v any, g *healthState) HealthCheck {
	hc := g.hc.clone()
	m, ok := v.(map[string]any)
	if !ok {
		d.add(path, "must be a mapping, not %s", kind(v))
		return hc
	}
	// An empty mapping overrides nothing, like null.
	if len(m) > 0 && !g.hc.Enabled && !g.undecided {
		d.add(path, "needs the global health_check section (it sets the defaults)")
	}
	look := func(key string) (any, keyState) {
		var cur any = m
		for part := range strings.SplitSeq(key, ".") {
			mm, ok := cur.(map[string]any)
			if !ok {
				return nil, keyAbsent
			}
			cur = mm[part]
		}
		if cur == nil {
			return nil, keyAbsent
		}
		return cur, keySet
	}
	d.healthWalk(path, m, g, look, &hc)
	return hc
}

// healthWalk decodes the keys of one health_check section at path into hc,
// in schema order, and returns what each key (dotted, relative to the
// section) held. m is the section's mapping in the file, nil when absent;
// it decides which subsections are usable and which keys are unknown. look
// returns a key's value. global is nil when decoding the global section;
// otherwise hc starts as the global section, which the keys look finds
// override.
func (d *decoder) healthWalk(path string, m map[string]any, global *healthState, look func(key string) (any, keyState), hc *HealthCheck) map[string]keyState {
	f := d.fields(path, look)
	field, st := f.field, f.st
	skip := func(sub string, keys []string) {
		for _, k := range keys {
			st[sub+"."+k] = keyBad
		}
	}

	field("enabled", func(p string, v any) bool {
		b, ok := d.boolean(p, v)
		if ok {
			hc.Enabled = b && (global == nil || global.hc.Enabled)
		}
		return ok
	})

	if d.subsection(path, m, "query") {
		field("query.name", assign(&hc.Query.Name, d.domainName))
		// A backend inheriting an empty name leaves the complaint to the
		// global section.
		if hc.Enabled && st["query.name"] == keySet && hc.Query.Name == "" {
			d.add(path+".query.name", "required")
		}
		field("query.type", assign(&hc.Query.Type, d.queryType))
		field("query.class", assign(&hc.Query.Class, d.queryClass))
		field("query.rd", assign(&hc.Query.RD, d.boolean))
		d.unknown(path+".query", m["query"], healthQueryKeys())
	} else {
		skip("query", healthQueryKeys())
	}

	if d.subsection(path, m, "expect") {
		field("expect.rcodes", assign(&hc.Expect.Rcodes, d.rcodes))
		field("expect.authoritative", assign(&hc.Expect.Authoritative, d.boolean))
		field("expect.answer_contains", assign(&hc.Expect.AnswerContains, d.text))
		d.unknown(path+".expect", m["expect"], healthExpectKeys())
	} else {
		skip("expect", healthExpectKeys())
	}

	field("transport", assign(&hc.Transport, d.choice("udp", "tcp")))
	field("interval", assign(&hc.Interval, d.durationWhere(func(dur time.Duration) bool {
		return dur >= minHealthInterval && dur <= maxHealthInterval
	}, fmt.Sprintf("[%s, %s]", minHealthInterval, maxHealthInterval))))
	field("timeout", assign(&hc.Timeout, d.durationWhere(func(dur time.Duration) bool {
		return dur > 0 && dur <= maxHealthInterval
	}, fmt.Sprintf("(0s, %s]", maxHealthInterval))))
	d.timeoutWithinInterval(path, global, st, hc)
	field("rise", assign(&hc.Rise, d.intIn(1, maxRiseFall)))
	field("fall", assign(&hc.Fall, d.intIn(1, maxRiseFall)))

	if global == nil {
		field("all_down", assign(&hc.AllDown, d.choice("fail_open", "refuse")))
		if d.subsection(path, m, "passive") {
			field("passive.max_consecutive_timeouts", assign(&hc.Passive.MaxConsecutiveTimeouts, d.intIn(0, maxConsecutiveTimeouts)))
			d.unknown(path+".passive", m["passive"], healthPassiveKeys())
		}
	} else {
		for _, k := range healthGlobalOnly() {
			if v, ok := m[k]; ok && v != nil {
				d.add(path+"."+k, "only allowed in the global health_check section")
			}
		}
	}
	d.unknown(path, m, healthKeys())
	return st
}

// timeoutWithinInterval checks that the effective timeout of the section at
// path does not exceed its effective interval. For a backend the problem is
// reported at the backend's own key: its timeout if it sets one, else its
// interval; when it sets neither, the global section has been checked.
func (d *decoder) timeoutWithinInterval(path string, global *healthState, st map[string]keyState, hc *HealthCheck) {
	inherited := func(key string, bad bool) bool {
		return st[key] == keyBad || st[key] == keyAbsent && bad
	}
	if global == nil {
		if st["interval"] != keySet || st["timeout"] != keySet || hc.Timeout <= hc.Interval {
			return
		}
		d.add(path+".timeout", "%s exceeds %s.interval (%s)", hc.Timeout, path, hc.Interval)
		return
	}
	if inherited("interval", global.badInterval) || inherited("timeout", global.badTimeout) || hc.Timeout <= hc.Interval {
		return
	}
	switch {
	case st["timeout"] == keySet:
		ref := "health_check.interval"
		if st["interval"] == keySet {
			ref = path + ".interval"
		}
		d.add(path+".timeout", "%s exceeds %s (%s)", hc.Timeout, ref, hc.Interval)
	case st["interval"] == keySet:
		d.add(path+".interval", "%s is shorter than health_check.timeout (%s)", hc.Interval, hc.Timeout)
	}
}

// durationWhere returns a parser of durations that in accepts, for assign;
// rng describes the accepted range in the message about another duration.
func (d *decoder) durationWhere(in func(time.Duration) bool, rng string) func(path string, v any) (time.Duration, bool) {
	return validated(d.parseDuration, func(p string, dur time.Duration) bool {
		if !in(dur) {
			d.add(p, "%s out of range %s", dur, rng)
			return false
		}
		return true
	})
}

// subsection reports whether m[key], a mapping inside the section at path,
// is usable: absent, null or a mapping. Otherwise it records a problem and
// its keys are skipped.
func (d *decoder) subsection(path string, m map[string]any, key string) bool {
	switch v := m[key].(type) {
	case nil, map[string]any:
		return true
	default:
		d.add(path+"."+key, "must be a mapping, not %s", kind(v))
		return false
	}
}

// domainName decodes a query name and returns it fully qualified; "" is
// returned as is (the caller decides whether it is required).
func (d *decoder) domainName(path string, v any) (string, bool) {
	s, ok := d.text(path, v)
	if !ok {
		return "", false
	}
	name := strings.TrimSpace(s)
	if name == "" {
		return "", true
	}
	if _, ok := dns.IsDomainName(name); !ok {
		d.add(path, "%q: not a domain name", s)
		return "", false
	}
	return dns.Fqdn(name), true
}

// queryType decodes a query type name. Meta types are not usable.
func (d *decoder) queryType(path string, v any) (uint16, bool) {
	return d.queryCode(path, v, dns.StringToType, "type", func(t uint16) bool {
		switch t {
		case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeAXFR, dns.TypeIXFR:
			return false
		}
		return true
	})
}

// queryClass decodes a query class name. NONE is not usable.
func (d *decoder) queryClass(path string, v any) (uint16, bool) {
	return d.queryCode(path, v, dns.StringToClass, "class", func(c uint16) bool { return c != dns.ClassNONE })
}

// queryCode decodes v, the value at path, as a name of table (a type or
// class, as what says) that usable accepts in a health check query.
func (d *decoder) queryCode(path string, v any, table map[string]uint16, what string, usable func(uint16) bool) (uint16, bool) {
	s, ok := d.text(path, v)
	if !ok {
		return 0, false
	}
	c, ok := mnemonic(d, path, s, table, what)
	if !ok {
		return 0, false
	}
	if !usable(c) {
		d.add(path, "%q: not usable in a health check query", s)
		return 0, false
	}
	return c, true
}

// mnemonic looks s, the text at path, up in table, which maps the upper
// case names of DNS codes (types, classes, rcodes) to their values; spaces
// around s are ignored. It records a problem naming what when s is unknown.
func mnemonic[T any](d *decoder, path, s string, table map[string]T, what string) (T, bool) {
	c, ok := table[strings.ToUpper(strings.TrimSpace(s))]
	if !ok {
		d.add(path, "%q: unknown %s", s, what)
	}
	return c, ok
}

// rcodes decodes a list of rcode names, or one string of names separated
// by commas and/or spaces (how an environment variable arrives).
func (d *decoder) rcodes(path string, v any) ([]int, bool) {
	items, ok := d.list(path, v, "rcode names such as NOERROR")
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		d.add(path, "required")
		return nil, false
	}
	out := make([]int, 0, len(items))
	seen := make(map[int]int, len(items))
	ok = d.eachText(path, items, func(i int, p, s string) {
		rc, known := mnemonic(d, p, s, dns.StringToRcode, "rcode")
		if !known || duplicate(d, seen, rc, p, path) {
			return
		}
		seen[rc] = i
		out = append(out, rc)
	})
	return out, ok
}
