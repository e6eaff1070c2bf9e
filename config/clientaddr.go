package config

import (
	"net/netip"
	"time"
)

// ECS holds the key ecs: the client subnet that backends with
// client_address: ecs are sent (RFC 7871).
type ECS struct {
	// IPv4PrefixLength is the source prefix length sent for IPv4 clients
	// (ecs.ipv4_prefix_length), 1-32; default 24 (RFC 7871 11.1).
	IPv4PrefixLength int `mapstructure:"ipv4_prefix_length" range:"1-32"`
	// IPv6PrefixLength is the source prefix length sent for IPv6 clients
	// (ecs.ipv6_prefix_length), 1-128; default 56.
	IPv6PrefixLength int `mapstructure:"ipv6_prefix_length" range:"1-128"`
	// Override replaces an ECS option the client sent with dnslb's
	// (ecs.override); default false: such a query goes out unchanged.
	Override bool `mapstructure:"override" note:"replace a client's own ECS option"`
}

// RRL holds the key rrl: response rate limiting of UDP answers at dnslb,
// per client prefix and response class, with the semantics BIND, NSD and
// Knot share. TCP is never limited.
type RRL struct {
	// Enabled is rrl.enabled. It defaults to true when the file has an rrl
	// section and to false when it has none; DNSLB_RRL_ENABLED overrides
	// either.
	Enabled bool `mapstructure:"enabled"`
	// ResponsesPerSecond is the rate of positive answers per client prefix
	// and question (name and type) (rrl.responses_per_second),
	// 0-1000000; default 200 (NSD's), 0 does not limit them.
	ResponsesPerSecond int `mapstructure:"responses_per_second" range:"0-1000000" note:"per prefix and name/type; 0: no limit"`
	// NXDomainsPerSecond is the rate of NXDOMAIN answers per client prefix
	// and zone (rrl.nxdomains_per_second), 0-1000000; default 200.
	NXDomainsPerSecond int `mapstructure:"nxdomains_per_second" range:"0-1000000" note:"per prefix and zone; 0: no limit"`
	// ErrorsPerSecond is the rate of error answers (REFUSED, SERVFAIL,
	// FORMERR, ...) and of answers to ANY queries per client prefix
	// (rrl.errors_per_second), 0-1000000; default 200.
	ErrorsPerSecond int `mapstructure:"errors_per_second" range:"0-1000000" note:"errors and ANY, per prefix; 0: no limit"`
	// AllPerSecond caps every answer to a client prefix, whatever its class
	// (rrl.all_per_second), 0-1000000; default 0, no cap.
	AllPerSecond int `mapstructure:"all_per_second" range:"0-1000000" note:"every answer per prefix; 0: no cap"`
	// Slip sends every Slip-th limited answer as a truncated answer (TC=1,
	// the question only), so that a real client behind the prefix retries
	// over TCP (rrl.slip), 0-10; default 2, 1 truncates every limited
	// answer, 0 drops them all.
	Slip int `mapstructure:"slip" range:"0-10" note:"every Nth limited answer is sent TC=1; 0: drop all"`
	// Window bounds how much a prefix can overspend: one that stops
	// flooding is served again within Window (rrl.window), in [1s, 1h];
	// default 15s.
	Window time.Duration `mapstructure:"window" range:"[1s, 1h0m0s]"`
	// IPv4PrefixLength groups IPv4 clients (rrl.ipv4_prefix_length),
	// 1-32; default 24.
	IPv4PrefixLength int `mapstructure:"ipv4_prefix_length" range:"1-32"`
	// IPv6PrefixLength groups IPv6 clients (rrl.ipv6_prefix_length),
	// 1-128; default 56.
	IPv6PrefixLength int `mapstructure:"ipv6_prefix_length" range:"1-128"`
	// Exempt lists the client prefixes never limited (rrl.exempt): IP
	// addresses or CIDRs without host bits.
	Exempt []netip.Prefix `mapstructure:"exempt" kind:"network" note:"never limited"`
	// LogOnly decides and counts but sends every answer (rrl.log_only),
	// to try settings out; default false.
	LogOnly bool `mapstructure:"log_only" note:"count and log, limit nothing"`
	// TableSize is how many accounts are kept (rrl.table_size),
	// 256-16777216; default 65536. The table takes TableSize × 32 bytes
	// whatever the traffic; the least recently used account is reused.
	TableSize int `mapstructure:"table_size" range:"256-16777216" note:"accounts kept; memory is table_size × 32 bytes"`
}
