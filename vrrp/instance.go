package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// State is an instance's VRRP state; its numeric value is the value of
// the dnslb_vrrp_state metric.
type State uint8

const (
	// Initialize: not running (before start and after stop).
	Initialize State = iota
	// Backup: watching the master's adverts, VIPs not held.
	Backup
	// Master: sending adverts and holding the VIPs.
	Master
	// Fault: tracking says this node cannot serve; it holds no VIP,
	// sends no advert and ignores the others until tracking recovers.
	Fault
)

// String returns "init", "backup", "master" or "fault".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

var stateNames = [...]string{"init", "backup", "master", "fault"}

// MarshalText writes the state as its name ("master"), for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Conn carries VRRP packets (IP protocol 112) on one interface.
type Conn interface {
	// Read returns the next packet's payload, its IP source and
	// destination and its TTL (IPv4) or hop limit (IPv6).
	Read(b []byte) (n int, src, dst netip.Addr, ttl int, err error)
	// Write sends payload to dst with TTL/hop limit 255 from LocalAddr.
	Write(b []byte, dst netip.Addr) error
	// LocalAddr is the primary address adverts are sent from (the
	// interface's IPv4 address, or its IPv6 link-local address).
	LocalAddr() netip.Addr
	Close() error
}

// Announcer holds and announces the VIPs on the interface.
type Announcer interface {
	// AddVIPs configures the VIPs on the interface.
	AddVIPs(vips []netip.Prefix) error
	// RemoveVIPs removes them; removing an absent VIP is not an error.
	RemoveVIPs(vips []netip.Prefix) error
	// Announce sends one gratuitous ARP (IPv4) or unsolicited neighbour
	// advertisement (IPv6) for each VIP.
	Announce(vips []netip.Prefix) error
}

// Options configure an Instance.
type Options struct {
	// Name names the instance in logs, metrics, status and the notify
	// script; default the VRID.
	Name string
	// Group, if set, is the node's sync group the instance moves with.
	Group        *Group
	VRID         uint8
	Priority     uint8         // 1..255; 255 = address owner
	Version      uint8         // 3 (default) or 2
	Interval     time.Duration // advert interval, default 1s
	Preempt      bool          // take over from a lower-priority master
	PreemptDelay time.Duration // do not preempt within this long after start
	VIPs         []netip.Prefix
	Peers        []netip.Addr // unicast peers; empty = multicast group
	ChecksumMode ChecksumMode // VRRPv3 over IPv4 only
	AuthPass     string       // VRRPv2 simple-text password, empty = none

	GARPRepeat  int           // announcements sent on becoming master, default 5
	GARPDelay   time.Duration // a second burst this long after, 0 = none
	GARPRefresh time.Duration // re-announce this often while master, 0 = off
	// VIPRefresh, if not 0, has the master call Announcer.AddVIPs again
	// this often (on its advert ticks), renewing VIPs added with a finite
	// lifetime (NewNetlinkAnnouncer).
	VIPRefresh time.Duration

	// TrackWeight is subtracted from the advertised priority while
	// SetTracking(false); 0 means go to Fault instead.
	TrackWeight int

	Conn      Conn
	Announcer Announcer
	Logger    *slog.Logger
	// Registerer receives the dnslb_vrrp_* metrics.
	Registerer prometheus.Registerer
	// OnTransition is called after every state change (from the
	// instance's goroutine; it must not block).
	OnTransition func(from, to State, reason string)
}

// Status is a snapshot of an instance, for /status.
type Status struct {
	Name              string        `json:"name"`
	Family            string        `json:"family"` // ipv4 or ipv6
	Sync              bool          `json:"sync"`   // a member of a sync group
	VRID              uint8         `json:"vrid"`
	State             State         `json:"state"`
	Priority          uint8         `json:"priority"`           // configured
	EffectivePriority uint8         `json:"effective_priority"` // after tracking
	Master            string        `json:"master,omitempty"`   // address of the current master ("self" when we are)
	MasterPriority    uint8         `json:"master_priority,omitempty"`
	AdvertInterval    time.Duration `json:"advert_interval_ns"` // learned from the master (v3)
	Since             time.Time     `json:"since"`
	Reason            string        `json:"reason"`
	VIPs              []string      `json:"vips"`
}

// Instance is one VRRP virtual router.
type Instance struct {
	o       Options
	name    string
	group   *Group
	cmds    chan command
	log     *slog.Logger
	m       *metrics
	start   time.Time
	local   netip.Addr
	dst     []netip.Addr // where adverts go
	packets chan received
	trackCh chan bool
	resign  chan struct{}

	mu     sync.Mutex // guards status and tracking
	status Status
	track  bool

	// owned by the run loop
	state          State
	masterInterval time.Duration
	downTimer      *time.Timer
	adverTimer     *time.Timer
	garpTimer      *time.Timer
	garpLeft       int // refresh bursts pending: 1 for the delayed burst
	vipsAdded      time.Time
	resigned       bool // Resign was called: ignore everything until stopped
	masterLeft     bool // the master sent priority 0: the down timer is Skew_Time
}

type received struct {
	a   Advert
	src netip.Addr
}

// New checks the options and returns an Instance that is not running.
func New(o Options) (*Instance, error) {
	if o.Version == 0 {
		o.Version = 3
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.GARPRepeat <= 0 {
		o.GARPRepeat = 5
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.VRID == 0:
		return nil, errors.New("vrrp: vrid must be 1..255")
	case o.Priority == 0:
		return nil, errors.New("vrrp: priority must be 1..255")
	case o.Version != 2 && o.Version != 3:
		return nil, fmt.Errorf("vrrp: version %d, want 2 or 3", o.Version)
	case len(o.VIPs) == 0:
		return nil, errors.New("vrrp: no VIPs")
	case o.Conn == nil || o.Announcer == nil:
		return nil, errors.New("vrrp: Conn and Announcer are required")
	}
	if o.Name == "" {
		o.Name = strconv.Itoa(int(o.VRID))
	}
	in := &Instance{
		o: o, name: o.Name, group: o.Group, cmds: make(chan command, 16),
		log: o.Logger.With("instance", o.Name, "vrid", o.VRID), local: o.Conn.LocalAddr(),
		packets: make(chan received, 64), trackCh: make(chan bool, 1), resign: make(chan struct{}, 1), track: true,
		masterInterval: o.Interval,
	}
	in.dst = o.Peers
	if len(in.dst) == 0 {
		if in.local.Is4() {
			in.dst = []netip.Addr{GroupV4}
		} else {
			in.dst = []netip.Addr{GroupV6}
		}
	}
	family := "ipv4"
	if o.VIPs[0].Addr().Is6() {
		family = "ipv6"
	}
	m, err := newMetrics(o.Registerer, o.Name, o.VRID, family)
	if err != nil {
		return nil, err
	}
	in.m = m
	in.status = Status{Name: o.Name, Family: family, Sync: o.Group != nil, VRID: o.VRID, State: Initialize,
		Priority: o.Priority, EffectivePriority: o.Priority, AdvertInterval: o.Interval, Since: time.Now(), Reason: "not started"}
	for _, v := range o.VIPs {
		in.status.VIPs = append(in.status.VIPs, v.String())
	}
	if in.group != nil {
		in.group.join(in)
	}
	return in, nil
}

// Options returns the options the instance runs with (after updates).
func (in *Instance) Options() Options {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.o
}

// Name returns the instance's name.
func (in *Instance) Name() string { return in.name }

// command is work for the run loop from outside it: the sync group's
// decisions and configuration updates.
type command struct {
	kind     commandKind
	reason   string
	update   *Options
	takeover *takeover // cmdBecomeMaster: the group's
}

type commandKind uint8

const (
	cmdStepDown     commandKind = iota // the group lost a master: step down too
	cmdBecomeMaster                    // the group becomes master together
	cmdUpdate                          // new options (reload)
)

// post queues a command without blocking (the group calls it with its
// lock held); a full queue drops it, which a later decision repairs.
func (in *Instance) post(c command) {
	select {
	case in.cmds <- c:
	default:
		in.log.Warn("vrrp: command queue full, dropped", "command", c.kind)
	}
}

// Update applies new options to a running instance (a reload): priority,
// preempt and its delay, VIPs (added and removed at once when master),
// advert interval, version, peers, checksum mode, authentication, GARP
// settings, tracking weight and VIP refresh. Name, group, VRID, Conn and
// Announcer stay; changing those takes a new instance.
func (in *Instance) Update(o Options) {
	in.cmds <- command{kind: cmdUpdate, update: &o}
}

// Status returns a snapshot of the instance.
func (in *Instance) Status() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.status
	s.VIPs = append([]string(nil), s.VIPs...)
	return s
}

// SetTracking tells the instance whether the node can serve (enough
// healthy backends). When it cannot, the advertised priority drops by
// TrackWeight, or with TrackWeight 0 the instance goes to Fault.
func (in *Instance) SetTracking(ok bool) {
	in.mu.Lock()
	changed := in.track != ok
	in.track = ok
	in.mu.Unlock()
	if changed {
		select {
		case in.trackCh <- ok:
		default:
			// a pending update is there; the loop reads the latest value
		}
	}
}

func (in *Instance) tracking() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.track
}

// Resign is the first step of a clean shutdown: a master sends a
// priority-0 advert (the peer takes over after Skew_Time) but keeps the
// VIPs, so that queries still reaching this node are answered while the
// peer's gratuitous ARPs move the clients. From then on the instance does
// nothing until Run's context ends, which removes the VIPs.
func (in *Instance) Resign() {
	select {
	case in.resign <- struct{}{}:
	default:
	}
}

// priority is the priority advertised now.
func (in *Instance) priority() uint8 {
	p := int(in.o.Priority)
	if !in.tracking() && in.o.TrackWeight > 0 {
		p = max(p-in.o.TrackWeight, 1)
	}
	return uint8(p)
}

// skew is Skew_Time for a given priority (RFC 5798 6.1; RFC 3768 uses
// whole seconds: (256 - priority) / 256 s).
func (in *Instance) skew() time.Duration {
	iv := in.masterInterval
	if in.o.Version == 2 {
		iv = time.Second
	}
	return time.Duration(256-int(in.priority())) * iv / 256
}

// masterDown is Master_Down_Interval: 3 x Master_Adver_Interval + skew.
func (in *Instance) masterDown() time.Duration {
	return 3*in.masterInterval + in.skew()
}

// Run runs the instance until ctx is done. On the way out it sends a
// priority-0 advert if it was master (so the peer takes over at once) and
// removes the VIPs.
func (in *Instance) Run(ctx context.Context) error {
	in.start = time.Now()
	// A VIP left by a crashed earlier run must not stay on a backup.
	if err := in.o.Announcer.RemoveVIPs(in.o.VIPs); err != nil {
		return fmt.Errorf("vrrp %d: remove stale VIPs: %w", in.o.VRID, err)
	}
	readerDone := make(chan struct{})
	rctx, cancelReader := context.WithCancel(ctx)
	conn := in.o.Conn
	go func() {
		defer close(readerDone)
		in.readLoop(rctx, conn)
	}()
	in.downTimer, in.adverTimer, in.garpTimer = stoppedTimer(), stoppedTimer(), stoppedTimer()

	var owner *takeover
	if in.o.Priority == 255 && in.tracking() {
		owner = in.startTakeover()
	}
	if owner != nil {
		in.becomeMaster("address owner (priority 255)", owner)
	} else if !in.tracking() && in.o.TrackWeight == 0 {
		in.enterFault("tracking: not enough healthy backends")
	} else {
		in.becomeBackup("started", in.masterDown())
	}

	for {
		select {
		case <-ctx.Done():
			in.shutdown()
			cancelReader()
			in.o.Conn.Close()
			<-readerDone
			if in.group != nil {
				in.group.leave(in)
			}
			in.m.unregister()
			return nil
		case <-in.resign:
			in.doResign()
		case c := <-in.cmds:
			in.onCommand(c)
		case p := <-in.packets:
			if !in.resigned {
				in.onAdvert(p)
			}
		case <-in.downTimer.C:
			if in.state == Backup && !in.resigned {
				reason := fmt.Sprintf("no advert for %v (Master_Down_Interval)", in.masterDown())
				if in.masterLeft {
					reason = fmt.Sprintf("master sent priority 0, took over after Skew_Time %v", in.skew())
				}
				t := in.startTakeover()
				if t == nil {
					// the rest of the sync group cannot follow yet
					resetTimer(in.downTimer, in.masterInterval)
					continue
				}
				in.becomeMaster(reason, t)
			}
		case <-in.adverTimer.C:
			if in.state == Master {
				in.sendAdvert(in.priority())
				in.adverTimer.Reset(in.o.Interval)
				in.refreshVIPs()
			}
		case <-in.garpTimer.C:
			in.onGARPTimer()
		case <-in.trackCh:
			if !in.resigned {
				in.onTracking()
			}
		}
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(d)
}

func stopTimer(t *time.Timer) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
}

func (in *Instance) onTracking() {
	ok := in.tracking()
	switch {
	case in.o.TrackWeight == 0 && !ok && in.state != Fault:
		in.enterFault("tracking: not enough healthy backends")
	case in.o.TrackWeight == 0 && ok && in.state == Fault:
		in.becomeBackup("tracking: enough healthy backends again", in.masterDown())
	case in.o.TrackWeight > 0:
		prio := in.priority()
		in.log.Info("vrrp priority changed by tracking", "healthy", ok, "priority", prio)
		in.mu.Lock()
		in.status.EffectivePriority = prio
		in.mu.Unlock()
		if in.state == Master {
			in.sendAdvert(in.priority()) // tell the peer at once
			resetTimer(in.adverTimer, in.o.Interval)
		}
	}
}

// refreshVIPs renews the VIPs' lifetime when VIPRefresh has passed.
func (in *Instance) refreshVIPs() {
	if in.o.VIPRefresh <= 0 || time.Since(in.vipsAdded) < in.o.VIPRefresh {
		return
	}
	if err := in.o.Announcer.AddVIPs(in.o.VIPs); err != nil {
		in.log.Error("vrrp: cannot refresh VIPs", "err", err)
		return
	}
	in.vipsAdded = time.Now()
}

// startTakeover asks the sync group whether this instance may become
// master now (nil: not yet); outside a group the answer is always yes.
func (in *Instance) startTakeover() *takeover {
	if in.group == nil {
		return newTakeover(1)
	}
	return in.group.wantMaster(in)
}

// becomeMaster takes the VIPs make before break: add them and announce
// them (gratuitous ARP, unsolicited NA) first, so that clients move here
// while the old master still holds the VIPs too; then, once every member
// of the takeover has done the same, send the advert that makes the old
// master let go. RFC 5798 6.4.2 lists the advert first; the order within
// the same instant changes nothing for the peer, and sending it last
// closes the gap in which the old master had dropped a VIP the clients
// still sent to (a lost query per hand-over, now and then).
func (in *Instance) becomeMaster(reason string, t *takeover) {
	if err := in.o.Announcer.AddVIPs(in.o.VIPs); err != nil {
		in.log.Error("vrrp: cannot add VIPs", "err", err)
	}
	in.vipsAdded = time.Now()
	in.announce()
	t.announced()
	t.wait()
	in.sendAdvert(in.priority())
	in.transition(Master, reason)
	resetTimer(in.adverTimer, in.o.Interval)
	stopTimer(in.downTimer)
	in.masterInterval = in.o.Interval
	in.noteMaster(in.local, in.priority())
	in.mu.Lock()
	in.status.Master = "self"
	in.mu.Unlock()
	// Announced at once above, again after GARPDelay, then every
	// GARPRefresh.
	in.garpLeft = 0
	if in.o.GARPDelay > 0 {
		in.garpLeft = 1
		resetTimer(in.garpTimer, in.o.GARPDelay)
	} else if in.o.GARPRefresh > 0 {
		resetTimer(in.garpTimer, in.o.GARPRefresh)
	}
}

func (in *Instance) onGARPTimer() {
	if in.state != Master {
		return
	}
	in.announce()
	in.garpLeft = 0
	if in.o.GARPRefresh > 0 {
		resetTimer(in.garpTimer, in.o.GARPRefresh)
	}
}

func (in *Instance) announce() {
	for i := 0; i < in.o.GARPRepeat; i++ {
		if err := in.o.Announcer.Announce(in.o.VIPs); err != nil {
			in.log.Warn("vrrp: announcing VIPs failed", "err", err)
			return
		}
	}
	in.m.announcements.Add(float64(in.o.GARPRepeat))
}

func (in *Instance) becomeBackup(reason string, down time.Duration) {
	was := in.state
	stopTimer(in.adverTimer)
	stopTimer(in.garpTimer)
	if was == Master {
		if err := in.o.Announcer.RemoveVIPs(in.o.VIPs); err != nil {
			in.log.Error("vrrp: cannot remove VIPs", "err", err)
		}
	}
	resetTimer(in.downTimer, down)
	in.transition(Backup, reason)
}

func (in *Instance) enterFault(reason string) {
	if in.state == Master {
		in.sendAdvert(0) // hand over at once
		if err := in.o.Announcer.RemoveVIPs(in.o.VIPs); err != nil {
			in.log.Error("vrrp: cannot remove VIPs", "err", err)
		}
	}
	stopTimer(in.adverTimer)
	stopTimer(in.downTimer)
	stopTimer(in.garpTimer)
	in.transition(Fault, reason)
}

func (in *Instance) doResign() {
	in.resigned = true
	stopTimer(in.downTimer)
	stopTimer(in.garpTimer)
	if in.state != Master {
		return
	}
	in.sendAdvert(0)
	stopTimer(in.adverTimer)
	in.transition(Backup, "shutting down: priority 0 sent, VIPs kept until stopped")
}

func (in *Instance) shutdown() {
	if in.state == Master {
		in.sendAdvert(0) // RFC 5798 6.4.3: priority 0 so the backup takes over at once
	}
	if err := in.o.Announcer.RemoveVIPs(in.o.VIPs); err != nil {
		in.log.Error("vrrp: cannot remove VIPs", "err", err)
	}
	in.transition(Initialize, "stopped")
}

func (in *Instance) transition(to State, reason string) {
	from := in.state
	in.state = to
	prio := in.priority()
	in.mu.Lock()
	in.status.State, in.status.Since, in.status.Reason = to, time.Now(), reason
	in.status.EffectivePriority = prio
	if to != Master && in.status.Master == "self" {
		in.status.Master = ""
	}
	in.mu.Unlock()
	in.m.state.Set(float64(to))
	if from == to {
		return
	}
	if in.group != nil {
		in.group.changed(in, from, to)
	}
	in.m.transitions.WithLabelValues(to.String()).Inc()
	in.log.Info("vrrp state change", "from", from.String(), "to", to.String(), "reason", reason, "priority", in.priority())
	if in.o.OnTransition != nil {
		in.o.OnTransition(from, to, reason)
	}
}

// sendAdvert sends one advert with the given priority to every destination.
func (in *Instance) sendAdvert(prio uint8) {
	a := Advert{Version: in.o.Version, VRID: in.o.VRID, Priority: prio, Interval: in.o.Interval, Src: in.local, Mode: in.o.ChecksumMode}
	for _, v := range in.o.VIPs {
		a.Addrs = append(a.Addrs, v.Addr())
	}
	if in.o.Version == 2 && in.o.AuthPass != "" {
		a.AuthType = 1
		copy(a.AuthData[:], in.o.AuthPass)
	}
	for _, dst := range in.dst {
		a.Dst = dst
		b, err := a.MarshalBinary()
		if err != nil {
			in.log.Error("vrrp: cannot build advert", "err", err)
			return
		}
		if err := in.o.Conn.Write(b, dst); err != nil {
			in.log.Warn("vrrp: sending advert failed", "dst", dst.String(), "err", err)
			in.m.sendErrors.Inc()
			continue
		}
		in.m.sent.Inc()
	}
}

// onCommand runs a command in the run loop.
func (in *Instance) onCommand(c command) {
	switch c.kind {
	case cmdStepDown:
		if in.state == Master && !in.resigned {
			in.sendAdvert(0) // the peer takes over after Skew_Time
			in.becomeBackup(c.reason, in.masterDown())
		}
	case cmdBecomeMaster:
		if in.state == Backup && !in.resigned {
			in.becomeMaster(c.reason, c.takeover)
		} else {
			c.takeover.announced() // not joining: don't hold the others
		}
	case cmdUpdate:
		in.applyUpdate(*c.update)
	}
}

// applyUpdate takes new options (see Update).
func (in *Instance) applyUpdate(o Options) {
	old := in.o
	if o.Version == 0 {
		o.Version = 3
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.GARPRepeat <= 0 {
		o.GARPRepeat = 5
	}
	o.Name, o.Group, o.VRID, o.Conn, o.Announcer, o.Logger, o.Registerer = old.Name, old.Group, old.VRID, old.Conn, old.Announcer, old.Logger, old.Registerer
	if o.OnTransition == nil {
		o.OnTransition = old.OnTransition
	}
	in.mu.Lock()
	in.o = o // the run loop owns in.o; Options reads it under mu
	in.mu.Unlock()
	in.dst = o.Peers
	if len(in.dst) == 0 {
		if in.local.Is4() {
			in.dst = []netip.Addr{GroupV4}
		} else {
			in.dst = []netip.Addr{GroupV6}
		}
	}
	if in.state != Master {
		in.masterInterval = o.Interval
	}
	added, removed := diffPrefixes(old.VIPs, o.VIPs)
	if in.state == Master {
		if len(removed) > 0 {
			if err := in.o.Announcer.RemoveVIPs(removed); err != nil {
				in.log.Error("vrrp: cannot remove VIPs", "err", err)
			}
		}
		if len(added) > 0 {
			if err := in.o.Announcer.AddVIPs(added); err != nil {
				in.log.Error("vrrp: cannot add VIPs", "err", err)
			}
			if err := in.o.Announcer.Announce(added); err != nil {
				in.log.Warn("vrrp: announcing VIPs failed", "err", err)
			}
		}
		in.sendAdvert(in.priority()) // the new priority, VIPs and interval at once
		resetTimer(in.adverTimer, in.o.Interval)
	}
	prio := in.priority()
	in.mu.Lock()
	in.status.Priority, in.status.EffectivePriority = o.Priority, prio
	in.status.VIPs = in.status.VIPs[:0]
	for _, v := range o.VIPs {
		in.status.VIPs = append(in.status.VIPs, v.String())
	}
	in.mu.Unlock()
	in.log.Info("vrrp instance updated", "priority", o.Priority, "preempt", o.Preempt, "vips", len(o.VIPs),
		"added", len(added), "removed", len(removed))
	in.onTracking() // the tracking weight may have changed
}

// diffPrefixes returns what b has that a lacks, and what a has that b lacks.
func diffPrefixes(a, b []netip.Prefix) (added, removed []netip.Prefix) {
	in := func(p netip.Prefix, list []netip.Prefix) bool {
		for _, q := range list {
			if q == p {
				return true
			}
		}
		return false
	}
	for _, p := range b {
		if !in(p, a) {
			added = append(added, p)
		}
	}
	for _, p := range a {
		if !in(p, b) {
			removed = append(removed, p)
		}
	}
	return added, removed
}
