package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Notify holds the key notify: whether dnslb answers the DNS NOTIFY
// messages (RFC 1996) that the primaries send to the VIP and copies each to
// every backend, and how. Every value is validated even when Enabled is
// false; Interface and Primaries are required only when it is true.
type Notify struct {
	// Enabled is notify.enabled. It defaults to true when the file has a
	// notify section and to false when it has none; DNSLB_NOTIFY_ENABLED
	// overrides either.
	Enabled bool
	// Interface is the network interface the NOTIFYs to the VIP arrive on
	// (notify.interface): 1-15 characters without '/', ':' or whitespace,
	// not "." or "..", like vrrp.interface. Required when enabled.
	Interface string
	// Primaries holds the only sources whose NOTIFYs are answered and
	// copied (notify.primaries), in file order: at least one when enabled,
	// no duplicates. Each is an address ("192.0.2.1" is 192.0.2.1/32,
	// "2001:db8::1" a /128) or a network ("2001:db8::/64") without host
	// bits; IPv4-mapped IPv6 addresses are unmapped. Both families may be
	// mixed. Unspecified and multicast addresses, which are never a
	// source, are rejected.
	Primaries []netip.Prefix
	// MaxPerSecond is how many NOTIFYs are accepted per second from each
	// primary (notify.max_per_second), 1-1000000; default 1000.
	MaxPerSecond int
	// DedupWindow is how long a NOTIFY for the same (primary, zone,
	// serial) is not copied again (notify.dedup_window), in [0s, 1h];
	// default 5s, 0 disables deduplication. A duplicate is still answered.
	DedupWindow time.Duration
	// Retries is how many times a NOTIFY is re-sent to a backend until the
	// backend's SOA serial reaches the NOTIFY's (notify.retries), 0-20;
	// default 5, 0 disables this convergence tracking.
	Retries int
	// TSIGKeys are the keys a NOTIFY may be signed with
	// (notify.tsig_keys), in file order, names unique; nil when none. A
	// NOTIFY signed with one of them has its signature checked and is
	// answered signed with the same key. They come from the file only:
	// no environment variable sets them.
	TSIGKeys []TSIGKey
}

// TSIGKey is one item of notify.tsig_keys: a TSIG key (RFC 8945).
type TSIGKey struct {
	// Name is the key's name (name): a domain name, required, stored in
	// lower case and fully qualified ("notify-key."), unique in the list.
	Name string
	// Algorithm is the HMAC algorithm (algorithm) as the miekg/dns
	// constant, e.g. dns.HmacSHA256 ("hmac-sha256."): hmac-sha1,
	// hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512 in any case,
	// with or without the trailing dot; default hmac-sha256.
	Algorithm string
	// Secret is the shared secret (secret) in standard base64, as given;
	// required, it decodes to at least 16 bytes. No problem message
	// quotes it.
	Secret string
}

// String formats k without its secret.
func (k TSIGKey) String() string {
	return fmt.Sprintf("{Name:%s Algorithm:%s Secret:<redacted>}", k.Name, k.Algorithm)
}

// Equal reports whether n and o hold the same settings; Primaries and
// TSIGKeys are compared in order.
func (n Notify) Equal(o Notify) bool {
	return n.Enabled == o.Enabled &&
		n.Interface == o.Interface &&
		slices.Equal(n.Primaries, o.Primaries) &&
		n.MaxPerSecond == o.MaxPerSecond &&
		n.DedupWindow == o.DedupWindow &&
		n.Retries == o.Retries &&
		slices.Equal(n.TSIGKeys, o.TSIGKeys)
}

// Defaults of the notify section, as written in a file.
const (
	defaultNotifyMaxPerSecond = 1000
	defaultNotifyDedupWindow  = "5s"
	defaultNotifyRetries      = 5
)

// Allowed notify ranges.
const (
	maxNotifyPerSecond   = 1000000
	maxNotifyDedupWindow = time.Hour
	maxNotifyRetries     = 20
	minTSIGSecretLen     = 16 // bytes, decoded
)

// tsigAlgorithms maps the allowed notify.tsig_keys[].algorithm words, in
// the order messages list them, to the miekg/dns constants.
var tsigAlgorithms = []struct{ word, alg string }{
	{"hmac-sha1", dns.HmacSHA1},
	{"hmac-sha224", dns.HmacSHA224},
	{"hmac-sha256", dns.HmacSHA256},
	{"hmac-sha384", dns.HmacSHA384},
	{"hmac-sha512", dns.HmacSHA512},
}

// defaultTSIGAlgorithm is the algorithm of a key that names none.
const defaultTSIGAlgorithm = dns.HmacSHA256

// Known keys of the notify mapping, in schema order.
func notifyKeys() []string {
	return []string{"enabled", "interface", "primaries", "max_per_second", "dedup_window", "retries", "tsig_keys"}
}

// Known keys of a notify.tsig_keys item, in schema order.
func tsigKeyKeys() []string { return []string{"name", "algorithm", "secret"} }

// defaultNotify returns the notify section of a file without one.
func defaultNotify() Notify {
	return Notify{
		MaxPerSecond: defaultNotifyMaxPerSecond,
		DedupWindow:  5 * time.Second,
		Retries:      defaultNotifyRetries,
	}
}

// notify decodes the section notify. Every key comes through viper
// (environment > file > default); the file decides only whether the
// section is present and which keys are unknown.
func (d *decoder) notify() Notify {
	const path = "notify"
	n := defaultNotify()
	m, present, ok := d.openSection(path)
	if !ok {
		return n
	}
	n.Enabled = present

	f := d.viperFields(path)
	f.field("enabled", assign(&n.Enabled, d.boolean))
	f.field("interface", assign(&n.Interface, d.ifaceName))
	f.required("interface", n.Interface == "", n.Enabled)
	f.field("primaries", assign(&n.Primaries, d.primaries))
	f.required("primaries", len(n.Primaries) == 0, n.Enabled)
	f.field("max_per_second", assign(&n.MaxPerSecond, d.intIn(1, maxNotifyPerSecond)))
	f.field("dedup_window", assign(&n.DedupWindow, d.durationBetween(0, maxNotifyDedupWindow, " (0s disables)")))
	f.field("retries", assign(&n.Retries, d.intIn(0, maxNotifyRetries)))
	n.TSIGKeys = d.tsigKeys(join(path, "tsig_keys"), m["tsig_keys"])
	d.unknown(path, m, notifyKeys())
	return n
}

// primaries decodes notify.primaries at path: a list of addresses or
// CIDRs, or one string of them separated by commas and/or spaces. It
// reports every invalid item and fails if there is one.
func (d *decoder) primaries(path string, v any) ([]netip.Prefix, bool) {
	return d.prefixList(path, v, parsePrimary)
}

// tsigKeys decodes notify.tsig_keys at path, v being its value in the
// file (nil when absent or null): a list of mappings. Secrets are not
// environment material: a DNSLB_ variable for the key is reported, not
// read. It reports every invalid item and returns the valid ones; nil
// when there are none.
func (d *decoder) tsigKeys(path string, v any) []TSIGKey {
	if name := envName(path); envSet(name) {
		d.add(path, "cannot be set from the environment (unset %s; list the keys in the file)", name)
	}
	if v == nil {
		return nil
	}
	items, ok := v.([]any)
	if !ok {
		d.add(path, "must be a list")
		return nil
	}
	var out []TSIGKey
	names := make(map[string]int, len(items))
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		m, ok := item.(map[string]any)
		if !ok {
			d.add(p, "must be a mapping")
			continue
		}
		k := TSIGKey{Algorithm: defaultTSIGAlgorithm}
		good := true
		if name, ok := d.tsigKeyName(p+".name", m["name"]); ok {
			if !duplicate(d, names, name, p+".name", path) {
				names[name] = i
			}
			k.Name = name
		} else {
			good = false
		}
		if a, ok := m["algorithm"]; ok && a != nil {
			k.Algorithm, ok = d.tsigAlgorithm(p+".algorithm", a)
			good = good && ok
		}
		k.Secret, ok = d.tsigSecret(p+".secret", m["secret"])
		good = good && ok
		d.unknown(p, m, tsigKeyKeys())
		if good {
			out = append(out, k)
		}
	}
	return out
}

// envSet reports whether the environment variable name is set, even to "".
func envSet(name string) bool {
	_, set := os.LookupEnv(name)
	return set
}

// tsigKeyName decodes notify.tsig_keys[i].name: a required domain name,
// returned in lower case and fully qualified.
func (d *decoder) tsigKeyName(path string, v any) (string, bool) {
	if v == nil {
		d.add(path, "required")
		return "", false
	}
	name, ok := d.domainName(path, v)
	if !ok {
		return "", false
	}
	if name == "" {
		d.add(path, "required")
		return "", false
	}
	return strings.ToLower(name), true
}

// tsigAlgorithm decodes notify.tsig_keys[i].algorithm, in any case and
// with or without the trailing dot, into its miekg/dns constant.
func (d *decoder) tsigAlgorithm(path string, v any) (string, bool) {
	s, ok := d.text(path, v)
	if !ok {
		return "", false
	}
	w := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	words := make([]string, len(tsigAlgorithms))
	for i, a := range tsigAlgorithms {
		if a.word == w {
			return a.alg, true
		}
		words[i] = a.word
	}
	d.add(path, "%q: must be one of %s", s, strings.Join(words, ", "))
	return "", false
}

// tsigSecret decodes notify.tsig_keys[i].secret: required standard base64
// of at least minTSIGSecretLen bytes, returned as given. Its messages never
// quote the value.
func (d *decoder) tsigSecret(path string, v any) (string, bool) {
	if v == nil {
		d.add(path, "required")
		return "", false
	}
	s, ok := d.text(path, v)
	if !ok {
		return "", false
	}
	if s == "" {
		d.add(path, "required")
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	switch {
	case err != nil:
		d.add(path, "not base64")
		return "", false
	case len(b) < minTSIGSecretLen:
		d.add(path, "decodes to %d bytes, want at least %d", len(b), minTSIGSecretLen)
		return "", false
	}
	return s, true
}

// Multicast ranges: never the source of a NOTIFY.
var (
	multicast4 = netip.MustParsePrefix("224.0.0.0/4")
	multicast6 = netip.MustParsePrefix("ff00::/8")
)

// parsePrimary parses a primary: an IP address (a /32 or /128) or a CIDR
// without host bits. On failure it returns a message for a Problem.
func parsePrimary(s string) (netip.Prefix, string) {
	pfx, msg := parsePrefix(s, "notify.interface", func(port bool) string {
		if port {
			return fmt.Sprintf("%q: not an IP address or CIDR (a primary takes no port)", s)
		}
		return fmt.Sprintf("%q: not an IP address or CIDR", s)
	})
	if msg != "" {
		return netip.Prefix{}, msg
	}
	a, n := pfx.Addr(), pfx.Bits()
	switch {
	case pfx.Masked() != pfx:
		return netip.Prefix{}, fmt.Sprintf("%q: host bits set (the network is %s)", s, pfx.Masked())
	case pfx.IsSingleIP() && a.IsUnspecified():
		return netip.Prefix{}, fmt.Sprintf("%q: unspecified address not allowed", s)
	case multicast4.Contains(a) && n >= multicast4.Bits(), multicast6.Contains(a) && n >= multicast6.Bits():
		return netip.Prefix{}, fmt.Sprintf("%q: multicast address not allowed", s)
	}
	return pfx, ""
}
