package config

import "time"

// keyState says what a key of a section held.
type keyState int

const (
	keyAbsent keyState = iota // not given: the inherited value stays
	keySet                    // given and valid: applied
	keyBad                    // given and invalid, or unreadable: reported
)

// openSection starts decoding the section name. It reports whether the
// section is usable (see section); if so it returns the section's mapping
// in the file (nil when absent or null) and whether the file has it, and
// reports the environment variables a missing section ignores.
func (d *decoder) openSection(name string) (m map[string]any, present, ok bool) {
	if !d.section(name) {
		return nil, false, false
	}
	m, present = d.file[name].(map[string]any)
	d.envWithoutSection(name, present)
	return m, present, true
}

// fields decodes the keys of one section in schema order and records what
// each key held.
type fields struct {
	d *decoder
	// path is the section's path.
	path string
	// look returns the value of a key (dotted, relative to the section)
	// and what it holds.
	look func(key string) (any, keyState)
	// st records what each key decoded so far held, by the key given to
	// field.
	st map[string]keyState
}

// fields returns a decoder of the keys of the section at path whose
// values look returns.
func (d *decoder) fields(path string, look func(key string) (any, keyState)) *fields {
	return &fields{d: d, path: path, look: look, st: make(map[string]keyState)}
}

// viperFields returns a decoder of the keys of the section at path whose
// values come through viper (environment > file > default).
func (d *decoder) viperFields(path string) *fields {
	return d.fields(path, func(key string) (any, keyState) { return d.lookup(join(path, key)) })
}

// field decodes key, when it is set, with decode, which records any problem
// at the key's path and reports whether the value was valid; it records
// what key held.
func (f *fields) field(key string, decode func(path string, v any) bool) {
	v, s := f.look(key)
	if s == keySet && !decode(join(f.path, key), v) {
		s = keyBad
	}
	f.st[key] = s
}

// required reports key as required when it is missing and the section is
// enabled, unless key or the section's enabled key was invalid (already
// reported).
func (f *fields) required(key string, missing, enabled bool) {
	if missing && f.st[key] != keyBad && f.st["enabled"] != keyBad && enabled {
		f.d.add(join(f.path, key), "required")
	}
}

// assign returns a field setter that parses with parse and, if the value
// is valid, stores it in dst.
func assign[T any](dst *T, parse func(path string, v any) (T, bool)) func(string, any) bool {
	return func(p string, v any) bool {
		x, ok := parse(p, v)
		if ok {
			*dst = x
		}
		return ok
	}
}

// validated returns a parser for assign that parses with parse and accepts
// the value only if check, which records any problem at path, does.
func validated[T any](parse func(path string, v any) (T, bool), check func(path string, x T) bool) func(path string, v any) (T, bool) {
	return func(path string, v any) (T, bool) {
		x, ok := parse(path, v)
		if !ok || !check(path, x) {
			var zero T
			return zero, false
		}
		return x, true
	}
}

// intIn returns a parser of integers in [lo, hi] for assign.
func (d *decoder) intIn(lo, hi int64) func(path string, v any) (int, bool) {
	return func(path string, v any) (int, bool) { return d.integer(path, v, lo, hi) }
}

// durationBetween returns a parser of durations in [lo, hi] for assign;
// note is appended to the range message (see durationIn).
func (d *decoder) durationBetween(lo, hi time.Duration, note string) func(path string, v any) (time.Duration, bool) {
	return func(path string, v any) (time.Duration, bool) { return d.durationIn(path, v, lo, hi, note) }
}

// choice returns a parser of one of the allowed words for assign (see
// oneOf).
func (d *decoder) choice(allowed ...string) func(path string, v any) (string, bool) {
	return func(path string, v any) (string, bool) { return d.oneOf(path, v, allowed...) }
}

// durationIn decodes v, the value at path, as a duration in [lo, hi]; v
// may already be a time.Duration. note is appended to the range message.
func (d *decoder) durationIn(path string, v any, lo, hi time.Duration, note string) (time.Duration, bool) {
	dur, ok := v.(time.Duration)
	if !ok {
		if dur, ok = d.parseDuration(path, v); !ok {
			return 0, false
		}
	}
	if dur < lo || dur > hi {
		d.add(path, "%s out of range [%s, %s]%s", fmtDuration(dur), fmtDuration(lo), fmtDuration(hi), note)
		return 0, false
	}
	return dur, true
}
