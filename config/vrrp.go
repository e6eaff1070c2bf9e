package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
)

// VRRP holds the key vrrp: whether this node shares virtual IP addresses
// (VIPs) with other dnslb nodes through VRRP, and how. Every value is
// validated even when Enabled is false; Interface, VRID and VIPs are
// required only when it is true.
type VRRP struct {
	// Enabled is vrrp.enabled. It defaults to true when the file has a
	// vrrp section and to false when it has none; DNSLB_VRRP_ENABLED
	// overrides either.
	Enabled bool
	// Interface is the network interface the VIPs are added to and the
	// advertisements are sent on (vrrp.interface): 1-15 characters without
	// '/', ':' or whitespace, not "." or "..". Required when enabled.
	Interface string
	// VRID is the virtual router identifier (vrrp.vrid), 1-255, the same on
	// every node of the group and unique on the link. Required when
	// enabled.
	VRID int
	// Priority is this node's priority (vrrp.priority), 1-255; default 100.
	// The highest priority becomes master; 255 means the node owns the
	// addresses and becomes master at once.
	Priority int
	// AdvertInterval is the time between advertisements
	// (vrrp.advert_interval); default 1s. With Version 3 it is a multiple
	// of 10ms in [10ms, 40.95s]; with Version 2 whole seconds in [1s, 255s].
	AdvertInterval time.Duration
	// Preempt is vrrp.preempt, default true: a node with a higher priority
	// than the master takes over. When false a backup becomes master only
	// when the master is gone.
	Preempt bool
	// PreemptDelay delays preemption by this much (vrrp.preempt_delay), in
	// [0s, 1h]; default 0. It must stay 0 when Preempt is false.
	PreemptDelay time.Duration
	// Version is the VRRP version (vrrp.version): 3 (default, RFC 9568)
	// or 2 (RFC 3768, IPv4 only).
	Version int
	// VIPs holds the virtual addresses with their prefix length (vrrp.vips),
	// in file order: at least one when enabled, all of one family, no
	// duplicate addresses, none unspecified, multicast or loopback; IPv4
	// only with Version 2. A bare address is a /32 or /128. The address
	// keeps its host bits (192.0.2.53/24 is 192.0.2.53 on a /24 network);
	// IPv4-mapped IPv6 addresses are unmapped.
	VIPs []netip.Prefix
	// Peers holds the other nodes' own addresses when advertisements are
	// sent to them by unicast instead of to the VRRP multicast group
	// (vrrp.peers); nil means multicast. Same family as VIPs, no
	// duplicates, none unspecified, multicast or one of the VIPs.
	Peers []netip.Addr
	// ChecksumMode is vrrp.checksum_mode: "pseudo-header" (default) or
	// "rfc9568", which selects the IPv4 checksum computation RFC 9568
	// describes for interoperating with other implementations. "rfc9568"
	// applies to Version 3 over IPv4 only. Every node must use the same
	// mode.
	ChecksumMode string
	// AuthPass is the VRRPv2 simple-text password (vrrp.auth_pass), 1-8
	// bytes, "" for none (default). Version 2 only. It protects against
	// mistakes, not attackers: it is sent in clear.
	AuthPass string
	// GARPRepeat is how many gratuitous ARPs (IPv4) or unsolicited
	// neighbour advertisements (IPv6) per VIP are sent on becoming master
	// (vrrp.garp_repeat), 1-100; default 5.
	GARPRepeat int
	// GARPDelay is the delay after becoming master before a second burst
	// of GARPRepeat announcements (vrrp.garp_delay), in [0s, 1h]; default
	// 5s, 0 sends no second burst.
	GARPDelay time.Duration
	// GARPRefresh re-announces the VIPs this often while master
	// (vrrp.garp_refresh): 0 (default) never, else in [1s, 24h].
	GARPRefresh time.Duration
	// Track ties this node's VRRP state to the health of its backends
	// (vrrp.track).
	Track VRRPTrack
	// Notify is the absolute path of a program run on each state
	// transition with the new state (backup, master, fault or stopped) as
	// its argument (vrrp.notify); "" (default) runs nothing. Whether it
	// exists is checked when it is run, not here.
	Notify string
}

// VRRPTrack ties the VRRP state to the health of the backends.
type VRRPTrack struct {
	// MinHealthyBackends is the number of healthy backends below which this
	// node stops claiming the VIPs (vrrp.track.min_healthy_backends),
	// 0-10000 and at most the number of backends; default 1, 0 disables
	// tracking.
	MinHealthyBackends int
	// Weight says what happens below MinHealthyBackends
	// (vrrp.track.weight): 0 (default) enters the fault state and releases
	// the VIPs; 1-254 lowers the advertised priority by this much instead
	// (to at least 1), letting a healthier node take over.
	Weight int
}

// Equal reports whether v and o hold the same settings; VIPs and Peers are
// compared in order.
func (v VRRP) Equal(o VRRP) bool {
	return v.Enabled == o.Enabled &&
		v.Interface == o.Interface &&
		v.VRID == o.VRID &&
		v.Priority == o.Priority &&
		v.AdvertInterval == o.AdvertInterval &&
		v.Preempt == o.Preempt &&
		v.PreemptDelay == o.PreemptDelay &&
		v.Version == o.Version &&
		slices.Equal(v.VIPs, o.VIPs) &&
		slices.Equal(v.Peers, o.Peers) &&
		v.ChecksumMode == o.ChecksumMode &&
		v.AuthPass == o.AuthPass &&
		v.GARPRepeat == o.GARPRepeat &&
		v.GARPDelay == o.GARPDelay &&
		v.GARPRefresh == o.GARPRefresh &&
		v.Track == o.Track &&
		v.Notify == o.Notify
}

// Checksum modes accepted in vrrp.checksum_mode.
const (
	checksumPseudoHeader = "pseudo-header"
	checksumRFC9568      = "rfc9568"
)

// Defaults of the vrrp section, as written in a file.
const (
	defaultVRRPPriority       = 100
	defaultVRRPAdvertInterval = "1s"
	defaultVRRPPreempt        = true
	defaultVRRPPreemptDelay   = "0s"
	defaultVRRPVersion        = 3
	defaultVRRPChecksumMode   = checksumPseudoHeader
	defaultVRRPGARPRepeat     = 5
	defaultVRRPGARPDelay      = "5s"
	defaultVRRPGARPRefresh    = "0s"
	defaultVRRPMinHealthy     = 1
	defaultVRRPTrackWeight    = 0
)

// Allowed vrrp ranges.
const (
	maxIfaceLen        = 15 // Linux IFNAMSIZ less the terminating NUL
	maxVRID            = 255
	maxVRRPPriority    = 255
	minAdvertV3        = 10 * time.Millisecond
	maxAdvertV3        = 4095 * 10 * time.Millisecond
	minAdvertV2        = time.Second
	maxAdvertV2        = 255 * time.Second
	maxPreemptDelay    = time.Hour
	maxAuthPass        = 8
	maxGARPRepeat      = 100
	maxGARPDelay       = time.Hour
	minGARPRefresh     = time.Second
	maxGARPRefresh     = 24 * time.Hour
	maxMinHealthy      = 10000
	maxVRRPTrackWeight = 254
)

// Known keys of the vrrp mappings, in schema order.
func vrrpKeys() []string {
	return []string{"enabled", "interface", "vrid", "priority", "advert_interval", "preempt", "preempt_delay",
		"version", "vips", "peers", "checksum_mode", "auth_pass", "garp_repeat", "garp_delay", "garp_refresh",
		"track", "notify"}
}
func vrrpTrackKeys() []string { return []string{"min_healthy_backends", "weight"} }

// defaultVRRP returns the vrrp section of a file without one.
func defaultVRRP() VRRP {
	return VRRP{
		Priority:       defaultVRRPPriority,
		AdvertInterval: time.Second,
		Preempt:        defaultVRRPPreempt,
		Version:        defaultVRRPVersion,
		ChecksumMode:   defaultVRRPChecksumMode,
		GARPRepeat:     defaultVRRPGARPRepeat,
		GARPDelay:      5 * time.Second,
		Track:          VRRPTrack{MinHealthyBackends: defaultVRRPMinHealthy, Weight: defaultVRRPTrackWeight},
	}
}

// vrrp decodes the section vrrp. Every key comes through viper
// (environment > file > default); the file decides only whether the
// section is present and which keys are unknown. backends is the number of
// backends, 0 when they are missing.
func (d *decoder) vrrp(backends int) VRRP {
	const path = "vrrp"
	v := defaultVRRP()
	m, present, ok := d.openSection(path)
	if !ok {
		return v
	}
	v.Enabled = present
	f := d.viperFields(path)
	field, st := f.field, f.st

	// advert_interval depends on version, which comes later in schema
	// order: decode version first and report its problems in their place.
	saved := d.problems
	d.problems = nil
	field("version", assign(&v.Version, d.intIn(2, 3)))
	versionProblems := d.problems
	d.problems = saved
	version := v.Version // 0: unknown
	if st["version"] != keySet {
		version = 0
	}

	field("enabled", assign(&v.Enabled, d.boolean))
	field("interface", assign(&v.Interface, d.ifaceName))
	f.required("interface", v.Interface == "", v.Enabled)
	field("vrid", assign(&v.VRID, d.intIn(1, maxVRID)))
	f.required("vrid", st["vrid"] == keyAbsent, v.Enabled)
	field("priority", assign(&v.Priority, d.intIn(1, maxVRRPPriority)))
	field("advert_interval", func(p string, x any) bool {
		dur, ok := d.parseDuration(p, x)
		if !ok {
			return false
		}
		if msg := advertIntervalProblem(dur, version); msg != "" {
			d.add(p, "%s", msg)
			return false
		}
		v.AdvertInterval = dur
		return true
	})
	field("preempt", assign(&v.Preempt, d.boolean))
	field("preempt_delay", func(p string, x any) bool {
		dur, ok := d.durationIn(p, x, 0, maxPreemptDelay, "")
		switch {
		case !ok:
			return false
		case dur > 0 && st["preempt"] == keySet && !v.Preempt:
			d.add(p, "has no effect with vrrp.preempt false")
			return false
		}
		v.PreemptDelay = dur
		return true
	})
	d.problems = append(d.problems, versionProblems...)

	// vips and peers decide the address family the later keys check.
	var vipFamily string
	vipAt := make(map[netip.Addr]int)
	field("vips", func(p string, x any) bool {
		vips, ok := d.vips(p, x, version, &vipFamily, vipAt)
		if ok {
			v.VIPs = vips
		}
		return ok
	})
	f.required("vips", len(v.VIPs) == 0, v.Enabled)
	family := vipFamily
	field("peers", func(p string, x any) bool {
		peers, ok := d.peers(p, x, version, &family, vipAt)
		if ok {
			v.Peers = peers
		}
		return ok
	})
	field("checksum_mode", assign(&v.ChecksumMode, validated(d.choice(checksumPseudoHeader, checksumRFC9568), func(p, w string) bool {
		if w == checksumRFC9568 && (version == 2 || family == "IPv6") {
			d.add(p, "rfc9568 applies to VRRPv3 over IPv4 only")
			return false
		}
		return true
	})))
	field("auth_pass", func(p string, x any) bool {
		s, ok := d.quotedString(p, x)
		if !ok || s == "" {
			return ok
		}
		// The password is never echoed into a message.
		if len(s) > maxAuthPass {
			d.add(p, "longer than %d bytes", maxAuthPass)
			ok = false
		}
		if version == 3 {
			d.add(p, "only for vrrp.version 2 (VRRPv3 has no authentication)")
			ok = false
		}
		if ok {
			v.AuthPass = s
		}
		return ok
	})
	field("garp_repeat", assign(&v.GARPRepeat, d.intIn(1, maxGARPRepeat)))
	field("garp_delay", assign(&v.GARPDelay, d.durationBetween(0, maxGARPDelay, "")))
	field("garp_refresh", func(p string, x any) bool {
		dur, ok := d.parseDuration(p, x)
		if ok && dur != 0 {
			dur, ok = d.durationIn(p, dur, minGARPRefresh, maxGARPRefresh, " (0s disables)")
		}
		if ok {
			v.GARPRefresh = dur
		}
		return ok
	})
	if d.subsection(path, m, "track") {
		field("track.min_healthy_backends", func(p string, x any) bool {
			n, ok := d.integer(p, x, 0, maxMinHealthy)
			if ok && backends > 0 && n > backends {
				d.add(p, "%d exceeds the number of backends (%d)", n, backends)
				ok = false
			}
			if ok {
				v.Track.MinHealthyBackends = n
			}
			return ok
		})
		field("track.weight", assign(&v.Track.Weight, d.intIn(0, maxVRRPTrackWeight)))
		d.unknown(path+".track", m["track"], vrrpTrackKeys())
	}
	field("notify", func(p string, x any) bool {
		s, ok := d.text(p, x)
		switch {
		case !ok:
			return false
		case s == "":
			return true
		case !filepath.IsAbs(s):
			d.add(p, "%q: must be an absolute path", s)
			return false
		}
		v.Notify = s
		return true
	})
	d.unknown(path, m, vrrpKeys())
	return v
}

// advertIntervalProblem returns what is wrong with dur as the advertisement
// interval of VRRP version (0 when the version is unknown: any version's
// range is accepted), or "".
func advertIntervalProblem(dur time.Duration, version int) string {
	v3 := dur >= minAdvertV3 && dur <= maxAdvertV3 && dur%(10*time.Millisecond) == 0
	v2 := dur >= minAdvertV2 && dur <= maxAdvertV2 && dur%time.Second == 0
	if version == 2 {
		switch {
		case v2:
			return ""
		case v3:
			return fmt.Sprintf("%s needs vrrp.version 3 (VRRPv2 counts whole seconds)", fmtDuration(dur))
		case dur < minAdvertV2 || dur > maxAdvertV2:
			return fmt.Sprintf("%s out of range [%s, %s] for vrrp.version 2", fmtDuration(dur), fmtDuration(minAdvertV2), fmtDuration(maxAdvertV2))
		}
		return fmt.Sprintf("%s is not a whole number of seconds (VRRPv2 counts whole seconds)", fmtDuration(dur))
	}
	switch {
	case v3 || version == 0 && v2:
		return ""
	case dur < minAdvertV3 || dur > maxAdvertV3:
		return fmt.Sprintf("%s out of range [%s, %s]", fmtDuration(dur), fmtDuration(minAdvertV3), fmtDuration(maxAdvertV3))
	}
	return fmt.Sprintf("%s is not a multiple of 10ms (VRRPv3 counts centiseconds)", fmtDuration(dur))
}

// vips decodes vrrp.vips at path for VRRP version (0 if unknown). It sets
// *family to the family of the first valid address ("IPv4" or "IPv6") and
// fills at with every accepted address and its index, even when some items
// are invalid, so that later keys can be checked against them.
func (d *decoder) vips(path string, v any, version int, family *string, at map[netip.Addr]int) ([]netip.Prefix, bool) {
	items, ok := d.list(path, v, `"ip/len" strings`)
	if !ok {
		return nil, false
	}
	var out []netip.Prefix
	v2Reported := false
	ok = d.eachText(path, items, func(i int, p, s string) {
		pfx, msg := parseVIP(s)
		if msg != "" {
			d.add(p, "%s", msg)
			return
		}
		a := pfx.Addr()
		if msg := specialAddr(a); msg != "" {
			d.add(p, "%q: %s address not allowed", s, msg)
			return
		}
		f := familyOf(a)
		switch {
		case *family == "":
			*family = f
		case f != *family:
			d.add(p, "mixes %s with %s; run one VRRP instance per family", f, *family)
			return
		}
		if duplicate(d, at, a, p, path) {
			return
		}
		if f == "IPv6" && version == 2 && !v2Reported {
			d.add(p, "IPv6 needs vrrp.version 3 (VRRPv2 is IPv4 only)")
			v2Reported = true
		}
		at[a] = i
		out = append(out, pfx)
	})
	return out, ok
}

// peers decodes vrrp.peers at path for VRRP version (0 if unknown). family
// is the family of the VIPs, "" when unknown; it is then set to the family
// of the first valid peer. vips maps each VIP to its index.
func (d *decoder) peers(path string, v any, version int, family *string, vips map[netip.Addr]int) ([]netip.Addr, bool) {
	items, ok := d.list(path, v, "IP addresses")
	if !ok {
		return nil, false
	}
	fromVIPs := *family != ""
	var out []netip.Addr
	seen := make(map[netip.Addr]int, len(items))
	v2Reported := false
	ok = d.eachText(path, items, func(i int, p, s string) {
		a, msg := parsePeer(s)
		if msg != "" {
			d.add(p, "%s", msg)
			return
		}
		if msg := specialAddr(a); msg != "" && msg != "loopback" {
			d.add(p, "%q: %s address not allowed", s, msg)
			return
		}
		f := familyOf(a)
		switch {
		case *family == "":
			*family = f
		case f != *family && fromVIPs:
			d.add(p, "mixes %s with the %s vrrp.vips; run one VRRP instance per family", f, *family)
			return
		case f != *family:
			d.add(p, "mixes %s with %s; run one VRRP instance per family", f, *family)
			return
		}
		if duplicate(d, seen, a, p, path) {
			return
		}
		if j, vip := vips[a.WithZone("")]; vip {
			d.add(p, "%q: is vrrp.vips[%d] (list the other nodes' own addresses)", s, j)
			return
		}
		// With VIPs of the wrong family the VIPs carry the complaint.
		if f == "IPv6" && version == 2 && !fromVIPs && !v2Reported {
			d.add(p, "IPv6 needs vrrp.version 3 (VRRPv2 is IPv4 only)")
			v2Reported = true
		}
		seen[a] = i
		out = append(out, a)
	})
	return out, ok
}

// parseVIP parses "ip/len" or a bare "ip" (a /32 or /128). On failure it
// returns a message for a Problem.
func parseVIP(s string) (netip.Prefix, string) {
	return parsePrefix(s, "vrrp.interface", func(port bool) string {
		if port {
			return fmt.Sprintf("%q: no port allowed, write an address such as 192.0.2.53/24", s)
		}
		return fmt.Sprintf("%q: not an IP address or prefix such as 192.0.2.53/24", s)
	})
}

// parsePeer parses a peer's IP address. On failure it returns a message for
// a Problem.
func parsePeer(s string) (netip.Addr, string) {
	t := strings.TrimSpace(s)
	a, err := netip.ParseAddr(t)
	if err == nil {
		return a.Unmap(), ""
	}
	if _, err := netip.ParsePrefix(t); err == nil {
		return netip.Addr{}, fmt.Sprintf("%q: not an IP address (a peer takes no prefix length)", s)
	}
	if _, msg := parseAddrPort(t); msg == "" {
		return netip.Addr{}, fmt.Sprintf("%q: not an IP address (a peer takes no port)", s)
	}
	return netip.Addr{}, fmt.Sprintf("%q: not an IP address", s)
}

// specialAddr names the kind of a that cannot be a VRRP address:
// "unspecified", "multicast" or "loopback"; "" for others.
func specialAddr(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	case a.IsLoopback():
		return "loopback"
	}
	return ""
}

// familyOf returns "IPv4" or "IPv6".
func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// ifaceName decodes a Linux network interface name; "" is returned as is
// (the caller decides whether it is required).
func (d *decoder) ifaceName(path string, v any) (string, bool) {
	s, ok := d.text(path, v)
	switch {
	case !ok:
		return "", false
	case s == "":
		return "", true
	case len(s) > maxIfaceLen:
		d.add(path, "%q: longer than %d characters", s, maxIfaceLen)
	case strings.IndexFunc(s, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) }) >= 0:
		d.add(path, "%q: may not contain '/', ':' or whitespace", s)
	case s == "." || s == "..":
		d.add(path, "%q: not an interface name", s)
	default:
		return s, true
	}
	return "", false
}

// quotedString decodes v, the value at path, as a string that YAML must not
// read as anything else: a number or boolean is a problem, because YAML
// may have changed it (0123 reads as 83).
func (d *decoder) quotedString(path string, v any) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	if _, scalar := scalarText(v); scalar {
		d.add(path, "must be a string, not %s (quote it)", kind(v))
	} else {
		d.add(path, "must be a string, not %s", kind(v))
	}
	return "", false
}
