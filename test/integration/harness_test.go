package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/testpeer"
)

// binary is the dnslb executable built by TestMain; "" under -short.
var binary string

// TestMain builds the race-enabled dnslb binary the tests run. Under
// -short it builds nothing: every test here needs root, peer processes or
// the binary, so each skips (see requirePeers and needBinary).
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	if b := os.Getenv("DNSLB_IT_BINARY"); b != "" { // a prebuilt dnslb (make scale: bin/dnslb, no race detector)
		binary = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "dnslb-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dnslb")
	build := exec.Command("go", "build", "-race", "-o", binary, "github.com/dnslb/dnslb/cmd/dnslb")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build dnslb:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fileLog is a process's stdout and stderr, written to a file.
type fileLog struct{ path string }

// String returns everything logged so far.
func (f *fileLog) String() string {
	b, _ := os.ReadFile(f.path)
	return string(b)
}

// syncBuffer collects a process's stderr for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lb is a running dnslb process.
type lb struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *fileLog
	config string // path of its config file
	listen netip.AddrPort
	admin  string
	ns     *testpeer.NetNS // nil: the root namespace
	done   chan struct{}
	err    error
}

// lbConfig renders a config file; backends are name=addr pairs.
func lbConfig(listen []netip.AddrPort, adminAddr string, backends [][2]string, extra string) string {
	var b strings.Builder
	b.WriteString("listen:\n")
	for _, l := range listen {
		fmt.Fprintf(&b, "  - %q\n", l.String())
	}
	b.WriteString("backends:\n")
	for _, be := range backends {
		fmt.Fprintf(&b, "  - name: %s\n    address: %q\n", be[0], be[1])
	}
	fmt.Fprintf(&b, "admin:\n  listen: %q\nlog:\n  level: debug\n", adminAddr)
	b.WriteString(extra)
	return b.String()
}

// startLB writes config and starts dnslb (inside ns when ns is not nil),
// then waits until it answers a query on listen.
func startLB(t *testing.T, ns *testpeer.NetNS, config string, listen netip.AddrPort, adminAddr string) *lb {
	t.Helper()
	return startLBEnv(t, ns, config, listen, adminAddr, nil)
}

// startLBEnv is startLB with extra environment variables (KEY=value).
func startLBEnv(t *testing.T, ns *testpeer.NetNS, config string, listen netip.AddrPort, adminAddr string, env []string) *lb {
	t.Helper()
	needBinary(t)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{binary, "run", "-config", path}
	if ns != nil {
		args = append([]string{"ip", "netns", "exec", ns.Name()}, args...)
	}
	logf, err := os.Create(filepath.Join(filepath.Dir(path), "dnslb.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the process has its own copy
	l := &lb{t: t, log: &fileLog{path: logf.Name()}, config: path, listen: listen, admin: adminAddr, ns: ns, done: make(chan struct{})}
	l.cmd = exec.Command(args[0], args[1:]...)
	if env != nil {
		l.cmd.Env = append(os.Environ(), env...)
	}
	// A file, not a pipe: a process started by a graceful restart inherits
	// it and may outlive the one started here.
	l.cmd.Stdout, l.cmd.Stderr = logf, logf
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.err = l.cmd.Wait(); close(l.done) }()
	t.Cleanup(func() {
		l.cmd.Process.Kill()
		<-l.done
		if t.Failed() {
			t.Logf("dnslb log:\n%s", l.log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-l.done:
			t.Fatalf("dnslb exited at start: %v\n%s", l.err, l.log.String())
		default:
		}
		if strings.Contains(l.log.String(), "dnslb started") {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnslb did not start in 15s:\n%s", l.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *lb) signal(sig syscall.Signal) {
	l.t.Helper()
	// ip netns exec execs the binary, so the PID is dnslb's own.
	if err := l.cmd.Process.Signal(sig); err != nil {
		l.t.Fatal(err)
	}
}

// waitExit waits for the process to exit and returns its exit code.
func (l *lb) waitExit(timeout time.Duration) int {
	l.t.Helper()
	select {
	case <-l.done:
	case <-time.After(timeout):
		l.t.Fatalf("dnslb did not exit within %v", timeout)
	}
	return l.cmd.ProcessState.ExitCode()
}

// waitLog waits until the log contains s.
func (l *lb) waitLog(s string, timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(l.log.String(), s) {
		if time.Now().After(deadline) {
			l.t.Fatalf("log line %q not seen within %v:\n%s", s, timeout, l.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *lb) status() *admin.Status {
	l.t.Helper()
	if l.ns != nil {
		// the admin API listens inside the namespace: ask with `dnslb status`
		out, err := exec.Command("ip", "netns", "exec", l.ns.Name(), binary, "status", "-json", "-admin", l.admin).Output()
		if err != nil {
			l.t.Fatalf("dnslb status in %s: %v", l.ns.Name(), err)
		}
		var st admin.Status
		if err := json.Unmarshal(out, &st); err != nil {
			l.t.Fatal(err)
		}
		return &st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := admin.Fetch(ctx, l.admin, "")
	if err != nil {
		l.t.Fatal(err)
	}
	return st
}

func (l *lb) backendStatus(name string) admin.Backend {
	for _, b := range l.status().Backends {
		if b.Name == name {
			return b
		}
	}
	l.t.Fatalf("backend %s not in status", name)
	return admin.Backend{}
}

// loadResult counts what a bounded query stream saw.
type loadResult struct {
	mu         sync.Mutex
	sent       int
	answered   int
	lost       []string
	mismatched []string
	by         map[string]int // whoami answer -> count
}

func (r *loadResult) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("sent=%d answered=%d lost=%d mismatched=%d by=%v", r.sent, r.answered, len(r.lost), len(r.mismatched), r.by)
}

// stream runs closed-loop whoami queries on the given connections until
// stop is closed or max queries per connection are sent. Each query that
// gets no answer within 2s counts as lost; no retries.
func stream(conns []*dns.Conn, max int, stop <-chan struct{}) *loadResult {
	res := &loadResult{by: map[string]int{}}
	var wg sync.WaitGroup
	for w, conn := range conns {
		wg.Add(1)
		go func(w int, conn *dns.Conn) {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			for i := 0; i < max; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := new(dns.Msg)
				m.SetQuestion("whoami.example.test.", dns.TypeTXT)
				r, _, err := c.ExchangeWithConn(m, conn)
				res.mu.Lock()
				res.sent++
				switch {
				case err != nil:
					res.lost = append(res.lost, fmt.Sprintf("worker %d query %d: %v", w, i, err))
				case len(r.Question) != 1 || r.Question[0].Name != "whoami.example.test." || len(r.Answer) != 1:
					res.mismatched = append(res.mismatched, r.String())
				default:
					res.answered++
					res.by[r.Answer[0].(*dns.TXT).Txt[0]]++
				}
				res.mu.Unlock()
			}
		}(w, conn)
	}
	wg.Wait()
	return res
}

// dialConns opens n UDP client connections to server (in ns if not nil).
func dialConns(t *testing.T, ns *testpeer.NetNS, server netip.AddrPort, n int) []*dns.Conn {
	t.Helper()
	var conns []*dns.Conn
	dial := func() {
		for i := 0; i < n; i++ {
			c, err := dns.Dial("udp", server.String())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
	}
	if ns != nil {
		ns.Do(t, dial)
	} else {
		dial()
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// needBinary skips under -short, where TestMain builds no dnslb binary.
func needBinary(t *testing.T) {
	t.Helper()
	testpeer.SkipShort(t, "runs the race-built dnslb binary, which TestMain builds only without -short")
}

// requirePeers skips loudly unless the test can start NSD (always under
// -short: RequireRoot skips).
func requirePeers(t *testing.T) {
	t.Helper()
	testpeer.RequireRoot(t)
	testpeer.RequireTool(t, "nsd")
}

// twoNSD starts ns1 on 127.0.0.11 and ns2 on 127.0.0.12 (free ports).
func twoNSD(t *testing.T) (*testpeer.NSD, *testpeer.NSD) {
	t.Helper()
	a := testpeer.StartNSD(t, testpeer.NSDOptions{Name: "ns1", Addr: testpeer.FreePort(t, netip.MustParseAddr("127.0.0.11"))})
	b := testpeer.StartNSD(t, testpeer.NSDOptions{Name: "ns2", Addr: testpeer.FreePort(t, netip.MustParseAddr("127.0.0.12"))})
	return a, b
}

// nsdIn starts an NSD named name on addr inside ns.
func nsdIn(t *testing.T, ns *testpeer.NetNS, name, addr string) *testpeer.NSD {
	t.Helper()
	return testpeer.StartNSD(t, testpeer.NSDOptions{Name: name, Addr: netip.MustParseAddrPort(addr), NetNS: ns.Name()})
}

// logLines returns the log lines containing s.
func (l *lb) logLines(s string) []string {
	var out []string
	for _, line := range strings.Split(l.log.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}
