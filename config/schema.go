package config

import (
	"reflect"
	"strconv"
	"strings"
)

// The configuration types are the schema: every key is a field with a doc
// comment (its meaning, range and default, for godoc and schema.json) and
// struct tags, which decoding, validation, the defaults table in doc.go and
// schema.json all read:
//
//	mapstructure:"udp"   the key
//	range:"(0s, 30s]"    allowed values, as messages and docs print them: "1-1000" for
//	                     integers, "0-1" for fractions, "64KiB-1GiB" for sizes, an
//	                     interval for durations; a trailing "(0s disables)" also
//	                     allows that value
//	enum:"udp|tcp"       allowed words, in any case; stored in lower case
//	kind:"size"          how text is read when the Go type does not say (see [leaf.decode])
//	required:"true"      must be set: "true" always, "enabled" while the section's enabled is true
//	fileonly:"..."       a list of mappings, which only the file can hold; the text ends
//	                     the message about its environment variable
//	globalonly:"name"    may be set only in the top-level section name, not where its type is reused
//	optional:"true"      a section that is off unless the file has it: its enabled key
//	                     defaults to whether the file has the section
//	note:"..."           added to the key's line in the defaults table
//
// Sections are struct types of this package; lists of them are lists of
// mappings; every other field is a value.
//
// The files of the package call only the files after them in this order:
// config.go (Load, Parse); decode.go, env.go, gen.go and diff.go;
// validate.go; validate_<section>.go; format.go; rules.go; parse.go;
// addr.go; health.go, vrrp.go and notify.go (section types); check.go;
// schema.go; default.go and error.go.

// keyName returns the key of field f.
func keyName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return name
}

// isSection reports whether t is a section: a struct type of this package.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == reflect.TypeFor[Config]().PkgPath()
}

// isItems reports whether t is a list of mappings.
func isItems(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && isSection(t.Elem())
}

// fieldByKey returns the field of section type t whose key is k, in any
// case, as mapstructure matches them.
func fieldByKey(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); strings.EqualFold(keyName(f), k) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// key is one key of the schema.
type key struct {
	// path is the key path; items of a list are written "[]", e.g.
	// "backends[].weight".
	path  string
	field reflect.StructField
	// value is the default: from [Default], or from [defaultItem] below a
	// list.
	value reflect.Value
	// env is set when a DNSLB_ variable can set the key: it is not below a
	// list, which only the file can describe.
	env bool
}

// isValue reports whether k holds a value rather than a section or a list
// of mappings.
func (k key) isValue() bool {
	return !isSection(k.field.Type) && !isItems(k.field.Type)
}

// keys returns every key of the schema, in schema order: a section before
// its keys, a list of mappings before the keys of its items.
func keys() []key {
	var out []key
	var walk func(prefix string, v reflect.Value, env bool)
	walk = func(prefix string, v reflect.Value, env bool) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !env && f.Tag.Get("globalonly") != "" {
				continue // not a key below a list (vrrp.instances[].track)
			}
			k := key{path: join(prefix, keyName(f)), field: f, value: v.Field(i), env: env}
			out = append(out, k)
			switch {
			case isSection(f.Type):
				walk(k.path, k.value, env)
			case isItems(f.Type):
				walk(k.path+"[]", defaultItem(f.Type.Elem()), false)
			}
		}
	}
	walk("", reflect.ValueOf(Default()), true)
	return out
}

// envKeys returns the keys below section (all keys when it is "") that
// hold a value and can come from the environment, in schema order.
func envKeys(section string) []key {
	var out []key
	for _, k := range keys() {
		if k.env && k.isValue() && (section == "" || strings.HasPrefix(k.path, section+".")) {
			out = append(out, k)
		}
	}
	return out
}

// pathStep is one step of a key path: a key or a list index.
type pathStep struct {
	key     string
	index   int
	isIndex bool
}

// splitPath splits a key path as problems write it, e.g.
// `backends[1].health_check."odd key"`, into its steps.
func splitPath(p string) []pathStep {
	var steps []pathStep
	for p != "" {
		switch p[0] {
		case '.':
			p = p[1:]
		case '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return append(steps, pathStep{key: p})
			}
			n, _ := strconv.Atoi(p[1:end])
			steps, p = append(steps, pathStep{index: n, isIndex: true}), p[end+1:]
		case '"':
			q, err := strconv.QuotedPrefix(p)
			if err != nil {
				return append(steps, pathStep{key: p})
			}
			k, _ := strconv.Unquote(q)
			steps, p = append(steps, pathStep{key: k}), p[len(q):]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			steps, p = append(steps, pathStep{key: p[:end]}), p[end:]
		}
	}
	return steps
}

// position is where a step of a key path comes in schema order: the
// field's index, or the list index; keys the schema does not know come
// after the known ones, sorted by name.
type position struct {
	n       int
	unknown string
}

// schemaOrder returns the positions of the steps of key path p.
func schemaOrder(p string) []position {
	var out []position
	t := reflect.TypeFor[Config]()
	for _, s := range splitPath(p) {
		switch {
		case s.isIndex:
			out = append(out, position{n: s.index})
			if t != nil && t.Kind() == reflect.Slice {
				t = t.Elem()
			}
		case t != nil && isSection(t):
			f, ok := fieldByKey(t, s.key)
			if !ok {
				out, t = append(out, position{n: t.NumField(), unknown: s.key}), nil
				continue
			}
			out, t = append(out, position{n: f.Index[0]}), f.Type
		default:
			out, t = append(out, position{unknown: s.key}), nil
		}
	}
	return out
}

// comparePositions orders key paths by their positions (see
// [schemaOrder]); a path comes before the paths below it.
func comparePositions(pa, pb []position) int {
	for i := range min(len(pa), len(pb)) {
		if c := pa[i].n - pb[i].n; c != 0 {
			return c
		}
		if c := strings.Compare(pa[i].unknown, pb[i].unknown); c != 0 {
			return c
		}
	}
	return len(pa) - len(pb)
}

// sameSettings reports whether a and b, values of one configuration type,
// hold the same settings: lists are compared item by item, nil being an
// empty list. It lets the Equal methods see every field, including those
// added later.
func sameSettings(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Struct:
		if a.Type().PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return a.Interface() == b.Interface() // netip values
		}
		for i := range a.NumField() {
			if !sameSettings(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameSettings(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	}
	return a.Interface() == b.Interface()
}

// join appends key to the key path prefix.
func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// item returns the key path of item i of the list at path.
func item(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
