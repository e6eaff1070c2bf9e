package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSubcommands(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: [\"127.0.0.1:53\"]\nbackends:\n  - name: a\n    address: 127.0.0.1:53\n    weight: 0\n"), 0o644)
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"version"}, 0, "dnslb"},
		{[]string{"help"}, 0, "check-config"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"check-config", "-config", "../../config.yaml"}, 0, "ok (2 listen addresses, 2 backends)"},
		{[]string{"check-config", "-config", bad}, 1, "backends[0].weight: 0 out of range 1-1000"},
		{[]string{"check-config", "-config", "/nonexistent/dnslb.yaml"}, 1, "/nonexistent/dnslb.yaml"},
		{[]string{"-config", "/nonexistent/dnslb.yaml"}, 1, "/nonexistent/dnslb.yaml"},
		{[]string{"status", "-admin", "127.0.0.1:1"}, 1, "127.0.0.1:1"},
		{[]string{"status", "-wide", "-admin", "127.0.0.1:1"}, 1, "127.0.0.1:1"},
		{[]string{"run", "-bogus"}, 2, "dnslb run: unknown flag -bogus"},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(out+errs, tt.contains) {
			t.Errorf("dnslb %s: exit %d, output %q; want exit %d containing %q", strings.Join(tt.args, " "), code, out+errs, tt.code, tt.contains)
		}
	}
}

// TestHelp: every way of asking for help prints the usage, or the
// command's usage and flags, to stdout and exits 0.
func TestHelp(t *testing.T) {
	t.Setenv("DNSLB_ADMIN_TOKEN", "s3cret-token-from-env")
	top := []string{"usage: dnslb [COMMAND]", "check-config [-config FILE]", "status [-wide] [-json]",
		"default /etc/dnslb/config.yaml, or ./config.yaml when that is absent", "Exit status"}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, top},
		{[]string{"-help"}, top},
		{[]string{"-h"}, top},
		{[]string{"help"}, top},
		{[]string{"help", "help"}, top},
		{[]string{"run", "--help"}, []string{"usage: dnslb [run] [-config FILE]", "-config FILE", "default /etc/dnslb/config.yaml, or ./config.yaml when that is absent"}},
		{[]string{"run", "-h"}, []string{"usage: dnslb [run]", "-config FILE"}},
		{[]string{"-config", "x.yaml", "-h"}, []string{"usage: dnslb [run]"}},
		{[]string{"help", "run"}, []string{"usage: dnslb [run]", "-config FILE"}},
		{[]string{"check-config", "-h"}, []string{"usage: dnslb check-config [-config FILE]", "-config FILE", "./config.yaml when that is absent"}},
		{[]string{"status", "-h"}, []string{"usage: dnslb status", "-admin ADDR", `(default "127.0.0.1:9053")`, "-token TOKEN", "$DNSLB_ADMIN_TOKEN", "-wide", "-json"}},
		{[]string{"status", "--help"}, []string{"usage: dnslb status", "-wide"}},
		{[]string{"drain", "-h"}, []string{"usage: dnslb drain [-admin ADDR] [-token TOKEN] NAME", "-admin ADDR"}},
		{[]string{"enable", "-help"}, []string{"usage: dnslb enable", "-admin ADDR"}},
		{[]string{"disable", "-h"}, []string{"usage: dnslb disable", "-admin ADDR"}},
		{[]string{"version", "-h"}, []string{"usage: dnslb version"}},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(tt.args...)
		if code != 0 || errs != "" {
			t.Errorf("dnslb %s: exit %d, stderr %q; want exit 0 and nothing on stderr", strings.Join(tt.args, " "), code, errs)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("dnslb %s: stdout lacks %q:\n%s", strings.Join(tt.args, " "), w, out)
			}
		}
		if strings.Contains(out, "Usage of") || strings.Contains(out, "s3cret") {
			t.Errorf("dnslb %s: Go's default usage or the token in the help:\n%s", strings.Join(tt.args, " "), out)
		}
	}
}

// TestVersion: the version command and flags print one line with the
// version, commit and Go version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, errs := runCmd(args...)
		if code != 0 || errs != "" || !strings.HasPrefix(out, "dnslb "+version+" (commit ") ||
			!strings.HasSuffix(out, ", "+runtime.Version()+")\n") || strings.Count(out, "\n") != 1 {
			t.Errorf("dnslb %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errs)
		}
	}
}

func TestVersionLine(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "0123abcd4567890abcdef0123456789abcdef012"
	tests := []struct {
		name, version string
		info          *debug.BuildInfo
		want          string
	}{
		{"clean", "v1.2.3", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings("vcs", "git", "vcs.revision", rev, "vcs.modified", "false")},
			"dnslb v1.2.3 (commit 0123abcd4567, go1.26.8)"},
		{"dirty", "v1.2.3", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings("vcs.revision", rev, "vcs.modified", "true")},
			"dnslb v1.2.3 (commit 0123abcd4567-dirty, go1.26.8)"},
		{"no vcs", "v1.2.3", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings("-trimpath", "true")},
			"dnslb v1.2.3 (commit unknown, go1.26.8)"},
		{"short revision", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings("vcs.revision", "abc123")},
			"dnslb dev (commit abc123, go1.26.8)"},
		{"go install", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			"dnslb v1.4.0 (commit unknown, go1.26.8)"},
		{"devel", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"dnslb dev (commit unknown, go1.26.8)"},
		{"ldflags win", "v2.0.0", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			"dnslb v2.0.0 (commit unknown, go1.26.8)"},
		{"no build info", "dev", nil, "dnslb dev (commit unknown, " + runtime.Version() + ")"},
	}
	for _, tt := range tests {
		if got := versionLine(tt.version, tt.info); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestUsageErrors: an unknown command, an unknown or bad flag and a stray
// argument give one line naming it, then the usage, on stderr and exit 2.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args  []string
		first string // the first line of stderr
		usage string // in the usage that follows
	}{
		{[]string{"frobnicate"}, `dnslb: unknown command "frobnicate"`, "usage: dnslb [COMMAND]"},
		{[]string{"help", "frobnicate"}, `dnslb help: unknown command "frobnicate"`, "usage: dnslb help"},
		{[]string{"run", "-bogus"}, "dnslb run: unknown flag -bogus", "usage: dnslb [run] [-config FILE]"},
		{[]string{"-bogus"}, "dnslb run: unknown flag -bogus", "usage: dnslb [run] [-config FILE]"},
		{[]string{"--bogus"}, "dnslb run: unknown flag -bogus", "usage: dnslb [run]"},
		{[]string{"check-config", "-bogus"}, "dnslb check-config: unknown flag -bogus", "-config FILE"},
		{[]string{"status", "-bogus"}, "dnslb status: unknown flag -bogus", "-wide"},
		{[]string{"status", "-wide=maybe"}, `dnslb status: invalid boolean value "maybe" for -wide: parse error`, "-wide"},
		{[]string{"drain", "-bogus", "ns1"}, "dnslb drain: unknown flag -bogus", "-admin ADDR"},
		{[]string{"version", "-bogus"}, "dnslb version: unknown flag -bogus", "usage: dnslb version"},
		{[]string{"run", "-config"}, "dnslb run: flag needs an argument: -config", "-config FILE"},
		{[]string{"run", "extra"}, `dnslb run: unexpected argument "extra"`, "usage: dnslb [run]"},
		{[]string{"run", "-config", "x.yaml", "extra"}, `dnslb run: unexpected argument "extra"`, "usage: dnslb [run]"},
		{[]string{"check-config", "extra"}, `dnslb check-config: unexpected argument "extra"`, "usage: dnslb check-config"},
		{[]string{"status", "extra"}, `dnslb status: unexpected argument "extra"`, "usage: dnslb status"},
		{[]string{"version", "extra"}, `dnslb version: unexpected argument "extra"`, "usage: dnslb version"},
		{[]string{"help", "run", "extra"}, `dnslb help: unexpected argument "extra"`, "usage: dnslb help"},
		{[]string{"drain"}, "dnslb drain: give one backend name (as in backends[].name)", "usage: dnslb drain"},
		{[]string{"enable", "ns1", "ns2"}, "dnslb enable: give one backend name (as in backends[].name)", "usage: dnslb enable"},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(tt.args...)
		first, rest, _ := strings.Cut(errs, "\n")
		if code != 2 || out != "" || first != tt.first || !strings.Contains(rest, tt.usage) {
			t.Errorf("dnslb %s: exit %d, stdout %q, stderr %q; want exit 2, stderr %q then a usage with %q",
				strings.Join(tt.args, " "), code, out, errs, tt.first, tt.usage)
		}
		if strings.Contains(errs, "flag provided but not defined") || strings.Contains(errs, "Usage of") {
			t.Errorf("dnslb %s: Go's flag messages on stderr:\n%s", strings.Join(tt.args, " "), errs)
		}
	}
}

// fakeStat is a stat that finds only the given paths; the others do not
// exist, except those mapped to an error.
func fakeStat(exist []string, errs map[string]error) func(string) (os.FileInfo, error) {
	return func(p string) (os.FileInfo, error) {
		if err, ok := errs[p]; ok {
			return nil, &os.PathError{Op: "stat", Path: p, Err: err}
		}
		for _, e := range exist {
			if e == p {
				return fakeInfo{}, nil
			}
		}
		return nil, &os.PathError{Op: "stat", Path: p, Err: os.ErrNotExist}
	}
}

type fakeInfo struct{ os.FileInfo }

func TestDefaultConfigPath(t *testing.T) {
	tests := []struct {
		name    string
		exist   []string
		errs    map[string]error
		want    string
		wantErr string
	}{
		{"both", []string{"/etc/dnslb/config.yaml", "./config.yaml"}, nil, "/etc/dnslb/config.yaml", ""},
		{"etc only", []string{"/etc/dnslb/config.yaml"}, nil, "/etc/dnslb/config.yaml", ""},
		{"local only", []string{"./config.yaml"}, nil, "./config.yaml", ""},
		{"etc unreadable", []string{"./config.yaml"}, map[string]error{"/etc/dnslb/config.yaml": os.ErrPermission}, "/etc/dnslb/config.yaml", ""},
		{"neither", nil, nil, "", "neither /etc/dnslb/config.yaml nor ./config.yaml exists"},
	}
	for _, tt := range tests {
		got, err := defaultConfigPath(fakeStat(tt.exist, tt.errs))
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: %q, %v; want %q, error containing %q", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestDefaultConfig: without -config, run and check-config read
// /etc/dnslb/config.yaml, else ./config.yaml, else fail naming both.
func TestDefaultConfig(t *testing.T) {
	cfg, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	old := configStat
	t.Cleanup(func() { configStat = old })
	// /etc/dnslb/config.yaml is absent whatever this host has; ./config.yaml
	// is the temporary directory's.
	configStat = func(p string) (os.FileInfo, error) {
		if p == systemConfig {
			return nil, &os.PathError{Op: "stat", Path: p, Err: os.ErrNotExist}
		}
		return os.Stat(p)
	}
	for _, args := range [][]string{{"check-config"}, {"run"}, {}} {
		code, out, errs := runCmd(args...)
		if code != 1 || !strings.Contains(errs, "neither /etc/dnslb/config.yaml nor ./config.yaml exists") {
			t.Errorf("dnslb %s without config files: exit %d, %q", strings.Join(args, " "), code, out+errs)
		}
	}
	if err := os.WriteFile("config.yaml", cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCmd("check-config"); code != 0 || !strings.HasPrefix(out, "./config.yaml: ok") {
		t.Errorf("check-config with ./config.yaml: exit %d, %q", code, out+errs)
	}
	// -config is used as given.
	if code, out, errs := runCmd("check-config", "-config", "config.yaml"); code != 0 || !strings.HasPrefix(out, "config.yaml: ok") {
		t.Errorf("check-config -config config.yaml: exit %d, %q", code, out+errs)
	}
}
