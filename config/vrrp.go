package config

import (
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// VRRP holds the key vrrp: whether this node shares virtual IP addresses
// (VIPs) with other dnslb nodes through VRRP, and how. Every value is
// validated even when Enabled is false; Interface, VRID and VIPs are
// required only when it is true.
//
// A node runs one VRRP instance per VRID, interface and address family.
// The section describes either one instance itself (the single-instance
// form: vrrp.vrid, vrrp.vips, ...) or a list of them (vrrp.instances),
// each item of the same type: an item starts from the section's values
// (all but vips, name, track, notify and instances) and overrides them
// key by key. [VRRP.InstanceList] returns the instances either way.
type VRRP struct {
	// Enabled is vrrp.enabled. It defaults to true when the file has a
	// vrrp section and to false when it has none; DNSLB_VRRP_ENABLED
	// overrides either.
	Enabled bool `mapstructure:"enabled" globalonly:"vrrp"`
	// Name names the instance in logs, metrics, status and the notify
	// script (vrrp.name, vrrp.instances[].name): 1-63 of A-Z a-z 0-9 _ .
	// -, unique among the instances. Required in vrrp.instances; the
	// single-instance form defaults to its VRID ("53").
	Name string `mapstructure:"name" kind:"quoted" note:"1-63 of A-Z a-z 0-9 _ . -; required in instances; default the vrid"`
	// Interface is the network interface the VIPs are added to and the
	// advertisements are sent on (vrrp.interface): 1-15 characters without
	// '/', ':' or whitespace, not "." or "..". Required when enabled.
	Interface string `mapstructure:"interface" kind:"interface" required:"enabled"`
	// VRID is the virtual router identifier (vrrp.vrid), 1-255, the same on
	// every node of the group and unique on the link. Required when
	// enabled.
	VRID int `mapstructure:"vrid" range:"1-255" required:"enabled"`
	// Priority is this node's priority (vrrp.priority), 1-255; default 100.
	// The highest priority becomes master; 255 means the node owns the
	// addresses and becomes master at once.
	Priority int `mapstructure:"priority" range:"1-255" note:"255 owns the VIPs (master at once)"`
	// AdvertInterval is the time between advertisements
	// (vrrp.advert_interval); default 1s. With Version 3 it is a multiple
	// of 10ms in [10ms, 40.95s]; with Version 2 whole seconds in [1s, 255s].
	AdvertInterval time.Duration `mapstructure:"advert_interval" note:"v3: [10ms, 40.95s] in steps of 10ms; v2: [1s, 255s] in whole seconds"`
	// Preempt is vrrp.preempt, default true: a node with a higher priority
	// than the master takes over. When false a backup becomes master only
	// when the master is gone.
	Preempt bool `mapstructure:"preempt"`
	// PreemptDelay delays preemption by this much (vrrp.preempt_delay), in
	// [0s, 1h]; default 0. It must stay 0 when Preempt is false.
	PreemptDelay time.Duration `mapstructure:"preempt_delay" range:"[0s, 1h]" note:"only with preempt true"`
	// Version is the VRRP version (vrrp.version): 3 (default, RFC 9568)
	// or 2 (RFC 3768, IPv4 only).
	Version int `mapstructure:"version" range:"2-3"`
	// VIPs holds the virtual addresses with their prefix length (vrrp.vips),
	// in file order: at least one when enabled, all of one family, no
	// duplicate addresses, none unspecified, multicast or loopback; IPv4
	// only with Version 2. A bare address is a /32 or /128. The address
	// keeps its host bits (192.0.2.53/24 is 192.0.2.53 on a /24 network);
	// IPv4-mapped IPv6 addresses are unmapped.
	VIPs []netip.Prefix `mapstructure:"vips" kind:"vip" required:"enabled" note:"one family"`
	// Peers holds the other nodes' own addresses when advertisements are
	// sent to them by unicast instead of to the VRRP multicast group
	// (vrrp.peers); nil means multicast. Same family as VIPs, no
	// duplicates, none unspecified, multicast or one of the VIPs.
	Peers []netip.Addr `mapstructure:"peers" kind:"peer" note:"unicast peer addresses; empty: multicast"`
	// ChecksumMode is vrrp.checksum_mode: "pseudo-header" (default) or
	// "rfc9568", which selects the IPv4 checksum computation RFC 9568
	// describes for interoperating with other implementations. "rfc9568"
	// applies to Version 3 over IPv4 only. Every node must use the same
	// mode.
	ChecksumMode string `mapstructure:"checksum_mode" enum:"pseudo-header|rfc9568" note:"rfc9568: VRRPv3 over IPv4 only"`
	// AuthPass is the VRRPv2 simple-text password (vrrp.auth_pass), 1-8
	// bytes, "" for none (default). Version 2 only. It protects against
	// mistakes, not attackers: it is sent in clear.
	AuthPass string `mapstructure:"auth_pass" kind:"quoted" note:"1-8 bytes, version 2 only; \"\" none"`
	// GARPRepeat is how many gratuitous ARPs (IPv4) or unsolicited
	// neighbour advertisements (IPv6) per VIP are sent on becoming master
	// (vrrp.garp_repeat), 1-100; default 5.
	GARPRepeat int `mapstructure:"garp_repeat" range:"1-100" note:"announcements per VIP on becoming master"`
	// GARPDelay is the delay after becoming master before a second burst
	// of GARPRepeat announcements (vrrp.garp_delay), in [0s, 1h]; default
	// 5s, 0 sends no second burst.
	GARPDelay time.Duration `mapstructure:"garp_delay" range:"[0s, 1h]" note:"before a second burst; 0s none"`
	// GARPRefresh re-announces the VIPs this often while master
	// (vrrp.garp_refresh): 0 (default) never, else in [1s, 24h].
	GARPRefresh time.Duration `mapstructure:"garp_refresh" range:"[1s, 24h] (0s disables)" note:"re-announce period while master"`
	// Sync makes the instance move with the node's other synced instances
	// (vrrp.sync, vrrp.instances[].sync), default true: when one of them
	// leaves master, all give up their VIPs, and they become master again
	// only together (keepalived's vrrp_sync_group). false: its VIPs move
	// on their own.
	Sync bool `mapstructure:"sync" note:"move with the node's other instances"`
	// Track ties this node's VRRP state to the health of its backends
	// (vrrp.track): it applies to every instance.
	Track VRRPTrack `mapstructure:"track" globalonly:"vrrp"`
	// Notify is the absolute path of a program run on each state
	// transition of each instance with the new state (backup, master,
	// fault or stopped) and the instance's name as its arguments
	// (vrrp.notify); "" (default) runs nothing. Whether it exists is
	// checked when it is run, not here.
	Notify string `mapstructure:"notify" globalonly:"vrrp" note:"absolute path of a program run on each state change: <state> <instance>"`
	// Instances lists the node's VRRP instances (vrrp.instances), when it
	// runs more than one (an IPv4 and an IPv6 instance, one per name
	// server); empty for the single-instance form. Each item starts from
	// the section's values and overrides them.
	Instances []VRRP `mapstructure:"instances" globalonly:"vrrp" fileonly:"list instances in the file"`
}

// instanceDefaults returns what an item of vrrp.instances starts from:
// the section's values but its name, VIPs and instances (and its peers'
// slice, copied).
func (v VRRP) instanceDefaults() VRRP {
	v.Name, v.VIPs, v.Instances = "", nil, nil
	v.Peers = slices.Clone(v.Peers)
	return v
}

// InstanceList returns the instances of the section: its items with
// their effective values, or the section itself as the one instance
// (named after its VRID unless it has a name). nil when disabled.
func (v VRRP) InstanceList() []VRRP {
	if !v.Enabled {
		return nil
	}
	if len(v.Instances) > 0 {
		return v.Instances
	}
	one := v
	one.Instances = nil
	if one.Name == "" {
		one.Name = strconv.Itoa(v.VRID)
	}
	return []VRRP{one}
}

// VRRPTrack ties the VRRP state to the health of the backends.
type VRRPTrack struct {
	// MinHealthyBackends is the number of healthy backends below which this
	// node stops claiming the VIPs (vrrp.track.min_healthy_backends),
	// 0-10000 and at most the number of backends; default 1, 0 disables
	// tracking.
	MinHealthyBackends int `mapstructure:"min_healthy_backends" range:"0-10000" note:"at most the number of backends; 0 disables"`
	// Weight says what happens below MinHealthyBackends
	// (vrrp.track.weight): 0 (default) enters the fault state and releases
	// the VIPs; 1-254 lowers the advertised priority by this much instead
	// (to at least 1), letting a healthier node take over.
	Weight int `mapstructure:"weight" range:"0-254" note:"0: fault (release the VIPs); 1-254: lower the priority"`
}
