package testpeer

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// delayQueueLen bounds the packets held by one delay line; more are dropped,
// like a full qdisc.
const delayQueueLen = 4096

// DelayFromAddr delays by d every IPv4 packet with source address src as it
// leaves dev (usually "lo") inside the namespace. Use it to make ONE
// backend slow when all backends share lo on different 127.0.0.x
// addresses: only that backend's replies are delayed.
//
// Mechanism (a delay line, because sch_netem and sch_prio are often not
// built, as on this project's CI kernel): a clsact egress u32 filter
// `match ip src SRC/32` redirects (mirred) the packets to a TUN device
// created in the namespace; a goroutine reads them, holds each for d, and
// writes it back into the TUN, where the stack receives it as if it had
// arrived (accept_local and route_localnet are enabled on that TUN only).
// Each call adds its own TUN and filter; undone on t's cleanup or the
// namespace's, whichever comes first. Needs CONFIG_TUN, CONFIG_NET_SCH_INGRESS
// (clsact), CONFIG_NET_CLS_U32 and CONFIG_NET_ACT_MIRRED.
func (ns *NetNS) DelayFromAddr(t testing.TB, dev string, src netip.Addr, d time.Duration) {
	t.Helper()
	RequireTool(t, "tc")
	src = src.Unmap()
	if !src.Is4() {
		t.Fatalf("testpeer: DelayFromAddr %v: IPv4 sources only", src)
	}
	if d <= 0 {
		t.Fatalf("testpeer: DelayFromAddr %v: delay %v must be positive", src, d)
	}

	ns.mu.Lock()
	idx := ns.nextTun
	ns.nextTun++
	needClsact := !ns.clsact[dev]
	ns.clsact[dev] = true
	ns.mu.Unlock()

	l := &delayLine{
		ns:    ns.name,
		dev:   dev,
		tun:   "tpdly" + strconv.Itoa(idx),
		prio:  100 + idx,
		src:   src,
		delay: d,
		stop:  make(chan struct{}),
	}
	var err error
	if nerr := inNetNS(ns.name, func() { err = l.openTun() }); nerr != nil {
		t.Fatalf("testpeer: netns %s: %v", ns.name, nerr)
	}
	if err != nil {
		t.Fatalf("testpeer: netns %s: DelayFromAddr %v: %v", ns.name, src, err)
	}
	l.run()
	ns.mu.Lock()
	ns.delays = append(ns.delays, l)
	ns.mu.Unlock()
	t.Cleanup(func() {
		if err := l.close(); err != nil {
			t.Errorf("testpeer: netns %s: %v", ns.name, err)
		}
	})

	cmds := [][]string{
		{"ip", "-n", ns.name, "link", "set", l.tun, "mtu", "65535", "up"},
	}
	if needClsact {
		cmds = append(cmds, []string{"tc", "-n", ns.name, "qdisc", "add", "dev", dev, "clsact"})
	}
	cmds = append(cmds, []string{"tc", "-n", ns.name, "filter", "add", "dev", dev, "egress",
		"protocol", "ip", "prio", strconv.Itoa(l.prio), "u32", "match", "ip", "src", src.String() + "/32",
		"action", "mirred", "egress", "redirect", "dev", l.tun})
	for _, c := range cmds {
		if out, err := runBounded(c...); err != nil {
			t.Fatalf("testpeer: netns %s: %s: %v\n%s", ns.name, strings.Join(c, " "), err, out)
		}
	}
}

// delayLine holds packets redirected to a TUN device for a fixed delay and
// writes them back. Its two goroutines are owned by it and stopped by close.
type delayLine struct {
	ns, dev, tun string
	prio         int
	src          netip.Addr
	delay        time.Duration

	f       *os.File // the TUN, non-blocking, in the runtime poller
	stop    chan struct{}
	wg      sync.WaitGroup
	delayed atomic.Int64
	dropped atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// openTun creates the TUN device; it must run inside the namespace (the
// device is created in the namespace of the thread that opens
// /dev/net/tun), which also makes the sysctl writes land there.
func (l *delayLine) openTun() error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open /dev/net/tun (CONFIG_TUN): %w", err)
	}
	ifr, err := unix.NewIfreq(l.tun)
	if err != nil {
		unix.Close(fd)
		return err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return fmt.Errorf("TUNSETIFF %s: %w", l.tun, err)
	}
	l.f = os.NewFile(uintptr(fd), "/dev/net/tun:"+l.tun)
	// Packets written back arrive on the TUN with a 127/8 source that is
	// local: allow that on this device only. rp_filter is the max of
	// "all" and the device, so "all" is cleared too; the per-device write
	// above it has already proved we are inside the namespace.
	for _, s := range []struct{ key, val string }{
		{"net/ipv4/conf/" + l.tun + "/route_localnet", "1"},
		{"net/ipv4/conf/" + l.tun + "/accept_local", "1"},
		{"net/ipv4/conf/" + l.tun + "/rp_filter", "0"},
		{"net/ipv4/conf/all/rp_filter", "0"},
	} {
		if err := os.WriteFile("/proc/sys/"+s.key, []byte(s.val), 0); err != nil {
			l.f.Close()
			return fmt.Errorf("sysctl %s=%s: %w", s.key, s.val, err)
		}
	}
	return nil
}

type delayedPacket struct {
	due time.Time
	b   []byte
}

// run starts the reader and the writer goroutines.
func (l *delayLine) run() {
	q := make(chan delayedPacket, delayQueueLen)
	l.wg.Add(2)
	go func() { // reader: TUN -> queue, stamped with the release time
		defer l.wg.Done()
		defer close(q)
		buf := make([]byte, 1<<16)
		for {
			n, err := l.f.Read(buf)
			if err != nil {
				return // closed
			}
			p := delayedPacket{due: time.Now().Add(l.delay), b: bytes.Clone(buf[:n])}
			select {
			case q <- p:
			default:
				l.dropped.Add(1)
			}
		}
	}()
	go func() { // writer: queue -> TUN once due; FIFO since the delay is fixed
		defer l.wg.Done()
		timer := time.NewTimer(0)
		defer timer.Stop()
		<-timer.C
		for p := range q {
			if wait := time.Until(p.due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-l.stop:
					return
				case <-timer.C:
				}
			}
			if _, err := l.f.Write(p.b); err == nil {
				l.delayed.Add(1)
			}
		}
	}()
}

// close removes the filter, stops the goroutines and closes the TUN (which
// deletes the device). Idempotent; waits at most 2s.
func (l *delayLine) close() error {
	l.closeOnce.Do(func() {
		// Best effort: fails harmlessly if the namespace is already gone.
		_, _ = runBounded("tc", "-n", l.ns, "filter", "del", "dev", l.dev, "egress",
			"protocol", "ip", "prio", strconv.Itoa(l.prio))
		close(l.stop)
		l.f.Close()
		done := make(chan struct{})
		go func() { l.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			l.closeErr = fmt.Errorf("delay line %s (src %v): goroutines did not stop within 2s", l.tun, l.src)
		}
	})
	return l.closeErr
}
