package testpeer

import (
	"os"
	"os/exec"
	"testing"
)

// toolPackages maps a command to the Debian package that provides it, for
// the install hint in RequireTool's skip message.
var toolPackages = map[string]string{
	"nsd":        "nsd",
	"ip":         "iproute2",
	"tc":         "iproute2",
	"dig":        "bind9-dnsutils",
	"kdig":       "knot-dnsutils",
	"sysctl":     "procps",
	"tcpdump":    "tcpdump",
	"ping":       "iputils-ping",
	"keepalived": "keepalived",
	"knotd":      "knot",
	"knotc":      "knot",
	"bird":       "bird2",
	"birdc":      "bird2",
}

// SkipShort skips the test under -short, giving why (e.g. "starts NSD",
// "takes 2 s"). -short runs only what needs no root, no network
// namespace, no external server process and takes well under a second.
func SkipShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("SKIP (-short): %s", why)
	}
}

// RequireRoot skips the test unless the effective UID is 0. Under -short
// it always skips (see SkipShort): what needs root needs namespaces or
// peer processes.
func RequireRoot(t testing.TB) {
	t.Helper()
	SkipShort(t, "needs root (network namespaces, peer processes); run without -short")
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("SKIP: needs root (euid=%d): network namespaces, tc and /dev/net/tun need CAP_SYS_ADMIN/CAP_NET_ADMIN; run the tests as root (sudo -E go test ...)", euid)
	}
}

// RequireTool skips the test unless name is on PATH. The message names the
// Debian package to install.
func RequireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	pkg := toolPackages[name]
	if pkg == "" {
		pkg = name
	}
	t.Skipf("SKIP: %s not installed (apt-get install %s)", name, pkg)
}
