package config

import (
	"bytes"
	"maps"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// readYAML reads data into a viper instance and returns it with the file
// alone (keys lower-cased by viper), before defaults and the environment
// are layered on: the file decides which optional sections are present
// and alone provides the lists of mappings.
func readYAML(data []byte) (*viper.Viper, map[string]any, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, nil, err
	}
	return v, v.AllSettings(), nil
}

// decodeConfig returns the configuration that v, which holds the file,
// describes with the environment and the defaults (environment > file >
// default), recording in c every value that is not valid for its key and
// every key the schema does not know. A field keeps its default when its
// key is absent or invalid.
func decodeConfig(c *check, v *viper.Viper, file map[string]any) *Config {
	// viper layers environment > file > default for each key it is asked
	// about: give it every default, written as a file would.
	cfg := Default()
	for _, k := range envKeys("") {
		v.SetDefault(k.path, fileValue(k.field, k.value))
	}
	// An optional section is on when the file has it, unless it says
	// enabled: false; DNSLB_<SECTION>_ENABLED overrides either.
	for i := range reflect.TypeFor[Config]().NumField() {
		if f := reflect.TypeFor[Config]().Field(i); f.Tag.Get("optional") == "true" {
			_, present := file[keyName(f)].(map[string]any)
			v.SetDefault(keyName(f)+".enabled", present)
			reflect.ValueOf(&cfg).Elem().Field(i).FieldByName("Enabled").SetBool(present)
		}
	}
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AllowEmptyEnv(true)
	v.AutomaticEnv()
	// The settings are the file's mappings (unknown keys and lists of
	// mappings come only from them) with every key viper knows set to its
	// effective value, or removed when it has none or a variable named
	// after a section above it hides it.
	settings := cloneMappings(file)
	for _, k := range envKeys("") {
		setAt(settings, k.path, v.Get(k.path))
	}

	// Each backend's health_check overrides the global one key by key:
	// decode the global section first, and start every backend from it.
	d := decoder{c: c}
	d.decode("health_check", settings["health_check"], &cfg.HealthCheck)
	delete(settings, "health_check")
	d.global = cfg.HealthCheck
	// Each vrrp.instances item overrides the section key by key: decode
	// the section without its instances first, and start every item from
	// it.
	vrrpSection, instances := settings["vrrp"], any(nil)
	if m, ok := vrrpSection.(map[string]any); ok && m["instances"] != nil {
		m = maps.Clone(m)
		instances = m["instances"]
		delete(m, "instances")
		vrrpSection = m
	}
	d.decode("vrrp", vrrpSection, &cfg.VRRP)
	delete(settings, "vrrp")
	if instances != nil {
		d.shared = cfg.VRRP
		f, _ := fieldByKey(reflect.TypeFor[VRRP](), "instances")
		d.decodeField("vrrp.instances", f, instances, &cfg.VRRP.Instances)
	}
	d.decode("", settings, &cfg)
	for i := range cfg.Backends {
		hc := &cfg.Backends[i].HealthCheck
		hc.Enabled = hc.Enabled && cfg.HealthCheck.Enabled
	}
	return &cfg
}

// cloneMappings returns a copy of m whose mappings, at any depth, are
// copies too.
func cloneMappings(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if mm, ok := v.(map[string]any); ok {
			v = cloneMappings(mm)
		}
		out[k] = v
	}
	return out
}

// setAt sets the value at the dotted key path p of m, removing it when
// value is nil. It adds the mappings missing on the way, but replaces no
// other value.
func setAt(m map[string]any, p string, value any) {
	parent, last, nested := strings.Cut(p, ".")
	if nested {
		if m[parent] == nil && value != nil {
			m[parent] = map[string]any{}
		}
		if mm, ok := m[parent].(map[string]any); ok {
			setAt(mm, last, value)
		}
		return
	}
	if value == nil {
		delete(m, p)
	} else {
		m[p] = value
	}
}

// decoder decodes settings into configuration values with mapstructure.
// mapstructure walks the target's fields, matches keys to them in any case
// and assigns the values; its hook reads each value for the field it goes
// to (see [decoder.hook]).
type decoder struct {
	c *check
	// global is the decoded global health check, which backends start
	// from.
	global HealthCheck
	// shared is the decoded vrrp section, which vrrp.instances items
	// start from.
	shared VRRP
}

// setting is a value of the settings wrapped with the key path and field
// it is for. mapstructure tells a hook the type of the value it fills but
// neither its key nor its tags: the hook that reads a mapping wraps every
// value it passes on, so the hooks that read them know both.
type setting struct {
	path  string
	field reflect.StructField
	raw   any
}

// decode decodes raw, the value at key path, into target, a pointer.
func (d *decoder) decode(path string, raw any, target any) {
	d.decodeField(path, reflect.StructField{}, raw, target)
}

// decodeField decodes raw, the value at key path of field f, into
// target, a pointer.
func (d *decoder) decodeField(path string, f reflect.StructField, raw any, target any) {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.DecodeHookFuncValue(d.hook),
		ErrorUnused: true,
		Result:      target,
	})
	if err != nil {
		panic("config: " + err.Error())
	}
	// The hooks record every problem and pass on only what fits, unknown
	// keys left out, so mapstructure has nothing to report; should it
	// anyway, its words are not for users.
	if err := dec.Decode(setting{path: path, field: f, raw: raw}); err != nil {
		d.c.add(path, "cannot be decoded")
	}
}

// hook is called by mapstructure for every value before it is assigned:
// from is a [setting] (or a value a hook already returned), to the
// target. It reads the setting for to, recording what is wrong, and
// returns what mapstructure should assign: a mapping of wrapped values for
// a section, a list of wrapped items for a list of mappings, the value
// itself otherwise. It returns nil, which leaves the target as it is, for
// what is absent or invalid.
func (d *decoder) hook(from, to reflect.Value) (any, error) {
	s, ok := from.Interface().(setting)
	if !ok {
		return from.Interface(), nil
	}
	if text, scalar := scalarText(s.raw); scalar {
		d.c.texts[s.path] = text
	}
	switch t := to.Type(); {
	case isSection(t):
		return d.mapping(s, t), nil
	case isItems(t):
		return d.items(s, to), nil
	default:
		d.c.given[s.path] = true
		v, ok := leaf{c: d.c, path: s.path, field: s.field, raw: s.raw}.decode(t)
		if !ok {
			return nil, nil
		}
		return v, nil
	}
}

// mapping returns the values of the mapping s holds, for section type t,
// under their keys' names and wrapped. Null values count as absent, and
// so does an empty or null section; a list item must be a mapping. Keys
// t does not have are reported, and so are keys the section may only have
// at the top level.
func (d *decoder) mapping(s setting, t reflect.Type) any {
	isItem := strings.HasSuffix(s.path, "]")
	m, ok := s.raw.(map[string]any)
	switch {
	case !ok && isItem:
		d.c.add(s.path, "must be a mapping")
		d.c.unread[s.path] = true
		return nil
	case s.raw == nil || ok && len(m) == 0 && !isItem:
		return nil
	case !ok:
		d.c.add(s.path, "must be a mapping, not %s", kind(s.raw))
		d.c.unread[s.path] = true
		return nil
	}
	d.c.given[s.path] = true
	out := make(map[string]any, len(m))
	for k, v := range m {
		f, known := fieldByKey(t, k)
		switch only := f.Tag.Get("globalonly"); {
		case !known:
			d.c.add(join(s.path, quoteKey(k)), "unknown key")
		case v == nil:
		case only != "" && s.path != only:
			d.c.add(join(s.path, keyName(f)), "only allowed in the global %s section", only)
		default:
			out[keyName(f)] = setting{path: join(s.path, keyName(f)), field: f, raw: v}
		}
	}
	return out
}

// items returns the items of the list of mappings s holds, wrapped, after
// setting to, the list, to as many items holding their defaults: each
// item is decoded over them. A backend starts with the global health
// check, which its own overrides.
func (d *decoder) items(s setting, to reflect.Value) any {
	d.c.given[s.path] = true
	list, ok := s.raw.([]any)
	switch {
	case !ok:
		d.c.add(s.path, "must be a list")
		d.c.unread[s.path] = true
		return nil
	case len(list) == 0:
		return nil
	}
	start := reflect.MakeSlice(to.Type(), len(list), len(list))
	out := make([]any, len(list))
	for i, raw := range list {
		it := start.Index(i)
		it.Set(defaultItem(it.Type()))
		switch x := it.Addr().Interface().(type) {
		case *Backend:
			x.HealthCheck = d.global.clone()
		case *VRRP:
			*x = d.shared.instanceDefaults()
		}
		out[i] = setting{path: item(s.path, i), field: s.field, raw: raw}
	}
	to.Set(start)
	return out
}
