package config

import (
	"os"
	"strings"
)

// checkEnv reports the DNSLB_ variables that would otherwise be silently
// ignored: a variable for a list of mappings, which only the file can
// describe; one named after a section (DNSLB_TIMEOUTS), which hides from
// viper every key below it; and one for a key of an optional section the
// file does not have, which only <SECTION>_ENABLED turns on.
func checkEnv(c *check, file map[string]any) {
	for _, k := range keys() {
		switch {
		case k.field.Tag.Get("fileonly") != "" && envSet(envName(k.path)):
			c.add(k.path, "cannot be set from the environment (unset %s; %s)", envName(k.path), k.field.Tag.Get("fileonly"))
		case k.env && k.isValue() && !c.given[k.path]:
			hiddenByEnv(c, k.path)
		}
	}
	for _, k := range keys() {
		if k.field.Tag.Get("optional") == "true" {
			envWithoutSection(c, k.path, file)
		}
	}
}

// envWithoutSection reports every variable set for a key of section
// (other than enabled) while the file has no such section and
// <SECTION>_ENABLED is unset.
func envWithoutSection(c *check, section string, file map[string]any) {
	enabled := envName(section + ".enabled")
	if _, present := file[section].(map[string]any); present || envSet(enabled) || c.unread[section] {
		return
	}
	for _, k := range envKeys(section) {
		if name := envName(k.path); k.path != section+".enabled" && envSet(name) {
			c.add(section, "%s is set but the file has no %s section (add one, or set %s)", name, section, enabled)
		}
	}
}

// hiddenByEnv reports key, which the settings do not have, when a variable
// named after a section above it hides it, unless that section could not
// be read at all (it is not a mapping).
func hiddenByEnv(c *check, key string) {
	for i := range len(key) {
		if key[i] != '.' {
			continue
		}
		if c.unread[key[:i]] {
			return
		}
		if name := envName(key[:i]); envSet(name) {
			c.add(key, "hidden by the environment variable %s (unset it)", name)
			return
		}
	}
}

// envName returns the environment variable that overrides key.
func envName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envSet reports whether the environment variable name is set, even to "".
func envSet(name string) bool {
	_, set := os.LookupEnv(name)
	return set
}
