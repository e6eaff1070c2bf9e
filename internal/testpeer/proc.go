package testpeer

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// termGrace is how long a process gets after SIGTERM before SIGKILL.
	termGrace = 2 * time.Second
	// killWait bounds the wait after SIGKILL.
	killWait = 5 * time.Second
)

// proc is one child process, leader of its own process group. A goroutine
// started with it reaps it, so it never lingers as a zombie.
type proc struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once Wait has returned
	err  error         // Wait's result; read only after done is closed

	stopOnce sync.Once
	stopErr  error
}

// startProc starts cmd in a new process group with Pdeathsig=SIGKILL.
//
// With newPIDNS (root only) it also gets its own PID namespace, where it is
// PID 1: when it exits the kernel kills and reaps every descendant, so none
// is left behind even as a zombie. (NSD's server process outlives NSD's
// main process at shutdown and is reparented to init; an init that reaps
// lazily leaves "nsd: server <defunct>" entries behind.) Only use it for
// programs that handle SIGTERM: PID 1 ignores signals it has no handler for.
func startProc(cmd *exec.Cmd, newPIDNS bool) (*proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if newPIDNS {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWPID
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		// The leader is gone; kill what is left of its group (NSD's
		// children) right away, before the group ID can be reused.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited and been reaped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process, SIGKILL to its group after grace, and waits
// at most killWait after that. It is idempotent.
func (p *proc) stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.doStop(grace) })
	return p.stopErr
}

func (p *proc) doStop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	// SIGTERM to the leader only: NSD then stops and reaps its own
	// children. The group gets SIGKILL if that takes too long.
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	}
	if !p.exited() {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("pid %d (%s) still running %v after SIGKILL", p.pid, p.cmd.Path, killWait)
	}
}

// stopGroup stops p (see stop), then waits at most killWait until no
// process of its group is left. It returns the first error.
func (p *proc) stopGroup(grace time.Duration) error {
	err := p.stop(grace)
	if gerr := waitGroupGone(p.pid, killWait); err == nil {
		err = gerr
	}
	return err
}

// keepFirstErr stores err in *first, under mu, if err is the first error.
func keepFirstErr(mu *sync.Mutex, first *error, err error) {
	mu.Lock()
	defer mu.Unlock()
	if err != nil && *first == nil {
		*first = err
	}
}

// reportStop ends a server's cleanup: it fails t if stopping the server
// recorded an error (*stopErr, under mu), as "stopMsg: error", and, if t
// has failed, logs failLog() (e.g. the server's log tail).
func reportStop(t testing.TB, mu *sync.Mutex, stopErr *error, stopMsg string, failLog func() string) {
	t.Helper()
	mu.Lock()
	err := *stopErr
	mu.Unlock()
	if err != nil {
		t.Errorf("%s: %v", stopMsg, err)
	}
	if t.Failed() {
		t.Logf("%s", failLog())
	}
}

// serverProc is the part of a peer server that PDNS, Unbound and BIND
// share: its running process (replaced by a restart) and the first error
// in stopping it, under mu (which the servers also use for their own
// fields).
type serverProc struct {
	mu      sync.Mutex
	p       *proc
	stopErr error
}

// stopProc stops the process (SIGTERM, SIGKILL to its group after grace)
// and waits for it, keeping the first error. It is idempotent.
func (s *serverProc) stopProc(grace time.Duration) {
	s.mu.Lock()
	pr := s.p
	s.mu.Unlock()
	if pr != nil {
		keepFirstErr(&s.mu, &s.stopErr, pr.stopGroup(grace))
	}
}

// launch starts args as launchProc does and records the process as s's,
// setting *pid.
func (s *serverProc) launch(t testing.TB, what string, ns *NetNS, nsName, dir, outPath string, pid *int, args ...string) *proc {
	t.Helper()
	pr := launchProc(t, what, ns, nsName, dir, outPath, args...)
	s.mu.Lock()
	s.p, *pid = pr, pr.pid
	s.mu.Unlock()
	return pr
}

// launchProc starts args in dir, inside the namespace nsName unless it
// is "", with stdout and stderr to outPath, in a process group of its own
// (as root, a PID namespace of its own: see startProc); the server must
// handle SIGTERM. ns kills it if the namespace goes first. what names
// the server in a failure ("PowerDNS \"p1\"").
func launchProc(t testing.TB, what string, ns *NetNS, nsName, dir, outPath string, args ...string) *proc {
	t.Helper()
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	defer out.Close() // the child has its own copy
	if nsName != "" {
		args = append([]string{"ip", "netns", "exec", nsName}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	pr, err := startProc(cmd, os.Geteuid() == 0)
	if err != nil {
		t.Fatalf("testpeer: %s: start %s: %v", what, strings.Join(args, " "), err)
	}
	ns.track(pr)
	return pr
}

// running reports whether the process is alive.
func (s *serverProc) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p != nil && !s.p.exited()
}

// readLog returns a whole log file ("" if it cannot be read).
func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
