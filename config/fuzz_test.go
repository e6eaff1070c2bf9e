package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, and that it returns either a
// configuration or an *Error whose every line names the input.
func FuzzParse(f *testing.F) {
	isolateEnv(f)
	for _, name := range []string{"valid.yaml", "invalid.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("listen: '[::1]:53'\nbackends: [{name: a, address: '[fe80::1%eth0]:53', weight: 1e3}]\n"))
	f.Add([]byte(minimal + "health_check: {query: {name: example.test, type: soa}, expect: {rcodes: [NOERROR]}, interval: 1s, timeout: 2s, passive: {max_consecutive_timeouts: 5}}\n"))
	f.Add([]byte("listen: ['[::1]:53']\nbackends: [{name: a, address: '10.0.0.1:53', health_check: {query: {type: a}, all_down: refuse, timeout: 3s}}]\nhealth_check: {enabled: true}\n"))
	f.Add([]byte(minimal + "vrrp: {interface: eth0, vrid: 53, version: 2, advert_interval: 1s, vips: ['192.0.2.53/24', '::ffff:192.0.2.54/120'], peers: [192.0.2.2], auth_pass: pw, track: {min_healthy_backends: 1, weight: 10}, notify: /bin/true}\n"))
	f.Add([]byte(minimal + "vrrp: {enabled: false, vips: '2001:db8::1/64 fe80::1%eth0', checksum_mode: rfc9568, garp_refresh: 0s}\n"))
	f.Add([]byte(minimal + "notify: {interface: eth0, primaries: [192.0.2.1, '2001:db8::/64', '::ffff:192.0.2.0/120'], max_per_second: 10, dedup_window: 0s, retries: 20}\n"))
	f.Add([]byte(minimal + "notify: {enabled: false, primaries: '192.0.2.1/24 fe80::1%eth0 ff02::1', dedup_window: 1}\n"))
	f.Add([]byte(minimal + "notify: {enabled: false, tsig_keys: [{name: K, algorithm: HMAC-SHA1., secret: 'MDEyMzQ1Njc4OWFiY2RlZg=='}, {name: k., secret: 'eA=='}, x]}\n"))
	f.Add([]byte("- a\n"))
	f.Add([]byte("a.b: {c: [1, {d: ~}]}\n"))
	f.Add([]byte("\"a\\nb\": 1\nbackends: [{\"x\\ry\": 1}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil || len(cfg.Listen) == 0 || len(cfg.Backends) == 0 {
				t.Fatalf("no error but config %+v", cfg)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || len(e.Problems) == 0 {
			t.Fatalf("error %v (%T) is not a *Error with problems", err, err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml: ") {
				t.Fatalf("line %q does not start with the name", line)
			}
		}
	})
}
