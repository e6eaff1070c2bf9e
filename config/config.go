package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"
)

//go:generate go test -run TestGenerated -gen

// Config is the validated, immutable configuration returned by [Load] and
// [Parse]. Treat it as read-only: it may be shared between goroutines, and a
// new configuration is obtained by loading again, never by editing one.
//
// Its types are also the schema of the file (see schema.go): the field
// order is the order of keys in problems and docs.
type Config struct {
	// Listen holds the addresses dnslb answers on (key listen), "ip:port"
	// each, IPv6 as "[addr]:port". At least one; wildcard addresses are
	// rejected because answers must come from the address the client
	// queried.
	Listen []netip.AddrPort `mapstructure:"listen" required:"true"`
	// Backends holds the DNS servers queries are forwarded to (key
	// backends), in file order. At least one.
	Backends []Backend `mapstructure:"backends" required:"true" fileonly:"list backends in the file"`
	// ConfigWatch reloads the file when it changes (key config_watch),
	// through the same validate-then-apply path as SIGHUP; default false.
	// Changing it needs a restart.
	ConfigWatch bool `mapstructure:"config_watch" note:"reload when the file changes (debounced 500ms)"`
	// Timeouts holds the key timeouts.
	Timeouts Timeouts `mapstructure:"timeouts"`
	// Limits holds the key limits.
	Limits Limits `mapstructure:"limits"`
	// ACL holds the key acl: which clients are served.
	ACL ACL `mapstructure:"acl"`
	// Admin holds the key admin.
	Admin Admin `mapstructure:"admin"`
	// Log holds the key log.
	Log Log `mapstructure:"log"`
	// Tuning holds the key tuning: data path performance settings.
	Tuning Tuning `mapstructure:"tuning"`

	// HealthCheck holds the key health_check: the global health check
	// settings and the defaults of every backend's check. When the section
	// is absent Enabled is false and the other fields hold their defaults.
	// Each backend's effective check is in [Backend].HealthCheck.
	HealthCheck HealthCheck `mapstructure:"health_check" optional:"true"`

	// VRRP holds the key vrrp: VIP failover between dnslb nodes. When
	// the section is absent Enabled is false and the other fields hold
	// their defaults.
	VRRP VRRP `mapstructure:"vrrp" optional:"true"`

	// Notify holds the key notify: answering the primaries' DNS NOTIFYs
	// to the VIP and copying them to every backend. When the section is
	// absent Enabled is false and the other fields hold their defaults.
	Notify Notify `mapstructure:"notify" optional:"true"`

	// ECS holds the key ecs: the client subnet sent to backends with
	// client_address: ecs.
	ECS ECS `mapstructure:"ecs"`

	// RRL holds the key rrl: response rate limiting at dnslb. When the
	// section is absent Enabled is false and the other fields hold their
	// defaults.
	RRL RRL `mapstructure:"rrl" optional:"true"`

	// BGP holds the key bgp: announcing the VIPs to routers while this
	// node is fit to serve. When the section is absent Enabled is false
	// and the other fields hold their defaults.
	BGP BGP `mapstructure:"bgp" optional:"true"`
}

// Backend is one upstream DNS server.
type Backend struct {
	// Name identifies the backend in logs, metrics and reload diffs: 1-63
	// characters of A-Z a-z 0-9 _ . -, unique among backends.
	Name string `mapstructure:"name" kind:"quoted" required:"true" note:"1-63 of A-Z a-z 0-9 _ . -, unique"`
	// Address is the backend's IP and port, unique among backends; never
	// the unspecified address. IPv4-mapped IPv6 addresses are unmapped.
	Address netip.AddrPort `mapstructure:"address" required:"true" note:"unique"`
	// Weight is the relative share of queries, 1-1000; default 1.
	Weight int `mapstructure:"weight" range:"1-1000"`
	// State is the administrative state; default [StateActive].
	State BackendState `mapstructure:"state" enum:"active|drain|disabled"`
	// ClientAddress is how the backend learns the client's address
	// (backends[].client_address): "none" (default), "proxy_v2" (a PROXY
	// protocol v2 header in front of every UDP query and at the start of
	// every TCP connection), "proxy_v2_udp" (the header on UDP only, for
	// servers such as Knot 3.2 that take it over UDP only) or "ecs" (an
	// EDNS Client Subnet option, see [ECS]).
	ClientAddress string `mapstructure:"client_address" enum:"none|proxy_v2|proxy_v2_udp|ecs"`
	// HealthCheck is the effective health check of this backend: the global
	// section (Config.HealthCheck) merged with backends[i].health_check, the
	// backend's keys winning key by key (within query and expect too).
	// AllDown and Passive are always the global values. Enabled is false
	// when the global section is disabled or the backend sets enabled:
	// false. Drained and disabled backends keep their check settings; it is
	// up to the caller to probe them.
	HealthCheck HealthCheck `mapstructure:"health_check" note:"overrides health_check key by key"`
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
	UDP time.Duration `mapstructure:"udp" range:"(0s, 30s]"`
	// TCPIdle is how long an idle client TCP connection is kept
	// (timeouts.tcp_idle), in (0s, 1h]; default 10s.
	TCPIdle time.Duration `mapstructure:"tcp_idle" range:"(0s, 1h]"`
	// TCPRead is how long a client has to send a whole TCP message once its
	// first byte arrived (timeouts.tcp_read), in (0s, 1m]; default 2s.
	// Slower clients (slowloris) are closed.
	TCPRead time.Duration `mapstructure:"tcp_read" range:"(0s, 1m]" note:"for a whole client message from its first byte"`
	// TCPWrite is how long a write of an answer to a TCP client may take
	// (timeouts.tcp_write), in (0s, 1m]; default 5s. A client that sends
	// but does not read is closed.
	TCPWrite time.Duration `mapstructure:"tcp_write" range:"(0s, 1m]" note:"for an answer to be taken by a TCP client"`
	// UDPRetry is timeouts.udp_retry, default true: a UDP query that timed
	// out is retried once (balancer.Settings.UDPRetry), so a client may wait
	// up to twice UDP.
	UDPRetry bool `mapstructure:"udp_retry" note:"retry a timed-out UDP query once, on a backend that is answering"`
}

// Limits holds the resource limits.
type Limits struct {
	// TCPConnections is the maximum number of concurrent client TCP
	// connections (limits.tcp_connections), 1-1000000; default 10000.
	TCPConnections int `mapstructure:"tcp_connections" range:"1-1000000"`
	// TCPConnectionsPerClient is the maximum number of concurrent TCP
	// connections from one client address
	// (limits.tcp_connections_per_client), 1-1000000 and at most
	// TCPConnections; default 100.
	TCPConnectionsPerClient int `mapstructure:"tcp_connections_per_client" range:"1-1000000" note:"at most tcp_connections"`
	// QPSPerClient is the most UDP queries per second served to one client
	// address (limits.qps_per_client), 0-1000000; 0, the default, means no
	// limit. A client may burst up to one second's worth.
	QPSPerClient int `mapstructure:"qps_per_client" range:"0-1000000" note:"UDP queries/s per client address; 0: no limit"`
	// OverLimit is what happens to a UDP query over QPSPerClient
	// (limits.over_limit): "drop" (default: no answer, so the limit cannot
	// be used to reflect traffic at a spoofed source) or "refuse" (answer
	// REFUSED, no larger than the query).
	OverLimit string `mapstructure:"over_limit" enum:"drop|refuse"`
}

// ACL is the client access list (key acl). A client whose address is in a
// Deny prefix is refused; otherwise, when Allow is not empty, only clients
// in an Allow prefix are served. Refused clients get no answer over UDP
// and have their TCP connection closed. The default (both empty) serves
// everyone. A reload applies a new list.
type ACL struct {
	// Allow lists the prefixes served (acl.allow): IP addresses or CIDRs
	// without host bits; empty: everyone.
	Allow []netip.Prefix `mapstructure:"allow" kind:"network" note:"served; empty: everyone"`
	// Deny lists the prefixes refused (acl.deny), checked before Allow.
	Deny []netip.Prefix `mapstructure:"deny" kind:"network" note:"refused, checked first"`
}

// Admin holds the admin (metrics and health) listener settings.
type Admin struct {
	// Listen is the ip:port of the admin HTTP listener (admin.listen);
	// default "127.0.0.1:9053", "" disables it. When not empty it parses
	// with [netip.ParseAddrPort].
	Listen string `mapstructure:"listen" note:"ip:port; \"\" disables"`
	// PProf serves Go's profiler under /debug/pprof/ on the admin listener
	// (admin.pprof); default false. Keep the listener on loopback.
	PProf bool `mapstructure:"pprof" note:"serve /debug/pprof/ on admin.listen"`
	// Token, when not empty, is required as a bearer token on every admin
	// endpoint but /healthz (admin.token): at least 16 characters. Set it
	// when admin.listen is not on loopback (DNSLB_ADMIN_TOKEN keeps it out
	// of the file).
	Token string `mapstructure:"token" note:"bearer token for every admin endpoint but /healthz (16+ characters)"`
}

// Log holds the logging settings.
type Log struct {
	// Level is the minimum level logged (log.level: debug, info, warn or
	// error); default info.
	Level slog.Level `mapstructure:"level" enum:"debug|info|warn|error"`
	// Format is the log line format (log.format): "text" or "json";
	// default "text".
	Format string `mapstructure:"format" enum:"text|json"`
	// QuerySample is the fraction of answered UDP queries logged, one
	// line each (log.query_sample), 0-1; 0, the default, logs none. 0.001
	// logs every thousandth. A reload applies a new value.
	QuerySample float64 `mapstructure:"query_sample" range:"0-1" note:"fraction of answered UDP queries logged, one line each"`
}

// Tuning holds the data path's performance settings (key tuning). Every
// change needs a restart ([RestartOnly] reports "tuning").
type Tuning struct {
	// UDPWorkers is the number of UDP sockets (SO_REUSEPORT) and reader
	// goroutines per listen address (tuning.udp_workers), 0-1024; 0, the
	// default, means one per CPU the process may run on (GOMAXPROCS).
	UDPWorkers int `mapstructure:"udp_workers" range:"0-1024" note:"sockets per listen address; 0: one per CPU (GOMAXPROCS)"`
	// UpstreamSockets is the number of UDP sockets towards the backends per
	// address family, shared by all backends (tuning.upstream_sockets),
	// 1-64; default 4. Each carries up to 4096 queries in flight.
	UpstreamSockets int `mapstructure:"upstream_sockets" range:"1-64" note:"per address family, shared by all backends"`
	// BatchSize is the most datagrams one recvmmsg or sendmmsg call moves
	// (tuning.batch_size), 1-1024; default 32.
	BatchSize int `mapstructure:"batch_size" range:"1-1024" note:"datagrams per recvmmsg/sendmmsg"`
	// SocketBuffer is the receive and send buffer size in bytes asked for
	// every UDP socket (tuning.socket_buffer), 64KiB-1GiB; default 4MiB.
	// Written as a number of bytes or with a unit: 512KiB, 4MiB, 1GiB.
	SocketBuffer int `mapstructure:"socket_buffer" kind:"size" range:"64KiB-1GiB"`
}

// envPrefix is the prefix of the environment variables that override keys.
const envPrefix = "DNSLB"

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
	v, file, err := readYAML(data)
	if err != nil {
		return nil, &Error{Name: name, Problems: yamlProblems(err)}
	}
	c := newCheck()
	cfg := decodeConfig(c, v, file)
	checkEnv(c, file)
	validate(c, cfg)
	if len(c.problems) > 0 {
		return nil, &Error{Name: name, Problems: c.sorted()}
	}
	return cfg, nil
}
