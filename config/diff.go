package config

import (
	"net/netip"
	"reflect"
	"slices"
)

// RestartOnly returns the key paths whose values differ between old and new
// but cannot change on a live reload, in this order: "listen" (compared as
// a set, so reordering is not a change), "config_watch", "admin.listen",
// "admin.pprof", "admin.token", "tuning" (any key of the section),
// "vrrp.enabled", "notify.interface" (unless notify is disabled before and
// after), "notify.enabled", and "bgp.enabled", "bgp.mode", "bgp.local_as",
// "bgp.router_id", "bgp.interface" (unless bgp is disabled before and
// after; the other bgp keys apply on a reload: neighbours are added,
// removed or updated, communities, MED and next hops re-announced). The other vrrp keys apply on a reload:
// instances are added, removed and updated in place, except that an
// instance whose interface, VRID, address family or sync changes keeps
// running as it was until a restart (the daemon logs which). The other
// notify keys (primaries, max_per_second, dedup_window, retries,
// track_qps, max_tracked, tsig_keys) may change too. It returns nil if none differ. Both
// configurations must be non-nil.
func RestartOnly(old, new *Config) []string {
	var keys []string
	if !sameAddrSet(old.Listen, new.Listen) {
		keys = append(keys, "listen")
	}
	if old.ConfigWatch != new.ConfigWatch {
		keys = append(keys, "config_watch")
	}
	if old.Admin.Listen != new.Admin.Listen {
		keys = append(keys, "admin.listen")
	}
	if old.Admin.PProf != new.Admin.PProf {
		keys = append(keys, "admin.pprof")
	}
	if old.Admin.Token != new.Admin.Token {
		keys = append(keys, "admin.token")
	}
	if old.Tuning != new.Tuning {
		keys = append(keys, "tuning")
	}
	if old.VRRP.Enabled != new.VRRP.Enabled {
		keys = append(keys, "vrrp.enabled")
	}
	if (old.Notify.Enabled || new.Notify.Enabled) && old.Notify.Interface != new.Notify.Interface {
		keys = append(keys, "notify.interface")
	}
	if old.Notify.Enabled != new.Notify.Enabled {
		keys = append(keys, "notify.enabled")
	}
	return append(keys, bgpRestartOnly(old, new)...)
}

// sameAddrSet reports whether a and b hold the same addresses in any order.
// Validated configurations hold no duplicates.
func sameAddrSet(a, b []netip.AddrPort) bool {
	if len(a) != len(b) {
		return false
	}
	for _, ap := range a {
		if !slices.Contains(b, ap) {
			return false
		}
	}
	return true
}

// BackendChanges describes the backend-level differences between two
// configurations, by backend name, for logging a reload. Each list is
// sorted; nil when empty.
type BackendChanges struct {
	// Added names backends only in the new configuration.
	Added []string
	// Removed names backends only in the old configuration.
	Removed []string
	// Changed names backends in both whose address, weight, state or
	// effective health check ([Backend].HealthCheck, which includes the
	// global health_check settings) differ.
	Changed []string
}

// DiffBackends compares the backends of old and new by name. Both
// configurations must be non-nil.
func DiffBackends(old, new *Config) BackendChanges {
	before := make(map[string]Backend, len(old.Backends))
	for _, b := range old.Backends {
		before[b.Name] = b
	}
	after := make(map[string]Backend, len(new.Backends))
	for _, b := range new.Backends {
		after[b.Name] = b
	}
	var c BackendChanges
	for name, b := range after {
		switch prev, ok := before[name]; {
		case !ok:
			c.Added = append(c.Added, name)
		case !sameBackend(prev, b):
			c.Changed = append(c.Changed, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			c.Removed = append(c.Removed, name)
		}
	}
	slices.Sort(c.Added)
	slices.Sort(c.Removed)
	slices.Sort(c.Changed)
	return c
}

// sameBackend reports whether a and b hold the same settings.
func sameBackend(a, b Backend) bool {
	return sameSettings(reflect.ValueOf(a), reflect.ValueOf(b))
}
