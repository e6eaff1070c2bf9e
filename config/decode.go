package config

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Known keys of each mapping, in schema order.
func topKeys() []string {
	return []string{"listen", "backends", "config_watch", "timeouts", "limits", "acl", "admin", "log", "tuning", "health_check", "vrrp", "notify"}
}
func backendKeys() []string { return []string{"name", "address", "weight", "state", "health_check"} }
func timeoutsKeys() []string {
	return []string{"udp", "tcp_idle", "tcp_read", "tcp_write", "udp_retry"}
}
func limitsKeys() []string {
	return []string{"tcp_connections", "tcp_connections_per_client", "qps_per_client", "over_limit"}
}
func adminKeys() []string { return []string{"listen", "pprof", "token"} }
func logKeys() []string   { return []string{"level", "format", "query_sample"} }

// Allowed ranges.
const (
	maxUDPTimeout     = 30 * time.Second
	maxTCPIdleTimeout = time.Hour
	minWeight         = 1
	maxWeight         = 1000
	maxConnections    = 1000000
	maxNameLen        = 63
)

// decoder walks the settings viper read and builds a Config, collecting one
// Problem per invalid value instead of stopping at the first.
type decoder struct {
	// file is the YAML file alone, keys lower-cased by viper. Its shape
	// decides which sections exist and which keys are unknown; backends
	// (with their health_check overrides) are taken from it only.
	file map[string]any
	// get returns the effective value of a scalar key: environment, else
	// file, else default; nil if none.
	get func(key string) any
	// problems collects what is wrong, in the order found.
	problems []Problem
}

// add records a problem at path.
func (d *decoder) add(path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// decode walks every key in schema order and returns the configuration;
// it is meaningful only when no problem was recorded.
func (d *decoder) decode() *Config {
	cfg := &Config{}
	// Backends merge their health_check over the global one, which comes
	// later in schema order: decode it first, keeping its problems aside.
	hc := d.sub().healthCheck()
	cfg.Listen = d.listen()
	cfg.Backends = d.backends(&hc)
	if v, ok := d.scalar("config_watch"); ok {
		cfg.ConfigWatch, _ = d.boolean("config_watch", v)
	}
	if d.section("timeouts") {
		cfg.Timeouts.UDP, _ = d.duration("timeouts.udp", maxUDPTimeout)
		cfg.Timeouts.TCPIdle, _ = d.duration("timeouts.tcp_idle", maxTCPIdleTimeout)
		cfg.Timeouts.TCPRead, _ = d.duration("timeouts.tcp_read", time.Minute)
		cfg.Timeouts.TCPWrite, _ = d.duration("timeouts.tcp_write", time.Minute)
		if v, ok := d.scalar("timeouts.udp_retry"); ok {
			cfg.Timeouts.UDPRetry, _ = d.boolean("timeouts.udp_retry", v)
		}
		d.unknown("timeouts", d.file["timeouts"], timeoutsKeys())
	}
	if d.section("limits") {
		total, okTotal := d.limit("limits.tcp_connections")
		per, okPer := d.limit("limits.tcp_connections_per_client")
		if okTotal && okPer && per > total {
			d.add("limits.tcp_connections_per_client", "%d exceeds limits.tcp_connections (%d)", per, total)
		}
		cfg.Limits = Limits{TCPConnections: total, TCPConnectionsPerClient: per, OverLimit: "drop"}
		if v, ok := d.scalar("limits.qps_per_client"); ok {
			cfg.Limits.QPSPerClient, _ = d.integer("limits.qps_per_client", v, 0, maxConnections)
		}
		if v, ok := d.scalar("limits.over_limit"); ok {
			if w, ok := d.oneOf("limits.over_limit", v, "drop", "refuse"); ok {
				cfg.Limits.OverLimit = w
			}
		}
		d.unknown("limits", d.file["limits"], limitsKeys())
	}
	if d.section("acl") {
		cfg.ACL = d.acl()
		d.unknown("acl", d.file["acl"], aclKeys())
	}
	if d.section("admin") {
		cfg.Admin.Listen = d.adminListen()
		if v, ok := d.scalar("admin.pprof"); ok {
			cfg.Admin.PProf, _ = d.boolean("admin.pprof", v)
		}
		if v, ok := d.scalar("admin.token"); ok {
			if t, ok := d.text("admin.token", v); ok && t != "" && len(t) < 16 {
				d.add("admin.token", "too short: %d characters, at least 16", len(t))
			} else if ok {
				cfg.Admin.Token = t
			}
		}
		d.unknown("admin", d.file["admin"], adminKeys())
	}
	if d.section("log") {
		cfg.Log = d.log()
		d.unknown("log", d.file["log"], logKeys())
	}
	if d.section("tuning") {
		cfg.Tuning = d.tuning()
		d.unknown("tuning", d.file["tuning"], tuningKeys())
	}
	cfg.HealthCheck = hc.hc
	d.problems = append(d.problems, hc.problems...)
	cfg.VRRP = d.vrrp(len(cfg.Backends))
	cfg.Notify = d.notify()
	d.unknown("", d.file, topKeys())
	return cfg
}

// sub returns a decoder over the same settings with no problems yet.
func (d *decoder) sub() *decoder {
	return &decoder{file: d.file, get: d.get}
}

// scalar returns the effective value of a key that has a default. viper
// returns nil for it only when an environment variable named after one of
// its parent sections (e.g. DNSLB_TIMEOUTS) hides it; that is reported.
func (d *decoder) scalar(key string) (any, bool) {
	v, s := d.lookup(key)
	if s == keyAbsent {
		d.add(key, "required")
	}
	return v, s == keySet
}

// lookup returns the effective value of key and keySet, or keyAbsent when
// nothing sets it (for a key without a default, or set to null), or keyBad
// when an environment variable named after one of its parent sections
// (e.g. DNSLB_VRRP) hides it; that is reported.
func (d *decoder) lookup(key string) (any, keyState) {
	if v := d.get(key); v != nil {
		return v, keySet
	}
	for i := range len(key) {
		if key[i] != '.' {
			continue
		}
		if _, set := os.LookupEnv(envName(key[:i])); set {
			d.add(key, "hidden by the environment variable %s (unset it)", envName(key[:i]))
			return nil, keyBad
		}
	}
	return nil, keyAbsent
}

// envWithoutSection reports every DNSLB_ variable of a key below section
// (one listed in scalarDefaults) that is set while the file has no such
// section and <SECTION>_ENABLED is unset: only that variable turns a
// missing section on, and a value meant for it must not be silently
// ignored.
func (d *decoder) envWithoutSection(section string, present bool) {
	enabled := envName(section + ".enabled")
	if _, set := os.LookupEnv(enabled); present || set {
		return
	}
	for _, k := range scalarDefaults() {
		if name := envName(k.key); strings.HasPrefix(k.key, section+".") {
			if _, set := os.LookupEnv(name); set {
				d.add(section, "%s is set but the file has no %s section (add one, or set %s)", name, section, enabled)
			}
		}
	}
}

// section reports whether the file's section name is usable: absent, null
// or a mapping. Otherwise it records a problem and its keys are skipped.
func (d *decoder) section(name string) bool {
	v, ok := d.file[name]
	if !ok || v == nil {
		return true
	}
	if _, ok := v.(map[string]any); ok {
		return true
	}
	d.add(name, "must be a mapping, not %s", kind(v))
	return false
}

// unknown records every key of m (a mapping found at path) that is not in
// known, sorted. m may be anything; only mappings have keys.
func (d *decoder) unknown(path string, m any, known []string) {
	mm, ok := m.(map[string]any)
	if !ok {
		return
	}
	var extra []string
	for k := range mm {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		d.add(join(path, quoteKey(k)), "unknown key")
	}
}

// listen decodes the key listen: a list of "ip:port" strings, or one string
// of addresses separated by commas and/or spaces (how DNSLB_LISTEN arrives).
func (d *decoder) listen() []netip.AddrPort {
	var items []any
	if v := d.get("listen"); v != nil {
		var ok bool
		if items, ok = d.list("listen", v, `"ip:port" strings`); !ok {
			return nil
		}
	}
	if len(items) == 0 {
		d.add("listen", "required")
		return nil
	}
	out := make([]netip.AddrPort, 0, len(items))
	seen := make(map[netip.AddrPort]int, len(items))
	d.eachText("listen", items, func(i int, path, s string) {
		ap, msg := parseAddrPort(s)
		switch {
		case msg != "":
			d.add(path, "%s", msg)
			return
		case ap.Addr().IsUnspecified():
			d.add(path, "%q: wildcard address not allowed, list each address clients query (answers must come from it)", s)
			return
		}
		if duplicate(d, seen, ap, path, "listen") {
			return
		}
		seen[ap] = i
		out = append(out, ap)
	})
	return out
}

// backends decodes the key backends, from the file only. hc is the global
// health check each backend's own health_check is merged over.
func (d *decoder) backends(hc *healthState) []Backend {
	if _, set := os.LookupEnv(envName("backends")); set {
		d.add("backends", "cannot be set from the environment (unset %s; list backends in the file)", envName("backends"))
	}
	v := d.file["backends"]
	if v == nil {
		d.add("backends", "required")
		return nil
	}
	items, ok := v.([]any)
	if !ok {
		d.add("backends", "must be a list")
		return nil
	}
	if len(items) == 0 {
		d.add("backends", "required")
		return nil
	}
	out := make([]Backend, 0, len(items))
	names := make(map[string]int, len(items))
	addrs := make(map[netip.AddrPort]int, len(items))
	for i, item := range items {
		path := fmt.Sprintf("backends[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			d.add(path, "must be a mapping")
			continue
		}
		b := Backend{Weight: defaultWeight, State: StateActive, HealthCheck: hc.hc.clone()}
		if name, ok := d.backendName(path+".name", m["name"]); ok {
			if !duplicate(d, names, name, path+".name", "backends") {
				names[name] = i
			}
			b.Name = name
		}
		if ap, ok := d.backendAddress(path+".address", m["address"]); ok {
			if !duplicate(d, addrs, ap, path+".address", "backends") {
				addrs[ap] = i
			}
			b.Address = ap
		}
		if w, ok := m["weight"]; ok && w != nil {
			b.Weight, _ = d.integer(path+".weight", w, minWeight, maxWeight)
		}
		if s, ok := m["state"]; ok && s != nil {
			if st, ok := d.oneOf(path+".state", s, string(StateActive), string(StateDrain), string(StateDisabled)); ok {
				b.State = BackendState(st)
			}
		}
		if v, ok := m["health_check"]; ok && v != nil {
			b.HealthCheck = d.backendHealthCheck(path+".health_check", v, hc)
		}
		d.unknown(path, m, backendKeys())
		out = append(out, b)
	}
	return out
}

// backendName checks backends[i].name.
func (d *decoder) backendName(path string, v any) (string, bool) {
	if v == nil {
		d.add(path, "required")
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		if _, scalar := scalarText(v); scalar {
			d.add(path, "must be a string, not %s (quote it)", kind(v))
		} else {
			d.add(path, "must be a string, not %s", kind(v))
		}
		return "", false
	}
	switch {
	case s == "":
		d.add(path, "required")
		return "", false
	case len(s) > maxNameLen:
		d.add(path, "%q: longer than %d characters", s, maxNameLen)
		return "", false
	case strings.IndexFunc(s, func(r rune) bool { return !nameChar(r) }) >= 0:
		d.add(path, "%q: may contain only A-Z a-z 0-9 _ . -", s)
		return "", false
	}
	return s, true
}

// nameChar reports whether r may appear in a backend name.
func nameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
}

// backendAddress checks backends[i].address.
func (d *decoder) backendAddress(path string, v any) (netip.AddrPort, bool) {
	if v == nil {
		d.add(path, "required")
		return netip.AddrPort{}, false
	}
	s, ok := d.text(path, v)
	if !ok {
		return netip.AddrPort{}, false
	}
	if s == "" {
		d.add(path, "required")
		return netip.AddrPort{}, false
	}
	ap, msg := parseAddrPort(s)
	switch {
	case msg != "":
		d.add(path, "%s", msg)
		return netip.AddrPort{}, false
	case ap.Addr().IsUnspecified():
		d.add(path, "%q: unspecified address not allowed", s)
		return netip.AddrPort{}, false
	case ap.Addr().IsMulticast() || ap.Addr() == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		d.add(path, "%q: multicast or broadcast address not allowed", s)
		return netip.AddrPort{}, false
	}
	return ap, true
}

// duration decodes the duration key, which must lie in (0, max]. Only Go
// duration strings are accepted: a bare number has no unit.
func (d *decoder) duration(key string, max time.Duration) (time.Duration, bool) {
	v, ok := d.scalar(key)
	if !ok {
		return 0, false
	}
	dur, ok := d.parseDuration(key, v)
	if !ok {
		return 0, false
	}
	if dur <= 0 || dur > max {
		d.add(key, "%s out of range (0s, %s]", fmtDuration(dur), fmtDuration(max))
		return 0, false
	}
	return dur, true
}

// parseDuration decodes v, the value at key, as a Go duration string.
func (d *decoder) parseDuration(key string, v any) (time.Duration, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
	default:
		text, scalar := scalarText(v)
		if !scalar {
			d.add(key, "must be a duration such as 500ms, not %s", kind(v))
			return 0, false
		}
		if isNumber(text) {
			d.add(key, "%q: not a duration (use units, e.g. 500ms)", text)
		} else {
			d.add(key, "%q: not a duration", text)
		}
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		if isNumber(s) {
			d.add(key, "%q: not a duration (use units, e.g. 500ms)", s)
		} else {
			d.add(key, "%q: not a duration", s)
		}
		return 0, false
	}
	return dur, true
}

// limit decodes one of the limits keys.
func (d *decoder) limit(key string) (int, bool) {
	v, ok := d.scalar(key)
	if !ok {
		return 0, false
	}
	return d.integer(key, v, 1, maxConnections)
}

// integer decodes v, the value at path, as an integer in [lo, hi]. Strings
// of decimal digits are accepted: environment values are strings.
func (d *decoder) integer(path string, v any, lo, hi int64) (int, bool) {
	var n int64
	switch x := v.(type) {
	case nil:
		d.add(path, "required")
		return 0, false
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		if x > uint64(hi) {
			d.add(path, "%d out of range %d-%d", x, lo, hi)
			return 0, false
		}
		n = int64(x)
	case float64:
		// YAML reads 1.0 and 1e3 as floats; whole numbers are fine.
		if x != math.Trunc(x) || x < math.MinInt64 || x > math.MaxInt64 {
			d.add(path, "%q: not an integer", strconv.FormatFloat(x, 'g', -1, 64))
			return 0, false
		}
		n = int64(x)
	case string:
		s := strings.TrimSpace(x)
		if !isInteger(s) {
			d.add(path, "%q: not an integer", x)
			return 0, false
		}
		var err error
		if n, err = strconv.ParseInt(s, 10, 64); err != nil {
			d.add(path, "%s out of range %d-%d", s, lo, hi)
			return 0, false
		}
	default:
		text, scalar := scalarText(v)
		if !scalar {
			d.add(path, "must be an integer, not %s", kind(v))
		} else {
			d.add(path, "%q: not an integer", text)
		}
		return 0, false
	}
	if n < lo || n > hi {
		d.add(path, "%d out of range %d-%d", n, lo, hi)
		return 0, false
	}
	return int(n), true
}

// oneOf decodes v, the value at path, as one of the allowed words, ignoring
// case; it returns the word in lower case.
func (d *decoder) oneOf(path string, v any, allowed ...string) (string, bool) {
	s, ok := d.text(path, v)
	if !ok {
		return "", false
	}
	w := strings.ToLower(strings.TrimSpace(s))
	if !slices.Contains(allowed, w) {
		d.add(path, "%q: must be one of %s", s, strings.Join(allowed, ", "))
		return "", false
	}
	return w, true
}

// boolean decodes v, the value at path, as a boolean: YAML's true and
// false, or the strings true, false, yes, no, on and off in any case
// (environment values are strings).
func (d *decoder) boolean(path string, v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "yes", "on":
			return true, true
		case "false", "no", "off":
			return false, true
		}
		d.add(path, "%q: not a boolean (true or false)", x)
		return false, false
	}
	text, scalar := scalarText(v)
	if !scalar {
		d.add(path, "must be a boolean, not %s", kind(v))
	} else {
		d.add(path, "%q: not a boolean (true or false)", text)
	}
	return false, false
}

// adminListen decodes admin.listen.
func (d *decoder) adminListen() string {
	v, ok := d.scalar("admin.listen")
	if !ok {
		return ""
	}
	s, ok := d.text("admin.listen", v)
	if !ok || s == "" {
		return ""
	}
	if _, err := netip.ParseAddrPort(s); err != nil {
		d.add("admin.listen", "%q: not ip:port", s)
		return ""
	}
	return s
}

// log decodes the log section.
func (d *decoder) log() Log {
	l := Log{Level: slog.LevelInfo, Format: defaultLogFormat}
	if v, ok := d.scalar("log.level"); ok {
		if w, ok := d.oneOf("log.level", v, "debug", "info", "warn", "error"); ok {
			// The words are exactly slog's level names.
			_ = l.Level.UnmarshalText([]byte(w))
		}
	}
	if v, ok := d.scalar("log.format"); ok {
		if w, ok := d.oneOf("log.format", v, "text", "json"); ok {
			l.Format = w
		}
	}
	if v, ok := d.scalar("log.query_sample"); ok {
		l.QuerySample, _ = d.fraction("log.query_sample", v)
	}
	return l
}

// fraction decodes a number in [0, 1].
func (d *decoder) fraction(path string, v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case float64:
		f = x
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			d.add(path, "%q: not a number between 0 and 1", x)
			return 0, false
		}
	default:
		d.add(path, "must be a number between 0 and 1, not %s", kind(v))
		return 0, false
	}
	if f < 0 || f > 1 || math.IsNaN(f) {
		d.add(path, "%v out of range 0-1", f)
		return 0, false
	}
	return f, true
}

// text returns a scalar as text: strings as they are, numbers and booleans
// as YAML wrote them. Mappings and lists are a problem.
func (d *decoder) text(path string, v any) (string, bool) {
	s, ok := scalarText(v)
	if !ok {
		d.add(path, "must be a string, not %s", kind(v))
	}
	return s, ok
}

// scalarText formats a scalar value; ok is false for mappings and lists.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case map[string]any, map[any]any, []any:
		return "", false
	case nil:
		return "", true
	default:
		return fmt.Sprint(x), true
	}
}

// kind names the YAML type of v for messages.
func kind(v any) string {
	switch v.(type) {
	case map[string]any, map[any]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// isInteger reports whether s is an optionally signed string of decimal
// digits.
func isInteger(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0
}

// isNumber reports whether s looks like a plain number, e.g. "5" or "0.5":
// a duration written without its unit.
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && strings.IndexFunc(s, unicode.IsLetter) < 0
}

// fmtDuration formats d without zero trailing units: 1h, 1m30s, 500ms.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// quoteKey returns a key as written, or quoted when it holds characters
// that would make the key path ambiguous or span lines.
func quoteKey(k string) string {
	plain := k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r) || strings.ContainsRune(`."[]`, r)
	}) < 0
	if plain {
		return k
	}
	return strconv.Quote(k)
}

// join appends key to the key path prefix.
func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
