package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
)

// The defaults table of the package documentation (doc.go) and
// schema.json are generated from the types, their tags and [Default] by
// go generate (gen_test.go adds the doc comments and writes the files).

// defaultsTable returns the lines of the defaults table: every key with
// its default and what it accepts, in schema order. Sections are not
// listed, but for one in a list item that overrides a top-level section
// (backends[].health_check), whose keys are the top-level section's.
func defaultsTable() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "key\tdefault\tvalues")
	overrider := "" // the override section whose keys are being skipped
	for _, k := range keys() {
		over := ""
		switch {
		case isSection(k.field.Type) && strings.Contains(k.path, "[]"):
			over = topLevel(k.field.Type)
		case isItems(k.field.Type):
			over = topLevel(k.field.Type.Elem()) // vrrp.instances: items override the section
		}
		switch {
		case overrider != "" && (strings.HasPrefix(k.path, overrider+".") || strings.HasPrefix(k.path, overrider+"[].")):
			continue
		case over != "":
			overrider = k.path
		case isSection(k.field.Type):
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", k.path, defaultText(k, over), strings.Join(describe(k), "; "))
	}
	w.Flush()
	return b.String()
}

// topLevel returns the key of the top-level section of type t, "" if
// there is none. A section of that type in a list item overrides it key
// by key (backends[].health_check).
func topLevel(t reflect.Type) string {
	for i := range reflect.TypeFor[Config]().NumField() {
		if f := reflect.TypeFor[Config]().Field(i); f.Type == t {
			return keyName(f)
		}
	}
	return ""
}

// defaultText writes the default of k for the table; over is the section
// k overrides, if any.
func defaultText(k key, over string) string {
	switch {
	case over != "":
		return over
	case isItems(k.field.Type):
		return "-"
	case keyName(k.field) == "enabled" && optionalSection(k.path):
		return "if present"
	}
	required := k.field.Tag.Get("required") != ""
	switch x := fileValue(k.field, k.value).(type) {
	case nil:
		if k.field.Type.Kind() == reflect.Slice && !required {
			return "[]"
		}
		return "-"
	case string:
		switch {
		case x == "" && required:
			return "-"
		case x == "":
			return `""`
		}
		return x
	case []any:
		return "[" + strings.Trim(fmt.Sprint(x...), "[]") + "]"
	default:
		return fmt.Sprint(x)
	}
}

// optionalSection reports whether the key path p is in an optional
// section (see the optional tag).
func optionalSection(p string) bool {
	section, _, _ := strings.Cut(p, ".")
	f, ok := fieldByKey(reflect.TypeFor[Config](), section)
	return ok && f.Tag.Get("optional") == "true"
}

// describe says what k accepts, from its type and tags, for the table.
func describe(k key) []string {
	var out []string
	f := k.field
	switch {
	case f.Tag.Get("range") != "":
		out = append(out, f.Tag.Get("range"))
	case f.Tag.Get("enum") != "":
		out = append(out, f.Tag.Get("enum"))
	case f.Tag.Get("kind") != "":
		out = append(out, kindText(f.Tag.Get("kind")))
	case f.Type == reflect.TypeFor[[]netip.AddrPort]():
		out = append(out, "ip:port list")
	case f.Type == reflect.TypeFor[netip.AddrPort]():
		out = append(out, "ip:port")
	case isItems(f.Type):
		out = append(out, "list of mappings")
	}
	if note := f.Tag.Get("note"); note != "" {
		out = append(out, note)
	}
	switch f.Tag.Get("required") {
	case "true":
		out = append(out, "required")
	case "enabled":
		out = append(out, "required when enabled")
	}
	if f.Tag.Get("fileonly") != "" {
		out = append(out, "file only, no environment variable")
	}
	if f.Tag.Get("globalonly") != "" {
		out = append(out, "global only")
	}
	return out
}

// kindText says what a kind tag accepts.
func kindText(kind string) string {
	return map[string]string{
		"size":           "bytes, or KiB|MiB|GiB",
		"qtype":          "a type name, any case",
		"qclass":         "IN|CH|HS|CS|ANY",
		"rcode":          "rcode names, any case",
		"network":        "IPs/CIDRs without host bits",
		"primary":        "IPs/CIDRs without host bits",
		"vip":            `"ip/len" or "ip" (/32, /128)`,
		"peer":           "IP addresses",
		"quoted":         "a quoted string",
		"domain":         "a domain name",
		"interface":      "1-15 characters, no '/', ':' or whitespace",
		"tsig-algorithm": strings.Join(tsigAlgorithms(), "|"),
		"ip":             "an IP address",
		"ipv4":           "an IPv4 address",
		"nexthop":        "IP addresses",
		"community":      "asn:value or a well-known name",
	}[kind]
}

// member is one member of a JSON object, which [object] keeps in order.
type member struct {
	key   string
	value any
}

// object is a JSON object whose members keep their order.
type object []member

// MarshalJSON writes o with its members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// jsonSchema returns the JSON Schema (draft 2020-12) of the file, doc
// giving the description of a field of a section type.
func jsonSchema(doc func(t reflect.Type, f reflect.StructField) string) ([]byte, error) {
	root := object{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$id", "https://github.com/dnslb/dnslb/config/schema.json"},
		{"title", "dnslb configuration"},
		{"description", "The dnslb configuration file. Every key but the lists of mappings " +
			"may also come from a DNSLB_ environment variable, which wins over the file. " +
			"Keys are written in lower case here; dnslb accepts any case."},
	}
	s := schemaGen{doc: doc}
	root = append(root, s.section(reflect.ValueOf(Default()), false, false)...)
	b, err := json.MarshalIndent(root, "", "  ")
	return append(b, '\n'), err
}

// schemaGen generates the schema of sections.
type schemaGen struct {
	doc func(t reflect.Type, f reflect.StructField) string
}

// section returns the members of the schema of the section v, which
// holds its defaults: an object that allows its keys only. inList is set
// below a list of mappings, where no environment variable reaches, and
// override for a section there that overrides a top-level one: it takes
// neither its global-only keys nor defaults of its own.
func (s schemaGen) section(v reflect.Value, inList, override bool) object {
	t := v.Type()
	var props object
	var required []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("globalonly") != "" && override {
			continue
		}
		p := object{{"description", s.doc(t, f)}}
		switch {
		case isSection(f.Type):
			over := inList && topLevel(f.Type) != ""
			p = append(p, s.section(v.Field(i), inList, override || over)...)
		case isItems(f.Type):
			// items of a top-level section's type override it (vrrp.instances)
			items := s.section(defaultItem(f.Type.Elem()), true, topLevel(f.Type.Elem()) != "")
			p = append(p, member{"type", "array"}, member{"items", items})
			if f.Tag.Get("required") == "true" {
				p = append(p, member{"minItems", 1})
			}
		default:
			p = append(p, valueSchema(f)...)
			if d := fileValue(f, v.Field(i)); d != nil && !override {
				p = append(p, member{"default", d})
			}
		}
		// A key the environment may set is not required in the file.
		if f.Tag.Get("required") == "true" && (inList || isItems(f.Type)) {
			required = append(required, keyName(f))
		}
		props = append(props, member{keyName(f), p})
	}
	out := object{{"type", "object"}, {"properties", props}, {"additionalProperties", false}}
	if len(required) > 0 {
		out = append(out, member{"required", required})
	}
	return out
}

// valueSchema returns the members of the schema of the value of field f.
func valueSchema(f reflect.StructField) object {
	str := func(pattern string) object { return object{{"type", "string"}, {"pattern", pattern}} }
	list := func(item object) object {
		return object{{"type", []string{"array", "string"}}, {"items", item}, {"uniqueItems", true}}
	}
	switch f.Tag.Get("kind") {
	case "size":
		lo, hi, _ := strings.Cut(f.Tag.Get("range"), "-")
		min, _ := parseSize(lo)
		max, _ := parseSize(hi)
		return object{{"type", []string{"integer", "string"}}, {"minimum", min}, {"maximum", max},
			{"pattern", `^\s*\+?[0-9]+\s*(?:KiB|MiB|GiB)?\s*$`}}
	case "qtype":
		return object{{"type", "string"}}
	case "qclass":
		return str(anyCase("IN", "CH", "HS", "CS", "ANY"))
	case "rcode":
		var names []string
		for name := range dns.StringToRcode {
			names = append(names, name)
		}
		slices.Sort(names)
		return list(str(anyCase(names...)))
	case "network", "primary", "vip":
		return list(str(`^\s*[0-9A-Fa-f:.]+(?:/[0-9]{1,3})?\s*$`))
	case "peer":
		return list(str(`^\s*[0-9A-Fa-f:.]+(?:%\S+)?\s*$`))
	case "quoted", "domain":
		return object{{"type", "string"}}
	case "interface":
		return object{{"type", "string"}, {"maxLength", 15}, {"pattern", `^[^/:\s]*$`}}
	case "tsig-algorithm":
		return str(strings.TrimSuffix(anyCase(tsigAlgorithms()...), `\s*$`) + `\.?\s*$`)
	case "ip":
		return str(`^\s*[0-9A-Fa-f:.]+\s*$`)
	case "ipv4":
		return str(`^\s*[0-9]{1,3}(?:\.[0-9]{1,3}){3}\s*$`)
	case "nexthop":
		return list(str(`^\s*[0-9A-Fa-f:.]+\s*$`))
	case "community":
		return list(str(`^\s*(?:[0-9]{1,5}:[0-9]{1,5}|` + strings.TrimSuffix(strings.TrimPrefix(anyCase("no-export", "no-advertise", "no-export-subconfed", "graceful-shutdown", "blackhole"), `^\s*(?:`), `)\s*$`) + `)\s*$`))
	}
	if words := f.Tag.Get("enum"); words != "" {
		return str(anyCase(strings.Split(words, "|")...))
	}
	switch f.Type {
	case reflect.TypeFor[time.Duration]():
		return str(`^\s*[-+]?(?:0|(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+)\s*$`)
	case reflect.TypeFor[netip.AddrPort]():
		return str(addrPortPattern)
	case reflect.TypeFor[[]netip.AddrPort]():
		return list(str(addrPortPattern))
	}
	switch f.Type.Kind() {
	case reflect.Bool:
		return object{{"type", []string{"boolean", "string"}}, {"pattern", anyCase("true", "false", "yes", "no", "on", "off")}}
	case reflect.Int:
		s := object{{"type", []string{"integer", "string"}}, {"pattern", `^\s*[-+]?[0-9]+\s*$`}}
		if lo, hi, ok := strings.Cut(f.Tag.Get("range"), "-"); ok {
			s = append(s, member{"minimum", json.Number(lo)}, member{"maximum", json.Number(hi)})
		}
		return s
	case reflect.Float64:
		lo, hi, _ := strings.Cut(f.Tag.Get("range"), "-")
		return object{{"type", []string{"number", "string"}}, {"minimum", json.Number(lo)}, {"maximum", json.Number(hi)}}
	}
	return object{{"type", []string{"string", "number", "boolean"}}}
}

// addrPortPattern matches "ip:port", IPv6 in brackets.
const addrPortPattern = `^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]+(?:%[^\]]+)?\]):[0-9]{1,5}$`

// anyCase returns a pattern that matches one of words in any case, with
// spaces around.
func anyCase(words ...string) string {
	alts := make([]string, len(words))
	for i, w := range words {
		var b strings.Builder
		for _, r := range w {
			lo, up := strings.ToLower(string(r)), strings.ToUpper(string(r))
			switch {
			case lo != up:
				b.WriteString("[" + lo + up + "]")
			case strings.ContainsRune(`.-+`, r):
				b.WriteString(`\` + string(r))
			default:
				b.WriteRune(r)
			}
		}
		alts[i] = b.String()
	}
	return `^\s*(?:` + strings.Join(alts, "|") + `)\s*$`
}
