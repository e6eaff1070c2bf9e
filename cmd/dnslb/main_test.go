package main

import (
	"bytes"
	"os"
	"path/filepath"
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
		{[]string{"run", "-bogus"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(out+errs, tt.contains) {
			t.Errorf("dnslb %s: exit %d, output %q; want exit %d containing %q", strings.Join(tt.args, " "), code, out+errs, tt.code, tt.contains)
		}
	}
}
