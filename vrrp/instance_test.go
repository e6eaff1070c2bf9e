package vrrp

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// hub is an in-memory LAN: a packet written by one fakeConn reaches all
// the others, as multicast would.
type hub struct {
	mu    sync.Mutex
	conns []*fakeConn
}

type packet struct {
	b        []byte
	src, dst netip.Addr
	ttl      int
}

type fakeConn struct {
	h      *hub
	local  netip.Addr
	in     chan packet
	closed chan struct{}
	once   sync.Once
	mute   bool // drop everything we send (a hung or unplugged node)
	mu     sync.Mutex
}

func (h *hub) conn(local string) *fakeConn {
	c := &fakeConn{h: h, local: netip.MustParseAddr(local), in: make(chan packet, 256), closed: make(chan struct{})}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return c
}

// inject delivers a raw packet to every conn, as if from src.
func (h *hub) inject(b []byte, src, dst netip.Addr, ttl int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		if c.local != src {
			select {
			case c.in <- packet{append([]byte(nil), b...), src, dst, ttl}:
			default:
			}
		}
	}
}

func (c *fakeConn) Read(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p.src, p.dst, p.ttl, nil
	case <-c.closed:
		return 0, netip.Addr{}, netip.Addr{}, 0, context.Canceled
	}
}

func (c *fakeConn) Write(b []byte, dst netip.Addr) error {
	c.mu.Lock()
	mute := c.mute
	c.mu.Unlock()
	if !mute {
		c.h.inject(b, c.local, dst, 255)
	}
	return nil
}

func (c *fakeConn) setMute(m bool) { c.mu.Lock(); c.mute = m; c.mu.Unlock() }

func (c *fakeConn) LocalAddr() netip.Addr { return c.local }
func (c *fakeConn) Close() error          { c.once.Do(func() { close(c.closed) }); return nil }

// fakeAnnouncer records what the instance did to the VIPs.
type fakeAnnouncer struct {
	mu        sync.Mutex
	held      bool
	announced int
	adds      int
}

func (a *fakeAnnouncer) AddVIPs([]netip.Prefix) error {
	a.mu.Lock()
	a.held = true
	a.adds++
	a.mu.Unlock()
	return nil
}
func (a *fakeAnnouncer) RemoveVIPs([]netip.Prefix) error {
	a.mu.Lock()
	a.held = false
	a.mu.Unlock()
	return nil
}
func (a *fakeAnnouncer) Announce([]netip.Prefix) error {
	a.mu.Lock()
	a.announced++
	a.mu.Unlock()
	return nil
}
func (a *fakeAnnouncer) holds() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.held }

type node struct {
	in     *Instance
	conn   *fakeConn
	ann    *fakeAnnouncer
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

const testInterval = 20 * time.Millisecond

func startNode(t *testing.T, h *hub, addr string, prio uint8, mod func(*Options)) *node {
	t.Helper()
	n := &node{conn: h.conn(addr), ann: &fakeAnnouncer{}, reg: prometheus.NewRegistry(), done: make(chan struct{})}
	o := Options{VRID: 51, Priority: prio, Version: 3, Interval: testInterval, Preempt: true,
		VIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.100/24")}, Conn: n.conn, Announcer: n.ann, Registerer: n.reg, GARPRepeat: 2}
	if mod != nil {
		mod(&o)
	}
	in, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	n.in = in
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { defer close(n.done); in.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

// kill stops the node without the priority-0 goodbye, as SIGKILL would.
func (n *node) kill() {
	n.conn.setMute(true)
	n.stop()
}

func waitState(t *testing.T, n *node, want State, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if n.in.Status().State == want {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s: state %s, want %s within %v (%s)", n.conn.local, n.in.Status().State, want, within, n.in.Status().Reason)
	return 0
}

func TestAloneBecomesMaster(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 100, nil)
	d := waitState(t, a, Master, time.Second)
	// Master_Down_Interval = 3 x 20ms + (256-100)/256 x 20ms = 72ms
	if d < 60*time.Millisecond {
		t.Fatalf("became master after %v, before Master_Down_Interval", d)
	}
	if !a.ann.holds() || a.ann.announced < 2 {
		t.Fatalf("VIPs held %v, announced %d", a.ann.holds(), a.ann.announced)
	}
	a.stop()
	if a.ann.holds() {
		t.Fatal("VIP left behind after stop")
	}
}

func TestHigherPriorityWinsAndCleanShutdownHandsOver(t *testing.T) {
	h := &hub{}
	slow := func(o *Options) { o.Interval = 100 * time.Millisecond }
	a := startNode(t, h, "10.77.0.1", 150, slow)
	b := startNode(t, h, "10.77.0.2", 100, slow)
	waitState(t, a, Master, 2*time.Second)
	waitState(t, b, Backup, time.Second)
	time.Sleep(300 * time.Millisecond)
	if b.in.Status().State != Backup || b.ann.holds() {
		t.Fatal("two masters")
	}
	// clean stop: priority 0 lets b take over after Skew_Time (61ms), far
	// below Master_Down_Interval (361ms)
	start := time.Now()
	a.stop()
	waitState(t, b, Master, time.Second)
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("takeover after priority 0 took %v, Master_Down_Interval is 361ms", d)
	}
	if testutil.ToFloat64(b.in.m.state) != float64(Master) {
		t.Fatal("state metric not master")
	}
}

func TestKilledMasterTakenOverAfterMasterDownInterval(t *testing.T) {
	h := &hub{}
	slow := func(o *Options) { o.Interval = 100 * time.Millisecond }
	a := startNode(t, h, "10.77.0.1", 150, slow)
	b := startNode(t, h, "10.77.0.2", 100, slow)
	waitState(t, a, Master, 2*time.Second)
	waitState(t, b, Backup, time.Second)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	a.kill()
	d := waitState(t, b, Master, 2*time.Second)
	// 3 x 100ms + skew 61ms = 361ms since the last advert; no sooner than
	// 261ms after the kill (the last advert was at most 100ms before)
	if d < 250*time.Millisecond || time.Since(start) > time.Second {
		t.Fatalf("takeover after %v, Master_Down_Interval is 361ms", d)
	}
}

func TestPreemptAndNoPreempt(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		h := &hub{}
		b := startNode(t, h, "10.77.0.2", 100, func(o *Options) { o.Preempt = preempt })
		waitState(t, b, Master, time.Second)
		a := startNode(t, h, "10.77.0.1", 150, func(o *Options) { o.Preempt = preempt })
		time.Sleep(10 * testInterval)
		if preempt {
			waitState(t, a, Master, time.Second)
			waitState(t, b, Backup, time.Second)
		} else {
			if a.in.Status().State != Backup || b.in.Status().State != Master {
				t.Fatalf("preempt false: a %s, b %s", a.in.Status().State, b.in.Status().State)
			}
		}
		a.stop()
		b.stop()
	}
}

func TestPreemptDelay(t *testing.T) {
	h := &hub{}
	b := startNode(t, h, "10.77.0.2", 100, nil)
	waitState(t, b, Master, time.Second)
	a := startNode(t, h, "10.77.0.1", 150, func(o *Options) { o.PreemptDelay = 300 * time.Millisecond })
	time.Sleep(150 * time.Millisecond)
	if a.in.Status().State != Backup {
		t.Fatalf("preempted within preempt_delay: %s", a.in.Status().State)
	}
	waitState(t, a, Master, time.Second)
}

func TestEqualPriorityHigherAddressWins(t *testing.T) {
	// Two masters of equal priority (after a partition heals): the one
	// with the higher primary address stays master (RFC 5798 6.4.3).
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 100, nil)
	b := startNode(t, h, "10.77.0.2", 100, nil)
	a.conn.setMute(true)
	b.conn.setMute(true)
	waitState(t, a, Master, time.Second)
	waitState(t, b, Master, time.Second)
	a.conn.setMute(false)
	b.conn.setMute(false)
	waitState(t, a, Backup, time.Second)
	time.Sleep(10 * testInterval)
	if a.in.Status().State != Backup || b.in.Status().State != Master {
		t.Fatalf("a %s b %s: the higher primary address must win", a.in.Status().State, b.in.Status().State)
	}
}

func TestAddressOwnerIsMasterAtOnce(t *testing.T) {
	h := &hub{}
	b := startNode(t, h, "10.77.0.2", 100, nil)
	waitState(t, b, Master, time.Second)
	a := startNode(t, h, "10.77.0.1", 255, nil)
	if d := waitState(t, a, Master, time.Second); d > testInterval {
		t.Fatalf("owner took %v", d)
	}
	waitState(t, b, Backup, time.Second)
}

func TestBackupLearnsMasterInterval(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 150, func(o *Options) { o.Interval = 50 * time.Millisecond })
	b := startNode(t, h, "10.77.0.2", 100, nil)
	waitState(t, a, Master, time.Second)
	time.Sleep(200 * time.Millisecond)
	if st := b.in.Status(); st.State != Backup || st.AdvertInterval != 50*time.Millisecond {
		t.Fatalf("backup %s learned %v, want 50ms", st.State, st.AdvertInterval)
	}
}

func TestTrackingFaultAndWeight(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 150, nil)
	b := startNode(t, h, "10.77.0.2", 100, nil)
	waitState(t, a, Master, time.Second)
	a.in.SetTracking(false) // weight 0: fault, hand over with priority 0
	waitState(t, a, Fault, time.Second)
	waitState(t, b, Master, 3*testInterval)
	if a.ann.holds() {
		t.Fatal("faulted node kept the VIP")
	}
	a.in.SetTracking(true)
	waitState(t, a, Master, time.Second) // back, and preempts

	// weight 60: priority 150 -> 90 < 100, so b (preempting) takes over
	h2 := &hub{}
	c := startNode(t, h2, "10.77.0.1", 150, func(o *Options) { o.TrackWeight = 60 })
	d := startNode(t, h2, "10.77.0.2", 100, nil)
	waitState(t, c, Master, time.Second)
	c.in.SetTracking(false)
	waitState(t, d, Master, time.Second)
	waitState(t, c, Backup, time.Second)
	if p := c.in.Status().EffectivePriority; p != 90 {
		t.Fatalf("effective priority %d, want 90", p)
	}
}

func TestGarbageIsCountedNeverAStateChange(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 100, nil)
	waitState(t, a, Master, time.Second)
	src, dst := netip.MustParseAddr("10.77.0.9"), GroupV4
	good := Advert{Version: 3, VRID: 51, Priority: 254, Interval: testInterval, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.100")}, Src: src, Dst: dst}
	b, err := good.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	other := good
	other.VRID = 52
	ob, _ := other.MarshalBinary()
	bad := append([]byte(nil), b...)
	bad[6] ^= 0xff // checksum
	for i := 0; i < 20; i++ {
		h.inject(b, src, dst, 64) // wrong TTL: crossed a router
		h.inject(bad, src, dst, 255)
		h.inject(ob, src, dst, 255)
		h.inject(b[:5], src, dst, 255)
		h.inject([]byte{0x21}, src, dst, 255)
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(5 * testInterval)
	if a.in.Status().State != Master {
		t.Fatalf("garbage changed the state: %s", a.in.Status().State)
	}
	for reason, want := range map[string]float64{"ttl": 20, "checksum": 20, "other_vrid": 20, "truncated": 40} {
		if v := testutil.ToFloat64(a.in.m.invalid.WithLabelValues(reason)); v != want {
			t.Errorf("invalid{reason=%s} = %v, want %v", reason, v, want)
		}
	}
	// and a real higher-priority advert with TTL 255 does make it back off
	h.inject(b, src, dst, 255)
	waitState(t, a, Backup, time.Second)
}

func TestV2AuthMismatchIgnored(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 100, func(o *Options) { o.Version, o.Interval, o.AuthPass = 2, time.Second, "secret" })
	src, dst := netip.MustParseAddr("10.77.0.9"), GroupV4
	adv := Advert{Version: 2, VRID: 51, Priority: 200, Interval: time.Second, AuthType: 1, Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.100")}, Src: src, Dst: dst}
	copy(adv.AuthData[:], "wrong")
	b, err := adv.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	h.inject(b, src, dst, 255)
	time.Sleep(50 * time.Millisecond)
	if v := testutil.ToFloat64(a.in.m.invalid.WithLabelValues("auth")); v != 1 {
		t.Fatalf("auth mismatch counted %v times", v)
	}
}

func TestResignKeepsVIPsUntilStopped(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 150, nil)
	b := startNode(t, h, "10.77.0.2", 100, nil)
	waitState(t, a, Master, time.Second)
	waitState(t, b, Backup, time.Second)
	a.in.Resign()
	waitState(t, b, Master, 3*testInterval)
	time.Sleep(5 * testInterval)
	if !a.ann.holds() || a.in.Status().State != Backup {
		t.Fatalf("resigned node: holds VIPs %v, state %s", a.ann.holds(), a.in.Status().State)
	}
	if b.in.Status().State != Master {
		t.Fatal("resigned node took the VIP back")
	}
	a.stop()
	if a.ann.holds() {
		t.Fatal("VIPs left after stop")
	}
}

// TestMetricNames lints the dnslb_vrrp_* metrics with promlint.
func TestMetricNames(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 100, nil)
	waitState(t, a, Master, time.Second)
	a.in.m.invalid.WithLabelValues("ttl").Inc()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"dnslb_vrrp_state", "dnslb_vrrp_transitions_total", "dnslb_vrrp_adverts_sent_total", "dnslb_vrrp_adverts_invalid_total"} {
		if !names[want] {
			t.Errorf("metric %s missing", want)
		}
	}
}

// TestMasterRefreshesVIPs: with VIPRefresh the master adds its VIPs again
// on its advert ticks (renewing a finite lifetime); without it, once.
func TestMasterRefreshesVIPs(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 100, func(o *Options) { o.VIPRefresh = 2 * testInterval })
	startNode(t, h, "10.77.0.2", 50, nil)
	waitState(t, a, Master, time.Second)
	time.Sleep(20 * testInterval)
	a.ann.mu.Lock()
	adds := a.ann.adds
	a.ann.mu.Unlock()
	if adds < 5 {
		t.Fatalf("%d AddVIPs in 20 advert intervals with VIPRefresh of 2, want about 10", adds)
	}
}

// TestMasterReassertsOverLowerPriorityMaster: a lower-priority router that
// missed the master's adverts becomes master too and announces the VIPs;
// the real master answers its advert with its own and announces the VIPs
// again, so clients that followed the other router come back, and the
// other router steps down.
func TestMasterReassertsOverLowerPriorityMaster(t *testing.T) {
	h := &hub{}
	a := startNode(t, h, "10.77.0.1", 150, nil)
	waitState(t, a, Master, time.Second)
	b := startNode(t, h, "10.77.0.2", 100, nil)
	waitState(t, b, Backup, time.Second)
	a.ann.mu.Lock()
	before := a.ann.announced
	a.ann.mu.Unlock()
	// b misses a's adverts long enough to become master
	a.conn.setMute(true)
	waitState(t, b, Master, time.Second)
	a.conn.setMute(false)
	waitState(t, b, Backup, time.Second)
	if a.in.Status().State != Master {
		t.Fatalf("a: %v, want master", a.in.Status().State)
	}
	a.ann.mu.Lock()
	after := a.ann.announced
	a.ann.mu.Unlock()
	if after <= before {
		t.Fatalf("a announced its VIPs %d times before b's takeover and %d after: want it to announce again", before, after)
	}
}
