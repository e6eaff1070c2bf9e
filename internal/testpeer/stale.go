package testpeer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// markerDir holds one file per live NetNS, naming the test process that
// made it. A test binary killed before its cleanups ran (go test -timeout
// panics without running them; SIGKILL) leaves its namespaces behind; the
// next NewNetNS deletes those whose owner is gone. Namespaces without a
// marker are never touched.
const markerDir = "/run/testpeer"

const markerPrefix = "netns-"

// writeMarker records that this process owns namespace name.
func writeMarker(name string) error {
	if err := os.MkdirAll(markerDir, 0o755); err != nil {
		return err
	}
	st, err := procStartTime(os.Getpid())
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(markerDir, markerPrefix+name), fmt.Appendf(nil, "%d %s\n", os.Getpid(), st), 0o644)
}

func removeMarker(name string) error {
	err := os.Remove(filepath.Join(markerDir, markerPrefix+name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// sweepStale deletes namespaces whose marker names a process that is gone
// (or whose PID now belongs to a process with another start time).
func sweepStale(t testing.TB) {
	entries, err := os.ReadDir(markerDir)
	if err != nil {
		return // none yet
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), markerPrefix)
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(markerDir, e.Name()))
		if err != nil {
			continue // swept by someone else meanwhile
		}
		var pid int
		var start string
		if _, err := fmt.Sscan(string(b), &pid, &start); err != nil {
			continue
		}
		if st, err := procStartTime(pid); err == nil && st == start {
			continue // owner alive
		}
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
			if _, err := killNetNSPids(name); err != nil {
				t.Logf("testpeer: stale netns %s: %v", name, err)
			}
			if out, err := runBounded("ip", "netns", "del", name); err != nil {
				t.Logf("testpeer: stale netns %s (owner pid %d gone): ip netns del: %v: %s", name, pid, err, strings.TrimSpace(out))
				continue
			}
			t.Logf("testpeer: deleted stale netns %s left by dead test process %d", name, pid)
		}
		_ = removeMarker(name)
	}
}

// procStartTime returns field 22 of /proc/PID/stat (start time in clock
// ticks since boot), which tells a PID's reuse apart.
func procStartTime(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("pid %d: bad stat", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return "", fmt.Errorf("pid %d: short stat", pid)
	}
	return f[19], nil
}

// killNetNSPids SIGKILLs every process `ip netns pids` reports in name,
// except this one, waits at most 2s for each, and returns them as
// "PID (command)".
func killNetNSPids(name string) ([]string, error) {
	out, err := runBounded("ip", "netns", "pids", name)
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w: %s", name, err, strings.TrimSpace(out))
	}
	var killed []string
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm := procComm(pid)
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed = append(killed, fmt.Sprintf("%d (%s)", pid, comm))
			waitGone(pid)
		}
	}
	return killed, nil
}
