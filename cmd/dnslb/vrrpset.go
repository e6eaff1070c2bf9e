package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/vrrp"
)

// vrrpSpec is one VRRP instance as the configuration describes it.
type vrrpSpec struct {
	Name      string
	Interface string
	Sync      bool   // a member of the node's sync group
	Notify    string // script run on every transition
	Options   vrrp.Options
}

// family is "ipv4" or "ipv6", from the VIPs.
func (s vrrpSpec) family() string {
	if len(s.Options.VIPs) > 0 && s.Options.VIPs[0].Addr().Is6() {
		return "ipv6"
	}
	return "ipv4"
}

// muxKey names one shared VRRP socket: an interface and a family.
type muxKey struct{ iface, family string }

// vrrpSet runs the node's VRRP instances: one sync group for the
// instances that have sync on (the default), one raw socket per interface
// and family shared by the instances on it, one netlink announcer each.
// Tracking and the notify script apply per node; a reload adds, updates
// and removes instances (changing an instance's interface, VRID or
// family takes a restart).
type vrrpSet struct {
	d     *daemon
	group *vrrp.Group
	errs  chan error // an instance that stopped on its own

	mu      sync.Mutex
	running map[string]*runningInstance
	muxes   map[muxKey]*vrrp.Mux
	allVIPs []netip.Prefix // every VIP of the configuration: never a source address
	track   bool
}

type runningInstance struct {
	spec   vrrpSpec
	in     *vrrp.Instance
	cancel context.CancelFunc
	done   chan struct{}
}

func newVRRPSet(d *daemon, specs []vrrpSpec) *vrrpSet {
	s := &vrrpSet{d: d, group: vrrp.NewGroup(), errs: make(chan error, 1), running: map[string]*runningInstance{},
		muxes: map[muxKey]*vrrp.Mux{}, track: true}
	for _, sp := range specs {
		s.allVIPs = append(s.allVIPs, sp.Options.VIPs...)
	}
	return s
}

// start opens and runs every instance of specs.
func (s *vrrpSet) start(specs []vrrpSpec) error {
	for _, sp := range specs {
		if err := s.add(sp); err != nil {
			return err
		}
	}
	return nil
}

// add opens the instance's socket (shared) and announcer and runs it.
func (s *vrrpSet) add(sp vrrpSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := muxKey{sp.Interface, sp.family()}
	mux := s.muxes[key]
	var conn vrrp.Conn
	var err error
	if mux != nil {
		conn, err = mux.Conn(sp.Options.VRID)
	}
	if mux == nil || err != nil {
		// a new socket: none yet, or the old one closed with its last
		// instance
		raw, lerr := vrrp.Listen(sp.Interface, key.family == "ipv6", s.allVIPs)
		if lerr != nil {
			return fmt.Errorf("vrrp instance %s: %w", sp.Name, lerr)
		}
		mux = vrrp.NewMux(raw)
		s.muxes[key] = mux
		if conn, err = mux.Conn(sp.Options.VRID); err != nil {
			raw.Close()
			return fmt.Errorf("vrrp instance %s: %w", sp.Name, err)
		}
	}
	lifetime := vipLifetime(sp.Options.Interval)
	ann, err := vrrp.NewNetlinkAnnouncer(sp.Interface, conn.LocalAddr(), lifetime)
	if err != nil {
		conn.Close()
		return fmt.Errorf("vrrp instance %s: %w", sp.Name, err)
	}
	o := sp.Options
	o.Name, o.Conn, o.Announcer, o.Logger, o.Registerer = sp.Name, conn, ann, s.d.log, s.d.registry
	o.VIPRefresh = lifetime / 4
	if sp.Sync {
		o.Group = s.group
	}
	name, script := sp.Name, sp.Notify
	o.OnTransition = func(from, to vrrp.State, reason string) { s.d.vrrpTransition(script, name, to) }
	in, err := vrrp.New(o)
	if err != nil {
		conn.Close()
		return fmt.Errorf("vrrp instance %s: %w", sp.Name, err)
	}
	in.SetTracking(s.track)
	ctx, cancel := context.WithCancel(context.Background())
	ri := &runningInstance{spec: sp, in: in, cancel: cancel, done: make(chan struct{})}
	s.running[sp.Name] = ri
	go func() {
		defer close(ri.done)
		if err := in.Run(ctx); err != nil {
			select {
			case s.errs <- fmt.Errorf("vrrp instance %s: %w", name, err):
			default:
			}
		}
	}()
	return nil
}

// apply makes the running instances match specs (a reload): new ones are
// started, removed ones stopped (a master hands over with priority 0),
// the others updated in place. It returns the instances whose interface,
// VRID or family changed: those keep running as they were until a
// restart.
func (s *vrrpSet) apply(specs []vrrpSpec) (restart []string, err error) {
	s.mu.Lock()
	for _, sp := range specs {
		s.allVIPs = appendMissing(s.allVIPs, sp.Options.VIPs...)
	}
	want := map[string]vrrpSpec{}
	for _, sp := range specs {
		want[sp.Name] = sp
	}
	var gone []*runningInstance
	for name, ri := range s.running {
		if _, ok := want[name]; !ok {
			gone = append(gone, ri)
			delete(s.running, name)
		}
	}
	var add []vrrpSpec
	for _, sp := range specs {
		ri := s.running[sp.Name]
		switch {
		case ri == nil:
			add = append(add, sp)
		case ri.spec.Interface != sp.Interface || ri.spec.Options.VRID != sp.Options.VRID || ri.spec.family() != sp.family() || ri.spec.Sync != sp.Sync:
			restart = append(restart, sp.Name)
		default:
			ri.spec = sp
			ri.spec.Options.Name = sp.Name
			ri.in.Update(s.withRuntime(ri, sp.Options))
		}
	}
	s.mu.Unlock()
	for _, ri := range gone {
		ri.cancel()
		<-ri.done
		s.d.log.Info("vrrp instance removed", "instance", ri.spec.Name, "vrid", ri.spec.Options.VRID)
	}
	for _, sp := range add {
		if err := s.add(sp); err != nil {
			return restart, err
		}
		s.d.log.Info("vrrp instance added", "instance", sp.Name, "vrid", sp.Options.VRID, "interface", sp.Interface)
	}
	return restart, nil
}

// withRuntime completes an update's options with what the running
// instance owns.
func (s *vrrpSet) withRuntime(ri *runningInstance, o vrrp.Options) vrrp.Options {
	cur := ri.in.Options()
	o.Name, o.Group, o.Conn, o.Announcer, o.Logger, o.Registerer, o.OnTransition = cur.Name, cur.Group, cur.Conn, cur.Announcer, cur.Logger, cur.Registerer, cur.OnTransition
	o.VIPRefresh = vipLifetime(o.Interval) / 4
	return o
}

func appendMissing(list []netip.Prefix, ps ...netip.Prefix) []netip.Prefix {
	for _, p := range ps {
		if !slices.Contains(list, p) {
			list = append(list, p)
		}
	}
	return list
}

// instances returns the running instances in name order.
func (s *vrrpSet) instances() []*runningInstance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*runningInstance, 0, len(s.running))
	for _, ri := range s.running {
		out = append(out, ri)
	}
	slices.SortFunc(out, func(a, b *runningInstance) int {
		if a.spec.Name < b.spec.Name {
			return -1
		}
		if a.spec.Name > b.spec.Name {
			return 1
		}
		return 0
	})
	return out
}

// setTracking tells every instance whether the node can serve.
func (s *vrrpSet) setTracking(ok bool) {
	s.mu.Lock()
	s.track = ok
	s.mu.Unlock()
	for _, ri := range s.instances() {
		ri.in.SetTracking(ok)
	}
}

// holds reports whether an instance holding vip (or, for an invalid
// address, any instance) is master.
func (s *vrrpSet) holds(vip netip.Addr) bool {
	for _, ri := range s.instances() {
		if ri.in.Status().State != vrrp.Master {
			continue
		}
		if !vip.IsValid() {
			return true
		}
		for _, p := range ri.spec.Options.VIPs {
			if p.Addr() == vip {
				return true
			}
		}
	}
	return false
}

// resign sends priority 0 for every master instance, keeping the VIPs,
// and returns how long to keep serving while the peers take over.
func (s *vrrpSet) resign() (time.Duration, bool) {
	var wait time.Duration
	any := false
	for _, ri := range s.instances() {
		if ri.in.Status().State == vrrp.Master {
			ri.in.Resign()
			any = true
			wait = max(wait, min(ri.spec.Options.Interval+100*time.Millisecond, time.Second))
		}
	}
	return wait, any
}

// stop stops every instance (a master sends priority 0; the VIPs go) and
// waits for them.
func (s *vrrpSet) stop() {
	for _, ri := range s.instances() {
		ri.cancel()
	}
	for _, ri := range s.instances() {
		<-ri.done
	}
}

// status is the /status view of every instance.
func (s *vrrpSet) status() []admin.VRRP {
	var out []admin.VRRP
	for _, ri := range s.instances() {
		st := ri.in.Status()
		out = append(out, admin.VRRP{Instance: st.Name, Family: st.Family, Sync: st.Sync, Interface: ri.spec.Interface,
			VRID: int(st.VRID), State: st.State.String(), Priority: int(st.Priority), EffectivePriority: int(st.EffectivePriority),
			Master: st.Master, MasterPriority: int(st.MasterPriority), AdvertInterval: st.AdvertInterval.String(),
			Since: st.Since, Reason: st.Reason, VIPs: st.VIPs})
	}
	return out
}

// vrrpTransition runs the notify script, if any, with the new state and
// the instance's name (keepalived passes "INSTANCE name state"; dnslb:
// state then name).
func (d *daemon) vrrpTransition(script, instance string, to vrrp.State) {
	d.bgpKick()
	if script == "" {
		return
	}
	state := to.String()
	if to == vrrp.Initialize {
		state = "stopped"
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, script, state, instance).CombinedOutput()
		if err != nil {
			d.log.Warn("vrrp notify script failed", "script", script, "state", state, "instance", instance, "err", err, "output", string(out))
			return
		}
		d.log.Info("vrrp notify script ran", "script", script, "state", state, "instance", instance)
	}()
}
