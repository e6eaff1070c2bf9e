package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"time"
)

// validateVRRP checks the VRRP section at path against itself: the
// advertisement interval and the addresses against the version, the
// peers against the VIPs, the options that need a version or family.
// backends is the number of backends, 0 when they are missing.
//
// An item of vrrp.instances is checked the same way, with the values it
// inherits from the section: a problem of an inherited value is reported
// at the section's key (see [vrrpKey]).
func validateVRRP(c *check, path string, v VRRP, backends int) {
	if c.unread[path] {
		return // not a mapping: nothing was read
	}
	version := 0 // unknown: any version's rules are accepted
	if vrrpKey(c, path, "version") != "" {
		version = v.Version
	}
	vrrpTiming(c, path, v, version)
	family := vrrpAddresses(c, path, v, version)
	vrrpOptions(c, path, v, version, family, backends)
}

// vrrpTiming checks advert_interval against the version and that
// preempt_delay is 0 without preempt.
func vrrpTiming(c *check, path string, v VRRP, version int) {
	if p := vrrpKey(c, path, "advert_interval"); p != "" {
		if msg := advertIntervalProblem(v.AdvertInterval, version); msg != "" {
			c.add(p, "%s", msg)
		}
	}
	if p, pre := vrrpKey(c, path, "preempt_delay"), vrrpKey(c, path, "preempt"); p != "" && v.PreemptDelay > 0 && pre != "" && !v.Preempt {
		c.add(p, "has no effect with %s false", pre)
	}
}

// vrrpKey returns the path of key in the VRRP section or instance at
// path when its value was given without problem: there, or for an item
// of vrrp.instances that inherits it, in the section; "" when it holds
// the default. Problems of the instance are reported at its own keys.
func vrrpKey(c *check, path, key string) string {
	p := join(path, key)
	if c.set(p) || path != "vrrp" && c.set(join("vrrp", key)) {
		return p
	}
	return ""
}

// advertIntervalProblem returns what is wrong with dur as the advertisement
// interval of VRRP version (0 when the version is unknown: any version's
// range is accepted), or "".
func advertIntervalProblem(dur time.Duration, version int) string {
	const (
		minV3 = 10 * time.Millisecond
		maxV3 = 4095 * 10 * time.Millisecond
		minV2 = time.Second
		maxV2 = 255 * time.Second
	)
	v3 := dur >= minV3 && dur <= maxV3 && dur%(10*time.Millisecond) == 0
	v2 := dur >= minV2 && dur <= maxV2 && dur%time.Second == 0
	if version == 2 {
		switch {
		case v2:
			return ""
		case v3:
			return fmt.Sprintf("%s needs vrrp.version 3 (VRRPv2 counts whole seconds)", fmtDuration(dur))
		case dur < minV2 || dur > maxV2:
			return fmt.Sprintf("%s out of range [%s, %s] for vrrp.version 2", fmtDuration(dur), fmtDuration(minV2), fmtDuration(maxV2))
		}
		return fmt.Sprintf("%s is not a whole number of seconds (VRRPv2 counts whole seconds)", fmtDuration(dur))
	}
	switch {
	case v3 || version == 0 && v2:
		return ""
	case dur < minV3 || dur > maxV3:
		return fmt.Sprintf("%s out of range [%s, %s]", fmtDuration(dur), fmtDuration(minV3), fmtDuration(maxV3))
	}
	return fmt.Sprintf("%s is not a multiple of 10ms (VRRPv3 counts centiseconds)", fmtDuration(dur))
}

// vrrpAddresses checks the VIPs and the peers: usable addresses of one
// family, IPv4 for version 2, no duplicates, no peer that is a VIP. It
// returns their family, "" when unknown.
func vrrpAddresses(c *check, path string, v VRRP, version int) string {
	vipAt, family := vrrpVIPs(c, path, v.VIPs, version)
	peers := path // the peers an instance inherits are the section's
	if !c.given[path+".peers"] {
		peers = "vrrp"
	}
	return vrrpPeers(c, path, peers, v.Peers, version, family, vipAt)
}

// vrrpVIPs checks the VIPs and returns the index of each valid one by
// address, and their family.
func vrrpVIPs(c *check, path string, vips []netip.Prefix, version int) (map[netip.Addr]int, string) {
	family, at, v2Reported := "", make(map[netip.Addr]int), false
	for i, pfx := range vips {
		p, a := item(path+".vips", i), pfx.Addr()
		if !c.ok(p) || !addrUsable(c, p, a, false) || !sameFamily(c, p, a, &family, "") {
			continue
		}
		if j, dup := at[a]; dup {
			c.add(p, "duplicate of %s", item(path+".vips", j))
			continue
		}
		if a.Is6() && version == 2 && !v2Reported {
			c.add(p, "IPv6 needs %s.version 3 (VRRPv2 is IPv4 only)", path)
			v2Reported = true
		}
		at[a] = i
	}
	return at, family
}

// vrrpPeers checks the peers against each other and the VIPs, family
// being theirs ("" when unknown) and vipAt their indexes. It returns the
// family of the addresses.
func vrrpPeers(c *check, path, peersAt string, peers []netip.Addr, version int, family string, vipAt map[netip.Addr]int) string {
	ref := "" // the key the family comes from, when it is not the peers
	if family != "" {
		ref = path + ".vips"
	}
	seen, v2Reported := make(map[netip.Addr]int), false
	for i, a := range peers {
		p := item(peersAt+".peers", i)
		if !c.ok(p) || !addrUsable(c, p, a, true) || !sameFamily(c, p, a, &family, ref) {
			continue
		}
		if j, dup := seen[a]; dup {
			c.add(p, "duplicate of %s", item(peersAt+".peers", j))
			continue
		}
		if j, vip := vipAt[a.WithZone("")]; vip {
			c.add(p, "%q: is %s (list the other nodes' own addresses)", c.text(p), item(path+".vips", j))
			continue
		}
		// With VIPs of the wrong family the VIPs carry the complaint.
		if a.Is6() && version == 2 && ref == "" && !v2Reported {
			c.add(p, "IPv6 needs %s.version 3 (VRRPv2 is IPv4 only)", path)
			v2Reported = true
		}
		seen[a] = i
	}
	return family
}

// addrUsable reports whether a, the address of the item at p, may be a
// VRRP address, else records why not; a loopback address may be a peer.
func addrUsable(c *check, p string, a netip.Addr, peer bool) bool {
	var what string
	switch {
	case a.IsUnspecified():
		what = "unspecified"
	case a.IsMulticast():
		what = "multicast"
	case a.IsLoopback() && !peer:
		what = "loopback"
	default:
		return true
	}
	c.add(p, "%q: %s address not allowed", c.text(p), what)
	return false
}

// sameFamily reports whether a, the address of the item at p, is of
// *family ("IPv4" or "IPv6"), setting it when it is still unknown, else
// records that it mixes families. ref names the key *family comes from
// when it is another list.
func sameFamily(c *check, p string, a netip.Addr, family *string, ref string) bool {
	f := "IPv6"
	if a.Is4() {
		f = "IPv4"
	}
	switch {
	case *family == "":
		*family = f
	case f == *family:
	case ref != "":
		c.add(p, "mixes %s with the %s %s; run one VRRP instance per family", f, *family, ref)
		return false
	default:
		c.add(p, "mixes %s with %s; run one VRRP instance per family", f, *family)
		return false
	}
	return true
}

// vrrpOptions checks the keys that depend on the version, the address
// family or the number of backends.
func vrrpOptions(c *check, path string, v VRRP, version int, family string, backends int) {
	if p := vrrpKey(c, path, "checksum_mode"); p != "" && v.ChecksumMode == "rfc9568" && (version == 2 || family == "IPv6") {
		c.add(p, "rfc9568 applies to VRRPv3 over IPv4 only")
	}
	if p := vrrpKey(c, path, "auth_pass"); p != "" && v.AuthPass != "" {
		// The password is never echoed into a message.
		if len(v.AuthPass) > 8 {
			c.add(p, "longer than 8 bytes")
		}
		if version == 3 {
			c.add(p, "only for %s.version 2 (VRRPv3 has no authentication)", path)
		}
	}
	if p := path + ".track.min_healthy_backends"; c.set(p) && backends > 0 && v.Track.MinHealthyBackends > backends {
		c.add(p, "%d exceeds the number of backends (%d)", v.Track.MinHealthyBackends, backends)
	}
	if p := path + ".notify"; c.set(p) && v.Notify != "" && !filepath.IsAbs(v.Notify) {
		c.add(p, "%q: must be an absolute path", v.Notify)
	}
}

// validateVRRPInstances checks vrrp.instances: each item as an instance
// of its own (validateVRRP, with what it inherits), its name, and that
// VRIDs are unique per interface and address family (RFC 5798: an IPv4
// and an IPv6 instance may share one). The single-instance keys vips and
// name do not go with a list.
func validateVRRPInstances(c *check, v VRRP, backends int) {
	if len(v.Instances) == 0 {
		if p := "vrrp.name"; c.set(p) {
			instanceName(c, p, v.Name)
		}
		return
	}
	for k, set := range map[string]bool{"vrrp.name": v.Name != "", "vrrp.vips": len(v.VIPs) > 0} {
		if set {
			c.add(k, "not allowed with vrrp.instances (give each instance its own)")
		}
	}
	type slot struct {
		iface, family string
		vrid          int
	}
	used := map[slot]int{}
	for i, inst := range v.Instances {
		p := item("vrrp.instances", i)
		if c.unread[p] {
			continue
		}
		if inst.Name == "" && c.ok(p+".name") {
			c.add(p+".name", "required")
		} else if c.set(p + ".name") {
			instanceName(c, p+".name", inst.Name)
		}
		validateVRRP(c, p, inst, backends)
		family := vipFamily(inst.VIPs)
		if inst.VRID == 0 || inst.Interface == "" || family == "" || !c.ok(p+".vips") {
			continue
		}
		k := slot{inst.Interface, family, inst.VRID}
		if j, dup := used[k]; dup {
			c.add(p+".vrid", "%d is already used by instances[%d] on %s for %s", inst.VRID, j, inst.Interface, family)
			continue
		}
		used[k] = i
	}
	duplicates(c, "vrrp.instances", "name", len(v.Instances), func(i int) (string, bool) {
		return v.Instances[i].Name, v.Instances[i].Name != ""
	})
}

// instanceName checks a VRRP instance name at p (the rules of backend
// names: it labels metrics and is passed to the notify script).
func instanceName(c *check, p, name string) {
	if problem := nameProblem(name); problem != "" {
		c.add(p, "%q: %s", name, problem)
	}
}

// vipFamily returns the family of the first VIP, "" when there is none.
func vipFamily(vips []netip.Prefix) string {
	switch {
	case len(vips) == 0:
		return ""
	case vips[0].Addr().Is4():
		return "IPv4"
	}
	return "IPv6"
}
