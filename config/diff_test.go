package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// cfgWith returns a configuration with the given listen addresses, admin
// listener and backends; only the fields the diff functions read.
func cfgWith(listen []string, admin string, backends ...Backend) *Config {
	c := &Config{Admin: Admin{Listen: admin}, Backends: backends}
	for _, l := range listen {
		c.Listen = append(c.Listen, netip.MustParseAddrPort(l))
	}
	return c
}

// withVRRPOf sets c's VRRP section and returns c.
func withVRRPOf(c *Config, v VRRP) *Config {
	c.VRRP = v
	return c
}

// withNotifyOf sets c's notify section and returns c.
func withNotifyOf(c *Config, n Notify) *Config {
	c.Notify = n
	return c
}

// be returns an active backend.
func be(name, addr string, weight int) Backend {
	return Backend{Name: name, Address: netip.MustParseAddrPort(addr), Weight: weight, State: StateActive}
}

func TestRestartOnly(t *testing.T) {
	base := cfgWith([]string{"127.0.0.1:53", "[::1]:53"}, "127.0.0.1:9053", be("a", "10.0.0.1:53", 1))
	for _, tc := range []struct {
		name string
		new  *Config
		want []string
	}{
		{"identical", cfgWith([]string{"127.0.0.1:53", "[::1]:53"}, "127.0.0.1:9053"), nil},
		{"listen reordered", cfgWith([]string{"[::1]:53", "127.0.0.1:53"}, "127.0.0.1:9053"), nil},
		{"backends only", cfgWith([]string{"127.0.0.1:53", "[::1]:53"}, "127.0.0.1:9053", be("b", "10.0.0.2:53", 5)), nil},
		{"listen added", cfgWith([]string{"127.0.0.1:53", "[::1]:53", "127.0.0.2:53"}, "127.0.0.1:9053"), []string{"listen"}},
		{"listen port", cfgWith([]string{"127.0.0.1:5353", "[::1]:53"}, "127.0.0.1:9053"), []string{"listen"}},
		{"admin disabled", cfgWith([]string{"127.0.0.1:53", "[::1]:53"}, ""), []string{"admin.listen"}},
		{"both", cfgWith([]string{"[::1]:53"}, "[::1]:9053"), []string{"listen", "admin.listen"}},
		{"vrrp enabled", withVRRPOf(cfgWith([]string{"127.0.0.1:53", "[::1]:53"}, "127.0.0.1:9053"), enabledVRRP()), []string{"vrrp.enabled"}},
		{"all three", withVRRPOf(cfgWith([]string{"[::1]:53"}, ""), enabledVRRP()), []string{"listen", "admin.listen", "vrrp.enabled"}},
		{"notify enabled", withNotifyOf(cfgWith([]string{"127.0.0.1:53", "[::1]:53"}, "127.0.0.1:9053"), enabledNotify()),
			[]string{"notify.interface", "notify.enabled"}},
		{"disabled notify edited", withNotifyOf(cfgWith([]string{"127.0.0.1:53", "[::1]:53"}, "127.0.0.1:9053"), Notify{Interface: "eth1", Retries: 3}), nil},
		{"all five", withNotifyOf(withVRRPOf(cfgWith([]string{"[::1]:53"}, ""), enabledVRRP()), enabledNotify()),
			[]string{"listen", "admin.listen", "vrrp.enabled", "notify.interface", "notify.enabled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RestartOnly(base, tc.new); !slices.Equal(got, tc.want) {
				t.Errorf("RestartOnly = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDiffBackends(t *testing.T) {
	old := cfgWith(nil, "", be("a", "10.0.0.1:53", 1), be("b", "10.0.0.2:53", 1), be("c", "[2001:db8::3]:53", 1))
	drained := be("b", "10.0.0.2:53", 1)
	drained.State = StateDrain
	checked := be("a", "10.0.0.1:53", 1)
	checked.HealthCheck = enabledHC()
	rcodes := be("c", "[2001:db8::3]:53", 1)
	rcodes.HealthCheck.Expect.Rcodes = []int{0, 3}
	for _, tc := range []struct {
		name string
		new  *Config
		want BackendChanges
	}{
		{"identical", cfgWith(nil, "", be("c", "[2001:db8::3]:53", 1), be("b", "10.0.0.2:53", 1), be("a", "10.0.0.1:53", 1)),
			BackendChanges{}},
		{"added and removed", cfgWith(nil, "", be("z", "10.0.0.9:53", 1), be("b", "10.0.0.2:53", 1), be("y", "10.0.0.8:53", 1)),
			BackendChanges{Added: []string{"y", "z"}, Removed: []string{"a", "c"}}},
		{"address weight state", cfgWith(nil, "", be("a", "10.0.0.1:5353", 1), drained, be("c", "[2001:db8::3]:53", 7)),
			BackendChanges{Changed: []string{"a", "b", "c"}}},
		{"health check", cfgWith(nil, "", checked, be("b", "10.0.0.2:53", 1), rcodes),
			BackendChanges{Changed: []string{"a", "c"}}},
		{"renamed is removed plus added", cfgWith(nil, "", be("a", "10.0.0.1:53", 1), be("b", "10.0.0.2:53", 1), be("c6", "[2001:db8::3]:53", 1)),
			BackendChanges{Added: []string{"c6"}, Removed: []string{"c"}}},
		{"all removed", cfgWith(nil, ""),
			BackendChanges{Removed: []string{"a", "b", "c"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DiffBackends(old, tc.new); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DiffBackends = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDiffParsed diffs two parsed files, as a reload does.
func TestDiffParsed(t *testing.T) {
	isolateEnv(t)
	a := mustParse(t, "listen: ['127.0.0.1:53']\nbackends: [{name: a, address: '10.0.0.1:53'}, {name: b, address: '[::1]:53'}]\n")
	b := mustParse(t, "listen: ['127.0.0.1:53']\nbackends: [{name: a, address: '10.0.0.1:53', weight: 2}, {name: c, address: '[::1]:53'}]\nadmin: {listen: ''}\n")
	if got, want := DiffBackends(a, b), (BackendChanges{Added: []string{"c"}, Removed: []string{"b"}, Changed: []string{"a"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("DiffBackends = %+v, want %+v", got, want)
	}
	if got, want := RestartOnly(a, b), []string{"admin.listen"}; !slices.Equal(got, want) {
		t.Errorf("RestartOnly = %q, want %q", got, want)
	}
}

// TestDiffHealthCheck diffs parsed files whose health checks differ.
func TestDiffHealthCheck(t *testing.T) {
	isolateEnv(t)
	const backends = "listen: ['127.0.0.1:53']\nbackends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: '10.0.0.2:53'%s}\n"
	parse := func(override, global string) *Config {
		return mustParse(t, fmt.Sprintf(backends, override)+global)
	}
	const global = "health_check: {query: {name: example.test}}\n"
	for _, tc := range []struct {
		name     string
		old, new *Config
		want     BackendChanges
	}{
		{"same", parse("", global), parse("", global), BackendChanges{}},
		{"same merged value written differently", parse("", global), parse(", health_check: {query: {type: soa}, rise: 2}", global), BackendChanges{}},
		{"enabled", parse("", ""), parse("", global), BackendChanges{Changed: []string{"a", "b"}}},
		{"global key", parse("", global), parse("", "health_check: {query: {name: example.test}, fall: 4}\n"), BackendChanges{Changed: []string{"a", "b"}}},
		{"global-only key", parse("", global), parse("", "health_check: {query: {name: example.test}, all_down: refuse}\n"), BackendChanges{Changed: []string{"a", "b"}}},
		{"backend override", parse("", global), parse(", health_check: {expect: {rcodes: [NOERROR, NXDOMAIN]}}", global), BackendChanges{Changed: []string{"b"}}},
		{"backend disabled", parse("", global), parse(", health_check: {enabled: false}", global), BackendChanges{Changed: []string{"b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DiffBackends(tc.old, tc.new); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DiffBackends = %+v, want %+v", got, tc.want)
			}
			if got := RestartOnly(tc.old, tc.new); got != nil {
				t.Errorf("RestartOnly = %q, want none", got)
			}
		})
	}
}

// TestRestartOnlyVRRP checks that only turning vrrp on or off needs a
// restart: every other change applies on a reload (instances are updated
// in place; the daemon keeps an instance whose interface or VRID changed
// running as it was and says so).
func TestRestartOnlyVRRP(t *testing.T) {
	isolateEnv(t)
	const head = "listen: ['127.0.0.1:53']\nbackends: [{name: a, address: '10.0.0.1:53'}, {name: b, address: '10.0.0.2:53'}]\n"
	base := mustParse(t, head+vrrpSection)
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"same", vrrpSection, nil},
		{"same values written differently", "vrrp:\n  enabled: true\n  vrid: '53'\n  interface: eth0\n  priority: 100\n  vips: '192.0.2.53/24'\n  peers: []\n  track: {weight: 0}\n", nil},
		{"other sections change", vrrpSection + "timeouts: {udp: 2s}\n", nil},
		{"section removed", "", []string{"vrrp.enabled"}},
		{"disabled", "vrrp: {enabled: false, interface: eth0, vrid: 53, vips: [192.0.2.53/24]}\n", []string{"vrrp.enabled"}},
		{"priority", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24], priority: 150}\n", nil},
		{"vip prefix length", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/25]}\n", nil},
		{"vip added", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24, 192.0.2.54/24]}\n", nil},
		{"peers", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24], peers: [192.0.2.2]}\n", nil},
		{"track", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24], track: {min_healthy_backends: 2}}\n", nil},
		{"notify", "vrrp: {interface: eth0, vrid: 53, vips: [192.0.2.53/24], notify: /bin/true}\n", nil},
		{"with listen", "vrrp: {interface: eth1, vrid: 53, vips: [192.0.2.53/24]}\n", []string{"listen"}},
		{"instances", "vrrp: {interface: eth0, instances: [{name: v4, vrid: 53, vips: [192.0.2.53/24]}, {name: v6, vrid: 54, vips: ['2001:db8::53/64']}]}\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := head + tc.yaml
			if tc.name == "with listen" {
				doc = strings.Replace(doc, "127.0.0.1:53", "127.0.0.2:53", 1)
			}
			if got := RestartOnly(base, mustParse(t, doc)); !slices.Equal(got, tc.want) {
				t.Errorf("RestartOnly = %q, want %q", got, tc.want)
			}
		})
	}
	// Edits to a section that stays disabled change nothing that runs.
	a := mustParse(t, head+"vrrp: {enabled: false, priority: 100}\n")
	b := mustParse(t, head+"vrrp: {enabled: false, priority: 150}\n")
	if got := RestartOnly(a, b); len(got) != 0 {
		t.Errorf("RestartOnly(disabled, disabled) = %q, want none", got)
	}
}
