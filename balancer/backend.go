package balancer

import (
	"github.com/dnslb/dnslb/internal/health"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// AdminState is the operator's wish for a backend, from the configuration.
type AdminState uint32

const (
	// Active backends receive new queries and connections.
	Active AdminState = iota
	// Drain backends receive nothing new but finish what they have.
	Drain
	// Disabled backends receive nothing.
	Disabled
)

// String returns the state as written in the configuration.
func (s AdminState) String() string {
	switch s {
	case Active:
		return "active"
	case Drain:
		return "drain"
	case Disabled:
		return "disabled"
	}
	return "unknown"
}

// BackendSpec is the configuration of one backend.
type BackendSpec struct {
	Name   string
	Addr   netip.AddrPort
	Weight int
	State  AdminState
	// Checked backends start Pending until health checks call SetHealth;
	// unchecked ones are always Up.
	Checked bool
	// ClientAddress is how the backend learns the client's address
	// (PROXY v2 header, ECS option, or not at all).
	ClientAddress ClientAddress
}

// numRcodes is how many response codes fit the 4-bit header field.
const numRcodes = 16

// Backend is one DNS server behind the balancer. Its counters are updated
// atomically on the hot path and read by Snapshot and the metrics collector.
type Backend struct {
	name string
	addr netip.AddrPort

	weight  atomic.Int64
	admin   atomic.Uint32 // AdminState
	health  atomic.Uint32 // a health.State
	removed atomic.Bool
	// clientAddr is the ClientAddress mode (reload may change it).
	clientAddr atomic.Uint32

	outstanding atomic.Int64 // UDP queries in flight
	tcpActive   atomic.Int64 // open TCP connections
	latencyNS   atomic.Int64 // EWMA of UDP answer latency

	queries     atomic.Uint64
	tcpQueries  atomic.Uint64
	timeouts    atomic.Uint64
	consecutive atomic.Int64 // UDP timeouts since the last answer
	lastAnswer  atomic.Int64 // when the last UDP answer was matched (Balancer.now)
	retried     atomic.Uint64
	unmatched   atomic.Uint64
	caseChanged atomic.Uint64 // answers matched with the question's letter case changed
	noQuestion  atomic.Uint64 // error answers without a question, matched by ID and source
	// tcpBackoffUntil is when new TCP connections may go to this
	// backend again after one failed (unix nanoseconds).
	tcpBackoffUntil atomic.Int64
	sendErrors      atomic.Uint64
	rcodes          [numRcodes]atomic.Uint64
	latencyHist     latencyHist

	family int      // unix.AF_INET or unix.AF_INET6: which upstream sockets carry its queries
	sa     sockaddr // addr in kernel format for sendmmsg
}

func newBackend(spec BackendSpec) *Backend {
	be := &Backend{name: spec.Name, addr: spec.Addr, family: familyOf(spec.Addr)}
	be.sa.set(spec.Addr, be.family)
	be.weight.Store(int64(max(spec.Weight, 1)))
	be.admin.Store(uint32(spec.State))
	be.health.Store(uint32(health.Up))
	if spec.Checked {
		be.health.Store(uint32(health.Pending))
	}
	return be
}

// familyOf returns the address family of the upstream sockets that reach ap.
func familyOf(ap netip.AddrPort) int {
	if ap.Addr().Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Name returns the backend's configured name.
func (be *Backend) Name() string { return be.name }

// Addr returns the backend's address.
func (be *Backend) Addr() netip.AddrPort { return be.addr }

// AdminState returns the backend's administrative state.
func (be *Backend) AdminState() AdminState { return AdminState(be.admin.Load()) }

// SetAdminState changes the administrative state at runtime (until the
// next Apply sets it from the configuration again): Drain and Disabled
// backends get no new queries; in-flight ones finish.
func (be *Backend) SetAdminState(s AdminState) { be.admin.Store(uint32(s)) }

// SetHealth records the health checks' verdict; only Up backends receive
// new queries (unless none is up and all_down is fail-open).
func (be *Backend) SetHealth(h health.State) { be.health.Store(uint32(h)) }

// ObserveProbe folds a successful health probe's round-trip time into the
// latency average with weight 1/2, so that a backend which gets no live
// traffic (because it was slow once) is seen again within a few probes
// when it becomes fast.
func (be *Backend) ObserveProbe(rtt time.Duration) { be.fold(rtt, 1) }

// eligible reports whether the backend may get new queries.
func (be *Backend) eligible() bool {
	return be.usable() && health.State(be.health.Load()) == health.Up
}

// answeringSince reports whether the backend looks alive to a retry: it
// answered at or after cutoff, or it has nothing in flight and its last UDP
// event was an answer (idle). A backend that has gone quiet with queries
// outstanding (an NSD secondary whose reload hand-over stalls it) fails
// this before its first query times out, and keeps failing it once its
// queries have timed out. A backend that answered a moment ago passes even
// with a timeout since: it lost a datagram (a full socket), it did not stop.
func (be *Backend) answeringSince(cutoff int64) bool {
	if be.answeredSince(cutoff) {
		return true
	}
	return be.outstanding.Load() == 0 && be.consecutive.Load() == 0
}

// answeredSince reports whether the backend's last matched UDP answer came
// at or after cutoff (Balancer.now time).
func (be *Backend) answeredSince(cutoff int64) bool {
	return be.lastAnswer.Load() >= cutoff
}

// usable reports whether the backend may get new queries when health is
// ignored (all_down fail-open).
func (be *Backend) usable() bool {
	return AdminState(be.admin.Load()) == Active && !be.removed.Load()
}

// observeLatency records one answered query's latency.
func (be *Backend) observeLatency(d time.Duration) {
	be.foldLatency(d)
	be.latencyHist.observe(d)
}

// foldLatency folds one live sample into the EWMA (weight 1/8, as TCP's
// SRTT). Timeouts are folded in as the timeout, so a backend that stops
// answering looks slow to the tie-break.
func (be *Backend) foldLatency(d time.Duration) { be.fold(d, 3) }

// fold adds a sample with weight 1/2^shift; the first sample sets the average.
func (be *Backend) fold(d time.Duration, shift uint) {
	for {
		old := be.latencyNS.Load()
		next := int64(d)
		if old != 0 {
			next = old + (int64(d)-old)>>shift
		}
		if be.latencyNS.CompareAndSwap(old, next) {
			return
		}
	}
}

// BackendStats is a point-in-time view of one backend.
type BackendStats struct {
	Name        string
	Addr        netip.AddrPort
	Weight      int
	State       AdminState
	Health      health.State
	Removed     bool // draining after removal from the configuration
	Outstanding int64
	TCPActive   int64
	Queries     uint64 // UDP queries sent
	TCPQueries  uint64 // TCP messages forwarded
	Timeouts    uint64
	Retried     uint64 // timed-out queries retried (on another backend, or on this one if it alone is answering)
	Unmatched   uint64
	CaseChanged uint64 // answers whose question came back in another letter case
	NoQuestion  uint64 // error answers relayed without a question
	Responses   [numRcodes]uint64
	Latency     time.Duration // EWMA of UDP latency
	Latencies   Latencies     // histogram of UDP answer latency
	// ClientAddress is how the backend learns the client's address.
	ClientAddress ClientAddress
}

func (be *Backend) stats() BackendStats {
	s := BackendStats{
		Name:          be.name,
		Latencies:     be.latencyHist.snapshot(),
		Addr:          be.addr,
		Weight:        int(be.weight.Load()),
		State:         AdminState(be.admin.Load()),
		Health:        health.State(be.health.Load()),
		Retried:       be.retried.Load(),
		Removed:       be.removed.Load(),
		Outstanding:   be.outstanding.Load(),
		TCPActive:     be.tcpActive.Load(),
		Queries:       be.queries.Load(),
		TCPQueries:    be.tcpQueries.Load(),
		Timeouts:      be.timeouts.Load(),
		Unmatched:     be.unmatched.Load(),
		CaseChanged:   be.caseChanged.Load(),
		NoQuestion:    be.noQuestion.Load(),
		Latency:       time.Duration(be.latencyNS.Load()),
		ClientAddress: ClientAddress(be.clientAddr.Load()),
	}
	for i := range be.rcodes {
		s.Responses[i] = be.rcodes[i].Load()
	}
	return s
}
