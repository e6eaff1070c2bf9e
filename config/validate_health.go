package config

// validateHealthCheck checks the global health check and each backend's
// effective one: a query name when checks are on, and a timeout no longer
// than the interval.
func validateHealthCheck(c *check, cfg *Config) {
	const path = "health_check"
	if c.unread[path] {
		return // not a mapping: nothing was read
	}
	g := cfg.HealthCheck
	queryName(c, path, g)
	rcodes(c, path, g)
	if c.set(path+".interval") && c.set(path+".timeout") && g.Timeout > g.Interval {
		c.add(path+".timeout", "%s exceeds %s.interval (%s)", g.Timeout, path, g.Interval)
	}
	for i, b := range cfg.Backends {
		if p := item("backends", i) + ".health_check"; !c.unread[item("backends", i)] && !c.unread[p] {
			validateBackendHealthCheck(c, p, b.HealthCheck, g)
		}
	}
}

// validateBackendHealthCheck checks hc, the effective check of the
// backend whose health_check is at path, g being the global one.
func validateBackendHealthCheck(c *check, path string, hc, g HealthCheck) {
	// Whether the global section is on is unknown when it is not a
	// mapping or its enabled key is invalid; it was reported.
	undecided := c.unread["health_check"] || !c.ok("health_check.enabled")
	if c.given[path] && !g.Enabled && !undecided {
		c.add(path, "needs the global health_check section (it sets the defaults)")
	}
	queryName(c, path, hc)
	rcodes(c, path, hc)

	// The rule timeout <= interval holds for the merged values; a
	// violation is reported at the backend's own key. An invalid global
	// value, or a global pair that breaks the rule, was reported there.
	badInterval := !c.set("health_check.interval")
	badTimeout := !c.set("health_check.timeout") || !badInterval && g.Timeout > g.Interval
	inherited := func(key string, bad bool) bool {
		return !c.ok(path+"."+key) || !c.given[path+"."+key] && bad
	}
	if inherited("interval", badInterval) || inherited("timeout", badTimeout) || hc.Timeout <= hc.Interval {
		return
	}
	switch {
	case c.given[path+".timeout"]:
		ref := "health_check.interval"
		if c.given[path+".interval"] {
			ref = path + ".interval"
		}
		c.add(path+".timeout", "%s exceeds %s (%s)", hc.Timeout, ref, hc.Interval)
	case c.given[path+".interval"]:
		c.add(path+".interval", "%s is shorter than health_check.timeout (%s)", hc.Interval, hc.Timeout)
	}
}

// queryName reports query.name of the section at path as required when
// the section's checks are on and it sets the name empty; a backend
// inheriting an empty name leaves the complaint to the global section.
func queryName(c *check, path string, hc HealthCheck) {
	if name := path + ".query.name"; hc.Enabled && c.set(name) && hc.Query.Name == "" {
		c.add(name, "required")
	}
}

// rcodes reports the repeated rcodes of the section at path, when it
// sets them.
func rcodes(c *check, path string, hc HealthCheck) {
	if p := path + ".expect.rcodes"; c.given[p] {
		rc := hc.Expect.Rcodes
		duplicates(c, p, "", len(rc), func(i int) (int, bool) { return rc[i], true })
	}
}
