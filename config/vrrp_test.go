package config

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// vrrpSection is the smallest enabled vrrp section.
const vrrpSection = "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24]}\n"

// enabledVRRP is defaultVRRP enabled with vrrpSection's values.
func enabledVRRP() VRRP {
	v := defaultVRRP()
	v.Enabled = true
	v.Interface = "eth0"
	v.VRID = 53
	v.VIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.53/24")}
	return v
}

// withVRRP returns enabledVRRP edited by edit.
func withVRRP(edit func(*VRRP)) VRRP {
	v := enabledVRRP()
	edit(&v)
	return v
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestVRRPDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       VRRP
	}{
		{"absent", "", defaultVRRP()},
		{"null", "vrrp:\n", defaultVRRP()},
		{"empty mapping counts as absent", "vrrp: {}\n", defaultVRRP()},
		{"disabled needs nothing", "vrrp: {enabled: false}\n", defaultVRRP()},
		{"disabled keeps its values", "vrrp: {enabled: false, vrid: 7, priority: 50}\n",
			func() VRRP { v := defaultVRRP(); v.VRID, v.Priority = 7, 50; return v }()},
		{"present means enabled", vrrpSection, enabledVRRP()},
		{"enabled true", "vrrp: {enabled: true, interface: eth0, vrid: 53, vips: [192.0.2.53/24]}\n", enabledVRRP()},
		{"every key, version 3", "vrrp:\n" +
			"  enabled: true\n  interface: bond0.53\n  vrid: 255\n  priority: 255\n  advert_interval: 40950ms\n" +
			"  preempt: true\n  preempt_delay: 1h\n  version: 3\n" +
			"  vips: [192.0.2.53/24, 192.0.2.54, 198.51.100.1/32]\n  peers: [192.0.2.2, 192.0.2.3]\n" +
			"  checksum_mode: rfc9568\n  garp_repeat: 100\n  garp_delay: 1h\n  garp_refresh: 24h\n" +
			"  track: {min_healthy_backends: 0, weight: 254}\n  notify: /usr/local/bin/vrrp-notify\n",
			VRRP{
				Enabled:        true,
				Interface:      "bond0.53",
				VRID:           255,
				Priority:       255,
				AdvertInterval: 40950 * time.Millisecond,
				Preempt:        true,
				PreemptDelay:   time.Hour,
				Version:        3,
				VIPs:           prefixes("192.0.2.53/24", "192.0.2.54/32", "198.51.100.1/32"),
				Peers:          addrs("192.0.2.2", "192.0.2.3"),
				ChecksumMode:   "rfc9568",
				GARPRepeat:     100,
				GARPDelay:      time.Hour,
				GARPRefresh:    24 * time.Hour,
				Sync:           true,
				Track:          VRRPTrack{MinHealthyBackends: 0, Weight: 254},
				Notify:         "/usr/local/bin/vrrp-notify",
			}},
		{"every key, version 2", "vrrp:\n" +
			"  interface: eth1\n  vrid: 1\n  priority: 1\n  advert_interval: 255s\n" +
			"  preempt: false\n  preempt_delay: 0s\n  version: 2\n  vips: [10.0.0.53/8]\n" +
			"  checksum_mode: pseudo-header\n  auth_pass: '12345678'\n  garp_repeat: 1\n  garp_delay: 0s\n  garp_refresh: 1s\n" +
			"  track: {min_healthy_backends: 1, weight: 0}\n",
			VRRP{
				Enabled:        true,
				Interface:      "eth1",
				VRID:           1,
				Priority:       1,
				AdvertInterval: 255 * time.Second,
				Preempt:        false,
				Version:        2,
				VIPs:           prefixes("10.0.0.53/8"),
				ChecksumMode:   "pseudo-header",
				AuthPass:       "12345678",
				GARPRepeat:     1,
				GARPRefresh:    time.Second,
				Sync:           true,
				Track:          VRRPTrack{MinHealthyBackends: 1},
			}},
		{"IPv6", "vrrp: {interface: eth0, vrid: 53, vips: ['2001:db8::53/64', '2001:db8::54', 'fe80::53/64'], peers: ['2001:db8::2', 'fe80::2%eth0']}\n",
			withVRRP(func(v *VRRP) {
				v.VIPs = prefixes("2001:db8::53/64", "2001:db8::54/128", "fe80::53/64")
				v.Peers = addrs("2001:db8::2", "fe80::2%eth0")
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			checkSame(t, "VRRP", mustParse(t, withDefaults(tc.yaml)).VRRP, tc.want)
		})
	}
}

func TestVRRPAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(VRRP) bool
	}{
		{"vips as one string", "vrrp: {interface: eth0, vrid: 1, vips: '192.0.2.1/24, 192.0.2.2  192.0.2.3/30'}\n",
			func(v VRRP) bool {
				return slices.Equal(v.VIPs, prefixes("192.0.2.1/24", "192.0.2.2/32", "192.0.2.3/30"))
			}},
		{"host bits kept", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.53/24]}\n",
			func(v VRRP) bool {
				return v.VIPs[0].Addr() == netip.MustParseAddr("192.0.2.53") && v.VIPs[0].Bits() == 24
			}},
		{"IPv4-mapped unmapped", "vrrp: {interface: eth0, vrid: 1, vips: ['::ffff:192.0.2.1', '::ffff:192.0.2.2/120'], peers: ['::ffff:192.0.2.9']}\n",
			func(v VRRP) bool {
				return slices.Equal(v.VIPs, prefixes("192.0.2.1/32", "192.0.2.2/24")) && v.Peers[0] == netip.MustParseAddr("192.0.2.9")
			}},
		{"advert_interval minimum", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], advert_interval: 10ms}\n",
			func(v VRRP) bool { return v.AdvertInterval == 10*time.Millisecond }},
		{"advert_interval centiseconds", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], advert_interval: 1.23s}\n",
			func(v VRRP) bool { return v.AdvertInterval == 1230*time.Millisecond }},
		{"version 2 whole seconds", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], version: 2, advert_interval: 1m}\n",
			func(v VRRP) bool { return v.Version == 2 && v.AdvertInterval == time.Minute }},
		{"quoted integers and word booleans", "vrrp: {enabled: 'yes', interface: eth0, vrid: '7', priority: '200', version: '2', preempt: 'off', vips: [192.0.2.1]}\n",
			func(v VRRP) bool {
				return v.Enabled && v.VRID == 7 && v.Priority == 200 && v.Version == 2 && !v.Preempt
			}},
		{"interface of 15 characters", "vrrp: {interface: " + strings.Repeat("i", 15) + ", vrid: 1, vips: [192.0.2.1]}\n",
			func(v VRRP) bool { return len(v.Interface) == 15 }},
		{"preempt false without delay", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], preempt: false, preempt_delay: 0s}\n",
			func(v VRRP) bool { return !v.Preempt && v.PreemptDelay == 0 }},
		{"checksum_mode any case", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], checksum_mode: RFC9568}\n",
			func(v VRRP) bool { return v.ChecksumMode == "rfc9568" }},
		{"pseudo-header with IPv6", "vrrp: {interface: eth0, vrid: 1, vips: ['2001:db8::1'], checksum_mode: pseudo-header}\n",
			func(v VRRP) bool { return v.ChecksumMode == "pseudo-header" }},
		{"empty auth_pass is none", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], auth_pass: ''}\n",
			func(v VRRP) bool { return v.AuthPass == "" }},
		{"loopback peer", "vrrp: {interface: lo, vrid: 1, vips: [192.0.2.1], peers: [127.0.0.2]}\n",
			func(v VRRP) bool { return v.Peers[0] == netip.MustParseAddr("127.0.0.2") }},
		{"empty peers is multicast", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], peers: []}\n",
			func(v VRRP) bool { return v.Peers == nil }},
		{"null keys keep defaults", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], priority: ~, track: ~, notify: ~}\n",
			func(v VRRP) bool { return v.Priority == 100 && v.Track.MinHealthyBackends == 1 && v.Notify == "" }},
		{"upper-case keys", "VRRP: {Interface: eth0, VRID: 9, VIPs: [192.0.2.1], Track: {Weight: 10}}\n",
			func(v VRRP) bool { return v.Enabled && v.VRID == 9 && v.Track.Weight == 10 }},
		{"disabled with no required key", "vrrp: {enabled: false, priority: 150, peers: [192.0.2.2]}\n",
			func(v VRRP) bool { return !v.Enabled && v.Priority == 150 && len(v.Peers) == 1 }},
		{"min_healthy_backends equal to backends", "backends: [{name: a, address: '10.0.0.1:53'}, {name: b, address: '10.0.0.2:53'}]\n" +
			"vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], track: {min_healthy_backends: 2}}\n",
			func(v VRRP) bool { return v.Track.MinHealthyBackends == 2 }},
		{"VIPs need not be in listen", "listen: ['127.0.0.1:53']\nvrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1]}\n",
			func(v VRRP) bool { return v.Enabled }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, withDefaults(tc.yaml), nil, func(c *Config) VRRP { return c.VRRP }, tc.check)
		})
	}
}

func TestVRRPProblems(t *testing.T) {
	// v3 and v2 prefix a section with the required keys.
	const v3 = "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], "
	const v2 = "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], version: 2, "
	const v6 = "vrrp: {interface: eth0, vrid: 1, vips: ['2001:db8::1'], "
	for _, tc := range []struct {
		name string
		yaml string   // completed by withDefaults
		want []string // every problem, in order
	}{
		// shape and unknown keys
		{"not a mapping", "vrrp: eth0\n",
			[]string{"vrrp: must be a mapping, not a string"}},
		{"unknown key", v3 + "intervall: 1s}\n",
			[]string{"vrrp.intervall: unknown key"}},
		{"unknown keys sorted, last", v3 + "zz: 1, aa: 2, track: {wieght: 1, min: 2}}\n",
			[]string{"vrrp.track.min: unknown key", "vrrp.track.wieght: unknown key", "vrrp.aa: unknown key", "vrrp.zz: unknown key"}},
		{"track not a mapping", v3 + "track: 1}\n",
			[]string{"vrrp.track: must be a mapping, not a number"}},

		// enabled and required keys
		{"enabled not a boolean", v3 + "enabled: maybe}\n",
			[]string{`vrrp.enabled: "maybe": not a boolean (true or false)`}},
		{"required when present", "vrrp: {priority: 100}\n",
			[]string{"vrrp.interface: required", "vrrp.vrid: required", "vrrp.vips: required"}},
		{"required when enabled", "vrrp: {enabled: true}\n",
			[]string{"vrrp.interface: required", "vrrp.vrid: required", "vrrp.vips: required"}},
		{"empty values count as missing", "vrrp: {interface: '', vrid: 1, vips: []}\n",
			[]string{"vrrp.interface: required", "vrrp.vips: required"}},
		{"null values count as missing", "vrrp: {interface: ~, vrid: ~, vips: ~, priority: 100}\n",
			[]string{"vrrp.interface: required", "vrrp.vrid: required", "vrrp.vips: required"}},
		{"invalid vips are not missing", "vrrp: {interface: eth0, vrid: 1, vips: [x]}\n",
			[]string{`vrrp.vips[0]: "x": not an IP address or prefix such as 192.0.2.53/24`}},
		{"invalid enabled requires nothing", "vrrp: {enabled: 2}\n",
			[]string{`vrrp.enabled: "2": not a boolean (true or false)`}},
		{"disabled still validated", "vrrp: {enabled: false, vrid: 0, vips: ['::1']}\n",
			[]string{"vrrp.vrid: 0 out of range 1-255", `vrrp.vips[0]: "::1": loopback address not allowed`}},

		// interface
		{"interface too long", "vrrp: {interface: " + strings.Repeat("i", 16) + ", vrid: 1, vips: [192.0.2.1]}\n",
			[]string{`vrrp.interface: "` + strings.Repeat("i", 16) + `": longer than 15 characters`}},
		{"interface with slash", "vrrp: {interface: eth0/1, vrid: 1, vips: [192.0.2.1]}\n",
			[]string{`vrrp.interface: "eth0/1": may not contain '/', ':' or whitespace`}},
		{"interface with space", "vrrp: {interface: 'eth 0', vrid: 1, vips: [192.0.2.1]}\n",
			[]string{`vrrp.interface: "eth 0": may not contain '/', ':' or whitespace`}},
		{"interface with tab", "vrrp: {interface: \"eth0\\t\", vrid: 1, vips: [192.0.2.1]}\n",
			[]string{`vrrp.interface: "eth0\t": may not contain '/', ':' or whitespace`}},
		{"interface alias label", "vrrp: {interface: 'eth0:1', vrid: 1, vips: [192.0.2.1]}\n",
			[]string{`vrrp.interface: "eth0:1": may not contain '/', ':' or whitespace`}},
		{"interface dot", "vrrp: {interface: ., vrid: 1, vips: [192.0.2.1]}\n",
			[]string{`vrrp.interface: ".": not an interface name`}},
		{"interface a list", "vrrp: {interface: [eth0], vrid: 1, vips: [192.0.2.1]}\n",
			[]string{"vrrp.interface: must be a string, not a list"}},

		// vrid, priority, version
		{"vrid zero", "vrrp: {interface: eth0, vrid: 0, vips: [192.0.2.1]}\n",
			[]string{"vrrp.vrid: 0 out of range 1-255"}},
		{"vrid too big", "vrrp: {interface: eth0, vrid: 256, vips: [192.0.2.1]}\n",
			[]string{"vrrp.vrid: 256 out of range 1-255"}},
		{"vrid not an integer", "vrrp: {interface: eth0, vrid: x, vips: [192.0.2.1]}\n",
			[]string{`vrrp.vrid: "x": not an integer`}},
		{"priority zero", v3 + "priority: 0}\n",
			[]string{"vrrp.priority: 0 out of range 1-255"}},
		{"priority too big", v3 + "priority: 256}\n",
			[]string{"vrrp.priority: 256 out of range 1-255"}},
		{"version 1", v3 + "version: 1}\n",
			[]string{"vrrp.version: 1 out of range 2-3"}},
		{"version 4", v3 + "version: 4}\n",
			[]string{"vrrp.version: 4 out of range 2-3"}},
		{"version a word", v3 + "version: v3}\n",
			[]string{`vrrp.version: "v3": not an integer`}},

		// advert_interval, version 3
		{"advert too short", v3 + "advert_interval: 5ms}\n",
			[]string{"vrrp.advert_interval: 5ms out of range [10ms, 40.95s]"}},
		{"advert too long", v3 + "advert_interval: 41s}\n",
			[]string{"vrrp.advert_interval: 41s out of range [10ms, 40.95s]"}},
		{"advert zero", v3 + "advert_interval: 0s}\n",
			[]string{"vrrp.advert_interval: 0s out of range [10ms, 40.95s]"}},
		{"advert negative", v3 + "advert_interval: -1s}\n",
			[]string{"vrrp.advert_interval: -1s out of range [10ms, 40.95s]"}},
		{"advert not centiseconds", v3 + "advert_interval: 15ms}\n",
			[]string{"vrrp.advert_interval: 15ms is not a multiple of 10ms (VRRPv3 counts centiseconds)"}},
		{"advert without unit", v3 + "advert_interval: 1}\n",
			[]string{`vrrp.advert_interval: "1": not a duration (use units, e.g. 500ms)`}},
		{"advert not a duration", v3 + "advert_interval: often}\n",
			[]string{`vrrp.advert_interval: "often": not a duration`}},

		// advert_interval, version 2
		{"advert sub-second with version 2", v2 + "advert_interval: 100ms}\n",
			[]string{"vrrp.advert_interval: 100ms needs vrrp.version 3 (VRRPv2 counts whole seconds)"}},
		{"advert fraction with version 2", v2 + "advert_interval: 1500ms}\n",
			[]string{"vrrp.advert_interval: 1.5s needs vrrp.version 3 (VRRPv2 counts whole seconds)"}},
		{"advert not whole seconds with version 2", v2 + "advert_interval: 1001ms}\n",
			[]string{"vrrp.advert_interval: 1.001s is not a whole number of seconds (VRRPv2 counts whole seconds)"}},
		{"advert too long for version 2", v2 + "advert_interval: 256s}\n",
			[]string{"vrrp.advert_interval: 4m16s out of range [1s, 4m15s] for vrrp.version 2"}},
		{"advert too short for version 2", v2 + "advert_interval: 5ms}\n",
			[]string{"vrrp.advert_interval: 5ms out of range [1s, 4m15s] for vrrp.version 2"}},
		{"advert checked against version 3 by default", v3 + "advert_interval: 1m}\n",
			[]string{"vrrp.advert_interval: 1m out of range [10ms, 40.95s]"}},
		{"advert with a bad version fits some version", v3 + "version: 4, advert_interval: 1m}\n",
			[]string{"vrrp.version: 4 out of range 2-3"}},
		{"advert with a bad version fits none, schema order", v3 + "version: 4, advert_interval: 15ms}\n",
			[]string{"vrrp.advert_interval: 15ms is not a multiple of 10ms (VRRPv3 counts centiseconds)", "vrrp.version: 4 out of range 2-3"}},

		// preempt
		{"preempt not a boolean", v3 + "preempt: sometimes}\n",
			[]string{`vrrp.preempt: "sometimes": not a boolean (true or false)`}},
		{"preempt_delay without preempt", v3 + "preempt: false, preempt_delay: 10s}\n",
			[]string{"vrrp.preempt_delay: has no effect with vrrp.preempt false"}},
		{"preempt_delay too long", v3 + "preempt_delay: 61m}\n",
			[]string{"vrrp.preempt_delay: 1h1m out of range [0s, 1h]"}},
		{"preempt_delay negative", v3 + "preempt_delay: -1s}\n",
			[]string{"vrrp.preempt_delay: -1s out of range [0s, 1h]"}},

		// vips
		{"vips mix families", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.53/24, '2001:db8::53/64']}\n",
			[]string{"vrrp.vips[1]: mixes IPv6 with IPv4; run one VRRP instance per family"}},
		{"vips mix families, IPv6 first", "vrrp: {interface: eth0, vrid: 1, vips: ['2001:db8::53', '2001:db8::54', 192.0.2.53]}\n",
			[]string{"vrrp.vips[2]: mixes IPv4 with IPv6; run one VRRP instance per family"}},
		{"vips IPv6 with version 2", "vrrp: {interface: eth0, vrid: 1, version: 2, vips: ['2001:db8::53/64', '2001:db8::54/64']}\n",
			[]string{"vrrp.vips[0]: IPv6 needs vrrp.version 3 (VRRPv2 is IPv4 only)"}},
		{"vips duplicate", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1/24, 192.0.2.2, 192.0.2.1/32]}\n",
			[]string{"vrrp.vips[2]: duplicate of vrrp.vips[0]"}},
		{"vips duplicate IPv6", "vrrp: {interface: eth0, vrid: 1, vips: ['2001:db8::1', '2001:db8:0::1/64']}\n",
			[]string{"vrrp.vips[1]: duplicate of vrrp.vips[0]"}},
		{"vips unspecified", "vrrp: {interface: eth0, vrid: 1, vips: [0.0.0.0/0, '::']}\n",
			[]string{`vrrp.vips[0]: "0.0.0.0/0": unspecified address not allowed`, `vrrp.vips[1]: "::": unspecified address not allowed`}},
		{"vips multicast", "vrrp: {interface: eth0, vrid: 1, vips: [224.0.0.18, 'ff02::12/64']}\n",
			[]string{`vrrp.vips[0]: "224.0.0.18": multicast address not allowed`, `vrrp.vips[1]: "ff02::12/64": multicast address not allowed`}},
		{"vips loopback", "vrrp: {interface: eth0, vrid: 1, vips: [127.0.0.53/8, '::1']}\n",
			[]string{`vrrp.vips[0]: "127.0.0.53/8": loopback address not allowed`, `vrrp.vips[1]: "::1": loopback address not allowed`}},
		{"vips not an address", "vrrp: {interface: eth0, vrid: 1, vips: [vip.example, 192.0.2.300/24, '']}\n",
			[]string{
				`vrrp.vips[0]: "vip.example": not an IP address or prefix such as 192.0.2.53/24`,
				`vrrp.vips[1]: "192.0.2.300/24": not an IP address or prefix such as 192.0.2.53/24`,
				`vrrp.vips[2]: "": not an IP address or prefix such as 192.0.2.53/24`,
			}},
		{"vips with a port", "vrrp: {interface: eth0, vrid: 1, vips: ['192.0.2.53:53']}\n",
			[]string{`vrrp.vips[0]: "192.0.2.53:53": no port allowed, write an address such as 192.0.2.53/24`}},
		{"vips bad prefix length", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1/33, '2001:db8::1/129', 192.0.2.2/, 192.0.2.3/x, 192.0.2.4/+8]}\n",
			[]string{
				`vrrp.vips[0]: "192.0.2.1/33": prefix length must be 0-32`,
				`vrrp.vips[1]: "2001:db8::1/129": prefix length must be 0-128`,
				`vrrp.vips[2]: "192.0.2.2/": prefix length must be 0-32`,
				`vrrp.vips[3]: "192.0.2.3/x": prefix length must be 0-32`,
				`vrrp.vips[4]: "192.0.2.4/+8": prefix length must be 0-32`,
			}},
		{"vips zone", "vrrp: {interface: eth0, vrid: 1, vips: ['fe80::1%eth0']}\n",
			[]string{`vrrp.vips[0]: "fe80::1%eth0": zone not allowed (vrrp.interface is the link)`}},
		{"vips IPv4-mapped short prefix", "vrrp: {interface: eth0, vrid: 1, vips: ['::ffff:192.0.2.1/64']}\n",
			[]string{`vrrp.vips[0]: "::ffff:192.0.2.1/64": prefix length must be 96-128 for an IPv4-mapped address`}},
		{"vips a mapping", "vrrp: {interface: eth0, vrid: 1, vips: {a: 1}}\n",
			[]string{`vrrp.vips: must be a list of "ip/len" strings, not a mapping`}},
		{"vips item a list", "vrrp: {interface: eth0, vrid: 1, vips: [[192.0.2.1]]}\n",
			[]string{"vrrp.vips[0]: must be a string, not a list"}},

		// peers
		{"peer not an address", v3 + "peers: [peer.example]}\n",
			[]string{`vrrp.peers[0]: "peer.example": not an IP address`}},
		{"peer with prefix length", v3 + "peers: [192.0.2.2/24]}\n",
			[]string{`vrrp.peers[0]: "192.0.2.2/24": not an IP address (a peer takes no prefix length)`}},
		{"peer with port", v3 + "peers: ['192.0.2.2:112']}\n",
			[]string{`vrrp.peers[0]: "192.0.2.2:112": not an IP address (a peer takes no port)`}},
		{"peer unspecified", v3 + "peers: [0.0.0.0]}\n",
			[]string{`vrrp.peers[0]: "0.0.0.0": unspecified address not allowed`}},
		{"peer multicast", v3 + "peers: [224.0.0.18]}\n",
			[]string{`vrrp.peers[0]: "224.0.0.18": multicast address not allowed`}},
		{"peer of another family", v3 + "peers: [192.0.2.2, '2001:db8::2']}\n",
			[]string{"vrrp.peers[1]: mixes IPv6 with the IPv4 vrrp.vips; run one VRRP instance per family"}},
		{"IPv4 peer with IPv6 vips", v6 + "peers: [192.0.2.2]}\n",
			[]string{"vrrp.peers[0]: mixes IPv4 with the IPv6 vrrp.vips; run one VRRP instance per family"}},
		{"peers mix families without vips", "vrrp: {enabled: false, peers: ['2001:db8::2', 192.0.2.2]}\n",
			[]string{"vrrp.peers[1]: mixes IPv4 with IPv6; run one VRRP instance per family"}},
		{"peer duplicate", v3 + "peers: [192.0.2.2, 192.0.2.3, '::ffff:192.0.2.2']}\n",
			[]string{"vrrp.peers[2]: duplicate of vrrp.peers[0]"}},
		{"peer is a VIP", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1, 192.0.2.53/24], peers: [192.0.2.53]}\n",
			[]string{`vrrp.peers[0]: "192.0.2.53": is vrrp.vips[1] (list the other nodes' own addresses)`}},
		{"IPv6 peer with version 2 without vips", "vrrp: {enabled: false, version: 2, peers: ['2001:db8::2']}\n",
			[]string{"vrrp.peers[0]: IPv6 needs vrrp.version 3 (VRRPv2 is IPv4 only)"}},
		{"peers a number", v3 + "peers: 5}\n",
			[]string{"vrrp.peers: must be a list of IP addresses, not a number"}},

		// checksum_mode
		{"checksum_mode unknown", v3 + "checksum_mode: none}\n",
			[]string{`vrrp.checksum_mode: "none": must be one of pseudo-header, rfc9568`}},
		{"rfc9568 with version 2", v2 + "checksum_mode: rfc9568}\n",
			[]string{"vrrp.checksum_mode: rfc9568 applies to VRRPv3 over IPv4 only"}},
		{"rfc9568 with IPv6", v6 + "checksum_mode: rfc9568}\n",
			[]string{"vrrp.checksum_mode: rfc9568 applies to VRRPv3 over IPv4 only"}},
		{"rfc9568 with IPv6 peers", "vrrp: {enabled: false, peers: ['2001:db8::2'], checksum_mode: rfc9568}\n",
			[]string{"vrrp.checksum_mode: rfc9568 applies to VRRPv3 over IPv4 only"}},

		// auth_pass
		{"auth_pass too long", v2 + "auth_pass: 123456789}\n",
			[]string{"vrrp.auth_pass: must be a string, not a number (quote it)"}},
		{"auth_pass too long quoted", v2 + "auth_pass: 'secret-password'}\n",
			[]string{"vrrp.auth_pass: longer than 8 bytes"}},
		{"auth_pass with version 3", v3 + "auth_pass: secret}\n",
			[]string{"vrrp.auth_pass: only for vrrp.version 2 (VRRPv3 has no authentication)"}},
		{"auth_pass too long with version 3", v3 + "auth_pass: secret-password}\n",
			[]string{"vrrp.auth_pass: longer than 8 bytes", "vrrp.auth_pass: only for vrrp.version 2 (VRRPv3 has no authentication)"}},
		{"auth_pass a boolean", v2 + "auth_pass: true}\n",
			[]string{"vrrp.auth_pass: must be a string, not a boolean (quote it)"}},
		{"auth_pass a list", v2 + "auth_pass: [a]}\n",
			[]string{"vrrp.auth_pass: must be a string, not a list"}},

		// garp_*
		{"garp_repeat zero", v3 + "garp_repeat: 0}\n",
			[]string{"vrrp.garp_repeat: 0 out of range 1-100"}},
		{"garp_repeat too big", v3 + "garp_repeat: 101}\n",
			[]string{"vrrp.garp_repeat: 101 out of range 1-100"}},
		{"garp_delay too long", v3 + "garp_delay: 2h}\n",
			[]string{"vrrp.garp_delay: 2h out of range [0s, 1h]"}},
		{"garp_delay negative", v3 + "garp_delay: -5s}\n",
			[]string{"vrrp.garp_delay: -5s out of range [0s, 1h]"}},
		{"garp_refresh too short", v3 + "garp_refresh: 500ms}\n",
			[]string{"vrrp.garp_refresh: 500ms out of range [1s, 24h] (0s disables)"}},
		{"garp_refresh too long", v3 + "garp_refresh: 25h}\n",
			[]string{"vrrp.garp_refresh: 25h out of range [1s, 24h] (0s disables)"}},
		{"garp_refresh negative", v3 + "garp_refresh: -1s}\n",
			[]string{"vrrp.garp_refresh: -1s out of range [1s, 24h] (0s disables)"}},
		{"garp_refresh without unit", v3 + "garp_refresh: 0}\n",
			[]string{`vrrp.garp_refresh: "0": not a duration (use units, e.g. 500ms)`}},

		// track
		{"min_healthy_backends above the backends", v3 + "track: {min_healthy_backends: 2}}\n",
			[]string{"vrrp.track.min_healthy_backends: 2 exceeds the number of backends (1)"}},
		{"min_healthy_backends negative", v3 + "track: {min_healthy_backends: -1}}\n",
			[]string{"vrrp.track.min_healthy_backends: -1 out of range 0-10000"}},
		{"min_healthy_backends too big", v3 + "track: {min_healthy_backends: 10001}}\n",
			[]string{"vrrp.track.min_healthy_backends: 10001 out of range 0-10000"}},
		{"track weight too big", v3 + "track: {weight: 255}}\n",
			[]string{"vrrp.track.weight: 255 out of range 0-254"}},
		{"track weight negative", v3 + "track: {weight: -10}}\n",
			[]string{"vrrp.track.weight: -10 out of range 0-254"}},

		// notify
		{"notify relative", v3 + "notify: notify.sh}\n",
			[]string{`vrrp.notify: "notify.sh": must be an absolute path`}},
		{"notify dot relative", v3 + "notify: ./notify.sh}\n",
			[]string{`vrrp.notify: "./notify.sh": must be an absolute path`}},
		{"notify a list", v3 + "notify: [/bin/true]}\n",
			[]string{"vrrp.notify: must be a string, not a list"}},

		{"problems in schema order", "vrrp:\n" +
			"  zzz: 1\n  notify: x\n  track: {weight: 300, min_healthy_backends: 5, bogus: 1}\n" +
			"  garp_refresh: 1ms\n  garp_delay: 2h\n  garp_repeat: 0\n  auth_pass: 'p'\n  checksum_mode: rfc9568\n" +
			"  peers: [x]\n  vips: ['2001:db8::1']\n  version: 2\n  preempt_delay: 1s\n  preempt: false\n" +
			"  advert_interval: 10ms\n  priority: 0\n  vrid: 0\n  interface: 'a b'\n",
			[]string{
				`vrrp.interface: "a b": may not contain '/', ':' or whitespace`,
				"vrrp.vrid: 0 out of range 1-255",
				"vrrp.priority: 0 out of range 1-255",
				"vrrp.advert_interval: 10ms needs vrrp.version 3 (VRRPv2 counts whole seconds)",
				"vrrp.preempt_delay: has no effect with vrrp.preempt false",
				"vrrp.vips[0]: IPv6 needs vrrp.version 3 (VRRPv2 is IPv4 only)",
				`vrrp.peers[0]: "x": not an IP address`,
				"vrrp.checksum_mode: rfc9568 applies to VRRPv3 over IPv4 only",
				"vrrp.garp_repeat: 0 out of range 1-100",
				"vrrp.garp_delay: 2h out of range [0s, 1h]",
				"vrrp.garp_refresh: 1ms out of range [1s, 24h] (0s disables)",
				"vrrp.track.min_healthy_backends: 5 exceeds the number of backends (1)",
				"vrrp.track.weight: 300 out of range 0-254",
				"vrrp.track.bogus: unknown key",
				`vrrp.notify: "x": must be an absolute path`,
				"vrrp.zzz: unknown key",
			}},
		{"after health_check, before unknown top-level keys", "zz: 1\nvrrp: {vrid: 0, enabled: false}\nhealth_check: {rise: 0, enabled: false}\n",
			[]string{"health_check.rise: 0 out of range 1-100", "vrrp.vrid: 0 out of range 1-255", "zz: unknown key"}},
		{"min_healthy_backends not compared without backends", "backends: []\nvrrp: {enabled: false, track: {min_healthy_backends: 3}}\n",
			[]string{"backends: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), nil, tc.want) })
	}
}

func TestVRRPEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string // completed by withDefaults
		env   map[string]string
		check func(VRRP) bool
	}{
		{"enabled and required keys from env only", "",
			map[string]string{
				"DNSLB_VRRP_ENABLED":   "true",
				"DNSLB_VRRP_INTERFACE": "eth0",
				"DNSLB_VRRP_VRID":      "53",
				"DNSLB_VRRP_VIPS":      "192.0.2.53/24",
			},
			func(v VRRP) bool { return reflect.DeepEqual(v, enabledVRRP()) }},
		{"env disables the file's section", vrrpSection,
			map[string]string{"DNSLB_VRRP_ENABLED": "false"},
			func(v VRRP) bool { return reflect.DeepEqual(v, withVRRP(func(v *VRRP) { v.Enabled = false })) }},
		{"env disabled without section ignores other variables", "",
			map[string]string{"DNSLB_VRRP_ENABLED": "off", "DNSLB_VRRP_PRIORITY": "150"},
			func(v VRRP) bool { return !v.Enabled && v.Priority == 150 }},
		{"env beats file", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24], priority: 150, peers: [192.0.2.2]}\n",
			map[string]string{
				"DNSLB_VRRP_INTERFACE": "eth1",
				"DNSLB_VRRP_VRID":      " 54 ",
				"DNSLB_VRRP_PRIORITY":  "100",
				"DNSLB_VRRP_VIPS":      "2001:db8::53/64, 2001:db8::54  2001:db8::55/64,",
				"DNSLB_VRRP_PEERS":     "2001:db8::2 2001:db8::3",
			},
			func(v VRRP) bool {
				return v.Interface == "eth1" && v.VRID == 54 && v.Priority == 100 &&
					slices.Equal(v.VIPs, prefixes("2001:db8::53/64", "2001:db8::54/128", "2001:db8::55/64")) &&
					slices.Equal(v.Peers, addrs("2001:db8::2", "2001:db8::3"))
			}},
		{"empty peers variable means multicast", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24], peers: [192.0.2.2]}\n",
			map[string]string{"DNSLB_VRRP_PEERS": ""},
			func(v VRRP) bool { return v.Peers == nil }},
		{"every other scalar", vrrpSection,
			map[string]string{
				"DNSLB_VRRP_ADVERT_INTERVAL":            "3s",
				"DNSLB_VRRP_PREEMPT":                    "true",
				"DNSLB_VRRP_PREEMPT_DELAY":              "1m",
				"DNSLB_VRRP_VERSION":                    "2",
				"DNSLB_VRRP_CHECKSUM_MODE":              "PSEUDO-HEADER",
				"DNSLB_VRRP_AUTH_PASS":                  "s3cret",
				"DNSLB_VRRP_GARP_REPEAT":                "2",
				"DNSLB_VRRP_GARP_DELAY":                 "0s",
				"DNSLB_VRRP_GARP_REFRESH":               "10m",
				"DNSLB_VRRP_TRACK_MIN_HEALTHY_BACKENDS": "0",
				"DNSLB_VRRP_TRACK_WEIGHT":               "50",
				"DNSLB_VRRP_NOTIFY":                     "/etc/dnslb/notify",
			},
			func(v VRRP) bool {
				return reflect.DeepEqual(v, withVRRP(func(v *VRRP) {
					v.AdvertInterval = 3 * time.Second
					v.PreemptDelay = time.Minute
					v.Version = 2
					v.AuthPass = "s3cret"
					v.GARPRepeat = 2
					v.GARPDelay = 0
					v.GARPRefresh = 10 * time.Minute
					v.Track = VRRPTrack{MinHealthyBackends: 0, Weight: 50}
					v.Notify = "/etc/dnslb/notify"
				}))
			}},
		{"empty notify variable clears it", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24], notify: /x}\n",
			map[string]string{"DNSLB_VRRP_NOTIFY": ""},
			func(v VRRP) bool { return v.Notify == "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, withDefaults(tc.yaml), tc.env, func(c *Config) VRRP { return c.VRRP }, tc.check)
		})
	}
}

func TestVRRPEnvProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string // completed by withDefaults
		env  map[string]string
		want []string
	}{
		{"enabled from env needs the required keys", "",
			map[string]string{"DNSLB_VRRP_ENABLED": "true"},
			[]string{"vrrp.interface: required", "vrrp.vrid: required", "vrrp.vips: required"}},
		{"variables without section", "",
			map[string]string{"DNSLB_VRRP_VRID": "53", "DNSLB_VRRP_TRACK_WEIGHT": "10"},
			[]string{
				"vrrp: DNSLB_VRRP_VRID is set but the file has no vrrp section (add one, or set DNSLB_VRRP_ENABLED)",
				"vrrp: DNSLB_VRRP_TRACK_WEIGHT is set but the file has no vrrp section (add one, or set DNSLB_VRRP_ENABLED)",
			}},
		{"variable without section still validated", "",
			map[string]string{"DNSLB_VRRP_PRIORITY": "0"},
			[]string{
				"vrrp: DNSLB_VRRP_PRIORITY is set but the file has no vrrp section (add one, or set DNSLB_VRRP_ENABLED)",
				"vrrp.priority: 0 out of range 1-255",
			}},
		{"bad enabled", vrrpSection,
			map[string]string{"DNSLB_VRRP_ENABLED": "sometimes"},
			[]string{`vrrp.enabled: "sometimes": not a boolean (true or false)`}},
		{"empty vips variable", vrrpSection,
			map[string]string{"DNSLB_VRRP_VIPS": " , "},
			[]string{"vrrp.vips: required"}},
		{"empty vrid variable", vrrpSection,
			map[string]string{"DNSLB_VRRP_VRID": ""},
			[]string{`vrrp.vrid: "": not an integer`}},
		{"bad values", vrrpSection,
			map[string]string{
				"DNSLB_VRRP_INTERFACE":       "a/b",
				"DNSLB_VRRP_ADVERT_INTERVAL": "5",
				"DNSLB_VRRP_VIPS":            "192.0.2.1,2001:db8::1",
				"DNSLB_VRRP_PEERS":           "192.0.2.2,192.0.2.2",
				"DNSLB_VRRP_TRACK_WEIGHT":    "heavy",
			},
			[]string{
				`vrrp.interface: "a/b": may not contain '/', ':' or whitespace`,
				`vrrp.advert_interval: "5": not a duration (use units, e.g. 500ms)`,
				"vrrp.vips[1]: mixes IPv6 with IPv4; run one VRRP instance per family",
				"vrrp.peers[1]: duplicate of vrrp.peers[0]",
				`vrrp.track.weight: "heavy": not an integer`,
			}},
		{"env preempt false against file delay", "vrrp: {interface: eth0, vrid: 1, vips: [192.0.2.1], preempt_delay: 5s}\n",
			map[string]string{"DNSLB_VRRP_PREEMPT": "false"},
			[]string{"vrrp.preempt_delay: has no effect with vrrp.preempt false"}},
		{"env version 2 against file IPv6 vips", "vrrp: {interface: eth0, vrid: 1, vips: ['2001:db8::1']}\n",
			map[string]string{"DNSLB_VRRP_VERSION": "2"},
			[]string{"vrrp.vips[0]: IPv6 needs vrrp.version 3 (VRRPv2 is IPv4 only)"}},
		{"subsection variable hides keys", vrrpSection,
			map[string]string{"DNSLB_VRRP_TRACK": "1"},
			[]string{
				"vrrp.track.min_healthy_backends: hidden by the environment variable DNSLB_VRRP_TRACK (unset it)",
				"vrrp.track.weight: hidden by the environment variable DNSLB_VRRP_TRACK (unset it)",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), tc.env, tc.want) })
	}
}

// TestVRRPSectionVariable checks that DNSLB_VRRP hides every key of the
// section rather than letting them fall back to their defaults.
func TestVRRPSectionVariable(t *testing.T) {
	checkSectionHidden(t, "vrrp", vrrpSection, len(envKeys("vrrp")))
}

// TestExampleConfigVRRP checks that the disabled vrrp example of the
// repository's config.yaml is valid once enabled, with its commented peers
// and notify lines in use.
func TestExampleConfigVRRP(t *testing.T) {
	isolateEnv(t)
	doc := exampleSection(t, "vrrp")
	doc = strings.Replace(doc, "\nvrrp:\n  enabled: false", "\nvrrp:\n  enabled: true", 1)
	doc = strings.Replace(doc, "  # peers:", "  peers:", 1)
	doc = strings.Replace(doc, "  # notify:", "  notify:", 1)
	cfg, err := Parse("config.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("enabled example does not load:\n%v", err)
	}
	if v := cfg.VRRP; !v.Enabled || v.Interface == "" || v.VRID == 0 || len(v.VIPs) == 0 || len(v.Peers) == 0 || v.Notify == "" {
		t.Errorf("enabled example: %+v", v)
	}
}

// TestVRRPInstances: items of vrrp.instances start from the section's
// values and override them key by key; the single-instance form is one
// instance named after its VRID.
func TestVRRPInstances(t *testing.T) {
	isolateEnv(t)
	cfg := mustParse(t, withDefaults("vrrp:\n  interface: eth0\n  priority: 150\n  advert_interval: 100ms\n"+
		"  peers: [192.0.2.2]\n  track: {min_healthy_backends: 1}\n  instances:\n"+
		"    - {name: v4, vrid: 53, vips: [192.0.2.53/24]}\n"+
		"    - {name: v6, vrid: 53, vips: ['2001:db8::53/64'], priority: 90, peers: ['2001:db8::2'], sync: false}\n"))
	got := cfg.VRRP.InstanceList()
	if len(got) != 2 {
		t.Fatalf("%d instances", len(got))
	}
	v4, v6 := got[0], got[1]
	if v4.Name != "v4" || v4.Interface != "eth0" || v4.Priority != 150 || v4.AdvertInterval != 100*time.Millisecond ||
		!slices.Equal(v4.Peers, addrs("192.0.2.2")) || !v4.Sync || !slices.Equal(v4.VIPs, prefixes("192.0.2.53/24")) {
		t.Errorf("v4 = %+v", v4)
	}
	if v6.Name != "v6" || v6.Priority != 90 || v6.Sync || !slices.Equal(v6.Peers, addrs("2001:db8::2")) || v6.VRID != 53 {
		t.Errorf("v6 = %+v", v6)
	}
	one := mustParse(t, withDefaults(vrrpSection)).VRRP.InstanceList()
	if len(one) != 1 || one[0].Name != "53" || one[0].VRID != 53 {
		t.Errorf("single-instance form: %+v", one)
	}
}

// TestVRRPInstancesProblems: errors name the instance's key.
func TestVRRPInstancesProblems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"vrid reused on the interface for the family",
			"vrrp:\n  interface: eth0\n  instances:\n    - {name: a, vrid: 53, vips: [192.0.2.53/24]}\n    - {name: b, vrid: 53, vips: [192.0.2.54/24]}\n",
			[]string{"vrrp.instances[1].vrid: 53 is already used by instances[0] on eth0 for IPv4"}},
		{"same vrid, other family or interface: fine",
			"vrrp:\n  interface: eth0\n  instances:\n    - {name: a, vrid: 53, vips: [192.0.2.53/24]}\n    - {name: b, vrid: 53, vips: ['2001:db8::53/64']}\n    - {name: c, vrid: 53, interface: eth1, vips: [192.0.2.54/24]}\n",
			nil},
		{"name and vrid required, track only at the top",
			"vrrp:\n  interface: eth0\n  instances:\n    - {vips: [192.0.2.53/24], track: {weight: 1}}\n",
			[]string{"vrrp.instances[0].name: required", "vrrp.instances[0].vrid: required", "vrrp.instances[0].track: only allowed in the global vrrp section"}},
		{"interface required, possibly inherited",
			"vrrp:\n  instances:\n    - {name: a, vrid: 1, vips: [192.0.2.53/24]}\n",
			[]string{"vrrp.instances[0].interface: required"}},
		{"single-instance keys with a list",
			"vrrp:\n  interface: eth0\n  name: x\n  vips: [192.0.2.9/24]\n  instances:\n    - {name: a, vrid: 1, vips: [192.0.2.53/24]}\n",
			[]string{"vrrp.name: not allowed with vrrp.instances (give each instance its own)", "vrrp.vips: not allowed with vrrp.instances (give each instance its own)"}},
		{"duplicate and bad names",
			"vrrp:\n  interface: eth0\n  instances:\n    - {name: a, vrid: 1, vips: [192.0.2.53/24]}\n    - {name: a, vrid: 2, vips: [192.0.2.54/24]}\n    - {name: 'b c', vrid: 3, vips: [192.0.2.55/24]}\n",
			[]string{"vrrp.instances[1].name: duplicate of vrrp.instances[0]", `vrrp.instances[2].name: "b c": may contain only A-Z a-z 0-9 _ . -`}},
		{"an inherited value checked against the instance",
			"vrrp:\n  interface: eth0\n  advert_interval: 100ms\n  instances:\n    - {name: a, vrid: 1, version: 2, vips: [192.0.2.53/24]}\n",
			[]string{"vrrp.instances[0].advert_interval: 100ms needs vrrp.version 3 (VRRPv2 counts whole seconds)"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), nil, tc.want) })
	}
}
