package integration

import (
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/testpeer"
	"github.com/miekg/dns"
)

// TestSystemdNotify: under Type=notify (NOTIFY_SOCKET set), dnslb sends
// READY=1 once serving, RELOADING=1 with MONOTONIC_USEC then READY=1
// around a SIGHUP reload, and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	requirePeers(t)
	a, b := twoNSD(t)
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	listen := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1"))
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	l := startLBEnv(t, nil, lbConfig([]netip.AddrPort{listen}, adm, [][2]string{{"ns1", a.Addr.String()}, {"ns2", b.Addr.String()}}, ""),
		listen, adm, []string{"NOTIFY_SOCKET=" + sockPath})
	next := func() string {
		t.Helper()
		buf := make([]byte, 256)
		sock.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v\n%s", err, l.log.String())
		}
		return string(buf[:n])
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	l.signal(syscall.SIGHUP)
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("on SIGHUP: %q", got)
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("after the reload: %q", got)
	}
	l.signal(syscall.SIGTERM)
	if got := next(); got != "STOPPING=1" {
		t.Fatalf("on SIGTERM: %q", got)
	}
	if code := l.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestNonRootWithCapabilities: as user nobody with only the ambient
// capability CAP_NET_BIND_SERVICE (what packaging/dnslb.service grants for
// a plain balancer), dnslb binds port 53 and serves; without it, it stops
// at once with a line that names the capability.
func TestNonRootWithCapabilities(t *testing.T) {
	requirePeers(t)
	testpeer.RequireTool(t, "setpriv")
	a, b := twoNSD(t)
	// nobody must be able to reach the binary and the config
	dir, err := os.MkdirTemp("", "dnslb-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dnslb")
	copyFile(t, binary, bin, 0o755)
	listen := netip.AddrPortFrom(freeLoopback53(t), 53)
	adm := testpeer.FreePort(t, netip.MustParseAddr("127.0.0.1")).String()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, lbConfig([]netip.AddrPort{listen}, adm, [][2]string{{"ns1", a.Addr.String()}, {"ns2", b.Addr.String()}}, ""))
	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	asNobody := func(caps string) *exec.Cmd {
		args := []string{"--reuid=nobody", "--regid=nogroup", "--clear-groups"}
		if caps != "" {
			args = append(args, "--inh-caps="+caps, "--ambient-caps="+caps)
		}
		return exec.Command("setpriv", append(args, bin, "run", "-config", cfg)...)
	}

	out, err := asNobody("").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CAP_NET_BIND_SERVICE") {
		t.Fatalf("without the capability: %v\n%s", err, out)
	}
	t.Logf("without CAP_NET_BIND_SERVICE: %s", lineWith(string(out), "CAP_NET_BIND_SERVICE"))

	cmd := asNobody("+net_bind_service")
	logBuf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logBuf, logBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logBuf.String(), "dnslb started") {
		select {
		case <-done:
			t.Fatalf("dnslb as nobody exited:\n%s", logBuf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnslb as nobody did not start:\n%s", logBuf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		r, _, err := c.Exchange(question("www.example.test.", dns.TypeA), listen.String())
		if err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s query to dnslb running as nobody: %v %v\n%s", network, r, err, logBuf.String())
		}
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err == nil && !strings.Contains(string(status), "Uid:\t65534") {
		t.Fatalf("not running as nobody:\n%s", status)
	}
}

// freeLoopback53 returns a 127.0.0.0/8 address whose port 53 is free for
// UDP and TCP.
func freeLoopback53(t *testing.T) netip.Addr {
	t.Helper()
	for i := 60; i < 120; i++ {
		a := netip.AddrFrom4([4]byte{127, 0, 0, byte(i)})
		ap := netip.AddrPortFrom(a, 53)
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			continue
		}
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
		u.Close()
		if err != nil {
			continue
		}
		l.Close()
		return a
	}
	t.Fatal("no 127.0.0.x with a free port 53")
	return netip.Addr{}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// lineWith returns the first line of s that contains sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestSystemdUnitVerifies: packaging/dnslb.service passes systemd-analyze
// verify (with ExecStart pointed at the test binary). systemd is not PID 1
// on the test machines, so the unit itself is not started here; the
// capability set it grants is exercised by TestNonRootWithCapabilities.
func TestSystemdUnitVerifies(t *testing.T) {
	needBinary(t)
	testpeer.RequireTool(t, "systemd-analyze")
	unit, err := os.ReadFile("../../packaging/dnslb.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	path := filepath.Join(t.TempDir(), "dnslb.service")
	writeFile(t, path, strings.ReplaceAll(string(unit), "/usr/local/bin/dnslb", binary))
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
