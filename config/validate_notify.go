package config

import (
	"encoding/base64"
	"net/netip"
	"strings"
)

// validateNotify checks the primaries, which are sources, and the TSIG
// keys: names unique in lower case, secrets long enough. It stores key
// names in lower case.
func validateNotify(c *check, n *Notify) {
	const path = "notify"
	if c.unread[path] {
		return // not a mapping: nothing was read
	}
	primaries := path + ".primaries"
	networks(c, primaries, n.Primaries)
	for i, pfx := range n.Primaries {
		if p := item(primaries, i); c.ok(p) && pfx.IsValid() {
			sourcePrefix(c, p, pfx)
		}
	}
	duplicates(c, primaries, "", len(n.Primaries), func(i int) (netip.Prefix, bool) {
		return n.Primaries[i], n.Primaries[i].IsValid()
	})

	keys := path + ".tsig_keys"
	for i := range n.TSIGKeys {
		k := &n.TSIGKeys[i]
		k.Name = strings.ToLower(k.Name)
		if p := item(keys, i) + ".secret"; c.set(p) && k.Secret != "" {
			tsigSecret(c, p, k.Secret)
		}
	}
	duplicates(c, keys, "name", len(n.TSIGKeys), func(i int) (string, bool) {
		return n.TSIGKeys[i].Name, n.TSIGKeys[i].Name != ""
	})
}

// sourcePrefix reports pfx, the prefix at p, when it can hold no source
// address: the unspecified address, or multicast addresses only.
func sourcePrefix(c *check, p string, pfx netip.Prefix) {
	multicast4, multicast6 := netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("ff00::/8")
	a, n := pfx.Addr(), pfx.Bits()
	switch {
	case pfx.IsSingleIP() && a.IsUnspecified():
		c.add(p, "%q: unspecified address not allowed", c.text(p))
	case multicast4.Contains(a) && n >= multicast4.Bits(), multicast6.Contains(a) && n >= multicast6.Bits():
		c.add(p, "%q: multicast address not allowed", c.text(p))
	}
}

// tsigSecret checks secret, the TSIG secret at p: standard base64 of at
// least 16 bytes. Its messages never quote it.
func tsigSecret(c *check, p, secret string) {
	const minLen = 16
	switch b, err := base64.StdEncoding.DecodeString(secret); {
	case err != nil:
		c.add(p, "not base64")
	case len(b) < minLen:
		c.add(p, "decodes to %d bytes, want at least %d", len(b), minLen)
	}
}
