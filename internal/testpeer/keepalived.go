package testpeer

// Keepalived 2.2.7 (Debian 12) as a VRRP peer in a test namespace: facts
// checked on this machine (kernel 6.18), for interop tests.
//
// Minimal keepalived.conf (the one TestKeepalivedFailover uses; the other
// host has priority 100 and router_id tp_b):
//
//	global_defs {
//	    router_id tp_a
//	}
//	vrrp_instance VI_51 {
//	    state BACKUP
//	    interface eth0
//	    virtual_router_id 51
//	    priority 150
//	    advert_int 1
//	    version 3
//	    virtual_ipaddress {
//	        10.77.0.100/24 dev eth0
//	    }
//	}
//
// Running it in a namespace needs NO special global_defs: not
// enable_script_security or script_user (only checked when scripts are
// configured), no dbus/snmp switches (off unless enable_dbus / enable_snmp_*
// / -x), no net_namespace (we use `ip netns exec` instead), no
// vrrp_strict (leave it unset: it forbids unicast peers, authentication,
// state MASTER below priority 255, ... and clears accept mode, which needs
// nftables/iptables rules), no private /run: with every pid file
// given on the command line (-p, -r, -c, -b) 2.2.7 writes nothing but those
// (strace: no /run, /var/run or /tmp access; the config copy is a memfd),
// so two instances on one machine do not interfere. It logs the harmless
// "NOTICE: setting config option max_auto_priority should result in better
// keepalived performance". StartKeepalived runs
//
//	ip netns exec NS keepalived -n -l -D -G -f DIR/keepalived.conf \
//	    -p DIR/keepalived.pid -r DIR/vrrp.pid -c DIR/checkers.pid -b DIR/bfd.pid
//
// (-n foreground, -l log to the console = our log file, -D detailed, -G no
// syslog). The parent and its VRRP child stay in the process group we
// create. 2.2.7 has no --log-file option (not built in); -t (config test)
// works and exits 5 on config errors, which StartKeepalived uses.
//
// Protocol variants (vrrp_instance lines; all else as above):
//   - VRRPv3 over IPv4: "version 3" (or global_defs "vrrp_version 3"); the
//     default for IPv4 is version 2! The checksum covers the IPv4
//     pseudo-header (RFC 5798 reading; ParseVRRP reports
//     ChecksumPseudoHeader). tcpdump shows "VRRPv3, Advertisement, vrid 51,
//     prio 150, intvl 100cs"; IP TTL 255, TOS 0xc0, dst 224.0.0.18.
//   - VRRPv3 over IPv4 without the pseudo-header ("v3_checksum_as_v2", as
//     RFC 9568 / Cisco): NOT in 2.2.7. The keyword was added in 2.2.8
//     (global_defs or vrrp_instance); 2.2.7 says "(Line N) Unknown keyword
//     'v3_checksum_as_v2'" and `keepalived -t` exits 5, so StartKeepalived
//     fails; guard such tests with RequireKeepalivedKeyword, which skips.
//     2.2.7's only related knob is old_unicast_checksum [never] in a
//     vrrp_instance, for *unicast* VRRPv3 (pre-1.3.6 keepalived kept the
//     multicast group in the pseudo-header); it is not the same thing.
//   - VRRPv3 over IPv6: just IPv6 VIPs ("fd00:77::100/64 dev eth0"); IPv6
//     instances are always version 3. Source is eth0's link-local address
//     (it must exist and not be tentative: AddHost sees to that), dst
//     ff02::12, hop limit 255, checksum with the IPv6 pseudo-header.
//     IPv4 and IPv6 VIPs cannot share one vrrp_instance ("address family
//     must match VRRP instance [fd00::1/64] - ignoring", -t exits 5).
//   - VRRPv2 over IPv4: "version 2" (or nothing). No authentication unless
//     authentication { auth_type PASS auth_pass x } is set (auth type 0);
//     advert_int in whole seconds. gopacket's layers.VRRPv2 decodes it.
//
// Log lines (with -l, each prefixed "Wed Nov 25 12:16:09 2026: "; the
// timestamps have 1s resolution, so time things in the test instead):
//
//	Starting VRRP child process, pid=N      parent forked the VRRP child
//	Startup complete                        child ready (StartKeepalived waits for it)
//	(VI_51) Entering BACKUP STATE (init)    instance up
//	(VI_51) Receive advertisement timeout   master down timer expired
//	(VI_51) Entering MASTER STATE
//	(VI_51) setting VIPs.                   then "Sending gratuitous ARP on eth0 for ..." x5
//	(VI_51) Backup received priority 0 advertisement
//	(VI_51) Master received advert from 10.77.0.1 with higher priority 150, ours 100
//	(VI_51) Entering BACKUP STATE           (no "(init)" after the first)
//	(VI_51) received lower priority (100) advert from 10.77.0.2 - discarding   (preempting)
//	Netlink reports eth0 down               SetLink down or SetPort down (carrier)
//	(VI_51) Entering FAULT STATE            then "sent 0 priority" (cannot leave) and "removing VIPs."
//	Netlink reports eth0 up                 then "(VI_51) Entering BACKUP STATE"
//	Stopping / (VI_51) sent 0 priority / (VI_51) removing VIPs. / Stopped Keepalived v2.2.7
//
// A backup that sees a higher-priority master from the start stays in
// BACKUP with only the "(init)" line. Timing with advert_int 1, both
// started as BACKUP (measured here): the priority-150 one becomes MASTER
// after the master down interval, 3*1s + (256-150)/256 s = 3.44s from
// start. Graceful stop (SIGTERM; keepalived exits ~1s later): the backup's
// first advert follows the priority-0 advert by its skew time,
// (256-100)/256 s = 0.61s. SIGKILL of the master (no priority 0): 3*1s +
// 0.61s = 3.61s. Master's eth0 down: FAULT at once (ms), backup MASTER
// after 3.6s (the priority-0 advert cannot go out); eth0 up again: BACKUP
// at once, MASTER again (preempting) 3.4s later. A killed keepalived leaves
// its VIP on the interface (nobody removes it).
//
// gopacket (v1.7.7) names the VRRP layer layers.LayerTypeVRRP (type
// *layers.VRRPv2; there is no LayerTypeVRRPv2). It does not check the
// version: a VRRPv3 packet decodes as VRRPv2 with Version 3 and AdverInt
// the low byte of the centisecond interval, and an IPv6 one with 4-byte
// addresses. ParseVRRP in capture.go decodes v2 and v3, IPv4 and IPv6, and
// says which checksum a packet carries.

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// keepalivedReadyTimeout bounds the wait for the VRRP child to start.
	keepalivedReadyTimeout = 5 * time.Second
	// keepalivedStopGrace is how long keepalived gets after SIGTERM (to
	// send priority-0 adverts and remove its VIPs) before SIGKILL.
	keepalivedStopGrace = 3 * time.Second
)

// KeepalivedOptions configures StartKeepalived.
type KeepalivedOptions struct {
	// NetNS is the namespace to run in, usually a LAN host. Required.
	NetNS *NetNS
	// Config is the full keepalived.conf text (see KeepalivedConf).
	Config string
	// AllowConfigErrors starts keepalived even if `keepalived -t` finds
	// errors in Config. keepalived itself logs and ignores, e.g., an
	// unknown keyword, so by default such a config fails the test rather
	// than silently testing something else.
	AllowConfigErrors bool
}

// Keepalived is a keepalived started by StartKeepalived.
type Keepalived struct {
	PID      int    // the keepalived parent (leader of its process group)
	Dir      string // temp dir with the config, log and pid files
	ConfPath string
	LogPath  string // keepalived's console log (stdout and stderr)

	ns *NetNS
	p  *proc

	mu      sync.Mutex
	stopErr error
}

// StartKeepalived writes o.Config to a temp dir, checks it with
// `keepalived -t`, and runs keepalived in the foreground inside o.NetNS,
// in its own process group, logging to LogPath, with its pid files in the
// temp dir (so instances in several namespaces do not interfere; see the
// notes at the top of keepalived.go). It waits at most 5s until the log
// shows the VRRP child started ("Starting VRRP child process" and then
// "Startup complete" or an "Entering ... STATE" line) and fails the test
// with the log's tail otherwise.
//
// Cleanup (t's or the namespace's, whichever first): SIGTERM (keepalived
// sends priority-0 adverts and removes its VIPs), SIGKILL to the group
// after 3s, wait. Skips loudly if not root or keepalived is missing.
func StartKeepalived(t testing.TB, o KeepalivedOptions) *Keepalived {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "keepalived")
	RequireTool(t, "ip")
	if o.NetNS == nil {
		t.Fatalf("testpeer: StartKeepalived: no NetNS")
	}
	ns := o.NetNS
	dir := t.TempDir()
	k := &Keepalived{
		Dir:      dir,
		ConfPath: filepath.Join(dir, "keepalived.conf"),
		LogPath:  filepath.Join(dir, "keepalived.log"),
		ns:       ns,
	}
	if err := os.WriteFile(k.ConfPath, []byte(o.Config), 0o644); err != nil {
		t.Fatalf("testpeer: write keepalived.conf: %v", err)
	}
	// In the namespace, so interface names are checked against its links.
	if out, err := runBounded("ip", "netns", "exec", ns.name, "keepalived", "-t", "-f", k.ConfPath); err != nil {
		if !o.AllowConfigErrors {
			t.Fatalf("testpeer: netns %s: keepalived -t: config has errors (%v):\n%s\n--- %s\n%s",
				ns.name, err, strings.TrimSpace(out), k.ConfPath, numbered(o.Config))
		}
		t.Logf("testpeer: netns %s: keepalived -t reports (allowed): %s", ns.name, strings.TrimSpace(out))
	}

	logf, err := os.Create(k.LogPath)
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	defer logf.Close() // the child has its own copy
	args := []string{"ip", "netns", "exec", ns.name, "keepalived", "-n", "-l", "-D", "-G",
		"-f", k.ConfPath,
		"-p", filepath.Join(dir, "keepalived.pid"),
		"-r", filepath.Join(dir, "vrrp.pid"),
		"-c", filepath.Join(dir, "checkers.pid"),
		"-b", filepath.Join(dir, "bfd.pid"),
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startProc(cmd, false)
	if err != nil {
		t.Fatalf("testpeer: netns %s: start %s: %v", ns.name, strings.Join(args, " "), err)
	}
	k.p, k.PID = p, p.pid
	ns.track(p)
	t.Cleanup(func() {
		t0 := time.Now()
		k.stop(keepalivedStopGrace)
		if d := time.Since(t0); d >= keepalivedStopGrace {
			t.Logf("testpeer: netns %s: keepalived (pid %d) took %v to stop (SIGKILLed after %v)", ns.name, k.PID, d.Round(time.Millisecond), keepalivedStopGrace)
		}
		reportStop(t, &k.mu, &k.stopErr, "testpeer: netns "+ns.name+": stop keepalived", func() string {
			return fmt.Sprintf("testpeer: netns %s: keepalived (pid %d) log %s:\n%s", ns.name, k.PID, k.LogPath, tail(k.LogPath, 40))
		})
	})

	deadline := time.Now().Add(keepalivedReadyTimeout)
	for {
		log := k.Log()
		if i := strings.Index(log, "Starting VRRP child process"); i >= 0 {
			rest := log[i:]
			if strings.Contains(rest, "Startup complete") || stateRE.MatchString(rest) {
				return k
			}
		}
		if p.exited() {
			t.Fatalf("testpeer: netns %s: keepalived (pid %d) exited during startup: %v\n%s",
				ns.name, k.PID, p.err, tail(k.LogPath, 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: netns %s: keepalived (pid %d): VRRP child not started after %v:\n%s",
				ns.name, k.PID, keepalivedReadyTimeout, tail(k.LogPath, 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops keepalived gracefully: SIGTERM, so it sends priority-0
// adverts and removes its VIPs; SIGKILL to its group if it has not exited
// after 3s. It waits for it and is idempotent.
func (k *Keepalived) Stop(t testing.TB) {
	t.Helper()
	if err := k.stop(keepalivedStopGrace); err != nil {
		t.Fatalf("testpeer: netns %s: stop keepalived (pid %d): %v\n%s", k.ns.name, k.PID, err, tail(k.LogPath, 20))
	}
}

// Kill kills keepalived's whole process group with SIGKILL (no priority-0
// advert; its VIPs stay on the interface) and waits for it.
func (k *Keepalived) Kill(t testing.TB) {
	t.Helper()
	if !k.p.exited() {
		_ = syscall.Kill(-k.p.pid, syscall.SIGKILL)
	}
	select {
	case <-k.p.done:
	case <-time.After(killWait):
		t.Fatalf("testpeer: netns %s: keepalived (pid %d) still running %v after SIGKILL", k.ns.name, k.PID, killWait)
	}
	if err := k.stop(0); err != nil { // records it as stopped
		t.Fatalf("testpeer: netns %s: kill keepalived (pid %d): %v", k.ns.name, k.PID, err)
	}
}

func (k *Keepalived) stop(grace time.Duration) error {
	err := k.p.stopGroup(grace)
	keepFirstErr(&k.mu, &k.stopErr, err)
	return err
}

// Running reports whether the keepalived parent process is alive.
func (k *Keepalived) Running() bool { return !k.p.exited() }

// Log returns keepalived's whole log so far.
func (k *Keepalived) Log() string {
	b, _ := os.ReadFile(k.LogPath)
	return string(b)
}

// WaitLog waits until the log contains substr (anywhere, also before the
// call), e.g. "Entering MASTER STATE", polling every 20ms for at most
// timeout; it fails the test with the log's tail otherwise, or at once if
// keepalived has exited without logging it. To wait for a state the
// instance may already have been in, use WaitState.
func (k *Keepalived) WaitLog(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(k.Log(), substr) {
			return
		}
		if k.p.exited() && !strings.Contains(k.Log(), substr) {
			t.Fatalf("testpeer: netns %s: keepalived (pid %d) exited without logging %q:\n%s", k.ns.name, k.PID, substr, tail(k.LogPath, 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: netns %s: keepalived (pid %d) did not log %q within %v:\n%s", k.ns.name, k.PID, substr, timeout, tail(k.LogPath, 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateRE matches keepalived's state change lines, e.g.
// "(VI_51) Entering BACKUP STATE (init)".
var stateRE = regexp.MustCompile(`\(([^()\s]+)\) Entering (MASTER|BACKUP|FAULT) STATE`)

// State returns the state in the log's last "Entering X STATE" line, of
// any instance: "MASTER", "BACKUP", "FAULT", or "" if there is none yet.
// It is not changed by keepalived stopping: check Running too.
func (k *Keepalived) State() string { return lastState(k.Log(), "") }

// InstanceState is State for one vrrp_instance, by name (e.g. "VI_51").
func (k *Keepalived) InstanceState(instance string) string { return lastState(k.Log(), instance) }

func lastState(log, instance string) string {
	state := ""
	for _, m := range stateRE.FindAllStringSubmatch(log, -1) {
		if instance == "" || m[1] == instance {
			state = m[2]
		}
	}
	return state
}

// WaitState waits at most timeout until State() is state ("MASTER",
// "BACKUP" or "FAULT") and returns how long that took; it fails the test
// with the log's tail otherwise.
func (k *Keepalived) WaitState(t testing.TB, state string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		if k.State() == state {
			return time.Since(start)
		}
		if k.p.exited() {
			t.Fatalf("testpeer: netns %s: keepalived (pid %d) exited in state %q, want %s:\n%s", k.ns.name, k.PID, k.State(), state, tail(k.LogPath, 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: netns %s: keepalived (pid %d) in state %q after %v, want %s:\n%s", k.ns.name, k.PID, k.State(), timeout, state, tail(k.LogPath, 30))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// KeepalivedInstance describes one vrrp_instance for KeepalivedConf.
type KeepalivedInstance struct {
	Name      string // default "VI_<VRID>"
	Interface string // default "eth0"
	State     string // initial state, default "BACKUP"
	VRID      int
	Priority  int
	// Version is 2 or 3; 0 writes no "version" line: keepalived's default,
	// 2 for IPv4 (!) and 3 for IPv6.
	Version int
	// AdvertInt is advert_int in seconds; default "1". Version 3 allows
	// fractions ("0.5").
	AdvertInt string
	// VIPs go into virtual_ipaddress, each with "dev <Interface>". All of
	// one family: keepalived takes the instance's family from them.
	VIPs []netip.Prefix
	// Extra lines inside the vrrp_instance block, e.g. "nopreempt".
	Extra []string
}

// KeepalivedConf returns a keepalived.conf with a global_defs block
// (router_id routerID, plus the global lines) and the instances.
func KeepalivedConf(routerID string, global []string, instances ...KeepalivedInstance) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("global_defs {")
	w("    router_id %s", routerID)
	for _, l := range global {
		w("    %s", l)
	}
	w("}")
	for _, in := range instances {
		if in.Name == "" {
			in.Name = "VI_" + strconv.Itoa(in.VRID)
		}
		if in.Interface == "" {
			in.Interface = "eth0"
		}
		if in.State == "" {
			in.State = "BACKUP"
		}
		if in.AdvertInt == "" {
			in.AdvertInt = "1"
		}
		w("vrrp_instance %s {", in.Name)
		w("    state %s", in.State)
		w("    interface %s", in.Interface)
		w("    virtual_router_id %d", in.VRID)
		w("    priority %d", in.Priority)
		w("    advert_int %s", in.AdvertInt)
		if in.Version != 0 {
			w("    version %d", in.Version)
		}
		for _, l := range in.Extra {
			w("    %s", l)
		}
		w("    virtual_ipaddress {")
		for _, p := range in.VIPs {
			w("        %s dev %s", p, in.Interface)
		}
		w("    }")
		w("}")
	}
	return b.String()
}

// KeepalivedSyncGroup describes one vrrp_sync_group for
// KeepalivedConfSync: the named vrrp_instances move together (if one goes
// BACKUP or FAULT, all do; they become MASTER only together). keepalived
// 2.2.7 takes IPv4 and IPv6 instances in one group, e.g. the two
// instances of a dual-stack name server:
//
//	vrrp_sync_group G_DNS {
//	    group {
//	        VI_53
//	        VI_54
//	    }
//	}
//
// When one member's timer runs out it logs, e.g. on the backup after the
// master's priority-0 adverts:
//
//	(VI_54) Entering MASTER STATE
//	VRRP_Group(G_DNS) Syncing instances to MASTER state
//	(VI_53) Entering MASTER STATE
//
// (checked here; use InstanceState to follow each member). 2.2.7 also
// logs "(VI_54) the first IPv6 VIP address should be link local" for an
// IPv6 instance without a link-local VIP: a hint, not an error.
type KeepalivedSyncGroup struct {
	Name string // default "G_<first instance's name>"
	// Instances are vrrp_instance names (KeepalivedInstance.Name, by
	// default "VI_<VRID>"); keepalived -t rejects an unknown one.
	Instances []string
	// Extra lines inside the vrrp_sync_group block, e.g. "notify_master
	// /path" (scripts need enable_script_security or script_user).
	Extra []string
}

// KeepalivedConfSync is KeepalivedConf with the sync groups: their
// vrrp_sync_group blocks follow the instances.
func KeepalivedConfSync(routerID string, global []string, groups []KeepalivedSyncGroup, instances ...KeepalivedInstance) string {
	var b strings.Builder
	b.WriteString(KeepalivedConf(routerID, global, instances...))
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	for _, g := range groups {
		if g.Name == "" && len(g.Instances) > 0 {
			g.Name = "G_" + g.Instances[0]
		}
		w("vrrp_sync_group %s {", g.Name)
		w("    group {")
		for _, name := range g.Instances {
			w("        %s", name)
		}
		w("    }")
		for _, l := range g.Extra {
			w("    %s", l)
		}
		w("}")
	}
	return b.String()
}

var (
	keywordMu    sync.Mutex
	keywordKnown = map[string]bool{}
)

// RequireKeepalivedKeyword skips the test loudly unless the installed
// keepalived knows keyword (the first word of a config line, e.g.
// "v3_checksum_as_v2", which 2.2.7 lacks) in global_defs or in a
// vrrp_instance. It asks `keepalived -t` about a scratch config, which
// parses only: nothing is started and no network is touched.
func RequireKeepalivedKeyword(t testing.TB, keyword string) {
	t.Helper()
	RequireTool(t, "keepalived")
	kw := strings.Fields(keyword)
	if len(kw) == 0 {
		t.Fatalf("testpeer: RequireKeepalivedKeyword: empty keyword")
	}
	keywordMu.Lock()
	known, ok := keywordKnown[kw[0]]
	keywordMu.Unlock()
	if !ok {
		known = keepalivedKnows(t, keyword)
		keywordMu.Lock()
		keywordKnown[kw[0]] = known
		keywordMu.Unlock()
	}
	if !known {
		t.Skipf("SKIP: the installed keepalived (%s) does not know the config keyword %q: this test needs a newer keepalived", keepalivedVersion(), kw[0])
	}
}

func keepalivedKnows(t testing.TB, keyword string) bool {
	dir := t.TempDir()
	unknown := fmt.Sprintf("Unknown keyword '%s'", strings.Fields(keyword)[0])
	for i, conf := range []string{
		"global_defs {\n    " + keyword + "\n}\n",
		"vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 1\n    priority 100\n    " + keyword +
			"\n    virtual_ipaddress {\n        192.0.2.1/32\n    }\n}\n",
	} {
		path := filepath.Join(dir, "probe"+strconv.Itoa(i)+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatalf("testpeer: %v", err)
		}
		out, _ := runBounded("keepalived", "-t", "-f", path) // errors other than ours are expected
		if !strings.Contains(out, unknown) {
			return true
		}
	}
	return false
}

// keepalivedVersion returns the first line of `keepalived -v`.
func keepalivedVersion() string {
	out, _ := runBounded("keepalived", "-v")
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return line
}

// numbered returns text with line numbers, as keepalived's errors cite them.
func numbered(text string) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(&b, "%3d  %s\n", i+1, l)
	}
	return b.String()
}

// waitGroupGone waits at most timeout until no live (non-zombie) process
// is left in process group pgid, sending the group SIGKILL each round. The
// group's leader has exited already (and the group been sent SIGKILL), but
// a child that outlived it may still be exiting; its namespace must not be
// deleted, nor the test end, before it is gone.
func waitGroupGone(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d: pids %v still alive %v after SIGKILL", pgid, left, timeout)
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(10 * time.Millisecond)
	}
}

// groupMembers returns the live (non-zombie) processes in group pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // f[0] state, f[1] ppid, f[2] pgrp
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
