package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"time"
)

// Notify holds the key notify: whether dnslb answers the DNS NOTIFY
// messages (RFC 1996) that the primaries send to the VIP and copies each to
// every backend, and how. Every value is validated even when Enabled is
// false; Interface and Primaries are required only when it is true.
type Notify struct {
	// Enabled is notify.enabled. It defaults to true when the file has a
	// notify section and to false when it has none; DNSLB_NOTIFY_ENABLED
	// overrides either.
	Enabled bool `mapstructure:"enabled"`
	// Interface is the network interface the NOTIFYs to the VIP arrive on
	// (notify.interface): 1-15 characters without '/', ':' or whitespace,
	// not "." or "..", like vrrp.interface. Required when enabled.
	Interface string `mapstructure:"interface" kind:"interface" required:"enabled" note:"the interface the copies leave by (the VIP's)"`
	// Primaries holds the only sources whose NOTIFYs are answered and
	// copied (notify.primaries), in file order: at least one when enabled,
	// no duplicates. Each is an address ("192.0.2.1" is 192.0.2.1/32,
	// "2001:db8::1" a /128) or a network ("2001:db8::/64") without host
	// bits; IPv4-mapped IPv6 addresses are unmapped. Both families may be
	// mixed. Unspecified and multicast addresses, which are never a
	// source, are rejected.
	Primaries []netip.Prefix `mapstructure:"primaries" kind:"primary" required:"enabled" note:"the only sources answered and copied"`
	// MaxPerSecond is how many NOTIFYs are accepted per second from each
	// primary (notify.max_per_second), 1-1000000; default 10000: a
	// primary flushing a storm of changed zones sends bursts of a few
	// thousand a second (1,727/s measured in a 100,000-zone storm), and
	// one it is not answered retries only a few times before giving up.
	MaxPerSecond int `mapstructure:"max_per_second" range:"1-1000000" note:"per primary (over it: no answer, the primary retries)"`
	// DedupWindow is how long a NOTIFY for a (zone, serial) that every
	// backend was seen to serve is not copied again
	// (notify.dedup_window), in [0s, 1h]; default 5s, 0 disables
	// deduplication. Unless it is 0, a NOTIFY for a (zone, serial) still
	// tracked on every backend is not copied again either (the tracker
	// re-sends where needed). A duplicate is still answered.
	DedupWindow time.Duration `mapstructure:"dedup_window" range:"[0s, 1h] (0s disables)" note:"a (zone, serial) still tracked, or every backend serves, is not copied again"`
	// Retries is how many times a NOTIFY is re-sent to a backend until the
	// backend's SOA serial reaches the NOTIFY's (notify.retries), 0-20;
	// default 5, 0 disables this convergence tracking.
	Retries int `mapstructure:"retries" range:"0-20" note:"re-sends to a backend that looks stuck; 0 disables tracking"`
	// TrackQPS is how many SOA queries a second convergence tracking
	// sends to each backend at most (notify.track_qps), 1-100000;
	// default 1000. A storm of N zones is confirmed on a backend after at
	// least N/TrackQPS seconds; the queries go straight to the backends,
	// beside the client traffic, and never through the balancer.
	TrackQPS int `mapstructure:"track_qps" range:"1-100000" note:"SOA queries per backend per second for convergence tracking"`
	// CopyQPS paces the NOTIFY copies to each backend (notify.copy_qps),
	// 1-100000; default 200: first copies and re-sends alike. A NOTIFY
	// is answered once its copies are out, so a primary flushing a storm
	// (NSD sends a few thousand a second once it is answered at once)
	// is slowed to this pace rather than overflowing the secondaries'
	// receive buffers, where the copies and client queries would be lost.
	CopyQPS int `mapstructure:"copy_qps" range:"1-100000" note:"NOTIFY copies per backend per second; the primary waits for them, not for those a full window holds"`
	// MaxTracked bounds the (zone, backend) pairs tracked at once, over
	// all backends (notify.max_tracked), 1-100000000; default 1000000,
	// about 200 bytes each. Beyond it a copy is still sent, once, but
	// not tracked: never re-sent, not deduplicated, counted in
	// dnslb_notify_untracked_total; the secondary's refresh timer is the
	// fallback.
	MaxTracked int `mapstructure:"max_tracked" range:"1-100000000" note:"(zone, backend) pairs, ~200 bytes each; beyond it copies are sent once, untracked"`
	// TSIGKeys are the keys a NOTIFY may be signed with
	// (notify.tsig_keys), in file order, names unique; nil when none. A
	// NOTIFY signed with one of them has its signature checked and is
	// answered signed with the same key. They come from the file only:
	// no environment variable sets them.
	TSIGKeys []TSIGKey `mapstructure:"tsig_keys" fileonly:"list the keys in the file"`
}

// TSIGKey is one item of notify.tsig_keys: a TSIG key (RFC 8945).
type TSIGKey struct {
	// Name is the key's name (name): a domain name, required, stored in
	// lower case and fully qualified ("notify-key."), unique in the list.
	Name string `mapstructure:"name" kind:"domain" required:"true" note:"unique"`
	// Algorithm is the HMAC algorithm (algorithm) as the miekg/dns
	// constant, e.g. dns.HmacSHA256 ("hmac-sha256."): hmac-sha1,
	// hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512 in any case,
	// with or without the trailing dot; default hmac-sha256.
	Algorithm string `mapstructure:"algorithm" kind:"tsig-algorithm"`
	// Secret is the shared secret (secret) in standard base64, as given;
	// required, it decodes to at least 16 bytes. No problem message
	// quotes it.
	Secret string `mapstructure:"secret" required:"true" note:"standard base64 of at least 16 bytes"`
}

// String formats k without its secret.
func (k TSIGKey) String() string {
	return fmt.Sprintf("{Name:%s Algorithm:%s Secret:<redacted>}", k.Name, k.Algorithm)
}

// Equal reports whether n and o hold the same settings; Primaries and
// TSIGKeys are compared in order.
func (n Notify) Equal(o Notify) bool {
	return sameSettings(reflect.ValueOf(n), reflect.ValueOf(o))
}
