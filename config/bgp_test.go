package config

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func defaultBGP() BGP { return Default().BGP }

// bgpSection is an enabled bgp section of mode active with two
// neighbours.
const bgpSection = "bgp:\n  local_as: 65053\n  router_id: 10.0.0.11\n  neighbors:\n" +
	"    - {address: 10.0.0.1, peer_as: 65000}\n" +
	"    - {address: '2001:db8::1', peer_as: 65000, port: 1179, password: s3cret, multihop: 2, hold_time: 9s, passive: true}\n"

func TestBGPDefaults(t *testing.T) {
	isolateEnv(t)
	cfg := mustParse(t, withDefaults(bgpSection))
	b := cfg.BGP
	if !b.Enabled || b.Mode != "auto" || cfg.EffectiveMode() != "active" || b.LocalAS != 65053 ||
		b.RouterID != netip.MustParseAddr("10.0.0.11") || b.WithdrawDelay != 2*time.Second ||
		b.MinHealthyBackends != 1 || b.Interface != "lo" || b.RouteProtocol != 250 || b.MED != 0 || b.Communities != nil || b.NextHop != nil {
		t.Errorf("bgp = %+v", b)
	}
	want := []BGPNeighbor{
		{Address: netip.MustParseAddr("10.0.0.1"), PeerAS: 65000, Port: 179, HoldTime: 90 * time.Second},
		{Address: netip.MustParseAddr("2001:db8::1"), PeerAS: 65000, Port: 1179, Password: "s3cret", Multihop: 2, HoldTime: 9 * time.Second, Passive: true},
	}
	if !reflect.DeepEqual(b.Neighbors, want) {
		t.Errorf("neighbors = %+v\nwant %+v", b.Neighbors, want)
	}
	if got := mustParse(t, minimal).BGP; got.Enabled || !reflect.DeepEqual(got, defaultBGP()) {
		t.Errorf("without a section: %+v", got)
	}
}

func TestBGPAccepted(t *testing.T) {
	isolateEnv(t)
	cfg := mustParse(t, withDefaults(bgpSection+"  communities: [65000:53, NO-EXPORT, ' 0065535:0 ']\n  med: 4294967295\n"+
		"  next_hop: [192.0.2.1, '2001:db8::1']\n  withdraw_delay: 0s\n  mode: active\n  route_protocol: 99\n  interface: dummy0\n"))
	b := cfg.BGP
	if !slices.Equal(b.Communities, []string{"65000:53", "no-export", "65535:0"}) || b.MED != 4294967295 ||
		!slices.Equal(b.NextHop, addrs("192.0.2.1", "2001:db8::1")) || b.WithdrawDelay != 0 || b.RouteProtocol != 99 || b.Interface != "dummy0" {
		t.Errorf("bgp = %+v", b)
	}
	for name, want := range map[string]uint32{"65000:53": 65000<<16 | 53, "no-export": 0xFFFFFF01, "graceful-shutdown": 0xFFFF0000} {
		if got, err := Community(name); err != nil || got != want {
			t.Errorf("Community(%q) = %#x, %v; want %#x", name, got, err, want)
		}
	}
	// Mode kernel needs no BGP settings of its own.
	k := mustParse(t, withDefaults("bgp: {mode: kernel}\n")).BGP
	if !k.Enabled || k.Mode != "kernel" {
		t.Errorf("kernel = %+v", k)
	}
	// auto with VRRP is vrrp.
	v := mustParse(t, withDefaults(vrrpSection+bgpSection))
	if v.EffectiveMode() != "vrrp" {
		t.Errorf("mode with vrrp = %s", v.EffectiveMode())
	}
}

func TestBGPProblems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{"required", "bgp: {mode: auto}\n", nil, []string{
			"bgp.local_as: required with bgp.mode active",
			"bgp.router_id: required with bgp.mode active",
			"bgp.neighbors: required with bgp.mode active",
		}},
		{"not required when disabled", "bgp: {enabled: false}\n", nil, nil},
		{"values", "bgp:\n  mode: ospf\n  local_as: 0\n  router_id: '2001:db8::1'\n  neighbors:\n" +
			"    - {address: 10.0.0.1/32, peer_as: 4294967296, port: 0, multihop: 256, hold_time: 2s}\n" +
			"    - {address: '10.0.0.2:179', peer_as: 1}\n    - {peer_as: 1}\n" +
			"  communities: [65536:1, 'no-such', 1]\n  med: -1\n  next_hop: [0.0.0.0, 'fe80::1%eth0']\n  withdraw_delay: 2m\n" +
			"  route_protocol: 256\n  interface: a/b\n", nil, []string{
			`bgp.mode: "ospf": must be one of auto, vrrp, active, kernel`,
			"bgp.local_as: 0 out of range 1-4294967295",
			`bgp.router_id: "2001:db8::1": not an IPv4 address (a BGP identifier is 32 bits, written as one)`,
			`bgp.neighbors[0].address: "10.0.0.1/32": not an IP address (no prefix length here)`,
			"bgp.neighbors[0].peer_as: 4294967296 out of range 1-4294967295",
			"bgp.neighbors[0].port: 0 out of range 1-65535",
			"bgp.neighbors[0].multihop: 256 out of range 0-255",
			"bgp.neighbors[0].hold_time: 2s out of range [3s, 1h]",
			`bgp.neighbors[1].address: "10.0.0.2:179": not an IP address (no port here)`,
			"bgp.neighbors[2].address: required",
			`bgp.communities[0]: "65536:1": not a community (asn:value, both 0-65535, or no-export, no-advertise, no-export-subconfed, graceful-shutdown, blackhole)`,
			`bgp.communities[1]: "no-such": not a community (asn:value, both 0-65535, or no-export, no-advertise, no-export-subconfed, graceful-shutdown, blackhole)`,
			`bgp.communities[2]: "1": not a community (asn:value, both 0-65535, or no-export, no-advertise, no-export-subconfed, graceful-shutdown, blackhole)`,
			"bgp.med: -1 out of range 0-4294967295",
			`bgp.next_hop[0]: "0.0.0.0": not a unicast address`,
			`bgp.next_hop[1]: "fe80::1%eth0": zone not allowed`,
			"bgp.withdraw_delay: 2m out of range [0s, 1m]",
			`bgp.interface: "a/b": may not contain '/', ':' or whitespace`,
			"bgp.route_protocol: 256 out of range 1-255",
		}},
		{"relations", "bgp:\n  local_as: 65053\n  router_id: 10.0.0.11\n  neighbors:\n" +
			"    - {address: 10.0.0.1, peer_as: 65000, hold_time: 4500ms}\n    - {address: '::ffff:10.0.0.1', peer_as: 65001}\n" +
			"  next_hop: [192.0.2.1, 192.0.2.2, '2001:db8::1']\n  min_healthy_backends: 2\n  route_protocol: 186\n", nil, []string{
			"bgp.neighbors[0].hold_time: 4.5s is not a whole number of seconds (BGP counts seconds)",
			"bgp.neighbors[1].address: duplicate of bgp.neighbors[0]",
			`bgp.next_hop[1]: "192.0.2.2": a second next hop of its family (one IPv4 and one IPv6 at most)`,
			"bgp.min_healthy_backends: 2 exceeds the number of backends (1): the node would never announce",
			"bgp.route_protocol: 186 is used by the kernel or a routing daemon (1-4, 11, 12, 186-189, 192 are taken)",
		}},
		{"vrrp mode without vrrp", bgpSection + "  mode: vrrp\n", nil, []string{
			"bgp.mode: vrrp needs vrrp.enabled (or use active: every fit node announces)",
		}},
		{"active mode with vrrp", vrrpSection + bgpSection + "  mode: active\n", nil, []string{
			"bgp.mode: active does not go with vrrp.enabled (the VIPs would be both on bgp.interface and moved by VRRP); use vrrp",
		}},
		{"env", bgpSection, map[string]string{"DNSLB_BGP_MED": "x", "DNSLB_BGP_COMMUNITIES": "1:2 no-export x", "DNSLB_BGP_NEIGHBORS": "10.0.0.1"}, []string{
			"bgp.neighbors: cannot be set from the environment (unset DNSLB_BGP_NEIGHBORS; list the neighbors in the file)",
			`bgp.communities[2]: "x": not a community (asn:value, both 0-65535, or no-export, no-advertise, no-export-subconfed, graceful-shutdown, blackhole)`,
			`bgp.med: "x": not an integer`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			checkProblems(t, withDefaults(tc.yaml), tc.env, tc.want)
		})
	}
}

func TestBGPRestartOnly(t *testing.T) {
	isolateEnv(t)
	old := mustParse(t, withDefaults(bgpSection))
	for _, tc := range []struct {
		edit string
		want []string
	}{
		{"  communities: [1:2]\n  med: 10\n  next_hop: [192.0.2.1]\n  withdraw_delay: 5s\n  min_healthy_backends: 0\n", nil},
		{"  local_as: 65054\n", []string{"bgp.local_as"}},
		{"  router_id: 10.0.0.12\n", []string{"bgp.router_id"}},
		{"  mode: kernel\n", []string{"bgp.mode"}},
		{"  interface: dummy0\n", []string{"bgp.interface"}},
		{"  enabled: false\n", []string{"bgp.enabled"}},
	} {
		doc := strings.Replace(bgpSection, "bgp:\n  local_as: 65053\n  router_id: 10.0.0.11\n", "bgp:\n", 1)
		base := "  local_as: 65053\n  router_id: 10.0.0.11\n"
		if strings.Contains(tc.edit, "local_as") {
			base = "  router_id: 10.0.0.11\n"
		} else if strings.Contains(tc.edit, "router_id") {
			base = "  local_as: 65053\n"
		}
		doc = strings.Replace(doc, "bgp:\n", "bgp:\n"+base+tc.edit, 1)
		cfg := mustParse(t, withDefaults(doc))
		if got := RestartOnly(old, cfg); !slices.Equal(got, tc.want) {
			t.Errorf("%q: RestartOnly = %q, want %q", tc.edit, got, tc.want)
		}
	}
}

// TestExampleConfigBGP checks that the disabled bgp example of the
// repository's config.yaml is valid once enabled.
func TestExampleConfigBGP(t *testing.T) {
	isolateEnv(t)
	doc := exampleSection(t, "bgp")
	doc = strings.Replace(doc, "\nbgp:\n  enabled: false", "\nbgp:\n  enabled: true", 1)
	cfg, err := Parse("config.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("enabled example does not load:\n%v", err)
	}
	if b := cfg.BGP; !b.Enabled || b.LocalAS == 0 || len(b.Neighbors) == 0 {
		t.Errorf("enabled example: %+v", b)
	}
}
