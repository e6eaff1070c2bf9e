package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/balancer"
	"github.com/dnslb/dnslb/config"
	"github.com/dnslb/dnslb/internal/health"
)

// Graceful restart (SIGUSR2): the running process starts the dnslb binary
// found at its own path (a new version after an upgrade) with the same
// arguments and hands it its listening sockets as inherited file
// descriptors, plus the health of every backend. The sockets stay open
// throughout, so no datagram or connection waiting in them is lost. Once
// the new process serves, it says so on a pipe; the old one then stops
// reading, answers its in-flight UDP queries, closes its TCP connections at
// message boundaries and exits 0. If the new process fails to start, the
// old one keeps serving.
//
// The hand-over travels in the environment of the new process:
//
//	DNSLB_UPGRADE_READY=3                 fd of the pipe to write "ready\n" to
//	DNSLB_INHERIT=4:tcp:127.0.0.1:53,...  fd:network:address of each socket
//	DNSLB_INHERIT_HEALTH=ns1:up,ns2:down  health checks' verdicts
const (
	envReady   = "DNSLB_UPGRADE_READY"
	envInherit = "DNSLB_INHERIT"
	envHealth  = "DNSLB_INHERIT_HEALTH"
	// upgradeTimeout bounds how long the old process waits for the new one.
	upgradeTimeout = 30 * time.Second
)

// inheritance is what a process started by a graceful restart received.
type inheritance struct {
	ready     *os.File // nil when not started by a graceful restart
	listeners []balancer.ListenerFile
	admin     net.Listener
	health    map[string]health.State
}

// inherit reads the hand-over from the environment (and removes it, so
// that the next restart starts clean).
func inherit() (*inheritance, error) {
	in := &inheritance{health: map[string]health.State{}}
	if v := os.Getenv(envReady); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: not a file descriptor", envReady, v)
		}
		in.ready = os.NewFile(uintptr(fd), "upgrade-ready")
	}
	if v := os.Getenv(envInherit); v != "" {
		for _, item := range strings.Split(v, ",") {
			fdText, rest, _ := strings.Cut(item, ":")
			network, addrText, _ := strings.Cut(rest, ":")
			fd, err := strconv.Atoi(fdText)
			addr, aerr := netip.ParseAddrPort(addrText)
			if err != nil || aerr != nil || (network != "udp" && network != "tcp" && network != "admin") {
				return nil, fmt.Errorf("%s: bad item %q", envInherit, item)
			}
			f := os.NewFile(uintptr(fd), network+":"+addrText)
			if network == "admin" {
				ln, err := net.FileListener(f)
				f.Close()
				if err != nil {
					return nil, fmt.Errorf("%s: admin %s: %w", envInherit, addr, err)
				}
				in.admin = ln
				continue
			}
			in.listeners = append(in.listeners, balancer.ListenerFile{Network: network, Addr: addr, File: f})
		}
	}
	if v := os.Getenv(envHealth); v != "" {
		for _, item := range strings.Split(v, ",") {
			name, st, _ := strings.Cut(item, ":")
			switch st {
			case "up":
				in.health[name] = health.Up
			case "down":
				in.health[name] = health.Down
			}
		}
	}
	for _, k := range []string{envReady, envInherit, envHealth} {
		os.Unsetenv(k)
	}
	return in, nil
}

// signalReady tells the previous process that this one serves.
func (in *inheritance) signalReady() error {
	if in == nil || in.ready == nil {
		return nil
	}
	defer in.ready.Close()
	_, err := in.ready.WriteString("ready\n")
	in.ready = nil
	return err
}

// upgrade starts the new process and waits until it serves. It returns
// the new process's PID; on error this process keeps serving.
func (d *daemon) upgrade() (int, error) {
	cfg := d.current()
	if cfg.VRRP.Enabled || cfg.Notify.Enabled {
		return 0, errors.New("not available with vrrp or notify enabled: restart through a VRRP fail-over instead (SIGTERM hands the VIP to the peer)")
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the dnslb binary: %w", err)
	}
	files, err := d.bal.ListenerFiles()
	if err != nil {
		return 0, err
	}
	var adminFile *os.File
	if d.adm != nil {
		if adminFile, err = d.adm.ListenerFile(); err != nil {
			closeListenerFiles(files)
			return 0, err
		}
	}
	// Stop accepting before exec: exec puts passed descriptors into blocking
	// mode, and an accept stuck in the kernel could never be stopped. New
	// connections wait in the listen queues meanwhile.
	d.bal.PauseTCP()
	if d.adm != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		d.adm.Shutdown(ctx)
		cancel()
	}
	pid, err := d.startSuccessor(exe, files, adminFile, cfg)
	if err != nil {
		if rerr := d.resumeAfterFailedUpgrade(files, adminFile); rerr != nil {
			err = fmt.Errorf("%v; resuming: %v", err, rerr)
		}
	}
	closeListenerFiles(files)
	if adminFile != nil {
		adminFile.Close()
	}
	return pid, err
}

// startSuccessor execs the new process with the sockets and waits until it
// says it serves.
func (d *daemon) startSuccessor(exe string, files []balancer.ListenerFile, adminFile *os.File, cfg *config.Config) (int, error) {
	readR, readW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer readR.Close()
	extra := []*os.File{readW} // fd 3
	var items []string
	for _, lf := range files {
		items = append(items, fmt.Sprintf("%d:%s:%s", 3+len(extra), lf.Network, lf.Addr))
		extra = append(extra, lf.File)
	}
	if adminFile != nil {
		ap, _ := netip.ParseAddrPort(cfg.Admin.Listen)
		items = append(items, fmt.Sprintf("%d:admin:%s", 3+len(extra), ap))
		extra = append(extra, adminFile)
	}
	var healthList []string
	for name, st := range d.checker.Status() {
		switch st.State {
		case health.Up:
			healthList = append(healthList, name+":up")
		case health.Down:
			healthList = append(healthList, name+":down")
		}
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), envReady+"=3", envInherit+"="+strings.Join(items, ","), envHealth+"="+strings.Join(healthList, ","))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = extra
	err = cmd.Start()
	readW.Close() // the child has its own copy
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(readR).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Process.Kill()
			return 0, fmt.Errorf("new process %d did not become ready: %v", cmd.Process.Pid, err)
		}
		return cmd.Process.Pid, nil
	case err := <-exited:
		return 0, fmt.Errorf("new process exited before serving: %v", err)
	case <-time.After(upgradeTimeout):
		cmd.Process.Kill()
		return 0, fmt.Errorf("new process %d not ready within %s", cmd.Process.Pid, upgradeTimeout)
	}
}

// resumeAfterFailedUpgrade accepts TCP and admin connections again.
func (d *daemon) resumeAfterFailedUpgrade(files []balancer.ListenerFile, adminFile *os.File) error {
	err := d.bal.ResumeTCP(files)
	if adminFile != nil {
		ln, lerr := net.FileListener(adminFile)
		if lerr != nil {
			return errors.Join(err, lerr)
		}
		opts := d.admOpts
		opts.Listener = ln
		d.adm = admin.New(opts)
		err = errors.Join(err, d.adm.Start())
	}
	return err
}

func closeListenerFiles(files []balancer.ListenerFile) {
	for _, lf := range files {
		lf.File.Close()
	}
}
