package config

import (
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden files")

// isolateEnv unsets every DNSLB_ variable for the duration of the test, so
// the developer's environment cannot change results.
func isolateEnv(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, envPrefix+"_") {
			t.Setenv(k, "") // restores the old value on cleanup
			os.Unsetenv(k)
		}
	}
}

// minimal is the smallest valid configuration.
const minimal = "listen: ['127.0.0.1:53']\nbackends: [{name: a, address: '10.0.0.1:53'}]\n"

// mustParse parses data and fails the test on error.
func mustParse(t *testing.T, data string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return cfg
}

// problemLines returns err's problems as "path: msg" lines; it fails the
// test if err is not an *Error.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return lines
}

func TestDefaults(t *testing.T) {
	isolateEnv(t)
	got := mustParse(t, minimal)
	want := &Config{
		Listen:      []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")},
		Backends:    []Backend{{Name: "a", Address: netip.MustParseAddrPort("10.0.0.1:53"), Weight: 1, State: StateActive, ClientAddress: "none", HealthCheck: defaultHC()}},
		Timeouts:    Timeouts{UDP: time.Second, TCPIdle: 10 * time.Second, TCPRead: 2 * time.Second, TCPWrite: 5 * time.Second, UDPRetry: true},
		Limits:      Limits{TCPConnections: 10000, TCPConnectionsPerClient: 100, OverLimit: "drop"},
		Admin:       Admin{Listen: "127.0.0.1:9053"},
		Log:         Log{Level: slog.LevelInfo, Format: "text"},
		Tuning:      Tuning{UpstreamSockets: 4, BatchSize: 32, SocketBuffer: 4 << 20},
		HealthCheck: defaultHC(),
		VRRP:        defaultVRRP(),
		Notify:      defaultNotify(),
		ECS:         ECS{IPv4PrefixLength: 24, IPv6PrefixLength: 56},
		RRL: RRL{ResponsesPerSecond: 200, NXDomainsPerSecond: 200, ErrorsPerSecond: 200, Slip: 2, Window: 15 * time.Second,
			IPv4PrefixLength: 24, IPv6PrefixLength: 56, TableSize: 65536},
		BGP: defaultBGP(),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadValid(t *testing.T) {
	isolateEnv(t)
	got, err := Load(filepath.Join("testdata", "valid.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	global := HealthCheck{
		Enabled:   true,
		Query:     HealthQuery{Name: "example.org.", Type: dns.TypeSOA, Class: dns.ClassINET},
		Expect:    HealthExpect{Rcodes: []int{dns.RcodeSuccess, dns.RcodeNameError}, Authoritative: true},
		Transport: "udp",
		ProxyV2:   "self",
		Interval:  2 * time.Second,
		Timeout:   time.Second,
		Rise:      2,
		Fall:      3,
		AllDown:   "refuse",
		Passive:   HealthPassive{MaxConsecutiveTimeouts: 10, MaxDownPercent: 50},
	}
	ns2 := global.clone()
	ns2.Query.Type = dns.TypeA
	ns2.Expect.AnswerContains = "192.0.2.1"
	ns2.Transport = "tcp"
	ns2.Interval = 5 * time.Second
	ns2.Timeout = 3 * time.Second
	ns2.ProxyV2 = "none"
	ns3 := global.clone()
	ns3.Enabled = false
	want := &Config{
		Listen: []netip.AddrPort{
			netip.MustParseAddrPort("192.0.2.10:53"),
			netip.MustParseAddrPort("[2001:db8::10]:53"),
		},
		Backends: []Backend{
			{Name: "ns1", Address: netip.MustParseAddrPort("10.0.0.1:53"), Weight: 10, State: StateActive, ClientAddress: "proxy_v2", HealthCheck: global},
			{Name: "ns2.dc-b", Address: netip.MustParseAddrPort("[2001:db8::53]:5353"), Weight: 1, State: StateDrain, ClientAddress: "ecs", HealthCheck: ns2},
			{Name: "ns_3", Address: netip.MustParseAddrPort("10.0.0.3:53"), Weight: 1000, State: StateDisabled, ClientAddress: "none", HealthCheck: ns3},
		},
		Timeouts:    Timeouts{UDP: 1500 * time.Millisecond, TCPIdle: time.Minute, TCPRead: 2 * time.Second, TCPWrite: 5 * time.Second, UDPRetry: false},
		ConfigWatch: true,
		Limits:      Limits{TCPConnections: 2000, TCPConnectionsPerClient: 20, QPSPerClient: 500, OverLimit: "refuse"},
		ACL: ACL{
			Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
			Deny:  []netip.Prefix{netip.MustParsePrefix("192.0.2.66/32")},
		},
		Admin:       Admin{Listen: "[::1]:9153", PProf: true},
		Log:         Log{Level: slog.LevelWarn, Format: "json", QuerySample: 0.01},
		Tuning:      Tuning{UDPWorkers: 4, UpstreamSockets: 8, BatchSize: 64, SocketBuffer: 8 << 20},
		HealthCheck: global,
		VRRP: VRRP{
			Enabled:        true,
			Interface:      "eth0",
			VRID:           53,
			Priority:       150,
			AdvertInterval: 500 * time.Millisecond,
			Preempt:        true,
			PreemptDelay:   30 * time.Second,
			Version:        3,
			VIPs:           []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("192.0.2.11/32")},
			Peers:          []netip.Addr{netip.MustParseAddr("192.0.2.2")},
			ChecksumMode:   "rfc9568",
			GARPRepeat:     3,
			GARPDelay:      0,
			GARPRefresh:    time.Minute,
			Sync:           true,
			Track:          VRRPTrack{MinHealthyBackends: 2, Weight: 60},
			Notify:         "/etc/dnslb/notify.sh",
		},
		Notify: Notify{
			Enabled:      true,
			Interface:    "eth0",
			Primaries:    prefixes("192.0.2.1/32", "198.51.100.0/24", "2001:db8::1/128", "2001:db8:1::/48"),
			MaxPerSecond: 200,
			DedupWindow:  30 * time.Second,
			Retries:      0,
			TrackQPS:     500,
			CopyQPS:      200,
			MaxTracked:   200000,
			TSIGKeys: []TSIGKey{
				{Name: "notify-key.", Algorithm: dns.HmacSHA256, Secret: "MDEyMzQ1Njc4OWFiY2RlZg=="},
				{Name: "transfer.example.", Algorithm: dns.HmacSHA512, Secret: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
			},
		},
		ECS: ECS{IPv4PrefixLength: 22, IPv6PrefixLength: 48, Override: true},
		RRL: RRL{Enabled: true, ResponsesPerSecond: 10, NXDomainsPerSecond: 5, ErrorsPerSecond: 4, AllPerSecond: 50, Slip: 3,
			Window: 5 * time.Second, IPv4PrefixLength: 23, IPv6PrefixLength: 64,
			Exempt: prefixes("192.0.2.0/24", "2001:db8::/32"), LogOnly: true, TableSize: 4096},
		BGP: defaultBGP(),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("valid.yaml:\n got %+v\nwant %+v", got, want)
	}
}

// TestLoadInvalid checks that every problem of testdata/invalid.yaml is
// reported, in order, against testdata/invalid.golden (go test -update
// rewrites it).
func TestLoadInvalid(t *testing.T) {
	isolateEnv(t)
	path := filepath.Join("testdata", "invalid.yaml")
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load: no error")
	}
	problemLines(t, err) // must be a *Error
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "invalid.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("errors differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	isolateEnv(t)
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || strings.Contains(msg, "\n") || strings.Count(msg, path) != 1 {
		t.Errorf("error %q: want one line naming %s once", msg, path)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("missing file reported as *Error, want the os error")
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{Name: "dnslb.yaml", Problems: []Problem{
		{Path: "listen", Msg: "required"},
		{Path: "backends[1].address", Msg: "missing port"},
		{Msg: "yaml: line 3: did not find expected key"},
	}}
	want := "dnslb.yaml: listen: required\n" +
		"dnslb.yaml: backends[1].address: missing port\n" +
		"dnslb.yaml: yaml: line 3: did not find expected key"
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	var target *Error
	if !errors.As(error(e), &target) || target != e {
		t.Error("errors.As does not find *Error")
	}
}

func TestParseName(t *testing.T) {
	isolateEnv(t)
	for _, tc := range []struct{ name, prefix string }{
		{"etc/dnslb.yaml", "etc/dnslb.yaml: "},
		{"", "config: "},
	} {
		_, err := Parse(tc.name, []byte("listen: ['127.0.0.1:53']\n"))
		if err == nil || !strings.HasPrefix(err.Error(), tc.prefix+"backends: required") {
			t.Errorf("Parse(%q): error %v, want prefix %q", tc.name, err, tc.prefix)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	isolateEnv(t)
	for _, tc := range []struct {
		name, yaml string
		want       string // one line, after the file name
	}{
		{"unclosed flow", "listen: [\nfoo", `yaml: line 2: did not find expected ',' or ']'`},
		{"bad indent", "listen: x\n  bad: indent\n", "yaml: line 2: mapping values are not allowed in this context"},
		{"tab", "listen:\n\t- 127.0.0.1:53\n", "yaml: line 2: found character that cannot start any token"},
		{"duplicate key", "listen: a\nlisten: b\n", `yaml: line 2: mapping key "listen" already defined at line 1`},
		{"document is a list", "- a\n- b\n", "yaml: line 1: the document must be a mapping of keys, not a list"},
		{"document is a string", "hello\n", "yaml: line 1: the document must be a mapping of keys, not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if got := problemLines(t, err); len(got) != 1 || got[0] != tc.want {
				t.Errorf("problems %q, want [%q]", got, tc.want)
			}
			if got, want := err.Error(), "bad.yaml: "+tc.want; got != want {
				t.Errorf("Error() = %q, want %q", got, want)
			}
		})
	}
}

// TestExampleConfig loads the repository's example configuration, which
// must always be valid.
func TestExampleConfig(t *testing.T) {
	isolateEnv(t)
	path := filepath.Join("..", "config.yaml")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		t.Skip("config.yaml not written yet")
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("example config does not load:\n%v", err)
	}
}
