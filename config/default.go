package config

import (
	"log/slog"
	"reflect"
	"time"

	"github.com/miekg/dns"
)

// Default returns the value of every key a file leaves out: the only place
// defaults are written. Parse starts from it, viper learns every default
// from it (so that DNSLB_ variables reach keys the file omits), and the
// defaults table of the package documentation and schema.json are
// generated from it. A zero value that its key's range rejects (vrrp.vrid)
// means the key has no default; listen and backends have none either.
//
// Two defaults depend on the file: the enabled key of health_check, vrrp
// and notify is true when the file has the section, and each backend's
// health check starts as the global one. Items of lists of mappings start
// from [defaultItem].
func Default() Config {
	return Config{
		Timeouts: Timeouts{
			UDP:      time.Second,
			TCPIdle:  10 * time.Second,
			TCPRead:  2 * time.Second,
			TCPWrite: 5 * time.Second,
			UDPRetry: true,
		},
		Limits: Limits{TCPConnections: 10000, TCPConnectionsPerClient: 100, OverLimit: "drop"},
		Admin:  Admin{Listen: "127.0.0.1:9053"},
		Log:    Log{Level: slog.LevelInfo, Format: "text"},
		Tuning: Tuning{UpstreamSockets: 4, BatchSize: 32, SocketBuffer: 4 << 20},
		HealthCheck: HealthCheck{
			Query:     HealthQuery{Type: dns.TypeSOA, Class: dns.ClassINET},
			Expect:    HealthExpect{Rcodes: []int{dns.RcodeSuccess}},
			Transport: "udp",
			ProxyV2:   "self",
			Interval:  time.Second,
			Timeout:   500 * time.Millisecond,
			Rise:      2,
			Fall:      3,
			AllDown:   "fail_open",
			Passive:   HealthPassive{MaxConsecutiveTimeouts: 5, MaxDownPercent: 50},
		},
		VRRP: VRRP{
			Priority:       100,
			AdvertInterval: time.Second,
			Preempt:        true,
			Version:        3,
			ChecksumMode:   "pseudo-header",
			GARPRepeat:     5,
			GARPDelay:      5 * time.Second,
			Sync:           true,
			Track:          VRRPTrack{MinHealthyBackends: 1},
		},
		Notify: Notify{MaxPerSecond: 10000, DedupWindow: 5 * time.Second, Retries: 5, TrackQPS: 1000, CopyQPS: 200, MaxTracked: 1000000},
		ECS:    ECS{IPv4PrefixLength: 24, IPv6PrefixLength: 56},
		RRL: RRL{ResponsesPerSecond: 200, NXDomainsPerSecond: 200, ErrorsPerSecond: 200, Slip: 2,
			Window: 15 * time.Second, IPv4PrefixLength: 24, IPv6PrefixLength: 56, TableSize: 65536},
		BGP: BGP{Mode: "auto", WithdrawDelay: 2 * time.Second, MinHealthyBackends: 1, Interface: "lo", RouteProtocol: 250},
	}
}

// defaultItem returns the defaults of an item of a list of mappings of
// type t.
func defaultItem(t reflect.Type) reflect.Value {
	switch t {
	case reflect.TypeFor[Backend]():
		return reflect.ValueOf(Backend{Weight: 1, State: StateActive, ClientAddress: "none"})
	case reflect.TypeFor[BGPNeighbor]():
		return reflect.ValueOf(BGPNeighbor{Port: 179, HoldTime: 90 * time.Second})
	case reflect.TypeFor[TSIGKey]():
		return reflect.ValueOf(TSIGKey{Algorithm: dns.HmacSHA256})
	}
	return reflect.Zero(t)
}
