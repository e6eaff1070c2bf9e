package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// Config is the validated, immutable configuration returned by [Load] and
// [Parse]. Treat it as read-only: it may be shared between goroutines, and a
// new configuration is obtained by loading again, never by editing one.
type Config struct {
	// Listen holds the addresses dnslb answers on (key listen). At least one;
	// wildcard addresses are rejected because answers must come from the
	// address the client queried.
	Listen []netip.AddrPort
	// Backends holds the DNS servers queries are forwarded to (key
	// backends), in file order. At least one.
	Backends []Backend
	// ConfigWatch reloads the file when it changes (key config_watch),
	// through the same validate-then-apply path as SIGHUP; default false.
	// Changing it needs a restart.
	ConfigWatch bool
	// Timeouts holds the key timeouts.
	Timeouts Timeouts
	// Limits holds the key limits.
	Limits Limits
	// Admin holds the key admin.
	Admin Admin
	// Log holds the key log.
	Log Log
	// Tuning holds the key tuning: data path performance settings.
	Tuning Tuning
	// ACL holds the key acl: which clients are served.
	ACL ACL

	// HealthCheck holds the key health_check: the global health check
	// settings and the defaults of every backend's check. When the section
	// is absent Enabled is false and the other fields hold their defaults.
	// Each backend's effective check is in [Backend].HealthCheck.
	HealthCheck HealthCheck

	// VRRP holds the key vrrp: VIP failover between dnslb nodes. When
	// the section is absent Enabled is false and the other fields hold
	// their defaults.
	VRRP VRRP

	// Notify holds the key notify: answering the primaries' DNS NOTIFYs
	// to the VIP and copying them to every backend. When the section is
	// absent Enabled is false and the other fields hold their defaults.
	Notify Notify
}

// Backend is one upstream DNS server.
type Backend struct {
	// Name identifies the backend in logs, metrics and reload diffs: 1-63
	// characters of A-Z a-z 0-9 _ . -, unique among backends.
	Name string
	// Address is the backend's IP and port, unique among backends; never
	// the unspecified address. IPv4-mapped IPv6 addresses are unmapped.
	Address netip.AddrPort
	// Weight is the relative share of queries, 1-1000; default 1.
	Weight int
	// State is the administrative state; default [StateActive].
	State BackendState
	// HealthCheck is the effective health check of this backend: the global
	// section (Config.HealthCheck) merged with backends[i].health_check, the
	// backend's keys winning key by key (within query and expect too).
	// AllDown and Passive are always the global values. Enabled is false
	// when the global section is disabled or the backend sets enabled:
	// false. Drained and disabled backends keep their check settings; it is
	// up to the caller to probe them.
	HealthCheck HealthCheck
}

// BackendState is the administrative state of a backend.
type BackendState string

// Backend states accepted in backends[].state.
const (
	// StateActive backends receive new queries and connections.
	StateActive BackendState = "active"
	// StateDrain backends receive no new work but finish what they have.
	StateDrain BackendState = "drain"
	// StateDisabled backends receive nothing.
	StateDisabled BackendState = "disabled"
)

// Timeouts holds the per-protocol timeouts.
type Timeouts struct {
	// UDP is how long to wait for a backend's UDP answer (timeouts.udp),
	// in (0s, 30s]; default 1s.
	UDP time.Duration
	// TCPIdle is how long an idle client TCP connection is kept
	// (timeouts.tcp_idle), in (0s, 1h]; default 10s.
	TCPIdle time.Duration
	// TCPRead is how long a client has to send a whole TCP message once its
	// first byte arrived (timeouts.tcp_read), in (0s, 1m]; default 2s.
	// Slower clients (slowloris) are closed.
	TCPRead time.Duration
	// TCPWrite is how long a write of an answer to a TCP client may take
	// (timeouts.tcp_write), in (0s, 1m]; default 5s. A client that sends
	// but does not read is closed.
	TCPWrite time.Duration
	// UDPRetry is timeouts.udp_retry, default true: a UDP query that timed
	// out is retried once on another backend, so a client may wait up to
	// twice UDP.
	UDPRetry bool
}

// Limits holds the resource limits.
type Limits struct {
	// TCPConnections is the maximum number of concurrent client TCP
	// connections (limits.tcp_connections), 1-1000000; default 10000.
	TCPConnections int
	// TCPConnectionsPerClient is the maximum number of concurrent TCP
	// connections from one client address
	// (limits.tcp_connections_per_client), 1-1000000 and at most
	// TCPConnections; default 100.
	TCPConnectionsPerClient int
	// QPSPerClient is the most UDP queries per second served to one client
	// address (limits.qps_per_client), 0-1000000; 0, the default, means no
	// limit. A client may burst up to one second's worth.
	QPSPerClient int
	// OverLimit is what happens to a UDP query over QPSPerClient
	// (limits.over_limit): "drop" (default: no answer, so the limit cannot
	// be used to reflect traffic at a spoofed source) or "refuse" (answer
	// REFUSED, no larger than the query).
	OverLimit string
}

// Admin holds the admin (metrics and health) listener settings.
type Admin struct {
	// Listen is the ip:port of the admin HTTP listener (admin.listen);
	// default "127.0.0.1:9053", "" disables it. When not empty it parses
	// with [netip.ParseAddrPort].
	Listen string
	// PProf serves Go's profiler under /debug/pprof/ on the admin listener
	// (admin.pprof); default false. Keep the listener on loopback.
	PProf bool
	// Token, when not empty, is required as a bearer token on every admin
	// endpoint but /healthz (admin.token): at least 16 characters. Set it
	// when admin.listen is not on loopback (DNSLB_ADMIN_TOKEN keeps it out
	// of the file).
	Token string
}

// Log holds the logging settings.
type Log struct {
	// Level is the minimum level logged (log.level: debug, info, warn or
	// error); default info.
	Level slog.Level
	// Format is the log line format (log.format): "text" or "json";
	// default "text".
	Format string
	// QuerySample is the fraction of answered UDP queries logged, one
	// line each (log.query_sample), 0-1; 0, the default, logs none. 0.001
	// logs every thousandth. A reload applies a new value.
	QuerySample float64
}

// Defaults, as written in a file. They are registered with viper so that
// environment variables reach the keys even when the file omits them.
const (
	defaultUDPTimeout        = "1s"
	defaultTCPIdleTimeout    = "10s"
	defaultTCPConnections    = 10000
	defaultTCPConnsPerClient = 100
	defaultAdminListen       = "127.0.0.1:9053"
	defaultLogLevel          = "info"
	defaultLogFormat         = "text"
	defaultWeight            = 1
	defaultUDPRetry          = true

	defaultHealthType      = "SOA"
	defaultHealthClass     = "IN"
	defaultHealthRcodes    = "NOERROR"
	defaultHealthTransport = "udp"
	defaultHealthInterval  = "1s"
	defaultHealthTimeout   = "500ms"
	defaultHealthRise      = 2
	defaultHealthFall      = 3
	defaultHealthAllDown   = "fail_open"
	defaultHealthMaxTmo    = 5
)

// envPrefix is the prefix of the environment variables that override keys.
const envPrefix = "DNSLB"

// scalarDefaults returns the keys that take a default and an environment
// override, with their defaults. listen and some vrrp and notify keys have
// no default (nil) but are listed so the environment can provide them.
func scalarDefaults() []struct {
	key   string
	value any
} {
	return []struct {
		key   string
		value any
	}{
		{"listen", nil},
		{"config_watch", false},
		{"timeouts.udp", defaultUDPTimeout},
		{"timeouts.tcp_idle", defaultTCPIdleTimeout},
		{"timeouts.tcp_read", "2s"},
		{"timeouts.tcp_write", "5s"},
		{"timeouts.udp_retry", defaultUDPRetry},
		{"limits.tcp_connections", defaultTCPConnections},
		{"limits.tcp_connections_per_client", defaultTCPConnsPerClient},
		{"limits.qps_per_client", 0},
		{"limits.over_limit", "drop"},
		{"acl.allow", nil},
		{"acl.deny", nil},
		{"admin.listen", defaultAdminListen},
		{"admin.pprof", false},
		{"admin.token", ""},
		{"log.level", defaultLogLevel},
		{"log.format", defaultLogFormat},
		{"log.query_sample", 0},
		{"tuning.udp_workers", defaultUDPWorkers},
		{"tuning.upstream_sockets", defaultUpstreamSockets},
		{"tuning.batch_size", defaultBatchSize},
		{"tuning.socket_buffer", defaultSocketBuffer},
		// health_check.enabled is not listed: its default depends on the
		// file (see Parse).
		{"health_check.query.name", ""},
		{"health_check.query.type", defaultHealthType},
		{"health_check.query.class", defaultHealthClass},
		{"health_check.query.rd", false},
		{"health_check.expect.rcodes", defaultHealthRcodes},
		{"health_check.expect.authoritative", false},
		{"health_check.expect.answer_contains", ""},
		{"health_check.transport", defaultHealthTransport},
		{"health_check.interval", defaultHealthInterval},
		{"health_check.timeout", defaultHealthTimeout},
		{"health_check.rise", defaultHealthRise},
		{"health_check.fall", defaultHealthFall},
		{"health_check.all_down", defaultHealthAllDown},
		{"health_check.passive.max_consecutive_timeouts", defaultHealthMaxTmo},
		// vrrp.enabled is not listed either; the keys required when
		// enabled, and the optional ones, have no default.
		{"vrrp.interface", nil},
		{"vrrp.vrid", nil},
		{"vrrp.priority", defaultVRRPPriority},
		{"vrrp.advert_interval", defaultVRRPAdvertInterval},
		{"vrrp.preempt", defaultVRRPPreempt},
		{"vrrp.preempt_delay", defaultVRRPPreemptDelay},
		{"vrrp.version", defaultVRRPVersion},
		{"vrrp.vips", nil},
		{"vrrp.peers", nil},
		{"vrrp.checksum_mode", defaultVRRPChecksumMode},
		{"vrrp.auth_pass", nil},
		{"vrrp.garp_repeat", defaultVRRPGARPRepeat},
		{"vrrp.garp_delay", defaultVRRPGARPDelay},
		{"vrrp.garp_refresh", defaultVRRPGARPRefresh},
		{"vrrp.track.min_healthy_backends", defaultVRRPMinHealthy},
		{"vrrp.track.weight", defaultVRRPTrackWeight},
		{"vrrp.notify", nil},
		// notify.enabled is not listed either.
		{"notify.interface", nil},
		{"notify.primaries", nil},
		{"notify.max_per_second", defaultNotifyMaxPerSecond},
		{"notify.dedup_window", defaultNotifyDedupWindow},
		{"notify.retries", defaultNotifyRetries},
	}
}

// Load reads and validates the YAML file at path, applying defaults and
// DNSLB_ environment overrides. A file that cannot be read is reported as the
// wrapped os error (errors.Is(err, fs.ErrNotExist) works); invalid content is
// reported as an [*Error] listing every problem, with path as its Name.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// *fs.PathError already names the file: "open x.yaml: no such file or directory".
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads and validates YAML from data, applying defaults and DNSLB_
// environment overrides like [Load]. name is used in error messages, usually
// the file name; "config" is used when it is empty. Invalid content is
// reported as an [*Error] listing every problem.
func Parse(name string, data []byte) (*Config, error) {
	if name == "" {
		name = "config"
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, &Error{Name: name, Problems: yamlProblems(err)}
	}
	// The file alone, before defaults and the environment are layered on:
	// its shape decides which keys exist and which are unknown, and the
	// backends come only from it.
	file := v.AllSettings()

	for _, d := range scalarDefaults() {
		v.SetDefault(d.key, d.value)
	}
	// A health_check mapping in the file turns checks on unless it says
	// enabled: false; DNSLB_HEALTH_CHECK_ENABLED overrides either way.
	_, hcPresent := file["health_check"].(map[string]any)
	v.SetDefault("health_check.enabled", hcPresent)
	// Likewise a vrrp mapping turns VRRP on unless it says enabled: false.
	_, vrrpPresent := file["vrrp"].(map[string]any)
	v.SetDefault("vrrp.enabled", vrrpPresent)
	// And a notify mapping turns NOTIFY forwarding on.
	_, notifyPresent := file["notify"].(map[string]any)
	v.SetDefault("notify.enabled", notifyPresent)
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AllowEmptyEnv(true)
	v.AutomaticEnv()

	d := decoder{file: file, get: v.Get}
	cfg := d.decode()
	if len(d.problems) > 0 {
		return nil, &Error{Name: name, Problems: d.problems}
	}
	return cfg, nil
}

// envName returns the environment variable that overrides key.
func envName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}
