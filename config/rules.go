package config

import "net/netip"

// Checks that several sections share.

// duplicates reports every item of the n items of the list at path
// whose key, as key returns it, repeats an earlier item's; key returns
// false for the items to skip. The key is the value of sub in each item,
// or the item itself when sub is ""; the problem is reported there, and
// values with a problem are skipped.
func duplicates[K comparable](c *check, path, sub string, n int, key func(i int) (K, bool)) {
	seen := make(map[K]int, n)
	for i := range n {
		at := item(path, i)
		if sub != "" {
			at += "." + sub
		}
		k, ok := key(i)
		if !ok || !c.ok(at) {
			continue
		}
		if j, dup := seen[k]; dup {
			c.add(at, "duplicate of %s", item(path, j))
			continue
		}
		seen[k] = i
	}
}

// networks reports the items of the list of prefixes at path that have
// host bits set.
func networks(c *check, path string, list []netip.Prefix) {
	for i, pfx := range list {
		if p := item(path, i); c.ok(p) && pfx.IsValid() && pfx.Masked() != pfx {
			c.add(p, "%q: host bits set (the network is %s)", c.text(p), pfx.Masked())
		}
	}
}
