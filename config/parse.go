package config

import (
	"encoding"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/miekg/dns"
)

// leaf is a value of the settings on its way into a field that is not a
// section, with its key path and field, whose tags say how to read it.
type leaf struct {
	c     *check
	path  string
	field reflect.StructField
	raw   any
}

// bad records a problem with l.
func (l leaf) bad(format string, args ...any) {
	l.c.add(l.path, format, args...)
}

// decode returns l read as a value of type t, or false after recording
// why it cannot be. A nil value with true leaves the field as it is: an
// empty list or address counts as absent.
//
// The field's kind tag says how to read text that the Go type does not
// describe alone; otherwise its enum tag, its type and its range tag do.
func (l leaf) decode(t reflect.Type) (any, bool) {
	switch l.field.Tag.Get("kind") {
	case "size":
		return l.size()
	case "qtype":
		return l.queryCode(dns.StringToType, "type", func(t uint16) bool {
			return !slices.Contains([]uint16{dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeAXFR, dns.TypeIXFR}, t)
		})
	case "qclass":
		return l.queryCode(dns.StringToClass, "class", func(c uint16) bool { return c != dns.ClassNONE })
	case "rcode":
		return l.rcodes()
	case "network":
		return list(l, "IP addresses or CIDRs", parseNetwork)
	case "primary":
		return list(l, "IP addresses or CIDRs", parsePrimary)
	case "vip":
		return list(l, `"ip/len" strings`, parseVIP)
	case "peer":
		return list(l, "IP addresses", parsePeer)
	case "quoted":
		return anyOf(l.quoted())
	case "domain":
		return anyOf(l.domain())
	case "interface":
		return anyOf(l.iface())
	case "tsig-algorithm":
		return anyOf(l.tsigAlgorithm())
	case "ip":
		return l.host(false)
	case "ipv4":
		return l.host(true)
	case "nexthop":
		return list(l, "IP addresses", parseHost)
	case "community":
		return list(l, "communities", parseCommunity)
	}
	if words := l.field.Tag.Get("enum"); words != "" {
		return l.enum(t, strings.Split(words, "|"))
	}
	switch t {
	case reflect.TypeFor[time.Duration]():
		return anyOf(l.duration())
	case reflect.TypeFor[netip.AddrPort]():
		return l.addrPort()
	case reflect.TypeFor[[]netip.AddrPort]():
		return list(l, `"ip:port" strings`, parseAddrPort)
	}
	switch t.Kind() {
	case reflect.Bool:
		return anyOf(l.boolean())
	case reflect.Int:
		lo, hi := numberRange(l.field.Tag.Get("range"))
		return anyOf(l.integer(int64(lo), int64(hi), l.field.Tag.Get("range")))
	case reflect.Float64:
		return anyOf(l.fraction())
	case reflect.String:
		return anyOf(l.text())
	}
	panic("config: no way to read a " + t.String() + " for " + l.path)
}

// anyOf returns v as any.
func anyOf[T any](v T, ok bool) (any, bool) {
	return v, ok
}

// text returns a scalar as text: strings as they are, numbers and booleans
// as YAML wrote them. Mappings and lists are a problem.
func (l leaf) text() (string, bool) {
	s, ok := scalarText(l.raw)
	if !ok {
		l.bad("must be a string, not %s", kind(l.raw))
	}
	return s, ok
}

// quoted returns a string that YAML must not read as anything else: a
// number or boolean is a problem, because YAML may have changed it (0123
// reads as 83).
func (l leaf) quoted() (string, bool) {
	if s, ok := l.raw.(string); ok {
		return s, true
	}
	if _, scalar := scalarText(l.raw); scalar {
		l.bad("must be a string, not %s (quote it)", kind(l.raw))
	} else {
		l.bad("must be a string, not %s", kind(l.raw))
	}
	return "", false
}

// boolean reads YAML's true and false, or the strings true, false, yes,
// no, on and off in any case (environment values are strings).
func (l leaf) boolean() (bool, bool) {
	switch x := l.raw.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "yes", "on":
			return true, true
		case "false", "no", "off":
			return false, true
		}
		l.bad("%q: not a boolean (true or false)", x)
		return false, false
	}
	text, scalar := scalarText(l.raw)
	if !scalar {
		l.bad("must be a boolean, not %s", kind(l.raw))
	} else {
		l.bad("%q: not a boolean (true or false)", text)
	}
	return false, false
}

// integer reads an integer in [lo, hi], rng writing that range for the
// message. Strings of decimal digits are accepted: environment values are
// strings.
func (l leaf) integer(lo, hi int64, rng string) (int, bool) {
	var n int64
	switch x := l.raw.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		if x > uint64(hi) {
			l.bad("%d out of range %s", x, rng)
			return 0, false
		}
		n = int64(x)
	case float64:
		// YAML reads 1.0 and 1e3 as floats; whole numbers are fine.
		if x != math.Trunc(x) || x < math.MinInt64 || x > math.MaxInt64 {
			l.bad("%q: not an integer", strconv.FormatFloat(x, 'g', -1, 64))
			return 0, false
		}
		n = int64(x)
	case string:
		s := strings.TrimSpace(x)
		if !isInteger(s) {
			l.bad("%q: not an integer", x)
			return 0, false
		}
		var err error
		if n, err = strconv.ParseInt(s, 10, 64); err != nil {
			l.bad("%s out of range %s", s, rng)
			return 0, false
		}
	default:
		text, scalar := scalarText(l.raw)
		if !scalar {
			l.bad("must be an integer, not %s", kind(l.raw))
		} else {
			l.bad("%q: not an integer", text)
		}
		return 0, false
	}
	if n < lo || n > hi {
		l.bad("%d out of range %s", n, rng)
		return 0, false
	}
	return int(n), true
}

// fraction reads a number in its range, 0-1.
func (l leaf) fraction() (float64, bool) {
	var f float64
	switch x := l.raw.(type) {
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
			l.bad("%q: not a number between 0 and 1", x)
			return 0, false
		}
	default:
		l.bad("must be a number between 0 and 1, not %s", kind(l.raw))
		return 0, false
	}
	rng := l.field.Tag.Get("range")
	if lo, hi := numberRange(rng); f < lo || f > hi || math.IsNaN(f) {
		l.bad("%v out of range %s", f, rng)
		return 0, false
	}
	return f, true
}

// size reads a size in bytes: an integer, or a whole number with one of
// the units KiB, MiB, GiB (powers of 1024), in its range.
func (l leaf) size() (any, bool) {
	rng := l.field.Tag.Get("range")
	loText, hiText, _ := strings.Cut(rng, "-")
	lo, _ := parseSize(loText)
	hi, _ := parseSize(hiText)
	s, isText := l.raw.(string)
	if !isText {
		return anyOf(l.integer(lo, hi, fmt.Sprintf("%d-%d", lo, hi)))
	}
	n, ok := parseSize(s)
	if !ok {
		l.bad("%q: not a size (bytes, or a whole number of KiB, MiB or GiB, e.g. 4MiB)", s)
		return nil, false
	}
	if n < lo || n > hi {
		l.bad("%q out of range %s", s, rng)
		return nil, false
	}
	return int(n), true
}

// sizeUnits lists the units of sizes, largest first.
func sizeUnits() []struct {
	suffix string
	mult   int64
} {
	return []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
}

// parseSize parses a number of bytes, or of KiB, MiB or GiB. A size too
// large for an int64 is returned as math.MaxInt64, out of every range.
func parseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits() {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	if n > math.MaxInt64/mult {
		return math.MaxInt64, true
	}
	return n * mult, true
}

// duration reads a Go duration string, such as 500ms or 1m30s, in its
// range. A bare number has no unit and is rejected.
func (l leaf) duration() (time.Duration, bool) {
	var s string
	switch x := l.raw.(type) {
	case string:
		s = strings.TrimSpace(x)
	default:
		text, scalar := scalarText(l.raw)
		if !scalar {
			l.bad("must be a duration such as 500ms, not %s", kind(l.raw))
			return 0, false
		}
		s = text
	}
	d, err := time.ParseDuration(s)
	if _, isText := l.raw.(string); err != nil || !isText {
		if isNumber(s) {
			l.bad("%q: not a duration (use units, e.g. 500ms)", s)
		} else {
			l.bad("%q: not a duration", s)
		}
		return 0, false
	}
	if rng := l.field.Tag.Get("range"); rng != "" && !inInterval(d, rng) {
		l.bad("%s out of range %s", durationFor(rng, d), rng)
		return 0, false
	}
	return d, true
}

// inInterval reports whether d lies in rng, a range tag such as
// "(0s, 30s]", or "[1s, 24h] (0s disables)", which also allows 0s.
func inInterval(d time.Duration, rng string) bool {
	bounds, off, hasOff := strings.Cut(rng, " (")
	if v, err := time.ParseDuration(strings.TrimSuffix(off, " disables)")); hasOff && err == nil && d == v {
		return true
	}
	loText, hiText, _ := strings.Cut(bounds[1:len(bounds)-1], ", ")
	lo, _ := time.ParseDuration(loText)
	hi, _ := time.ParseDuration(hiText)
	return (d > lo || bounds[0] == '[' && d == lo) && (d < hi || bounds[len(bounds)-1] == ']' && d == hi)
}

// durationFor formats d for a message about the range rng: as Go prints
// durations (1h0m0s) when rng is written that way, as health_check's
// ranges are, and otherwise without zero units (1h).
func durationFor(rng string, d time.Duration) string {
	if strings.Contains(rng, "m0s") {
		return d.String()
	}
	return fmtDuration(d)
}

// numberRange returns the bounds of a range tag such as "1-1000"; no tag
// allows every int.
func numberRange(rng string) (lo, hi float64) {
	loText, hiText, ok := strings.Cut(rng, "-")
	if !ok {
		return math.MinInt64, math.MaxInt64
	}
	lo, _ = strconv.ParseFloat(loText, 64)
	hi, _ = strconv.ParseFloat(hiText, 64)
	return lo, hi
}

// enum reads one of words, in any case, as a value of type t: a string
// type, or one that unmarshals the word, like slog.Level.
func (l leaf) enum(t reflect.Type, words []string) (any, bool) {
	s, ok := l.text()
	if !ok {
		return nil, false
	}
	w := strings.ToLower(strings.TrimSpace(s))
	if !slices.Contains(words, w) {
		l.bad("%q: must be one of %s", s, strings.Join(words, ", "))
		return nil, false
	}
	v := reflect.New(t)
	if u, ok := v.Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(w)); err != nil {
			panic("config: enum word " + w + " of " + l.path + ": " + err.Error())
		}
	} else {
		v.Elem().SetString(w)
	}
	return v.Elem().Interface(), true
}

// addrPort reads "ip:port"; "" counts as absent.
func (l leaf) addrPort() (any, bool) {
	s, ok := l.text()
	if !ok || s == "" {
		return nil, ok
	}
	ap, msg := parseAddrPort(s)
	if msg != "" {
		l.bad("%s", msg)
		return nil, false
	}
	return ap, true
}

// domain reads a domain name and returns it fully qualified; "" is
// returned as is.
func (l leaf) domain() (string, bool) {
	s, ok := l.text()
	if !ok {
		return "", false
	}
	name := strings.TrimSpace(s)
	if name == "" {
		return "", true
	}
	if _, ok := dns.IsDomainName(name); !ok {
		l.bad("%q: not a domain name", s)
		return "", false
	}
	return dns.Fqdn(name), true
}

// iface reads a Linux network interface name; "" is returned as is.
func (l leaf) iface() (string, bool) {
	const maxLen = 15 // IFNAMSIZ less the terminating NUL
	s, ok := l.text()
	switch {
	case !ok:
		return "", false
	case s == "":
		return "", true
	case len(s) > maxLen:
		l.bad("%q: longer than %d characters", s, maxLen)
	case strings.IndexFunc(s, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) }) >= 0:
		l.bad("%q: may not contain '/', ':' or whitespace", s)
	case s == "." || s == "..":
		l.bad("%q: not an interface name", s)
	default:
		return s, true
	}
	return "", false
}

// queryCode reads the name of a DNS code from table (types or classes, as
// what says) that usable accepts in a health check query.
func (l leaf) queryCode(table map[string]uint16, what string, usable func(uint16) bool) (any, bool) {
	s, ok := l.text()
	if !ok {
		return nil, false
	}
	c, ok := table[strings.ToUpper(strings.TrimSpace(s))]
	switch {
	case !ok:
		l.bad("%q: unknown %s", s, what)
		return nil, false
	case !usable(c):
		l.bad("%q: not usable in a health check query", s)
		return nil, false
	}
	return c, true
}

// rcodes reads a list of rcode names; it may not be empty.
func (l leaf) rcodes() (any, bool) {
	codes, ok := list(l, "rcode names such as NOERROR", func(s string) (int, string) {
		rc, ok := dns.StringToRcode[strings.ToUpper(strings.TrimSpace(s))]
		if !ok {
			return 0, fmt.Sprintf("%q: unknown rcode", s)
		}
		return rc, ""
	})
	if ok && codes.([]int) == nil {
		l.bad("required")
		return nil, false
	}
	return codes, ok
}

// tsigAlgorithm reads the name of a TSIG algorithm, in any case and with
// or without the trailing dot, and returns its miekg/dns constant.
func (l leaf) tsigAlgorithm() (string, bool) {
	s, ok := l.text()
	if !ok {
		return "", false
	}
	w := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	words := tsigAlgorithms()
	if !slices.Contains(words, w) {
		l.bad("%q: must be one of %s", s, strings.Join(words, ", "))
		return "", false
	}
	return dns.Fqdn(w), true
}

// tsigAlgorithms lists the TSIG algorithms accepted, as written in a file;
// each plus a final dot is a miekg/dns constant (dns.HmacSHA256 ...).
func tsigAlgorithms() []string {
	return []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}
}

// list reads a list of items, each parsed by parse: a list, or one string
// of items separated by commas and/or spaces (how an environment variable
// arrives). Items that do not parse are reported and left zero, so that
// the list keeps its indexes for validation; an empty list is nil.
func list[T any](l leaf, what string, parse func(string) (T, string)) (any, bool) {
	var items []any
	switch x := l.raw.(type) {
	case string:
		for _, f := range strings.FieldsFunc(x, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			items = append(items, f)
		}
	case []any:
		items = x
	default:
		l.bad("must be a list of %s, not %s", what, kind(l.raw))
		return nil, false
	}
	if len(items) == 0 {
		return []T(nil), true
	}
	out := make([]T, len(items))
	for i, it := range items {
		p := item(l.path, i)
		s, ok := scalarText(it)
		if !ok {
			l.c.add(p, "must be a string, not %s", kind(it))
			continue
		}
		l.c.texts[p] = s
		v, msg := parse(s)
		if msg != "" {
			l.c.add(p, "%s", msg)
			continue
		}
		out[i] = v
	}
	return out, true
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
