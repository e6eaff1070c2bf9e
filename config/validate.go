package config

import (
	"reflect"
)

// validate checks what the struct tags cannot say about cfg, which decode
// read: the keys required, then each section's own rules. Decoding has
// checked every value against its type, kind, enum and range tags;
// validation skips the values it found invalid (see [check.ok]) and
// relates the others.
func validate(c *check, cfg *Config) {
	required(c, "", reflect.ValueOf(cfg).Elem())
	validateListen(c, cfg.Listen)
	validateBackends(c, cfg.Backends)
	validateLimits(c, cfg.Limits)
	validateACL(c, cfg.ACL)
	validateAdmin(c, cfg.Admin)
	validateHealthCheck(c, cfg)
	validateVRRP(c, "vrrp", cfg.VRRP, backendCount(c, cfg.Backends))
	validateVRRPInstances(c, cfg.VRRP, backendCount(c, cfg.Backends))
	validateNotify(c, &cfg.Notify)
	validateRRL(c, cfg.RRL)
	validateBGP(c, cfg, backendCount(c, cfg.Backends))
}

// required reports the keys tagged required that are missing or empty in
// the section v at path, and in the sections and items below it:
// required:"true" always, required:"enabled" while the section's enabled
// key is true and valid. A key with a problem of its own is not reported
// again, unless the problem is a variable set for a key only the file
// can set; nor are the keys of a section or item that could not be read.
func required(c *check, path string, v reflect.Value) {
	if path != "" && c.unread[path] {
		return
	}
	enabled := true
	if e := v.FieldByName("Enabled"); e.IsValid() {
		enabled = e.Bool() && c.ok(join(path, "enabled"))
	}
	// A section with items of its own type (vrrp.instances) requires its
	// required:"enabled" keys in each item instead (which inherit its
	// enabled and may inherit the keys).
	if f := v.FieldByName("Instances"); f.IsValid() && f.Len() > 0 {
		enabled = false
	}
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		p := join(path, keyName(f))
		switch when := f.Tag.Get("required"); {
		case isSection(f.Type):
			required(c, p, fv)
		case (when == "true" || when == "enabled" && enabled) && empty(fv) &&
			(c.ok(p) || !c.given[p] && f.Tag.Get("fileonly") != ""):
			c.add(p, "required")
		case isItems(f.Type):
			for j := range fv.Len() {
				required(c, item(p, j), fv.Index(j))
			}
		}
	}
}

// empty reports whether v is the zero value or an empty list.
func empty(v reflect.Value) bool {
	return v.IsZero() || v.Kind() == reflect.Slice && v.Len() == 0
}

// backendCount returns the number of backends that are mappings, 0 when
// backends is not a list.
func backendCount(c *check, backends []Backend) int {
	n := 0
	for i := range backends {
		if !c.unread[item("backends", i)] {
			n++
		}
	}
	return n
}
