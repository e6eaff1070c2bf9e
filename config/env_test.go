package config

import (
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	const file = "listen: ['127.0.0.1:53']\n" +
		"backends: [{name: a, address: '10.0.0.1:53'}]\n" +
		"timeouts: {udp: 3s}\n" +
		"log: {level: warn}\n"
	for _, tc := range []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(*Config) bool
	}{
		{"file beats default", file, nil,
			func(c *Config) bool { return c.Timeouts.UDP == 3*time.Second && c.Log.Level == slog.LevelWarn }},
		{"env beats file", file, map[string]string{"DNSLB_TIMEOUTS_UDP": "2s", "DNSLB_LOG_LEVEL": "debug"},
			func(c *Config) bool { return c.Timeouts.UDP == 2*time.Second && c.Log.Level == slog.LevelDebug }},
		{"env beats default", file, map[string]string{"DNSLB_TIMEOUTS_TCP_IDLE": "45s", "DNSLB_LOG_FORMAT": "JSON"},
			func(c *Config) bool { return c.Timeouts.TCPIdle == 45*time.Second && c.Log.Format == "json" }},
		{"env beats file in absent section", minimal, map[string]string{"DNSLB_LIMITS_TCP_CONNECTIONS": "500", "DNSLB_LIMITS_TCP_CONNECTIONS_PER_CLIENT": " 5 "},
			func(c *Config) bool {
				return c.Limits == Limits{TCPConnections: 500, TCPConnectionsPerClient: 5, OverLimit: "drop"}
			}},
		{"listen with comma", file, map[string]string{"DNSLB_LISTEN": "127.0.0.1:5300,[::1]:5300"},
			func(c *Config) bool {
				return slices.Equal(c.Listen, []netip.AddrPort{
					netip.MustParseAddrPort("127.0.0.1:5300"), netip.MustParseAddrPort("[::1]:5300")})
			}},
		{"listen with spaces and commas", file, map[string]string{"DNSLB_LISTEN": " 127.0.0.1:5300 , 127.0.0.2:5300  [::1]:5300"},
			func(c *Config) bool { return len(c.Listen) == 3 && c.Listen[2].String() == "[::1]:5300" }},
		{"listen only from env", "backends: [{name: a, address: '10.0.0.1:53'}]\n", map[string]string{"DNSLB_LISTEN": "[2001:db8::1]:53"},
			func(c *Config) bool { return len(c.Listen) == 1 && c.Listen[0].Addr().Is6() }},
		{"empty variable disables admin", file, map[string]string{"DNSLB_ADMIN_LISTEN": ""},
			func(c *Config) bool { return c.Admin.Listen == "" }},
		{"admin listen", file, map[string]string{"DNSLB_ADMIN_LISTEN": "[::1]:9999"},
			func(c *Config) bool { return c.Admin.Listen == "[::1]:9999" }},
	} {
		t.Run(tc.name, func(t *testing.T) { checkResult(t, tc.yaml, tc.env, func(c *Config) *Config { return c }, tc.check) })
	}
}

func TestEnvProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{"bad duration", minimal, map[string]string{"DNSLB_TIMEOUTS_UDP": "abc"},
			[]string{`timeouts.udp: "abc": not a duration`}},
		{"duration without unit", minimal, map[string]string{"DNSLB_TIMEOUTS_UDP": "5"},
			[]string{`timeouts.udp: "5": not a duration (use units, e.g. 500ms)`}},
		{"bad integer", minimal, map[string]string{"DNSLB_LIMITS_TCP_CONNECTIONS": "lots"},
			[]string{`limits.tcp_connections: "lots": not an integer`}},
		{"env limit below default per client", minimal, map[string]string{"DNSLB_LIMITS_TCP_CONNECTIONS": "50"},
			[]string{"limits.tcp_connections_per_client: 100 exceeds limits.tcp_connections (50)"}},
		{"bad level", minimal, map[string]string{"DNSLB_LOG_LEVEL": "loud"},
			[]string{`log.level: "loud": must be one of debug, info, warn, error`}},
		{"empty level", minimal, map[string]string{"DNSLB_LOG_LEVEL": ""},
			[]string{`log.level: "": must be one of debug, info, warn, error`}},
		{"empty listen", minimal, map[string]string{"DNSLB_LISTEN": " , "},
			[]string{"listen: required"}},
		{"wildcard listen", minimal, map[string]string{"DNSLB_LISTEN": "127.0.0.1:53,0.0.0.0:53"},
			[]string{`listen[1]: "0.0.0.0:53": wildcard address not allowed, list each address clients query (answers must come from it)`}},
		{"duplicate listen", minimal, map[string]string{"DNSLB_LISTEN": "[::1]:53 [0:0::1]:53"},
			[]string{"listen[1]: duplicate of listen[0]"}},
		{"backends from env", minimal, map[string]string{"DNSLB_BACKENDS": "10.0.0.1:53"},
			[]string{"backends: cannot be set from the environment (unset DNSLB_BACKENDS; list backends in the file)"}},
		{"section variable hides keys", minimal, map[string]string{"DNSLB_TIMEOUTS": "1s"},
			[]string{
				"timeouts.udp: hidden by the environment variable DNSLB_TIMEOUTS (unset it)",
				"timeouts.tcp_idle: hidden by the environment variable DNSLB_TIMEOUTS (unset it)",
				"timeouts.tcp_read: hidden by the environment variable DNSLB_TIMEOUTS (unset it)",
				"timeouts.tcp_write: hidden by the environment variable DNSLB_TIMEOUTS (unset it)",
				"timeouts.udp_retry: hidden by the environment variable DNSLB_TIMEOUTS (unset it)",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, tc.yaml, tc.env, tc.want) })
	}
}

// TestEnvReachesEveryKey checks that the variable of every key that can
// come from the environment reaches it: set to a value most keys reject,
// it is either reported at the key or read into it.
func TestEnvReachesEveryKey(t *testing.T) {
	doc := withDefaults(hcSection + vrrpSection + notifySection + "rrl: {slip: 2}\n" + "bgp: {enabled: false}\n")
	isolateEnv(t)
	base := mustParse(t, doc)
	for _, k := range envKeys("") {
		t.Run(k.path, func(t *testing.T) {
			isolateEnv(t)
			t.Setenv(envName(k.path), "[not valid]")
			cfg, err := Parse("test.yaml", []byte(doc))
			if err != nil {
				for _, line := range problemLines(t, err) {
					if !strings.HasPrefix(line, k.path) {
						t.Errorf("unexpected problem %q", line)
					}
				}
				return
			}
			if reflect.DeepEqual(fieldAt(cfg, k.path), fieldAt(base, k.path)) {
				t.Errorf("%s does not reach %s", envName(k.path), k.path)
			}
		})
	}
}

// fieldAt returns the value of the key at path p of cfg.
func fieldAt(cfg *Config, p string) any {
	v := reflect.ValueOf(cfg).Elem()
	for part := range strings.SplitSeq(p, ".") {
		f, _ := fieldByKey(v.Type(), part)
		v = v.FieldByIndex(f.Index)
	}
	return v.Interface()
}
