package config

import (
	"slices"
	"strings"
	"testing"
)

// withDefaults completes a test document with a valid top-level listen and
// backends key when it has none, so each case shows only what it tests.
func withDefaults(doc string) string {
	if !hasTopKey(doc, "listen") {
		doc = "listen: ['127.0.0.1:53']\n" + doc
	}
	if !hasTopKey(doc, "backends") {
		doc = "backends: [{name: a, address: '10.0.0.1:53'}]\n" + doc
	}
	return doc
}

// hasTopKey reports whether a line of doc starts with key, in any case.
func hasTopKey(doc, key string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if len(line) > len(key) && strings.EqualFold(line[:len(key)+1], key+":") {
			return true
		}
	}
	return false
}

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string   // completed by withDefaults
		want []string // every problem, in order
	}{
		// backends: addresses
		{"address missing port", "backends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: 10.0.0.1}\n",
			[]string{"backends[1].address: missing port"}},
		{"address broadcast, multicast, port 0", "backends:\n- {name: a, address: '255.255.255.255:53'}\n- {name: b, address: '[ff02::1]:53'}\n- {name: c, address: '10.0.0.1:0'}\n",
			[]string{`backends[0].address: "255.255.255.255:53": multicast or broadcast address not allowed`,
				`backends[1].address: "[ff02::1]:53": multicast or broadcast address not allowed`,
				`backends[2].address: port 0 out of range 1-65535`}},
		{"address IPv6 missing port", "backends: [{name: a, address: '[::1]'}]\n",
			[]string{"backends[0].address: missing port"}},
		{"address IPv6 without brackets", "backends: [{name: a, address: '2001:db8::1'}]\n",
			[]string{`backends[0].address: "2001:db8::1": put an IPv6 address in brackets, e.g. "[::1]:53"`}},
		{"address hostname", "backends: [{name: a, address: 'foo:53'}]\n",
			[]string{`backends[0].address: "foo:53": not an IP address`}},
		{"address port 0", "backends: [{name: a, address: '10.0.0.1:0'}]\n",
			[]string{"backends[0].address: port 0 out of range 1-65535"}},
		{"address port too big", "backends: [{name: a, address: '10.0.0.1:65536'}]\n",
			[]string{"backends[0].address: port 65536 out of range 1-65535"}},
		{"address port not a number", "backends: [{name: a, address: '10.0.0.1:dns'}]\n",
			[]string{`backends[0].address: "10.0.0.1:dns": port "dns" is not a number`}},
		{"address unspecified v4", "backends: [{name: a, address: '0.0.0.0:53'}]\n",
			[]string{`backends[0].address: "0.0.0.0:53": unspecified address not allowed`}},
		{"address unspecified v6", "backends: [{name: a, address: '[::]:53'}]\n",
			[]string{`backends[0].address: "[::]:53": unspecified address not allowed`}},
		{"address required", "backends: [{name: a}]\n",
			[]string{"backends[0].address: required"}},
		{"address empty", "backends: [{name: a, address: ''}]\n",
			[]string{"backends[0].address: required"}},
		{"address a list", "backends: [{name: a, address: ['10.0.0.1:53']}]\n",
			[]string{"backends[0].address: must be a string, not a list"}},
		{"address duplicate", "backends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: '10.0.0.1:53'}\n",
			[]string{"backends[1].address: duplicate of backends[0]"}},
		{"address duplicate IPv4-mapped", "backends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: '[::ffff:10.0.0.1]:53'}\n",
			[]string{"backends[1].address: duplicate of backends[0]"}},
		{"address duplicate IPv6", "backends:\n- {name: a, address: '[2001:db8::1]:53'}\n- {name: b, address: '[2001:db8:0::1]:53'}\n",
			[]string{"backends[1].address: duplicate of backends[0]"}},

		// backends: names
		{"name required", "backends: [{address: '10.0.0.1:53'}]\n",
			[]string{"backends[0].name: required"}},
		{"name empty", "backends: [{name: '', address: '10.0.0.1:53'}]\n",
			[]string{"backends[0].name: required"}},
		{"name duplicate", "backends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: '10.0.0.2:53'}\n- {name: a, address: '10.0.0.3:53'}\n",
			[]string{"backends[2].name: duplicate of backends[0]"}},
		{"name bad characters", "backends: [{name: 'ns 1', address: '10.0.0.1:53'}]\n",
			[]string{`backends[0].name: "ns 1": may contain only A-Z a-z 0-9 _ . -`}},
		{"name too long", "backends: [{name: " + strings.Repeat("n", 64) + ", address: '10.0.0.1:53'}]\n",
			[]string{`backends[0].name: "` + strings.Repeat("n", 64) + `": longer than 63 characters`}},
		{"name a number", "backends: [{name: 1, address: '10.0.0.1:53'}]\n",
			[]string{"backends[0].name: must be a string, not a number (quote it)"}},

		// backends: weight and state
		{"weight 0", "backends: [{name: a, address: '10.0.0.1:53', weight: 0}]\n",
			[]string{"backends[0].weight: 0 out of range 1-1000"}},
		{"weight 1001", "backends: [{name: a, address: '10.0.0.1:53', weight: 1001}]\n",
			[]string{"backends[0].weight: 1001 out of range 1-1000"}},
		{"weight negative", "backends: [{name: a, address: '10.0.0.1:53', weight: -1}]\n",
			[]string{"backends[0].weight: -1 out of range 1-1000"}},
		{"weight not an integer", "backends: [{name: a, address: '10.0.0.1:53', weight: x}]\n",
			[]string{`backends[0].weight: "x": not an integer`}},
		{"weight fraction", "backends: [{name: a, address: '10.0.0.1:53', weight: 1.5}]\n",
			[]string{`backends[0].weight: "1.5": not an integer`}},
		{"weight a mapping", "backends: [{name: a, address: '10.0.0.1:53', weight: {a: 1}}]\n",
			[]string{"backends[0].weight: must be an integer, not a mapping"}},
		{"state unknown", "backends: [{name: a, address: '10.0.0.1:53', state: foo}]\n",
			[]string{`backends[0].state: "foo": must be one of active, drain, disabled`}},

		// backends: shape
		{"backends required", "listen: ['127.0.0.1:53']\nbackends:\n",
			[]string{"backends: required"}},
		{"backends empty", "backends: []\n",
			[]string{"backends: required"}},
		{"backends not a list", "backends: {name: a}\n",
			[]string{"backends: must be a list"}},
		{"backends item not a mapping", "backends: ['10.0.0.1:53']\n",
			[]string{"backends[0]: must be a mapping"}},
		{"backends item null", "backends:\n-\n",
			[]string{"backends[0]: must be a mapping"}},
		{"backend unknown key", "backends:\n- {name: a, address: '10.0.0.1:53'}\n- {name: b, address: '10.0.0.2:53', wieght: 2}\n",
			[]string{"backends[1].wieght: unknown key"}},
		{"backend problems together", "backends:\n- {name: 'a b', address: '10.0.0.1', weight: 0, state: x, z: 1, y: 2}\n",
			[]string{
				`backends[0].name: "a b": may contain only A-Z a-z 0-9 _ . -`,
				"backends[0].address: missing port",
				"backends[0].weight: 0 out of range 1-1000",
				`backends[0].state: "x": must be one of active, drain, disabled`,
				"backends[0].y: unknown key",
				"backends[0].z: unknown key",
			}},

		// listen
		{"listen empty", "listen: []\n",
			[]string{"listen: required"}},
		{"listen null", "listen:\n",
			[]string{"listen: required"}},
		{"listen wildcard v4", "listen: ['0.0.0.0:53']\n",
			[]string{`listen[0]: "0.0.0.0:53": wildcard address not allowed, list each address clients query (answers must come from it)`}},
		{"listen wildcard v6", "listen: ['127.0.0.1:53', '[::]:53']\n",
			[]string{`listen[1]: "[::]:53": wildcard address not allowed, list each address clients query (answers must come from it)`}},
		{"listen duplicate", "listen: ['127.0.0.1:53', '127.0.0.1:53']\n",
			[]string{"listen[1]: duplicate of listen[0]"}},
		{"listen missing port", "listen: ['127.0.0.1']\n",
			[]string{"listen[0]: missing port"}},
		{"listen a mapping", "listen: {a: 1}\n",
			[]string{`listen: must be a list of "ip:port" strings, not a mapping`}},
		{"listen item a list", "listen: [['127.0.0.1:53']]\n",
			[]string{"listen[0]: must be a string, not a list"}},

		// timeouts
		{"udp not a duration", "timeouts: {udp: abc}\n",
			[]string{`timeouts.udp: "abc": not a duration`}},
		{"udp integer", "timeouts: {udp: 5}\n",
			[]string{`timeouts.udp: "5": not a duration (use units, e.g. 500ms)`}},
		{"udp number as string", "timeouts: {udp: '0.5'}\n",
			[]string{`timeouts.udp: "0.5": not a duration (use units, e.g. 500ms)`}},
		{"udp zero", "timeouts: {udp: 0s}\n",
			[]string{"timeouts.udp: 0s out of range (0s, 30s]"}},
		{"udp negative", "timeouts: {udp: -1s}\n",
			[]string{"timeouts.udp: -1s out of range (0s, 30s]"}},
		{"udp too long", "timeouts: {udp: 31s}\n",
			[]string{"timeouts.udp: 31s out of range (0s, 30s]"}},
		{"tcp_idle too long", "timeouts: {tcp_idle: 90m}\n",
			[]string{"timeouts.tcp_idle: 1h30m out of range (0s, 1h]"}},
		{"udp a list", "timeouts: {udp: [1s]}\n",
			[]string{"timeouts.udp: must be a duration such as 500ms, not a list"}},
		{"timeouts not a mapping", "timeouts: 5s\n",
			[]string{"timeouts: must be a mapping, not a string"}},
		{"timeouts unknown key", "timeouts: {udp: 1s, tcp: 1s}\n",
			[]string{"timeouts.tcp: unknown key"}},

		// limits
		{"per client exceeds total", "limits: {tcp_connections: 100, tcp_connections_per_client: 200}\n",
			[]string{"limits.tcp_connections_per_client: 200 exceeds limits.tcp_connections (100)"}},
		{"per client exceeds total by default", "limits: {tcp_connections: 50}\n",
			[]string{"limits.tcp_connections_per_client: 100 exceeds limits.tcp_connections (50)"}},
		{"tcp_connections zero", "limits: {tcp_connections: 0}\n",
			[]string{"limits.tcp_connections: 0 out of range 1-1000000"}},
		{"tcp_connections too big", "limits: {tcp_connections: 1000001}\n",
			[]string{"limits.tcp_connections: 1000001 out of range 1-1000000"}},
		{"tcp_connections huge", "limits: {tcp_connections: 18446744073709551615}\n",
			[]string{"limits.tcp_connections: 18446744073709551615 out of range 1-1000000"}},
		{"per client not an integer", "limits: {tcp_connections_per_client: many}\n",
			[]string{`limits.tcp_connections_per_client: "many": not an integer`}},
		{"limits unknown key", "limits: {udp: 1}\n",
			[]string{"limits.udp: unknown key"}},

		// admin
		{"admin.listen not ip:port", "admin: {listen: x}\n",
			[]string{`admin.listen: "x": not ip:port`}},
		{"admin.listen hostname", "admin: {listen: 'localhost:9053'}\n",
			[]string{`admin.listen: "localhost:9053": not ip:port`}},
		{"admin not a mapping", "admin: '127.0.0.1:9053'\n",
			[]string{"admin: must be a mapping, not a string"}},

		// log
		{"log.level unknown", "log: {level: loud}\n",
			[]string{`log.level: "loud": must be one of debug, info, warn, error`}},
		{"log.format unknown", "log: {format: xml}\n",
			[]string{`log.format: "xml": must be one of text, json`}},
		{"log unknown key", "log: {levle: debug}\n",
			[]string{"log.levle: unknown key"}},

		// top level and sections
		{"unknown top-level key", "timeoutz: {udp: 1s}\n",
			[]string{"timeoutz: unknown key"}},
		{"odd unknown keys are quoted", "\"a\\nb\": 1\n\"x y\": 2\n",
			[]string{`"a\nb": unknown key`, `"x y": unknown key`}},
		{"sections not a mapping", "vrrp: [1]\nnotify: yes\n",
			[]string{"vrrp: must be a mapping, not a list", "notify: must be a mapping, not a string"}},
		{"notify keys checked", "notify: {enabled: false, to: x, anything: [goes]}\n",
			[]string{"notify.anything: unknown key", "notify.to: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), nil, tc.want) })
	}
}

// TestRequired covers documents missing listen or backends, which
// withDefaults would complete.
func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"empty document", "", []string{"listen: required", "backends: required"}},
		{"comments only", "# nothing\n", []string{"listen: required", "backends: required"}},
		{"listen absent", "backends: [{name: a, address: '10.0.0.1:53'}]\n", []string{"listen: required"}},
		{"backends absent", "listen: ['127.0.0.1:53']\n", []string{"backends: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			_, err := Parse("test.yaml", []byte(tc.yaml))
			if got := problemLines(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAccepted checks values that look odd but are valid.
func TestAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(*Config) bool
	}{
		{"IPv6 listen and backend", "listen: ['[::1]:53', '[2001:db8::1]:53']\nbackends: [{name: a, address: '[2001:db8::53]:53'}]\n",
			func(c *Config) bool {
				return c.Listen[0].String() == "[::1]:53" && c.Listen[1].String() == "[2001:db8::1]:53" &&
					c.Backends[0].Address.String() == "[2001:db8::53]:53"
			}},
		{"IPv6 zone", "backends: [{name: a, address: '[fe80::1%eth0]:53'}]\n",
			func(c *Config) bool { return c.Backends[0].Address.Addr().Zone() == "eth0" }},
		{"IPv4-mapped unmapped", "backends: [{name: a, address: '[::ffff:10.0.0.1]:53'}]\n",
			func(c *Config) bool { return c.Backends[0].Address.String() == "10.0.0.1:53" }},
		{"listen as one string", "listen: '127.0.0.1:53, [::1]:53'\n",
			func(c *Config) bool { return len(c.Listen) == 2 && c.Listen[1].String() == "[::1]:53" }},
		{"whole float weight", "backends: [{name: a, address: '10.0.0.1:53', weight: 2.0}]\n",
			func(c *Config) bool { return c.Backends[0].Weight == 2 }},
		{"quoted integer", "limits: {tcp_connections: '500'}\n",
			func(c *Config) bool { return c.Limits.TCPConnections == 500 }},
		{"state any case", "backends: [{name: a, address: '10.0.0.1:53', state: Drain}]\n",
			func(c *Config) bool { return c.Backends[0].State == StateDrain }},
		{"upper-case keys", "Backends: [{Name: a, Address: '10.0.0.1:53', Weight: 3}]\nLOG: {Level: DEBUG}\n",
			func(c *Config) bool { return c.Backends[0].Weight == 3 && c.Log.Level.String() == "DEBUG" }},
		{"admin disabled", "admin: {listen: ''}\n",
			func(c *Config) bool { return c.Admin.Listen == "" }},
		{"admin null keeps default", "admin: {listen: null}\n",
			func(c *Config) bool { return c.Admin.Listen == "127.0.0.1:9053" }},
		{"limits at the maximum", "limits: {tcp_connections: 1000000, tcp_connections_per_client: 1000000}\n",
			func(c *Config) bool { return c.Limits.TCPConnectionsPerClient == 1000000 }},
		{"timeouts at the maximum", "timeouts: {udp: 30s, tcp_idle: 1h}\n",
			func(c *Config) bool { return c.Timeouts.UDP.Seconds() == 30 && c.Timeouts.TCPIdle.Hours() == 1 }},
		{"name of 63 characters", "backends: [{name: " + strings.Repeat("n", 63) + ", address: '10.0.0.1:53'}]\n",
			func(c *Config) bool { return len(c.Backends[0].Name) == 63 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, withDefaults(tc.yaml), nil, func(c *Config) *Config { return c }, tc.check)
		})
	}
}
