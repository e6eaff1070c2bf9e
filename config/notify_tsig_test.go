package config

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Secrets of the TSIG tests: 16 and 32 bytes.
var (
	testSecret  = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	testSecret2 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
)

// tsigSection returns notifySection with tsig_keys set to list.
func tsigSection(list string) string {
	return "notify: {interface: eth0, primaries: [192.0.2.1], tsig_keys: " + list + "}\n"
}

func TestNotifyTSIGKeysDefaults(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"no notify section", ""},
		{"absent", notifySection},
		{"null", tsigSection("~")},
		{"empty list", tsigSection("[]")},
		{"disabled section", "notify: {enabled: false}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			if got := mustParse(t, withDefaults(tc.yaml)).Notify.TSIGKeys; got != nil {
				t.Errorf("TSIGKeys = %v, want nil", got)
			}
		})
	}
}

func TestNotifyTSIGKeysAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []TSIGKey
	}{
		{"default algorithm, name made fully qualified",
			tsigSection("[{name: notify-key, secret: '" + testSecret + "'}]"),
			[]TSIGKey{{Name: "notify-key.", Algorithm: dns.HmacSHA256, Secret: testSecret}}},
		{"name lower-cased, spaces trimmed",
			tsigSection("[{name: ' Notify-Key.Example. ', secret: '" + testSecret + "'}]"),
			[]TSIGKey{{Name: "notify-key.example.", Algorithm: dns.HmacSHA256, Secret: testSecret}}},
		{"every algorithm, any case, trailing dot optional", "notify:\n  interface: eth0\n  primaries: [192.0.2.1]\n  tsig_keys:\n" +
			"    - {name: k1, algorithm: hmac-sha1, secret: '" + testSecret + "'}\n" +
			"    - {name: k2, algorithm: HMAC-SHA224., secret: '" + testSecret + "'}\n" +
			"    - {name: k3, algorithm: Hmac-Sha256, secret: '" + testSecret + "'}\n" +
			"    - {name: k4, algorithm: ' hmac-sha384. ', secret: '" + testSecret + "'}\n" +
			"    - {name: k5, algorithm: hmac-sha512, secret: '" + testSecret2 + "'}\n" +
			"    - {name: k6, algorithm: ~, secret: '" + testSecret + "'}\n",
			[]TSIGKey{
				{Name: "k1.", Algorithm: dns.HmacSHA1, Secret: testSecret},
				{Name: "k2.", Algorithm: dns.HmacSHA224, Secret: testSecret},
				{Name: "k3.", Algorithm: dns.HmacSHA256, Secret: testSecret},
				{Name: "k4.", Algorithm: dns.HmacSHA384, Secret: testSecret},
				{Name: "k5.", Algorithm: dns.HmacSHA512, Secret: testSecret2},
				{Name: "k6.", Algorithm: dns.HmacSHA256, Secret: testSecret},
			}},
		{"upper-case keys", "notify: {interface: eth0, primaries: [192.0.2.1], TSIG_Keys: [{Name: k, Algorithm: hmac-sha1, SECRET: '" + testSecret + "'}]}\n",
			[]TSIGKey{{Name: "k.", Algorithm: dns.HmacSHA1, Secret: testSecret}}},
		{"secret kept as given, line breaks allowed by base64",
			"notify:\n  interface: eth0\n  primaries: [192.0.2.1]\n  tsig_keys:\n    - name: k\n      secret: |\n        " +
				testSecret2[:20] + "\n        " + testSecret2[20:] + "\n",
			[]TSIGKey{{Name: "k.", Algorithm: dns.HmacSHA256, Secret: testSecret2[:20] + "\n" + testSecret2[20:] + "\n"}}},
		{"disabled section keeps its keys", "notify: {enabled: false, tsig_keys: [{name: k, secret: '" + testSecret + "'}]}\n",
			[]TSIGKey{{Name: "k.", Algorithm: dns.HmacSHA256, Secret: testSecret}}},
		{"names in different zones are not duplicates",
			tsigSection("[{name: k.a, secret: '" + testSecret + "'}, {name: k.b, secret: '" + testSecret + "'}]"),
			[]TSIGKey{
				{Name: "k.a.", Algorithm: dns.HmacSHA256, Secret: testSecret},
				{Name: "k.b.", Algorithm: dns.HmacSHA256, Secret: testSecret},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			checkSame(t, "TSIGKeys", mustParse(t, withDefaults(tc.yaml)).Notify.TSIGKeys, tc.want)
		})
	}
}

func TestNotifyTSIGKeysProblems(t *testing.T) {
	// key returns a one-item list whose item holds fields.
	key := func(fields string) string { return tsigSection("[{" + fields + "}]") }
	sec := "secret: '" + testSecret + "'"
	short := base64.StdEncoding.EncodeToString([]byte("12345678"))
	for _, tc := range []struct {
		name string
		yaml string   // completed by withDefaults
		want []string // every problem, in order
	}{
		// shape
		{"not a list", tsigSection("{name: k}"), []string{"notify.tsig_keys: must be a list"}},
		{"a string", tsigSection("k"), []string{"notify.tsig_keys: must be a list"}},
		{"item not a mapping", tsigSection("[k, {name: k, " + sec + "}, [1]]"),
			[]string{"notify.tsig_keys[0]: must be a mapping", "notify.tsig_keys[2]: must be a mapping"}},
		{"null item", tsigSection("[~]"), []string{"notify.tsig_keys[0]: must be a mapping"}},
		{"unknown keys sorted, last", key("zz: 1, wrong: 2, name: k, " + sec),
			[]string{"notify.tsig_keys[0].wrong: unknown key", "notify.tsig_keys[0].zz: unknown key"}},
		// name
		{"name missing", key(sec), []string{"notify.tsig_keys[0].name: required"}},
		{"name null", key("name: ~, " + sec), []string{"notify.tsig_keys[0].name: required"}},
		{"name empty", key("name: '', " + sec), []string{"notify.tsig_keys[0].name: required"}},
		{"name blank", key("name: '  ', " + sec), []string{"notify.tsig_keys[0].name: required"}},
		{"name invalid", key("name: 'a..b', " + sec), []string{`notify.tsig_keys[0].name: "a..b": not a domain name`}},
		{"name label too long", key("name: " + strings.Repeat("a", 64) + ", " + sec),
			[]string{fmt.Sprintf("notify.tsig_keys[0].name: %q: not a domain name", strings.Repeat("a", 64))}},
		{"name a list", key("name: [k], " + sec), []string{"notify.tsig_keys[0].name: must be a string, not a list"}},
		{"duplicate name after lower-casing and the final dot",
			tsigSection("[{name: k, " + sec + "}, {name: K., " + sec + "}, {name: k2, " + sec + "}, {name: k, " + sec + "}]"),
			[]string{
				"notify.tsig_keys[1].name: duplicate of notify.tsig_keys[0]",
				"notify.tsig_keys[3].name: duplicate of notify.tsig_keys[0]",
			}},
		// algorithm
		{"algorithm unknown", key("name: k, algorithm: md5, " + sec),
			[]string{`notify.tsig_keys[0].algorithm: "md5": must be one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`}},
		{"algorithm hmac-md5", key("name: k, algorithm: HMAC-MD5.SIG-ALG.REG.INT., " + sec),
			[]string{`notify.tsig_keys[0].algorithm: "HMAC-MD5.SIG-ALG.REG.INT.": must be one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`}},
		{"algorithm empty", key("name: k, algorithm: '', " + sec),
			[]string{`notify.tsig_keys[0].algorithm: "": must be one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`}},
		{"algorithm two dots", key("name: k, algorithm: hmac-sha256.., " + sec),
			[]string{`notify.tsig_keys[0].algorithm: "hmac-sha256..": must be one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`}},
		{"algorithm a mapping", key("name: k, algorithm: {a: 1}, " + sec),
			[]string{"notify.tsig_keys[0].algorithm: must be a string, not a mapping"}},
		// secret
		{"secret missing", key("name: k"), []string{"notify.tsig_keys[0].secret: required"}},
		{"secret null", key("name: k, secret: ~"), []string{"notify.tsig_keys[0].secret: required"}},
		{"secret empty", key("name: k, secret: ''"), []string{"notify.tsig_keys[0].secret: required"}},
		{"secret not base64", key("name: k, secret: 'not*base64!'"), []string{"notify.tsig_keys[0].secret: not base64"}},
		{"secret URL alphabet", key("name: k, secret: '" + base64.URLEncoding.EncodeToString([]byte("\xfb\xff0123456789abcdef")) + "'"),
			[]string{"notify.tsig_keys[0].secret: not base64"}},
		{"secret without padding", key("name: k, secret: '" + base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdefg")) + "'"),
			[]string{"notify.tsig_keys[0].secret: not base64"}},
		{"secret with spaces", key("name: k, secret: ' " + testSecret + "'"), []string{"notify.tsig_keys[0].secret: not base64"}},
		{"secret too short", key("name: k, secret: '" + short + "'"),
			[]string{"notify.tsig_keys[0].secret: decodes to 8 bytes, want at least 16"}},
		{"secret 15 bytes", key("name: k, secret: '" + base64.StdEncoding.EncodeToString([]byte("0123456789abcde")) + "'"),
			[]string{"notify.tsig_keys[0].secret: decodes to 15 bytes, want at least 16"}},
		{"secret a number", key("name: k, secret: 12345678"), []string{"notify.tsig_keys[0].secret: decodes to 6 bytes, want at least 16"}},
		{"secret a list", key("name: k, secret: [a]"), []string{"notify.tsig_keys[0].secret: must be a string, not a list"}},
		// checked even when disabled, in schema order
		{"disabled section still checked", "notify: {enabled: false, tsig_keys: [{algorithm: md5}]}\n",
			[]string{
				"notify.tsig_keys[0].name: required",
				`notify.tsig_keys[0].algorithm: "md5": must be one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`,
				"notify.tsig_keys[0].secret: required",
			}},
		{"every problem, in schema order", "notify:\n  zz: 1\n  tsig_keys:\n" +
			"    - {wrong: 1, secret: '" + short + "', algorithm: md5, name: 'a..b'}\n" +
			"    - {name: k, secret: '" + testSecret + "'}\n" +
			"    - {name: K, secret: 'x'}\n" +
			"  retries: 21\n  interface: eth0\n  primaries: [192.0.2.1]\n",
			[]string{
				"notify.retries: 21 out of range 0-20",
				`notify.tsig_keys[0].name: "a..b": not a domain name`,
				`notify.tsig_keys[0].algorithm: "md5": must be one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512`,
				"notify.tsig_keys[0].secret: decodes to 8 bytes, want at least 16",
				"notify.tsig_keys[0].wrong: unknown key",
				"notify.tsig_keys[2].name: duplicate of notify.tsig_keys[1]",
				"notify.tsig_keys[2].secret: not base64",
				"notify.zz: unknown key",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, withDefaults(tc.yaml), nil, tc.want) })
	}
}

// TestNotifyTSIGKeysEnv checks that tsig_keys cannot come from the
// environment: the variable is reported, not read.
func TestNotifyTSIGKeysEnv(t *testing.T) {
	const msg = "notify.tsig_keys: cannot be set from the environment (unset DNSLB_NOTIFY_TSIG_KEYS; list the keys in the file)"
	for _, tc := range []struct {
		name, yaml, value string
	}{
		{"with the file's keys", tsigSection("[{name: k, secret: '" + testSecret + "'}]"), "[{name: k2}]"},
		{"without keys in the file", notifySection, testSecret},
		{"empty", notifySection, ""},
		{"without a notify section", "", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, withDefaults(tc.yaml), map[string]string{"DNSLB_NOTIFY_TSIG_KEYS": tc.value}, []string{msg})
		})
	}
	// The section's own variables leave the file's keys alone.
	checkResult(t, withDefaults(tsigSection("[{name: k, secret: '"+testSecret+"'}]")),
		map[string]string{"DNSLB_NOTIFY_INTERFACE": "eth1", "DNSLB_NOTIFY_ENABLED": "false"},
		func(c *Config) Notify { return c.Notify },
		func(n Notify) bool {
			return !n.Enabled && n.Interface == "eth1" &&
				reflect.DeepEqual(n.TSIGKeys, []TSIGKey{{Name: "k.", Algorithm: dns.HmacSHA256, Secret: testSecret}})
		})
}

// TestNotifyTSIGKeysSecretNeverPrinted checks that no problem message
// quotes a secret, however it is wrong, nor does formatting a key.
func TestNotifyTSIGKeysSecretNeverPrinted(t *testing.T) {
	isolateEnv(t)
	secrets := []string{"c2hvcnQ=", "not*base64!SECRET", "SECRETSECRET", base64.StdEncoding.EncodeToString([]byte("SECRET"))}
	var list []string
	for i, s := range secrets {
		list = append(list, fmt.Sprintf("{name: k%d, algorithm: SECRET, secret: '%s'}", i, s))
	}
	_, err := Parse("test.yaml", []byte(withDefaults(tsigSection("["+strings.Join(list, ", ")+"]"))))
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range append(secrets, "c2hvcnQ") {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error quotes secret %q:\n%v", s, err)
		}
	}
	k := TSIGKey{Name: "k.", Algorithm: dns.HmacSHA256, Secret: testSecret}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%v", Notify{TSIGKeys: []TSIGKey{k}})} {
		if strings.Contains(s, testSecret) || !strings.Contains(s, "k.") {
			t.Errorf("formatted key %q: secret shown or name missing", s)
		}
	}
}

// TestNotifyTSIGKeysRoundTrip checks that keys written back as YAML from
// a parsed configuration parse to the same keys, and that the stored
// values are what miekg/dns needs to sign and verify a NOTIFY.
func TestNotifyTSIGKeysRoundTrip(t *testing.T) {
	isolateEnv(t)
	doc := tsigSection("[{name: Notify-Key, algorithm: HMAC-SHA512, secret: '" + testSecret2 + "'}, " +
		"{name: other.example., algorithm: hmac-sha1., secret: '" + testSecret + "'}, {name: third, secret: '" + testSecret + "'}]")
	first := mustParse(t, withDefaults(doc)).Notify
	var items []string
	for _, k := range first.TSIGKeys {
		items = append(items, fmt.Sprintf("{name: %q, algorithm: %q, secret: %q}", k.Name, k.Algorithm, k.Secret))
	}
	second := mustParse(t, withDefaults(tsigSection("["+strings.Join(items, ", ")+"]"))).Notify
	if !first.Equal(second) || !reflect.DeepEqual(first, second) {
		t.Fatalf("round trip:\n first %+v\nsecond %+v", first.TSIGKeys, second.TSIGKeys)
	}
	for _, k := range second.TSIGKeys {
		m := new(dns.Msg)
		m.SetNotify("example.test.")
		m.SetTsig(k.Name, k.Algorithm, 300, 0)
		wire, _, err := dns.TsigGenerate(m, k.Secret, "", false)
		if err != nil {
			t.Fatalf("key %s: sign: %v", k.Name, err)
		}
		if err := dns.TsigVerify(wire, k.Secret, "", false); err != nil {
			t.Errorf("key %s: verify: %v", k.Name, err)
		}
	}
}

// TestRestartOnlyNotifyTSIGKeys checks that tsig_keys apply on a reload.
func TestRestartOnlyNotifyTSIGKeys(t *testing.T) {
	isolateEnv(t)
	base := mustParse(t, withDefaults(notifySection))
	for _, list := range []string{
		"[{name: k, secret: '" + testSecret + "'}]",
		"[{name: k, secret: '" + testSecret2 + "'}, {name: k2, algorithm: hmac-sha1, secret: '" + testSecret + "'}]",
	} {
		next := mustParse(t, withDefaults(tsigSection(list)))
		if next.Notify.Equal(base.Notify) {
			t.Errorf("%s: Equal sees no change", list)
		}
		if got := RestartOnly(base, next); len(got) != 0 {
			t.Errorf("%s: RestartOnly = %q, want none", list, got)
		}
		if got := RestartOnly(next, base); len(got) != 0 {
			t.Errorf("%s: RestartOnly reversed = %q, want none", list, got)
		}
	}
}
