// Package config loads and validates the dnslb configuration.
//
// The configuration is a YAML file read with viper, overlaid with DNSLB_
// environment variables and compiled-in defaults, then checked by a small
// walker of this package and returned as an immutable [Config]. Nothing in
// the returned value refers back to viper, so callers may keep it, share it
// between goroutines and swap it in with an atomic.Pointer on reload.
//
// # What it does
//
//   - [Load] reads a file, [Parse] reads bytes; both apply defaults and
//     environment overrides and validate every key.
//   - Every invalid value becomes one [Problem] naming the exact key path,
//     e.g. "backends[1].address: missing port". All problems are collected,
//     not only the first, and returned together as an [*Error] whose Error
//     method prints one line per problem: "<file>: <path>: <message>".
//     Problems are listed in schema order (the field order of [Config]),
//     list items in index order, and unknown keys last within their mapping,
//     sorted by name. A YAML syntax error is a single problem carrying the
//     YAML line number.
//   - Unknown keys are errors at every level, except inside the reserved
//     sections health_check, vrrp and notify, which are accepted as a
//     mapping (or null/absent) and kept raw for features not written yet.
//   - [RestartOnly] and [DiffBackends] compare two configurations for a live
//     reload.
//
// # What it does not
//
// It does not watch the file (viper's WatchConfig is not safe for concurrent
// use), does not parse command-line flags, open sockets or resolve names:
// every address must be a literal IP and port. It does not validate the
// reserved sections yet.
//
// # Precedence
//
// For every key: environment variable > file > default. Command-line flags,
// if a caller offers any, are applied by the caller on top of the result.
// A key set to null in the file counts as absent, so its default applies.
//
// # Environment variables
//
// The variable name is DNSLB_ followed by the key path in upper case with
// dots replaced by underscores:
//
//	DNSLB_LISTEN="127.0.0.1:53,[::1]:53"     listen (commas and/or spaces separate addresses)
//	DNSLB_TIMEOUTS_UDP=2s                    timeouts.udp
//	DNSLB_TIMEOUTS_TCP_IDLE=30s              timeouts.tcp_idle
//	DNSLB_LIMITS_TCP_CONNECTIONS=5000        limits.tcp_connections
//	DNSLB_LIMITS_TCP_CONNECTIONS_PER_CLIENT=50
//	DNSLB_ADMIN_LISTEN=127.0.0.1:9053        admin.listen
//	DNSLB_LOG_LEVEL=debug                    log.level
//	DNSLB_LOG_FORMAT=json                    log.format
//
// A variable that is set but empty counts as a value: DNSLB_ADMIN_LISTEN=
// disables the admin listener, DNSLB_LOG_LEVEL= is an error. Values from the
// environment are strings and are checked exactly like the file's; for the
// same reason integer keys also accept quoted integers in the file ("500").
// Durations must carry units everywhere: 5 and "5" are rejected, 5s is not.
//
// viper lets a variable named after a whole section (DNSLB_TIMEOUTS, DNSLB_LOG
// ...) hide every key below it; such keys are reported as hidden by that
// variable rather than silently falling back to their defaults.
//
// Backends cannot come from the environment: they are a list of mappings
// and only the file can describe them. Setting DNSLB_BACKENDS is reported
// as a problem rather than silently ignored. The reserved sections ignore
// the environment too.
//
// # Defaults
//
//	timeouts.udp                        1s     (0s, 30s]
//	timeouts.tcp_idle                   10s    (0s, 1h]
//	limits.tcp_connections              10000  1-1000000
//	limits.tcp_connections_per_client   100    1-1000000, at most tcp_connections
//	admin.listen                        127.0.0.1:9053 ("" disables)
//	log.level                           info   debug|info|warn|error
//	log.format                          text   text|json
//	backends[].weight                   1      1-1000
//	backends[].state                    active active|drain|disabled
//
// listen and backends have no default and are required.
package config
