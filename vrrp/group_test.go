package vrrp

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// pairNode is one node of a test pair with two instances (VRID 51 for
// IPv4-like VIPs, 52 for the other) in a sync group.
type pairNode struct {
	i4, i6 *node
}

func startGroupNode(t *testing.T, h4, h6 *hub, addr4, addr6 string, prio4, prio6 uint8, sync bool) pairNode {
	t.Helper()
	var g *Group
	if sync {
		g = NewGroup()
	}
	a := startNode(t, h4, addr4, prio4, func(o *Options) { o.VRID, o.Group, o.Name = 51, g, "v4" })
	b := startNode(t, h6, addr6, prio6, func(o *Options) {
		o.VRID, o.Group, o.Name = 52, g, "v6"
		o.VIPs = []netip.Prefix{netip.MustParsePrefix("10.78.0.100/24")}
	})
	return pairNode{a, b}
}

// placement samples which node holds each VIP every 10 ms (as a client
// would see it) until stop, and records the samples where the two VIPs
// were held by different nodes (a split). A split seen in two samples in
// a row is a real one; a single sample can catch the instant between two
// instances' transitions (microseconds, stretched by a loaded machine).
type placement struct {
	mu       sync.Mutex
	split    []string
	lasting  int
	previous bool
	stop     chan struct{}
	done     chan struct{}
}

func watchPlacement(a, b pairNode) *placement {
	p := &placement{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			a4, a6, b4, b6 := a.i4.ann.holds(), a.i6.ann.holds(), b.i4.ann.holds(), b.i6.ann.holds()
			split := (a4 && b6 && !a6) || (a6 && b4 && !a4)
			p.mu.Lock()
			if split {
				p.split = append(p.split, time.Now().Format("15:04:05.000"))
				if p.previous {
					p.lasting++
				}
			}
			p.previous = split
			p.mu.Unlock()
		}
	}()
	return p
}

// end stops sampling and returns the split samples, and how many of
// them followed another.
func (p *placement) end() ([]string, int) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.split, p.lasting
}

// TestSyncGroupMovesTogether: a's IPv4 instance goes to fault (as if only
// its link or its tracking failed): a's IPv6 instance steps down with it,
// b takes both; when a's IPv4 instance recovers, a takes both back
// together (preempt). At no sample is one VIP on a and the other on b.
func TestSyncGroupMovesTogether(t *testing.T) {
	h4, h6 := &hub{}, &hub{}
	a := startGroupNode(t, h4, h6, "10.77.0.1", "10.78.0.1", 150, 150, true)
	b := startGroupNode(t, h4, h6, "10.77.0.2", "10.78.0.2", 100, 100, true)
	waitState(t, a.i4, Master, time.Second)
	waitState(t, a.i6, Master, time.Second)
	waitState(t, b.i4, Backup, time.Second)
	waitState(t, b.i6, Backup, time.Second)
	p := watchPlacement(a, b)

	a.i4.in.SetTracking(false) // TrackWeight 0: fault
	waitState(t, a.i4, Fault, time.Second)
	waitState(t, a.i6, Backup, time.Second)
	waitState(t, b.i4, Master, time.Second)
	waitState(t, b.i6, Master, time.Second)
	time.Sleep(10 * testInterval) // a's IPv6 instance must not preempt back alone
	if a.i6.in.Status().State != Backup || a.i6.ann.holds() {
		t.Fatal("a's IPv6 instance took its VIP back while its IPv4 sibling is in fault")
	}

	a.i4.in.SetTracking(true)
	waitState(t, a.i4, Master, 2*time.Second)
	waitState(t, a.i6, Master, time.Second)
	waitState(t, b.i4, Backup, time.Second)
	waitState(t, b.i6, Backup, time.Second)
	if split, lasting := p.end(); lasting > 0 {
		t.Fatalf("VIPs split between the nodes at %d samples, %d in a row: %v", len(split), lasting, split)
	} else if len(split) > 0 {
		t.Logf("a transition caught in a single sample: %v", split)
	}
}

// TestSyncGroupHeldBackByStrongerPeer: b is stronger for IPv6, a for IPv4;
// with sync groups on both nodes one node ends up holding both VIPs, and
// stays so.
func TestSyncGroupHeldBackByStrongerPeer(t *testing.T) {
	h4, h6 := &hub{}, &hub{}
	a := startGroupNode(t, h4, h6, "10.77.0.1", "10.78.0.1", 150, 100, true)
	b := startGroupNode(t, h4, h6, "10.77.0.2", "10.78.0.2", 100, 150, true)
	time.Sleep(30 * testInterval)
	p := watchPlacement(a, b)
	time.Sleep(30 * testInterval)
	if split, lasting := p.end(); lasting > 0 {
		t.Fatalf("VIPs split: %v", split)
	}
	aHolds := a.i4.ann.holds() && a.i6.ann.holds()
	bHolds := b.i4.ann.holds() && b.i6.ann.holds()
	if aHolds == bHolds {
		t.Fatalf("want exactly one node holding both: a %v/%v b %v/%v", a.i4.ann.holds(), a.i6.ann.holds(), b.i4.ann.holds(), b.i6.ann.holds())
	}
}

// TestNoSyncIsIndependent: without a group, one instance's fault moves
// only its own VIP.
func TestNoSyncIsIndependent(t *testing.T) {
	h4, h6 := &hub{}, &hub{}
	a := startGroupNode(t, h4, h6, "10.77.0.1", "10.78.0.1", 150, 150, false)
	b := startGroupNode(t, h4, h6, "10.77.0.2", "10.78.0.2", 100, 100, false)
	waitState(t, a.i6, Master, time.Second)
	waitState(t, b.i6, Backup, time.Second)
	a.i4.in.SetTracking(false)
	waitState(t, b.i4, Master, time.Second)
	time.Sleep(10 * testInterval)
	if a.i6.in.Status().State != Master {
		t.Fatal("an independent instance followed its neighbour")
	}
}

// TestUpdateAppliesAtOnce: a reload raises the backup's priority above the
// master's: it takes over (preempt) without a gap; VIPs added and removed
// on the master apply at once.
func TestUpdateAppliesAtOnce(t *testing.T) {
	h := &hub{}
	base := func(o *Options) { o.VRID = 51 }
	a := startNode(t, h, "10.77.0.1", 150, base)
	b := startNode(t, h, "10.77.0.2", 100, base)
	waitState(t, a, Master, time.Second)
	waitState(t, b, Backup, time.Second)
	o := b.in.Options()
	o.Priority = 200
	b.in.Update(o)
	waitState(t, b, Master, 2*time.Second)
	waitState(t, a, Backup, time.Second)
	if st := b.in.Status(); st.Priority != 200 {
		t.Fatalf("status priority %d", st.Priority)
	}
	o = b.in.Options()
	o.VIPs = []netip.Prefix{netip.MustParsePrefix("10.77.0.101/24")}
	b.in.Update(o)
	deadline := time.Now().Add(time.Second)
	for b.in.Status().VIPs[0] != "10.77.0.101/24" {
		if time.Now().After(deadline) {
			t.Fatal("VIPs not updated")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMuxDemultiplexes: two instances on one shared socket each see only
// their own VRID's adverts (no other_vrid from the sibling).
func TestMuxDemultiplexes(t *testing.T) {
	h := &hub{}
	shared := NewMux(h.conn("10.77.0.1"))
	c51, err := shared.Conn(51)
	if err != nil {
		t.Fatal(err)
	}
	c52, err := shared.Conn(52)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shared.Conn(51); err == nil {
		t.Fatal("a VRID was taken twice on one socket")
	}
	peer := h.conn("10.77.0.2")
	for _, vrid := range []uint8{52, 51, 99} {
		a := Advert{Version: 3, VRID: vrid, Priority: 100, Interval: time.Second, Src: netip.MustParseAddr("10.77.0.2"), Dst: GroupV4,
			Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.100")}}
		b, _ := a.MarshalBinary()
		peer.Write(b, GroupV4)
	}
	buf := make([]byte, 1500)
	n, _, _, _, _ := c51.Read(buf)
	if buf[1] != 51 {
		t.Fatalf("51 read VRID %d (%d bytes)", buf[1], n)
	}
	n, _, _, _, _ = c51.Read(buf) // the stranger goes to the first subscriber
	if buf[1] != 99 {
		t.Fatalf("51 read VRID %d (%d bytes), want the stranger 99", buf[1], n)
	}
	c52.Read(buf)
	if buf[1] != 52 {
		t.Fatalf("52 read VRID %d", buf[1])
	}
	c51.Close()
	c52.Close()
}

// events records, in order, what the instances of one node did.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) { e.mu.Lock(); e.log = append(e.log, s); e.mu.Unlock() }

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// recordingAnnouncer and recordingConn note announcements and adverts.
type recordingAnnouncer struct {
	Announcer
	e    *events
	name string
}

func (a recordingAnnouncer) Announce(v []netip.Prefix) error {
	a.e.add("announce " + a.name)
	return a.Announcer.Announce(v)
}

type recordingConn struct {
	Conn
	e    *events
	name string
}

func (c recordingConn) Write(b []byte, dst netip.Addr) error {
	if len(b) > 2 && b[2] > 0 { // priority 0 is a goodbye, not a takeover
		c.e.add("advert " + c.name)
	}
	return c.Conn.Write(b, dst)
}

// TestTakeoverIsMakeBeforeBreak: when b preempts a with a sync group of
// two instances, b announces both VIPs (gratuitous ARP/NA) before it sends
// the first advert of either instance, because a steps its whole group
// down on that first advert: clients must already know where both VIPs
// went (a query lost per hand-over otherwise, seen in the netns tests).
func TestTakeoverIsMakeBeforeBreak(t *testing.T) {
	h4, h6 := &hub{}, &hub{}
	a := startGroupNode(t, h4, h6, "10.77.0.1", "10.78.0.1", 100, 100, true)
	waitState(t, a.i4, Master, time.Second)
	waitState(t, a.i6, Master, time.Second)
	e := &events{}
	g := NewGroup()
	record := func(name string) func(*Options) {
		return func(o *Options) {
			o.Name, o.Group = name, g
			o.Announcer = recordingAnnouncer{o.Announcer, e, name}
			o.Conn = recordingConn{o.Conn, e, name}
		}
	}
	b4 := startNode(t, h4, "10.77.0.2", 150, record("v4"))
	b6 := startNode(t, h6, "10.78.0.2", 150, func(o *Options) {
		record("v6")(o)
		o.VRID, o.VIPs = 52, []netip.Prefix{netip.MustParsePrefix("10.78.0.100/24")}
	})
	waitState(t, b4, Master, 2*time.Second)
	waitState(t, b6, Master, time.Second)
	waitState(t, a.i4, Backup, time.Second)
	waitState(t, a.i6, Backup, time.Second)
	log := e.list()
	first := -1
	for i, s := range log {
		if strings.HasPrefix(s, "advert") {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("no advert from b: %v", log)
	}
	before := strings.Join(log[:first], ",")
	for _, want := range []string{"announce v4", "announce v6"} {
		if !strings.Contains(before, want) {
			t.Errorf("b sent its first advert before %q: %v", want, log)
		}
	}
}
