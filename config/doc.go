// Package config loads and validates the dnslb configuration.
//
// The configuration is a YAML file read with viper, overlaid with DNSLB_
// environment variables and the defaults of [Default], decoded into
// [Config] by mapstructure, then validated section by section and returned
// as an immutable [Config]. Nothing in the returned value refers back to
// viper, so callers may keep it, share it between goroutines and swap it
// in with an atomic.Pointer on reload.
//
// The types of [Config] are the schema: each key is a field whose struct
// tags give its name, range, allowed words and how its text is read (see
// schema.go). Decoding reads every value with them (decode.go, parse.go);
// the validate_*.go files check what relates keys. The defaults table
// below and schema.json, a JSON Schema for editors, are generated from the
// types and [Default] by go generate, and a test keeps them so.
//
// Adding a key therefore takes its field in its section's type, with its
// tags and a doc comment giving its meaning, range and default; its
// default in [Default] unless that is the zero value; and, only for a rule
// the tags cannot state, a check in the section's validate function. go
// generate then updates the table below and schema.json. (The repository's
// config.yaml documents every key for users, so it gets a line too.)
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
//   - Unknown keys are errors at every level.
//   - The health_check section sets the global health check; each backend
//     may override part of it in backends[i].health_check (see Health
//     checks below).
//   - The vrrp section describes VIP failover between dnslb nodes with
//     VRRP (see VRRP below).
//   - The notify section describes how DNS NOTIFYs from the primaries to
//     the VIP are answered and copied to every backend (see NOTIFY below).
//   - [RestartOnly] and [DiffBackends] compare two configurations for a live
//     reload.
//
// # What it does not
//
// It does not watch the file (viper's WatchConfig is not safe for concurrent
// use), does not parse command-line flags, open sockets or resolve names:
// every address must be a literal IP and port. It does not run health
// checks, VRRP or NOTIFY forwarding: it only describes them. Whether
// vrrp.interface and notify.interface exist and vrrp.notify can be run is
// found out when they are used, not here.
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
//	DNSLB_TIMEOUTS_UDP_RETRY=false           timeouts.udp_retry
//	DNSLB_LIMITS_TCP_CONNECTIONS=5000        limits.tcp_connections
//	DNSLB_LIMITS_TCP_CONNECTIONS_PER_CLIENT=50
//	DNSLB_ADMIN_LISTEN=127.0.0.1:9053        admin.listen
//	DNSLB_LOG_LEVEL=debug                    log.level
//	DNSLB_LOG_FORMAT=json                    log.format
//	DNSLB_HEALTH_CHECK_ENABLED=true          health_check.enabled
//	DNSLB_HEALTH_CHECK_QUERY_NAME=example.test.
//	DNSLB_HEALTH_CHECK_QUERY_TYPE=A          health_check.query.type
//	DNSLB_HEALTH_CHECK_EXPECT_RCODES="NOERROR,NXDOMAIN" (commas and/or spaces)
//	DNSLB_HEALTH_CHECK_EXPECT_AUTHORITATIVE=true
//	DNSLB_HEALTH_CHECK_INTERVAL=2s           health_check.interval
//	DNSLB_HEALTH_CHECK_PASSIVE_MAX_CONSECUTIVE_TIMEOUTS=0
//	DNSLB_VRRP_ENABLED=true                  vrrp.enabled
//	DNSLB_VRRP_INTERFACE=eth0                vrrp.interface
//	DNSLB_VRRP_VRID=53                       vrrp.vrid
//	DNSLB_VRRP_PRIORITY=150                  vrrp.priority
//	DNSLB_VRRP_ADVERT_INTERVAL=1s            vrrp.advert_interval
//	DNSLB_VRRP_VIPS="192.0.2.53/24 192.0.2.54/24" (commas and/or spaces)
//	DNSLB_VRRP_PEERS="192.0.2.2,192.0.2.3"   (commas and/or spaces; empty: multicast)
//	DNSLB_VRRP_TRACK_MIN_HEALTHY_BACKENDS=2  vrrp.track.min_healthy_backends
//	DNSLB_VRRP_TRACK_WEIGHT=60               vrrp.track.weight
//	DNSLB_NOTIFY_ENABLED=true                notify.enabled
//	DNSLB_NOTIFY_INTERFACE=eth0              notify.interface
//	DNSLB_NOTIFY_PRIMARIES="192.0.2.1 2001:db8::/64" (commas and/or spaces)
//	DNSLB_NOTIFY_MAX_PER_SECOND=500          notify.max_per_second
//	DNSLB_NOTIFY_DEDUP_WINDOW=10s            notify.dedup_window
//	DNSLB_NOTIFY_RETRIES=3                   notify.retries
//
// and likewise for every other scalar key of health_check (QUERY_CLASS,
// QUERY_RD, EXPECT_ANSWER_CONTAINS, TRANSPORT, TIMEOUT, RISE, FALL,
// ALL_DOWN) and of vrrp (PREEMPT, PREEMPT_DELAY, VERSION, CHECKSUM_MODE,
// AUTH_PASS, GARP_REPEAT, GARP_DELAY, GARP_REFRESH, NOTIFY). Booleans are
// true, false, yes, no, on or off in any case.
//
// A variable that is set but empty counts as a value: DNSLB_ADMIN_LISTEN=
// disables the admin listener, DNSLB_VRRP_PEERS= selects multicast,
// DNSLB_LOG_LEVEL= is an error. Values from the
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
// as a problem rather than silently ignored. Per-backend health_check
// overrides therefore come only from the file.
//
// notify.tsig_keys cannot come from the environment either: it is a list
// of mappings, and its secrets belong in the file (readable by dnslb only),
// not in a process environment. Setting DNSLB_NOTIFY_TSIG_KEYS is
// reported as a problem; DNSLB_NOTIFY_ENABLED and the other DNSLB_NOTIFY_*
// variables leave the file's keys as they are, and DNSLB_NOTIFY does not
// hide them.
//
// # Health checks
//
// Whether checks are on is health_check.enabled, whose default is whether
// the file has a health_check section: a section turns them on unless it
// says enabled: false. As for every key, a section that is null or an empty
// mapping ({}) counts as absent. The environment relates to the section
// like this:
//
//   - DNSLB_HEALTH_CHECK_ENABLED overrides the default both ways: =false
//     turns off a section the file has, =true turns checks on without one
//     (every other key then comes from the environment or its default, and
//     DNSLB_HEALTH_CHECK_QUERY_NAME is required).
//   - The other DNSLB_HEALTH_CHECK_* variables override keys but never turn
//     checks on. Setting one when the file has no section and
//     DNSLB_HEALTH_CHECK_ENABLED is unset is reported as a problem rather
//     than silently ignored.
//   - Every value is validated even when checks are off, so turning them on
//     later cannot reveal an error; only query.name is required, and only
//     when checks are on.
//
// A backend may set backends[i].health_check with the keys enabled, query,
// expect, transport, interval, timeout, rise and fall. Each key it sets
// replaces the global one, key by key also within query and expect (a
// backend setting only query.type keeps the global query.name); a list such
// as expect.rcodes is replaced whole. all_down and passive concern the
// whole pool and may only be set globally. A backend with enabled: false is
// not checked. A backend section needs the global section to be present
// and enabled, since that section supplies the defaults. The rule timeout
// <= interval holds for the merged values of every backend; a violation
// caused by a backend is reported at the backend's own key.
//
// [Backend].HealthCheck holds each backend's merged check, including the
// global all_down and passive; [DiffBackends] reports a backend as changed
// when that merged check changes, so a global change touches every backend.
//
// # VRRP
//
// Whether VRRP runs is vrrp.enabled, whose default, like health_check's,
// is whether the file has a vrrp section: a section turns VRRP on unless
// it says enabled: false, and a section that is null or {} counts as
// absent. The environment relates to the section the same way:
//
//   - DNSLB_VRRP_ENABLED overrides the default both ways: =false turns off
//     a section the file has, =true turns VRRP on without one (every other
//     key then comes from the environment or its default, and
//     DNSLB_VRRP_INTERFACE, DNSLB_VRRP_VRID and DNSLB_VRRP_VIPS are
//     required).
//   - The other DNSLB_VRRP_* variables override keys but never turn VRRP
//     on. Setting one when the file has no section and DNSLB_VRRP_ENABLED
//     is unset is reported as a problem rather than silently ignored.
//   - Every value is validated even when VRRP is off, so turning it on
//     later cannot reveal an error; only interface, vrid and vips are
//     required, and only when VRRP is on.
//
// Beyond each key's own range (see Defaults) the section is checked as a
// whole: advert_interval must suit the version (a multiple of 10ms up to
// 40.95s for VRRPv3, whole seconds from 1s to 255s for VRRPv2); vips and
// peers are all of one family (run one VRRP instance per family), IPv4 for
// version 2, without duplicates; a peer is never one of the vips;
// preempt_delay stays 0 when preempt is false; checksum_mode rfc9568 needs
// version 3 over IPv4; auth_pass needs version 2; and
// track.min_healthy_backends is at most the number of backends. The vips
// should also be listed in listen for dnslb to answer on them (listen
// addresses are bound with IP_FREEBIND, so a backup node can listen on a
// VIP it does not hold yet); this is not checked.
//
// [RestartOnly] reports "vrrp" for any change of the section, even while
// it is disabled: VRRP settings are applied only at start.
//
// # NOTIFY
//
// With the notify section, dnslb answers the DNS NOTIFY messages (RFC 1996)
// that the primaries of the backends' zones send to the VIP, and copies
// each to every backend with the primary's address as its source, so that
// the backends, secondaries of those zones, refresh from the primary at
// once. NOTIFYs from any other source are refused.
//
// Whether this runs is notify.enabled, whose default, like
// health_check's and vrrp's, is whether the file has a notify section: a
// section turns it on unless it says enabled: false, and a section that is
// null or {} counts as absent. The environment relates to the section the
// same way:
//
//   - DNSLB_NOTIFY_ENABLED overrides the default both ways: =false turns
//     off a section the file has, =true turns it on without one (every
//     other key then comes from the environment or its default, and
//     DNSLB_NOTIFY_INTERFACE and DNSLB_NOTIFY_PRIMARIES are required).
//   - The other DNSLB_NOTIFY_* variables override keys but never turn it
//     on. Setting one when the file has no section and
//     DNSLB_NOTIFY_ENABLED is unset is reported as a problem rather than
//     silently ignored.
//   - Every value is validated even when it is off; only interface and
//     primaries are required, and only when it is on.
//
// primaries lists addresses ("192.0.2.1" is a /32, "2001:db8::1" a /128)
// or networks in CIDR notation without host bits ("2001:db8::/64"), of
// either family, without duplicates; unspecified and multicast addresses
// are rejected. The copies leave with a primary's address as their
// source, so a backend whose route back to that primary uses another
// interface than the one the copy arrives on needs loose reverse-path
// filtering (net.ipv4.conf.<if>.rp_filter=2); this is not checked.
//
// tsig_keys optionally lists TSIG keys (RFC 8945), each a mapping of name,
// algorithm and secret: a NOTIFY signed with one of them has its signature
// checked and is answered signed with the same key. A name is a domain
// name, stored in lower case and fully qualified, unique in the list;
// algorithm is hmac-sha1, hmac-sha224, hmac-sha256 (the default),
// hmac-sha384 or hmac-sha512 in any case, with or without the final dot,
// stored as the miekg/dns constant (dns.HmacSHA256, "hmac-sha256."); the
// secret is standard base64, padded, of at least 16 bytes, stored as
// written. No problem message ever quotes a secret. The keys come from
// the file only (see Environment variables).
//
// [RestartOnly] reports "notify.enabled" when it changes and
// "notify.interface" when it changes while notify is enabled before or
// after; primaries, max_per_second, dedup_window, retries and tsig_keys
// apply on a reload.
//
// # Defaults
//
// Generated by go generate from [Default] and the struct tags (edit
// those). Values is the range or the words a key accepts (any case), then
// notes; "-" is no default, and "if present" means true when the file has
// the section (see Health checks).
//
//	key                                            default         values
//	listen                                         -               ip:port list; required
//	backends                                       -               list of mappings; required; file only, no environment variable
//	backends[].name                                -               a quoted string; 1-63 of A-Z a-z 0-9 _ . -, unique; required
//	backends[].address                             -               ip:port; unique; required
//	backends[].weight                              1               1-1000
//	backends[].state                               active          active|drain|disabled
//	backends[].client_address                      none            none|proxy_v2|proxy_v2_udp|ecs
//	backends[].health_check                        health_check    overrides health_check key by key
//	config_watch                                   false           reload when the file changes (debounced 500ms)
//	timeouts.udp                                   1s              (0s, 30s]
//	timeouts.tcp_idle                              10s             (0s, 1h]
//	timeouts.tcp_read                              2s              (0s, 1m]; for a whole client message from its first byte
//	timeouts.tcp_write                             5s              (0s, 1m]; for an answer to be taken by a TCP client
//	timeouts.udp_retry                             true            retry a timed-out UDP query once, on a backend that is answering
//	limits.tcp_connections                         10000           1-1000000
//	limits.tcp_connections_per_client              100             1-1000000; at most tcp_connections
//	limits.qps_per_client                          0               0-1000000; UDP queries/s per client address; 0: no limit
//	limits.over_limit                              drop            drop|refuse
//	acl.allow                                      []              IPs/CIDRs without host bits; served; empty: everyone
//	acl.deny                                       []              IPs/CIDRs without host bits; refused, checked first
//	admin.listen                                   127.0.0.1:9053  ip:port; "" disables
//	admin.pprof                                    false           serve /debug/pprof/ on admin.listen
//	admin.token                                    ""              bearer token for every admin endpoint but /healthz (16+ characters)
//	log.level                                      info            debug|info|warn|error
//	log.format                                     text            text|json
//	log.query_sample                               0               0-1; fraction of answered UDP queries logged, one line each
//	tuning.udp_workers                             0               0-1024; sockets per listen address; 0: one per CPU (GOMAXPROCS)
//	tuning.upstream_sockets                        4               1-64; per address family, shared by all backends
//	tuning.batch_size                              32              1-1024; datagrams per recvmmsg/sendmmsg
//	tuning.socket_buffer                           4MiB            64KiB-1GiB
//	health_check.enabled                           if present
//	health_check.query.name                        ""              a domain name; required when enabled
//	health_check.query.type                        SOA             a type name, any case
//	health_check.query.class                       IN              IN|CH|HS|CS|ANY
//	health_check.query.rd                          false
//	health_check.expect.rcodes                     [NOERROR]       rcode names, any case
//	health_check.expect.authoritative              false
//	health_check.expect.answer_contains            ""              "" checks nothing
//	health_check.transport                         udp             udp|tcp
//	health_check.interval                          1s              [100ms, 1h0m0s]
//	health_check.timeout                           500ms           (0s, 1h0m0s]; at most interval
//	health_check.rise                              2               1-100
//	health_check.fall                              3               1-100
//	health_check.proxy_v2                          self            self|none; probes of proxy_v2 backends: a header naming dnslb, or none
//	health_check.all_down                          fail_open       fail_open|refuse; global only
//	health_check.passive.max_consecutive_timeouts  5               0-1000; 0 disables
//	health_check.passive.max_down_percent          50              1-100
//	vrrp.enabled                                   if present      global only
//	vrrp.name                                      ""              a quoted string; 1-63 of A-Z a-z 0-9 _ . -; required in instances; default the vrid
//	vrrp.interface                                 -               1-15 characters, no '/', ':' or whitespace; required when enabled
//	vrrp.vrid                                      -               1-255; required when enabled
//	vrrp.priority                                  100             1-255; 255 owns the VIPs (master at once)
//	vrrp.advert_interval                           1s              v3: [10ms, 40.95s] in steps of 10ms; v2: [1s, 255s] in whole seconds
//	vrrp.preempt                                   true
//	vrrp.preempt_delay                             0s              [0s, 1h]; only with preempt true
//	vrrp.version                                   3               2-3
//	vrrp.vips                                      -               "ip/len" or "ip" (/32, /128); one family; required when enabled
//	vrrp.peers                                     []              IP addresses; unicast peer addresses; empty: multicast
//	vrrp.checksum_mode                             pseudo-header   pseudo-header|rfc9568; rfc9568: VRRPv3 over IPv4 only
//	vrrp.auth_pass                                 ""              a quoted string; 1-8 bytes, version 2 only; "" none
//	vrrp.garp_repeat                               5               1-100; announcements per VIP on becoming master
//	vrrp.garp_delay                                5s              [0s, 1h]; before a second burst; 0s none
//	vrrp.garp_refresh                              0s              [1s, 24h] (0s disables); re-announce period while master
//	vrrp.sync                                      true            move with the node's other instances
//	vrrp.track.min_healthy_backends                1               0-10000; at most the number of backends; 0 disables
//	vrrp.track.weight                              0               0-254; 0: fault (release the VIPs); 1-254: lower the priority
//	vrrp.notify                                    ""              absolute path of a program run on each state change: <state> <instance>; global only
//	vrrp.instances                                 vrrp            list of mappings; file only, no environment variable; global only
//	notify.enabled                                 if present
//	notify.interface                               -               1-15 characters, no '/', ':' or whitespace; the interface the copies leave by (the VIP's); required when enabled
//	notify.primaries                               -               IPs/CIDRs without host bits; the only sources answered and copied; required when enabled
//	notify.max_per_second                          10000           1-1000000; per primary (over it: no answer, the primary retries)
//	notify.dedup_window                            5s              [0s, 1h] (0s disables); a (zone, serial) still tracked, or every backend serves, is not copied again
//	notify.retries                                 5               0-20; re-sends to a backend that looks stuck; 0 disables tracking
//	notify.track_qps                               1000            1-100000; SOA queries per backend per second for convergence tracking
//	notify.copy_qps                                200             1-100000; NOTIFY copies per backend per second; the primary waits for them, not for those a full window holds
//	notify.max_tracked                             1000000         1-100000000; (zone, backend) pairs, ~200 bytes each; beyond it copies are sent once, untracked
//	notify.tsig_keys                               -               list of mappings; file only, no environment variable
//	notify.tsig_keys[].name                        -               a domain name; unique; required
//	notify.tsig_keys[].algorithm                   hmac-sha256     hmac-sha1|hmac-sha224|hmac-sha256|hmac-sha384|hmac-sha512
//	notify.tsig_keys[].secret                      -               standard base64 of at least 16 bytes; required
//	ecs.ipv4_prefix_length                         24              1-32
//	ecs.ipv6_prefix_length                         56              1-128
//	ecs.override                                   false           replace a client's own ECS option
//	rrl.enabled                                    if present
//	rrl.responses_per_second                       200             0-1000000; per prefix and name/type; 0: no limit
//	rrl.nxdomains_per_second                       200             0-1000000; per prefix and zone; 0: no limit
//	rrl.errors_per_second                          200             0-1000000; errors and ANY, per prefix; 0: no limit
//	rrl.all_per_second                             0               0-1000000; every answer per prefix; 0: no cap
//	rrl.slip                                       2               0-10; every Nth limited answer is sent TC=1; 0: drop all
//	rrl.window                                     15s             [1s, 1h0m0s]
//	rrl.ipv4_prefix_length                         24              1-32
//	rrl.ipv6_prefix_length                         56              1-128
//	rrl.exempt                                     []              IPs/CIDRs without host bits; never limited
//	rrl.log_only                                   false           count and log, limit nothing
//	rrl.table_size                                 65536           256-16777216; accounts kept; memory is table_size × 32 bytes
//	bgp.enabled                                    if present
//	bgp.mode                                       auto            auto|vrrp|active|kernel; auto: vrrp with vrrp.enabled, else active
//	bgp.local_as                                   -               1-4294967295; required when enabled, but in mode kernel
//	bgp.router_id                                  -               an IPv4 address; unique per node; required when enabled, but in mode kernel
//	bgp.neighbors                                  -               list of mappings; file only, no environment variable
//	bgp.neighbors[].address                        -               an IP address; unique; required
//	bgp.neighbors[].peer_as                        -               1-4294967295; required
//	bgp.neighbors[].port                           179             1-65535
//	bgp.neighbors[].password                       ""              a quoted string; TCP MD5 key; "" none
//	bgp.neighbors[].multihop                       0               0-255; 0: directly connected
//	bgp.neighbors[].hold_time                      1m30s           [3s, 1h]; whole seconds; keepalive every third
//	bgp.neighbors[].passive                        false           wait for the router to connect (listens on port 179)
//	bgp.communities                                []              asn:value or a well-known name; a reload re-announces without a session reset
//	bgp.med                                        0               0-4294967295; lower is preferred
//	bgp.next_hop                                   []              IP addresses; one per family at most; empty: each session's local address
//	bgp.withdraw_delay                             2s              [0s, 1m]; keep answering this long after withdrawing at shutdown
//	bgp.min_healthy_backends                       1               0-10000; at most the number of backends; 0: whatever their health
//	bgp.interface                                  lo              1-15 characters, no '/', ':' or whitespace; active: the VIPs' addresses; kernel: the device of their local and host routes
//	bgp.route_protocol                             250             1-255; mode kernel: the routes' protocol number
//
// Items of lists start from their own defaults; each backend's
// health_check starts from the global health_check, whose keys (but
// all_down and passive) it may override.
package config
