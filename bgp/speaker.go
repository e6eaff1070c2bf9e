package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Neighbor is a router the [Speaker] announces to.
type Neighbor struct {
	Address  netip.Addr
	PeerAS   uint32
	Port     uint16 // 0: 179
	Password string // TCP MD5 key, "" none
	// Multihop is the TTL for a router that is not on a connected
	// network; 0 or 1: directly connected.
	Multihop uint8
	// HoldTime is the proposed hold time, whole seconds; 0: 90s.
	HoldTime time.Duration
	Passive  bool
	// LocalAddress is the address the session runs from; the zero Addr
	// lets the kernel pick it.
	LocalAddress netip.Addr
}

// SpeakerOptions configure a [Speaker].
type SpeakerOptions struct {
	LocalAS  uint32
	RouterID netip.Addr
	// ListenPort is the TCP port the speaker accepts sessions on, 0 for
	// none (every neighbour is then connected to, none may be passive);
	// ListenAddresses the addresses, empty for all.
	ListenPort      int
	ListenAddresses []netip.Addr
	// Logger gets one line per session state change, and GoBGP's own
	// warnings and errors; nil discards.
	Logger *slog.Logger
	// Registerer gets dnslb_bgp_session_state; nil registers nothing.
	Registerer prometheus.Registerer
}

// Session is one neighbour's session, for /status.
type Session struct {
	Neighbor netip.Addr
	PeerAS   uint32
	State    string    // idle, connect, active, opensent, openconfirm, established
	Since    time.Time // when State began (as this process saw it)
	// Received and Accepted count the prefixes the neighbour sent (they
	// are ignored).
	Received uint64
}

// sessionStates numbers the BGP FSM states (RFC 4271) for the
// dnslb_bgp_session_state gauge.
var sessionStates = map[string]float64{"idle": 1, "connect": 2, "active": 3, "opensent": 4, "openconfirm": 5, "established": 6}

// Speaker is a BGP speaker (GoBGP, embedded) and a [Routes]: it
// originates the announced prefixes towards every neighbour of the
// prefix's address family. Neighbours are added, removed and changed in
// place (SetNeighbors); the others' sessions are not touched.
type Speaker struct {
	srv    *server.BgpServer
	log    *slog.Logger
	listen bool
	state  *prometheus.GaugeVec
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	neighbors map[netip.Addr]Neighbor
	sessions  map[netip.Addr]*Session
	paths     map[netip.Prefix]*api.Path // what is announced
}

// NewSpeaker starts a BGP speaker without neighbours.
func NewSpeaker(ctx context.Context, o SpeakerOptions) (*Speaker, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !o.RouterID.Is4() {
		return nil, fmt.Errorf("bgp: router id %s is not an IPv4 address", o.RouterID)
	}
	s := &Speaker{
		srv:    server.NewBgpServer(server.LoggerOption(&gobgpLogger{o.Logger})),
		log:    o.Logger,
		listen: o.ListenPort > 0,
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dnslb_bgp_session_state",
			Help: "BGP session state by neighbour: 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.",
		}, []string{"neighbor"}),
		done:      make(chan struct{}),
		neighbors: map[netip.Addr]Neighbor{},
		sessions:  map[netip.Addr]*Session{},
		paths:     map[netip.Prefix]*api.Path{},
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.state); err != nil {
			return nil, err
		}
	}
	go s.srv.Serve()
	port := int32(-1) // GoBGP: no listener
	if o.ListenPort > 0 {
		port = int32(o.ListenPort)
	}
	var addrs []string
	for _, a := range o.ListenAddresses {
		addrs = append(addrs, a.String())
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: o.LocalAS, RouterId: o.RouterID.String(), ListenPort: port, ListenAddresses: addrs,
	}}); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: start: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.srv.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.peerEvent); err != nil {
		cancel()
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: watch: %w", err)
	}
	go func() { <-wctx.Done(); close(s.done) }()
	return s, nil
}

// peerEvent records a session state change.
func (s *Speaker) peerEvent(r *api.WatchEventResponse) {
	ev := r.GetPeer()
	if ev == nil || ev.Type != api.WatchEventResponse_PeerEvent_STATE || ev.Peer == nil || ev.Peer.State == nil {
		return
	}
	addr, err := netip.ParseAddr(ev.Peer.State.NeighborAddress)
	if err != nil {
		return
	}
	state := strings.ToLower(ev.Peer.State.SessionState.String())
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.neighbors[addr]; !ok {
		return // removed meanwhile
	}
	se := s.sessions[addr]
	if se == nil || se.State == state {
		return
	}
	s.log.Info("bgp: session "+state, "neighbor", addr.String(), "peer_as", se.PeerAS, "from", se.State)
	se.State, se.Since = state, time.Now()
	s.state.WithLabelValues(addr.String()).Set(sessionStates[state])
}

// peer is n as GoBGP takes it.
func (s *Speaker) peer(n Neighbor) *api.Peer {
	hold := uint64(n.HoldTime / time.Second)
	if hold == 0 {
		hold = 90
	}
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if n.Address.Is6() {
		family = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.PeerAS, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(1, hold/3), ConnectRetry: 5, IdleHoldTimeAfterReset: 2,
		}},
		Transport: &api.Transport{PassiveMode: n.Passive, RemotePort: uint32(n.Port)},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family, Enabled: true}}},
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.Multihop > 1 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	return p
}

// SetNeighbors makes the speaker's neighbours ns: new ones are added,
// missing ones removed (their sessions closed), changed ones updated
// (GoBGP resets a session only when the change needs a new OPEN: AS,
// password, timers, transport); the others are untouched.
func (s *Speaker) SetNeighbors(ctx context.Context, ns []Neighbor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[netip.Addr]Neighbor{}
	for _, n := range ns {
		if n.Passive && !s.listen {
			return fmt.Errorf("bgp: neighbor %s is passive but the speaker does not listen", n.Address)
		}
		want[n.Address] = n
	}
	var errs []error
	for _, a := range slices.SortedFunc(maps.Keys(s.neighbors), netip.Addr.Compare) {
		if _, ok := want[a]; ok {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: remove neighbor %s: %w", a, err))
			continue
		}
		delete(s.neighbors, a)
		delete(s.sessions, a)
		s.state.DeleteLabelValues(a.String())
		s.log.Info("bgp: neighbor removed", "neighbor", a.String())
	}
	for _, n := range ns {
		old, ok := s.neighbors[n.Address]
		switch {
		case !ok:
			s.sessions[n.Address] = &Session{Neighbor: n.Address, PeerAS: n.PeerAS, State: "idle", Since: time.Now()}
			s.neighbors[n.Address] = n
			s.state.WithLabelValues(n.Address.String()).Set(sessionStates["idle"])
			if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.peer(n)}); err != nil {
				delete(s.neighbors, n.Address)
				delete(s.sessions, n.Address)
				s.state.DeleteLabelValues(n.Address.String())
				errs = append(errs, fmt.Errorf("bgp: add neighbor %s: %w", n.Address, err))
				continue
			}
			s.log.Info("bgp: neighbor added", "neighbor", n.Address.String(), "peer_as", n.PeerAS, "passive", n.Passive)
		case old != n:
			if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: s.peer(n)}); err != nil {
				errs = append(errs, fmt.Errorf("bgp: update neighbor %s: %w", n.Address, err))
				continue
			}
			s.neighbors[n.Address] = n
			s.sessions[n.Address].PeerAS = n.PeerAS
			s.log.Info("bgp: neighbor updated", "neighbor", n.Address.String(), "peer_as", n.PeerAS)
		}
	}
	return errors.Join(errs...)
}

// path builds the route of p with a.
func path(p netip.Prefix, a Attrs, withdraw bool) (*api.Path, error) {
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	var nlri bgp.AddrPrefixInterface
	if p.Addr().Is4() {
		nlri = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
		nh := "0.0.0.0"
		if a.NextHop4.IsValid() {
			nh = a.NextHop4.String()
		}
		attrs = append(attrs, bgp.NewPathAttributeNextHop(nh))
	} else {
		nlri = bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
		nh := "::"
		if a.NextHop6.IsValid() {
			nh = a.NextHop6.String()
		}
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
	}
	attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(a.MED))
	if len(a.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(slices.Clone(a.Communities)))
	}
	return apiutil.NewPath(nlri, withdraw, attrs, time.Now())
}

// Announce originates p with a, replacing its previous attributes.
func (s *Speaker) Announce(ctx context.Context, p netip.Prefix, a Attrs) error {
	ap, err := path(p, a, false)
	if err != nil {
		return err
	}
	if _, err := s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: ap}); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", p, err)
	}
	s.mu.Lock()
	s.paths[p] = ap
	s.mu.Unlock()
	return nil
}

// Withdraw withdraws p, if announced.
func (s *Speaker) Withdraw(ctx context.Context, p netip.Prefix) error {
	s.mu.Lock()
	ap := s.paths[p]
	s.mu.Unlock()
	if ap == nil {
		return nil
	}
	if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: ap}); err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", p, err)
	}
	s.mu.Lock()
	delete(s.paths, p)
	s.mu.Unlock()
	return nil
}

// Sessions returns every neighbour's session, in address order.
func (s *Speaker) Sessions() []Session {
	s.mu.Lock()
	out := make([]Session, 0, len(s.sessions))
	for _, a := range slices.SortedFunc(maps.Keys(s.sessions), netip.Addr.Compare) {
		out = append(out, *s.sessions[a])
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	received := map[string]uint64{}
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				received[p.State.NeighborAddress] += af.State.Received
			}
		}
	})
	for i := range out {
		out[i].Received = received[out[i].Neighbor.String()]
	}
	return out
}

// Stop closes every session (a CEASE notification: the routers withdraw
// what it announced at once) and stops the speaker.
func (s *Speaker) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = s.srv.StopBgp(ctx, &api.StopBgpRequest{})
	s.cancel()
	<-s.done
	s.srv.Stop()
}

// gobgpLogger passes GoBGP's warnings and errors to slog; its info and
// debug lines (every message it handles) go to debug.
type gobgpLogger struct{ l *slog.Logger }

func (g *gobgpLogger) log(level slog.Level, msg string, fields gobgplog.Fields) {
	if !g.l.Enabled(context.Background(), level) {
		return
	}
	args := make([]any, 0, 2*len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		args = append(args, strings.ToLower(k), fields[k])
	}
	g.l.Log(context.Background(), level, "gobgp: "+msg, args...)
}

func (g *gobgpLogger) Panic(msg string, f gobgplog.Fields) {
	g.log(slog.LevelError, msg, f)
	panic(msg)
}
func (g *gobgpLogger) Fatal(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }
func (g *gobgpLogger) Error(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }
func (g *gobgpLogger) Warn(msg string, f gobgplog.Fields)  { g.log(slog.LevelWarn, msg, f) }
func (g *gobgpLogger) Info(msg string, f gobgplog.Fields)  { g.log(slog.LevelDebug, msg, f) }
func (g *gobgpLogger) Debug(msg string, f gobgplog.Fields) { g.log(slog.LevelDebug-4, msg, f) }
func (g *gobgpLogger) SetLevel(gobgplog.LogLevel)          {}
func (g *gobgpLogger) GetLevel() gobgplog.LogLevel         { return gobgplog.DebugLevel }
