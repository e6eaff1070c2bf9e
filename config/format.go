package config

import (
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// The inverse of parse.go: values written as a file writes them.

// fileValue returns v, the value of field f, as a file writes it: the
// form viper is given defaults in, and the defaults table and schema.json
// show. It returns nil when f has no default: an empty list, or a zero
// value its range rejects.
func fileValue(f reflect.StructField, v reflect.Value) any {
	switch {
	case v.Kind() == reflect.Slice && v.Len() == 0:
		return nil
	case v.IsZero() && v.Kind() == reflect.Int && f.Tag.Get("range") != "":
		if lo, hi := numberRange(f.Tag.Get("range")); lo > 0 || hi < 0 {
			return nil
		}
	case v.IsZero() && v.Kind() == reflect.Struct:
		return nil
	}
	switch f.Tag.Get("kind") {
	case "size":
		return formatSize(v.Int())
	case "qtype":
		return dns.TypeToString[uint16(v.Uint())]
	case "qclass":
		return dns.ClassToString[uint16(v.Uint())]
	case "rcode":
		var names []any
		for _, rc := range v.Interface().([]int) {
			names = append(names, dns.RcodeToString[rc])
		}
		return names
	case "tsig-algorithm":
		return strings.TrimSuffix(v.String(), ".")
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		return fmtDuration(x)
	case slog.Level:
		return strings.ToLower(x.String())
	case fmt.Stringer:
		return x.String()
	}
	if v.Kind() == reflect.Slice {
		items := make([]any, v.Len())
		for i := range items {
			items[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return items
	}
	if v.Kind() == reflect.String {
		return v.String() // BackendState and other string types
	}
	return v.Interface()
}

// formatSize writes n bytes with the largest unit that divides it.
func formatSize(n int64) string {
	for _, u := range sizeUnits() {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
