package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// notifySection is the smallest enabled notify section.
const notifySection = "notify: {interface: eth0, primaries: [192.0.2.1]}\n"

// enabledNotify is defaultNotify enabled with notifySection's values.
func enabledNotify() Notify {
	n := defaultNotify()
	n.Enabled = true
	n.Interface = "eth0"
	n.Primaries = prefixes("192.0.2.1/32")
	return n
}

// cloneNotify returns a copy of n that shares no memory with it.
func cloneNotify(n Notify) Notify {
	n.Primaries = slices.Clone(n.Primaries)
	n.TSIGKeys = slices.Clone(n.TSIGKeys)
	return n
}

// withNotify returns enabledNotify edited by edit.
func withNotify(edit func(*Notify)) Notify {
	n := enabledNotify()
	edit(&n)
	return n
}

func TestNotifyDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       Notify
	}{
		{"absent", "", defaultNotify()},
		{"null", "notify:\n", defaultNotify()},
		{"empty mapping counts as absent", "notify: {}\n", defaultNotify()},
		{"disabled needs nothing", "notify: {enabled: false}\n", defaultNotify()},
		{"disabled keeps its values", "notify: {enabled: false, interface: eth1, retries: 2}\n",
			func() Notify { n := defaultNotify(); n.Interface, n.Retries = "eth1", 2; return n }()},
		{"present means enabled", notifySection, enabledNotify()},
		{"enabled true", "notify: {enabled: true, interface: eth0, primaries: [192.0.2.1]}\n", enabledNotify()},
		{"every key, upper bounds", "notify:\n" +
			"  enabled: true\n  interface: bond0.53\n" +
			"  primaries: [192.0.2.1, 198.51.100.0/24, '2001:db8::1', '2001:db8:1::/48', 203.0.113.7/32]\n" +
			"  max_per_second: 1000000\n  dedup_window: 1h\n  retries: 20\n  track_qps: 100000\n  copy_qps: 100000\n  max_tracked: 100000000\n",
			Notify{
				Enabled:      true,
				Interface:    "bond0.53",
				Primaries:    prefixes("192.0.2.1/32", "198.51.100.0/24", "2001:db8::1/128", "2001:db8:1::/48", "203.0.113.7/32"),
				MaxPerSecond: 1000000,
				DedupWindow:  time.Hour,
				Retries:      20,
				TrackQPS:     100000,
				CopyQPS:      100000,
				MaxTracked:   100000000,
			}},
		{"every key, lower bounds", "notify:\n" +
			"  interface: e\n  primaries: ['2001:db8::53']\n  max_per_second: 1\n  dedup_window: 0s\n  retries: 0\n  track_qps: 1\n  copy_qps: 1\n  max_tracked: 1\n",
			Notify{
				Enabled:      true,
				Interface:    "e",
				Primaries:    prefixes("2001:db8::53/128"),
				MaxPerSecond: 1,
				TrackQPS:     1,
				CopyQPS:      1,
				MaxTracked:   1,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			checkSame(t, "Notify", mustParse(t, withDefaults(tc.yaml)).Notify, tc.want)
		})
	}
}

func TestNotifyAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(Notify) bool
	}{
		{"primaries as one string", "notify: {interface: eth0, primaries: '192.0.2.1, 192.0.2.2  2001:db8::/64,'}\n",
			func(n Notify) bool {
				return slices.Equal(n.Primaries, prefixes("192.0.2.1/32", "192.0.2.2/32", "2001:db8::/64"))
			}},
		{"primaries unquoted IPv6 in a block list", "notify:\n  interface: eth0\n  primaries:\n    - 2001:db8::1\n    - 2001:db8:2::/64\n",
			func(n Notify) bool { return slices.Equal(n.Primaries, prefixes("2001:db8::1/128", "2001:db8:2::/64")) }},
		{"primaries keep file order", "notify: {interface: eth0, primaries: ['2001:db8::1', 192.0.2.9, 10.0.0.0/8]}\n",
			func(n Notify) bool {
				return slices.Equal(n.Primaries, prefixes("2001:db8::1/128", "192.0.2.9/32", "10.0.0.0/8"))
			}},
		{"IPv4-mapped unmapped", "notify: {interface: eth0, primaries: ['::ffff:192.0.2.1', '::ffff:198.51.100.0/120']}\n",
			func(n Notify) bool { return slices.Equal(n.Primaries, prefixes("192.0.2.1/32", "198.51.100.0/24")) }},
		{"spaces trimmed", "notify: {interface: eth0, primaries: [' 192.0.2.1 ']}\n",
			func(n Notify) bool { return slices.Equal(n.Primaries, prefixes("192.0.2.1/32")) }},
		{"overlapping networks are not duplicates", "notify: {interface: eth0, primaries: [192.0.2.0/24, 192.0.2.1, 192.0.2.0/25]}\n",
			func(n Notify) bool { return len(n.Primaries) == 3 }},
		{"the whole address space", "notify: {interface: eth0, primaries: [0.0.0.0/0, '::/0']}\n",
			func(n Notify) bool { return slices.Equal(n.Primaries, prefixes("0.0.0.0/0", "::/0")) }},
		{"loopback primary", "notify: {interface: lo, primaries: [127.0.0.1, '::1']}\n",
			func(n Notify) bool { return len(n.Primaries) == 2 }},
		{"a network around multicast", "notify: {interface: eth0, primaries: [192.0.0.0/2]}\n",
			func(n Notify) bool { return n.Primaries[0] == prefixes("192.0.0.0/2")[0] }},
		{"quoted integers and word booleans", "notify: {enabled: 'on', interface: eth0, primaries: [192.0.2.1], max_per_second: '50', retries: ' 7 '}\n",
			func(n Notify) bool { return n.Enabled && n.MaxPerSecond == 50 && n.Retries == 7 }},
		{"interface of 15 characters", "notify: {interface: " + strings.Repeat("i", 15) + ", primaries: [192.0.2.1]}\n",
			func(n Notify) bool { return len(n.Interface) == 15 }},
		{"null keys keep defaults", "notify: {interface: eth0, primaries: [192.0.2.1], max_per_second: ~, dedup_window: ~, retries: ~, track_qps: ~, max_tracked: ~}\n",
			func(n Notify) bool {
				return n.MaxPerSecond == 10000 && n.DedupWindow == 5*time.Second && n.Retries == 5 && n.TrackQPS == 1000 && n.CopyQPS == 200 && n.MaxTracked == 1000000
			}},
		{"upper-case keys", "NOTIFY: {Interface: eth0, Primaries: [192.0.2.1], Max_Per_Second: 9}\n",
			func(n Notify) bool { return n.Enabled && n.MaxPerSecond == 9 }},
		{"disabled with no required key", "notify: {enabled: false, primaries: [], max_per_second: 10}\n",
			func(n Notify) bool { return !n.Enabled && n.Primaries == nil && n.MaxPerSecond == 10 }},
		{"dedup_window in other units", "notify: {interface: eth0, primaries: [192.0.2.1], dedup_window: 1m30s}\n",
			func(n Notify) bool { return n.DedupWindow == 90*time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, withDefaults(tc.yaml), nil, func(c *Config) Notify { return c.Notify }, tc.check)
		})
	}
}

func TestNotifyProblems(t *testing.T) {
	// base prefixes a section with the required keys.
	const base = "notify: {interface: eth0, primaries: [192.0.2.1], "
	// bad checks one list of primaries.
	bad := func(list string) string { return "notify: {interface: eth0, primaries: " + list + "}\n" }
	for _, tc := range []struct {
		name string
		yaml string   // completed by withDefaults
		want []string // every problem, in order
	}{
		// shape and unknown keys
		{"not a mapping", "notify: eth0\n",
			[]string{"notify: must be a mapping, not a string"}},
		{"a list", "notify: [192.0.2.1]\n",
			[]string{"notify: must be a mapping, not a list"}},
		{"unknown key", base + "primary: 192.0.2.2}\n",
			[]string{"notify.primary: unknown key"}},
		{"unknown keys sorted, last", base + "zz: 1, aa: 2, retries: 21}\n",
			[]string{"notify.retries: 21 out of range 0-20", "notify.aa: unknown key", "notify.zz: unknown key"}},

		// enabled and required keys
		{"enabled not a boolean", base + "enabled: maybe}\n",
			[]string{`notify.enabled: "maybe": not a boolean (true or false)`}},
		{"required when present", "notify: {retries: 1}\n",
			[]string{"notify.interface: required", "notify.primaries: required"}},
		{"required when enabled", "notify: {enabled: true}\n",
			[]string{"notify.interface: required", "notify.primaries: required"}},
		{"empty values count as missing", "notify: {interface: '', primaries: []}\n",
			[]string{"notify.interface: required", "notify.primaries: required"}},
		{"empty primaries string counts as missing", "notify: {interface: eth0, primaries: ' , '}\n",
			[]string{"notify.primaries: required"}},
		{"null values count as missing", "notify: {interface: ~, primaries: ~, retries: 1}\n",
			[]string{"notify.interface: required", "notify.primaries: required"}},
		{"invalid values are not missing", "notify: {interface: 'a/b', primaries: [x]}\n",
			[]string{`notify.interface: "a/b": may not contain '/', ':' or whitespace`, `notify.primaries[0]: "x": not an IP address or CIDR`}},
		{"invalid enabled requires nothing", "notify: {enabled: 2}\n",
			[]string{`notify.enabled: "2": not a boolean (true or false)`}},
		{"disabled still validated", "notify: {enabled: false, interface: 'eth0:1', primaries: [x], max_per_second: 0}\n",
			[]string{
				`notify.interface: "eth0:1": may not contain '/', ':' or whitespace`,
				`notify.primaries[0]: "x": not an IP address or CIDR`,
				"notify.max_per_second: 0 out of range 1-1000000",
			}},

		// interface
		{"interface too long", "notify: {interface: " + strings.Repeat("i", 16) + ", primaries: [192.0.2.1]}\n",
			[]string{`notify.interface: "` + strings.Repeat("i", 16) + `": longer than 15 characters`}},
		{"interface with slash", "notify: {interface: eth0/1, primaries: [192.0.2.1]}\n",
			[]string{`notify.interface: "eth0/1": may not contain '/', ':' or whitespace`}},
		{"interface with space", "notify: {interface: 'eth 0', primaries: [192.0.2.1]}\n",
			[]string{`notify.interface: "eth 0": may not contain '/', ':' or whitespace`}},
		{"interface alias label", "notify: {interface: 'eth0:1', primaries: [192.0.2.1]}\n",
			[]string{`notify.interface: "eth0:1": may not contain '/', ':' or whitespace`}},
		{"interface dot dot", "notify: {interface: .., primaries: [192.0.2.1]}\n",
			[]string{`notify.interface: "..": not an interface name`}},
		{"interface a list", "notify: {interface: [eth0], primaries: [192.0.2.1]}\n",
			[]string{"notify.interface: must be a string, not a list"}},

		// primaries
		{"primary not an address", bad("[192.0.2.1, x]"),
			[]string{`notify.primaries[1]: "x": not an IP address or CIDR`}},
		{"primary a host name", bad("[ns1.example.]"),
			[]string{`notify.primaries[0]: "ns1.example.": not an IP address or CIDR`}},
		{"primary empty", bad("['']"),
			[]string{`notify.primaries[0]: "": not an IP address or CIDR`}},
		{"primary a number", bad("[1]"),
			[]string{`notify.primaries[0]: "1": not an IP address or CIDR`}},
		{"primary out of range", bad("[192.0.2.300, '2001:db8::g']"),
			[]string{
				`notify.primaries[0]: "192.0.2.300": not an IP address or CIDR`,
				`notify.primaries[1]: "2001:db8::g": not an IP address or CIDR`,
			}},
		{"primary with port", bad("['192.0.2.1:53', '[2001:db8::1]:53']"),
			[]string{
				`notify.primaries[0]: "192.0.2.1:53": not an IP address or CIDR (a primary takes no port)`,
				`notify.primaries[1]: "[2001:db8::1]:53": not an IP address or CIDR (a primary takes no port)`,
			}},
		{"primary bad prefix length", bad("[192.0.2.1/33, '2001:db8::/129', 192.0.2.0/, 192.0.2.0/x, 192.0.2.0/+24, 192.0.2.0/-1]"),
			[]string{
				`notify.primaries[0]: "192.0.2.1/33": prefix length must be 0-32`,
				`notify.primaries[1]: "2001:db8::/129": prefix length must be 0-128`,
				`notify.primaries[2]: "192.0.2.0/": prefix length must be 0-32`,
				`notify.primaries[3]: "192.0.2.0/x": prefix length must be 0-32`,
				`notify.primaries[4]: "192.0.2.0/+24": prefix length must be 0-32`,
				`notify.primaries[5]: "192.0.2.0/-1": prefix length must be 0-32`,
			}},
		{"primary host bits", bad("[192.0.2.1/24, '2001:db8::1/64', '::ffff:192.0.2.1/120']"),
			[]string{
				`notify.primaries[0]: "192.0.2.1/24": host bits set (the network is 192.0.2.0/24)`,
				`notify.primaries[1]: "2001:db8::1/64": host bits set (the network is 2001:db8::/64)`,
				`notify.primaries[2]: "::ffff:192.0.2.1/120": host bits set (the network is 192.0.2.0/24)`,
			}},
		{"primary zone", bad("['fe80::1%eth0']"),
			[]string{`notify.primaries[0]: "fe80::1%eth0": zone not allowed (notify.interface is the link)`}},
		{"primary IPv4-mapped short prefix", bad("['::ffff:192.0.2.0/64']"),
			[]string{`notify.primaries[0]: "::ffff:192.0.2.0/64": prefix length must be 96-128 for an IPv4-mapped address`}},
		{"primary unspecified", bad("[0.0.0.0, '::', 0.0.0.0/32, '::ffff:0.0.0.0']"),
			[]string{
				`notify.primaries[0]: "0.0.0.0": unspecified address not allowed`,
				`notify.primaries[1]: "::": unspecified address not allowed`,
				`notify.primaries[2]: "0.0.0.0/32": unspecified address not allowed`,
				`notify.primaries[3]: "::ffff:0.0.0.0": unspecified address not allowed`,
			}},
		{"primary multicast", bad("[224.0.0.251, 239.0.0.0/8, 224.0.0.0/4, 'ff02::1', 'ff00::/8']"),
			[]string{
				`notify.primaries[0]: "224.0.0.251": multicast address not allowed`,
				`notify.primaries[1]: "239.0.0.0/8": multicast address not allowed`,
				`notify.primaries[2]: "224.0.0.0/4": multicast address not allowed`,
				`notify.primaries[3]: "ff02::1": multicast address not allowed`,
				`notify.primaries[4]: "ff00::/8": multicast address not allowed`,
			}},
		{"primary duplicate", bad("[192.0.2.1, 198.51.100.0/24, 192.0.2.1]"),
			[]string{"notify.primaries[2]: duplicate of notify.primaries[0]"}},
		{"primary duplicate written differently", bad("[192.0.2.1, '2001:db8::/64', 192.0.2.1/32, '::ffff:192.0.2.1', '2001:db8:0::/64', '2001:DB8::/64']"),
			[]string{
				"notify.primaries[2]: duplicate of notify.primaries[0]",
				"notify.primaries[3]: duplicate of notify.primaries[0]",
				"notify.primaries[4]: duplicate of notify.primaries[1]",
				"notify.primaries[5]: duplicate of notify.primaries[1]",
			}},
		{"primaries a mapping", bad("{a: 1}"),
			[]string{"notify.primaries: must be a list of IP addresses or CIDRs, not a mapping"}},
		{"primaries a number", bad("5"),
			[]string{"notify.primaries: must be a list of IP addresses or CIDRs, not a number"}},
		{"primary a list", bad("[[192.0.2.1]]"),
			[]string{"notify.primaries[0]: must be a string, not a list"}},
		{"every bad primary reported", bad("[x, 192.0.2.1, y, 192.0.2.1]"),
			[]string{
				`notify.primaries[0]: "x": not an IP address or CIDR`,
				`notify.primaries[2]: "y": not an IP address or CIDR`,
				"notify.primaries[3]: duplicate of notify.primaries[1]",
			}},

		// max_per_second
		{"max_per_second zero", base + "max_per_second: 0}\n",
			[]string{"notify.max_per_second: 0 out of range 1-1000000"}},
		{"max_per_second too big", base + "max_per_second: 1000001}\n",
			[]string{"notify.max_per_second: 1000001 out of range 1-1000000"}},
		{"max_per_second negative", base + "max_per_second: -5}\n",
			[]string{"notify.max_per_second: -5 out of range 1-1000000"}},
		{"max_per_second a word", base + "max_per_second: lots}\n",
			[]string{`notify.max_per_second: "lots": not an integer`}},
		{"max_per_second a fraction", base + "max_per_second: 1.5}\n",
			[]string{`notify.max_per_second: "1.5": not an integer`}},

		// dedup_window
		{"dedup_window too long", base + "dedup_window: 2h}\n",
			[]string{"notify.dedup_window: 2h out of range [0s, 1h] (0s disables)"}},
		{"dedup_window negative", base + "dedup_window: -1s}\n",
			[]string{"notify.dedup_window: -1s out of range [0s, 1h] (0s disables)"}},
		{"dedup_window without unit", base + "dedup_window: 5}\n",
			[]string{`notify.dedup_window: "5": not a duration (use units, e.g. 500ms)`}},
		{"dedup_window zero without unit", base + "dedup_window: 0}\n",
			[]string{`notify.dedup_window: "0": not a duration (use units, e.g. 500ms)`}},
		{"dedup_window not a duration", base + "dedup_window: soon}\n",
			[]string{`notify.dedup_window: "soon": not a duration`}},

		// retries
		{"retries too many", base + "retries: 21}\n",
			[]string{"notify.retries: 21 out of range 0-20"}},
		{"retries negative", base + "retries: -1}\n",
			[]string{"notify.retries: -1 out of range 0-20"}},
		{"retries a word", base + "retries: never}\n",
			[]string{`notify.retries: "never": not an integer`}},
		// track_qps, max_tracked
		{"track_qps zero", base + "track_qps: 0}\n",
			[]string{"notify.track_qps: 0 out of range 1-100000"}},
		{"track_qps too big", base + "track_qps: 100001}\n",
			[]string{"notify.track_qps: 100001 out of range 1-100000"}},
		{"max_tracked zero", base + "max_tracked: 0}\n",
			[]string{"notify.max_tracked: 0 out of range 1-100000000"}},
		{"max_tracked too big", base + "max_tracked: 100000001}\n",
			[]string{"notify.max_tracked: 100000001 out of range 1-100000000"}},
		{"max_tracked a word", base + "max_tracked: many}\n",
			[]string{`notify.max_tracked: "many": not an integer`}},

		{"problems in schema order", "notify:\n" +
			"  zzz: 1\n  retries: 30\n  dedup_window: 3h\n  max_per_second: 0\n" +
			"  primaries: [x, 10.0.0.1/8]\n  interface: 'a b'\n  enabled: true\n",
			[]string{
				`notify.interface: "a b": may not contain '/', ':' or whitespace`,
				`notify.primaries[0]: "x": not an IP address or CIDR`,
				`notify.primaries[1]: "10.0.0.1/8": host bits set (the network is 10.0.0.0/8)`,
				"notify.max_per_second: 0 out of range 1-1000000",
				"notify.dedup_window: 3h out of range [0s, 1h] (0s disables)",
				"notify.retries: 30 out of range 0-20",
				"notify.zzz: unknown key",
			}},
		{"after vrrp, before unknown top-level keys", "zz: 1\nnotify: {enabled: false, retries: 99}\nvrrp: {vrid: 0, enabled: false}\n",
			[]string{"vrrp.vrid: 0 out of range 1-255", "notify.retries: 99 out of range 0-20", "zz: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), nil, tc.want) })
	}
}

func TestNotifyEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string // completed by withDefaults
		env   map[string]string
		check func(Notify) bool
	}{
		{"enabled and required keys from env only", "",
			map[string]string{
				"DNSLB_NOTIFY_ENABLED":   "true",
				"DNSLB_NOTIFY_INTERFACE": "eth0",
				"DNSLB_NOTIFY_PRIMARIES": "192.0.2.1",
			},
			func(n Notify) bool { return reflect.DeepEqual(n, enabledNotify()) }},
		{"env disables the file's section", notifySection,
			map[string]string{"DNSLB_NOTIFY_ENABLED": "false"},
			func(n Notify) bool { return reflect.DeepEqual(n, withNotify(func(n *Notify) { n.Enabled = false })) }},
		{"env disabled without section ignores other variables", "",
			map[string]string{"DNSLB_NOTIFY_ENABLED": "no", "DNSLB_NOTIFY_RETRIES": "3"},
			func(n Notify) bool { return !n.Enabled && n.Retries == 3 }},
		{"env beats file", "notify: {interface: eth0, primaries: [192.0.2.1, 192.0.2.2], max_per_second: 10}\n",
			map[string]string{
				"DNSLB_NOTIFY_INTERFACE":      "eth1",
				"DNSLB_NOTIFY_PRIMARIES":      "2001:db8::1, 198.51.100.0/24  2001:db8:1::/48,",
				"DNSLB_NOTIFY_MAX_PER_SECOND": " 20 ",
			},
			func(n Notify) bool {
				return n.Interface == "eth1" && n.MaxPerSecond == 20 &&
					slices.Equal(n.Primaries, prefixes("2001:db8::1/128", "198.51.100.0/24", "2001:db8:1::/48"))
			}},
		{"every scalar", notifySection,
			map[string]string{
				"DNSLB_NOTIFY_ENABLED":        "YES",
				"DNSLB_NOTIFY_INTERFACE":      "bond0",
				"DNSLB_NOTIFY_PRIMARIES":      "10.0.0.0/8",
				"DNSLB_NOTIFY_MAX_PER_SECOND": "1000000",
				"DNSLB_NOTIFY_DEDUP_WINDOW":   "0s",
				"DNSLB_NOTIFY_RETRIES":        "0",
				"DNSLB_NOTIFY_TRACK_QPS":      "250",
				"DNSLB_NOTIFY_COPY_QPS":       "50",
				"DNSLB_NOTIFY_MAX_TRACKED":    "5000",
			},
			func(n Notify) bool {
				return reflect.DeepEqual(n, Notify{
					Enabled:      true,
					Interface:    "bond0",
					Primaries:    prefixes("10.0.0.0/8"),
					MaxPerSecond: 1000000,
					TrackQPS:     250,
					CopyQPS:      50,
					MaxTracked:   5000,
				})
			}},
		{"empty primaries variable on a disabled section", "notify: {enabled: false, primaries: [192.0.2.1]}\n",
			map[string]string{"DNSLB_NOTIFY_PRIMARIES": ""},
			func(n Notify) bool { return !n.Enabled && n.Primaries == nil }},
		{"empty interface variable on a disabled section", "notify: {enabled: false, interface: eth0}\n",
			map[string]string{"DNSLB_NOTIFY_INTERFACE": ""},
			func(n Notify) bool { return !n.Enabled && n.Interface == "" }},
		{"vrrp's notify variable is another key", notifySection,
			map[string]string{"DNSLB_VRRP_ENABLED": "false", "DNSLB_VRRP_NOTIFY": "/bin/true"},
			func(n Notify) bool { return reflect.DeepEqual(n, enabledNotify()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, withDefaults(tc.yaml), tc.env, func(c *Config) Notify { return c.Notify }, tc.check)
		})
	}
}

func TestNotifyEnvProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string // completed by withDefaults
		env  map[string]string
		want []string
	}{
		{"enabled from env needs the required keys", "",
			map[string]string{"DNSLB_NOTIFY_ENABLED": "true"},
			[]string{"notify.interface: required", "notify.primaries: required"}},
		{"variables without section", "",
			map[string]string{"DNSLB_NOTIFY_PRIMARIES": "192.0.2.1", "DNSLB_NOTIFY_RETRIES": "3"},
			[]string{
				"notify: DNSLB_NOTIFY_PRIMARIES is set but the file has no notify section (add one, or set DNSLB_NOTIFY_ENABLED)",
				"notify: DNSLB_NOTIFY_RETRIES is set but the file has no notify section (add one, or set DNSLB_NOTIFY_ENABLED)",
			}},
		{"empty variable without section", "",
			map[string]string{"DNSLB_NOTIFY_INTERFACE": ""},
			[]string{"notify: DNSLB_NOTIFY_INTERFACE is set but the file has no notify section (add one, or set DNSLB_NOTIFY_ENABLED)"}},
		{"variable without section still validated", "",
			map[string]string{"DNSLB_NOTIFY_MAX_PER_SECOND": "0"},
			[]string{
				"notify: DNSLB_NOTIFY_MAX_PER_SECOND is set but the file has no notify section (add one, or set DNSLB_NOTIFY_ENABLED)",
				"notify.max_per_second: 0 out of range 1-1000000",
			}},
		{"bad enabled", notifySection,
			map[string]string{"DNSLB_NOTIFY_ENABLED": "sometimes"},
			[]string{`notify.enabled: "sometimes": not a boolean (true or false)`}},
		{"empty primaries variable", notifySection,
			map[string]string{"DNSLB_NOTIFY_PRIMARIES": " , "},
			[]string{"notify.primaries: required"}},
		{"empty interface variable", notifySection,
			map[string]string{"DNSLB_NOTIFY_INTERFACE": ""},
			[]string{"notify.interface: required"}},
		{"empty integer variable", notifySection,
			map[string]string{"DNSLB_NOTIFY_RETRIES": ""},
			[]string{`notify.retries: "": not an integer`}},
		{"bad values", notifySection,
			map[string]string{
				"DNSLB_NOTIFY_INTERFACE":      "eth0:1",
				"DNSLB_NOTIFY_PRIMARIES":      "192.0.2.1,x 192.0.2.1",
				"DNSLB_NOTIFY_MAX_PER_SECOND": "fast",
				"DNSLB_NOTIFY_DEDUP_WINDOW":   "5",
				"DNSLB_NOTIFY_RETRIES":        "21",
			},
			[]string{
				`notify.interface: "eth0:1": may not contain '/', ':' or whitespace`,
				`notify.primaries[1]: "x": not an IP address or CIDR`,
				"notify.primaries[2]: duplicate of notify.primaries[0]",
				`notify.max_per_second: "fast": not an integer`,
				`notify.dedup_window: "5": not a duration (use units, e.g. 500ms)`,
				"notify.retries: 21 out of range 0-20",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), tc.env, tc.want) })
	}
}

// TestNotifySectionVariable checks that DNSLB_NOTIFY hides every key of
// the section rather than letting them fall back to their defaults.
// tsig_keys comes from the file only, so nothing hides it.
func TestNotifySectionVariable(t *testing.T) {
	checkSectionHidden(t, "notify", notifySection, len(envKeys("notify")))
}

// TestNotifyEqual checks that Equal sees a change of every field, so that
// a field added later cannot be forgotten.
func TestNotifyEqual(t *testing.T) {
	a := withNotify(func(n *Notify) {
		n.Primaries = prefixes("192.0.2.1/32", "2001:db8::/64")
		n.TSIGKeys = []TSIGKey{
			{Name: "a.", Algorithm: dns.HmacSHA256, Secret: testSecret},
			{Name: "b.", Algorithm: dns.HmacSHA512, Secret: testSecret},
		}
	})
	checkEqualSeesFields(t, a, cloneNotify, Notify.Equal)
	c := cloneNotify(a)
	slices.Reverse(c.Primaries)
	if a.Equal(c) {
		t.Error("Primaries reordered: change not seen by Equal")
	}
	c = cloneNotify(a)
	slices.Reverse(c.TSIGKeys)
	if a.Equal(c) {
		t.Error("TSIGKeys reordered: change not seen by Equal")
	}
	for i, edit := range []func(*TSIGKey){
		func(k *TSIGKey) { k.Name = "c." },
		func(k *TSIGKey) { k.Algorithm = dns.HmacSHA1 },
		func(k *TSIGKey) { k.Secret = testSecret2 },
	} {
		c = cloneNotify(a)
		edit(&c.TSIGKeys[1])
		if a.Equal(c) || c.Equal(a) {
			t.Errorf("TSIGKeys field %d changed: change not seen by Equal", i)
		}
	}
	c = cloneNotify(a)
	c.TSIGKeys = nil
	if a.Equal(c) {
		t.Error("TSIGKeys removed: change not seen by Equal")
	}
}

// TestRestartOnlyNotify checks that only notify.interface and
// notify.enabled need a restart, and the other keys apply on a reload.
func TestRestartOnlyNotify(t *testing.T) {
	isolateEnv(t)
	const head = "listen: ['127.0.0.1:53']\nbackends: [{name: a, address: '10.0.0.1:53'}]\n"
	base := mustParse(t, head+notifySection)
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"same", notifySection, nil},
		{"same values written differently", "notify:\n  enabled: 'yes'\n  interface: eth0\n  primaries: '192.0.2.1/32'\n  max_per_second: 10000\n  dedup_window: 5000ms\n  retries: '5'\n", nil},
		{"primaries", "notify: {interface: eth0, primaries: [192.0.2.1, '2001:db8::/64']}\n", nil},
		{"max_per_second", "notify: {interface: eth0, primaries: [192.0.2.1], max_per_second: 5}\n", nil},
		{"dedup_window", "notify: {interface: eth0, primaries: [192.0.2.1], dedup_window: 0s}\n", nil},
		{"retries", "notify: {interface: eth0, primaries: [192.0.2.1], retries: 0}\n", nil},
		{"all reloadable keys", "notify: {interface: eth0, primaries: [10.0.0.0/8], max_per_second: 5, dedup_window: 1m, retries: 20}\n", nil},
		{"interface", "notify: {interface: eth1, primaries: [192.0.2.1]}\n", []string{"notify.interface"}},
		{"disabled", "notify: {enabled: false, interface: eth0, primaries: [192.0.2.1]}\n", []string{"notify.enabled"}},
		{"section removed", "", []string{"notify.interface", "notify.enabled"}},
		{"disabled on another interface", "notify: {enabled: false, interface: eth1}\n", []string{"notify.interface", "notify.enabled"}},
		{"with listen and vrrp", vrrpSection + "notify: {interface: eth1, primaries: [192.0.2.1]}\n", []string{"listen", "vrrp.enabled", "notify.interface"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := head + tc.yaml
			if tc.name == "with listen and vrrp" {
				doc = strings.Replace(doc, "127.0.0.1:53", "127.0.0.2:53", 1)
			}
			if got := RestartOnly(base, mustParse(t, doc)); !slices.Equal(got, tc.want) {
				t.Errorf("RestartOnly = %q, want %q", got, tc.want)
			}
			if got := RestartOnly(mustParse(t, doc), base); !slices.Equal(got, tc.want) {
				t.Errorf("RestartOnly reversed = %q, want %q", got, tc.want)
			}
		})
	}
	// Edits to a section that stays disabled change nothing that runs.
	a := mustParse(t, head+"notify: {enabled: false, interface: eth0}\n")
	b := mustParse(t, head+"notify: {enabled: false, interface: eth1, retries: 1}\n")
	if got := RestartOnly(a, b); len(got) != 0 {
		t.Errorf("RestartOnly(disabled, disabled) = %q, want none", got)
	}
	// Turning it on needs a restart even on the same interface.
	if got, want := RestartOnly(a, base), []string{"notify.enabled"}; !slices.Equal(got, want) {
		t.Errorf("RestartOnly(disabled, enabled) = %q, want %q", got, want)
	}
	// Notify changes are not backend changes.
	if got := DiffBackends(base, mustParse(t, head+"notify: {interface: eth1, primaries: [192.0.2.2]}\n")); !reflect.DeepEqual(got, BackendChanges{}) {
		t.Errorf("DiffBackends = %+v, want none", got)
	}
}

// TestExampleConfigNotify checks that the disabled notify example of the
// repository's config.yaml is valid once enabled.
func TestExampleConfigNotify(t *testing.T) {
	isolateEnv(t)
	doc := exampleSection(t, "notify")
	cfg, err := Parse("config.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("example does not load:\n%v", err)
	}
	if cfg.Notify.Enabled {
		t.Error("example notify section is enabled")
	}
	doc = strings.Replace(doc, "\nnotify:\n  enabled: false", "\nnotify:\n  enabled: true", 1)
	cfg, err = Parse("config.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("enabled example does not load:\n%v", err)
	}
	want := Notify{
		Enabled:      true,
		Interface:    "eth0",
		Primaries:    prefixes("192.0.2.1/32", "2001:db8::1/128"),
		MaxPerSecond: 10000,
		DedupWindow:  5 * time.Second,
		Retries:      5,
		TrackQPS:     1000,
		CopyQPS:      200,
		MaxTracked:   1000000,
	}
	checkSame(t, "enabled example", cfg.Notify, want)
}
