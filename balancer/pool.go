package balancer

import (
	"fmt"
	"github.com/dnslb/dnslb/internal/health"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// pool holds the backends and implements the least-connection policy.
// Readers (the hot path) load an immutable slice; Apply builds a new one
// under mu and swaps it in.
type pool struct {
	mu       sync.Mutex
	current  atomic.Pointer[[]*Backend] // configured backends, in config order
	retiring map[*Backend]struct{}      // removed, finishing in-flight work
	rr       atomic.Uint32
	seed     uint64 // seeds the upstream sockets' random ID bits
}

func newPool() *pool {
	p := &pool{retiring: map[*Backend]struct{}{}, seed: uint64(time.Now().UnixNano())}
	empty := []*Backend{}
	p.current.Store(&empty)
	return p
}

func (p *pool) list() []*Backend { return *p.current.Load() }

// all returns the configured and the retiring backends.
func (p *pool) all() []*Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]*Backend(nil), p.list()...)
	for be := range p.retiring {
		out = append(out, be)
	}
	return out
}

// applyResult says what Apply changed.
type applyResult struct {
	added   []*Backend
	retired []*Backend
}

// apply makes the pool match specs: new names are added (a failure
// changes nothing), removed names and names whose
// address changed are retired, weights and states are updated in place.
func (p *pool) apply(specs []BackendSpec) (applyResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var res applyResult
	old := map[string]*Backend{}
	for _, be := range p.list() {
		old[be.name] = be
	}
	seen := map[string]bool{}
	next := make([]*Backend, 0, len(specs))
	for _, s := range specs {
		if seen[s.Name] {
			return applyResult{}, fmt.Errorf("backend %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if be, ok := old[s.Name]; ok && be.addr == s.Addr {
			next = append(next, be)
			continue
		}
		be := newBackend(s)
		res.added = append(res.added, be)
		next = append(next, be)
	}
	// Commit: nothing below fails.
	for i, s := range specs {
		next[i].weight.Store(int64(max(s.Weight, 1)))
		next[i].admin.Store(uint32(s.State))
		next[i].clientAddr.Store(uint32(s.ClientAddress))
		if !s.Checked {
			next[i].SetHealth(health.Up) // checks turned off: trust it
		}
	}
	for name, be := range old {
		if nb := findByName(next, name); nb == be {
			continue
		}
		be.removed.Store(true)
		p.retiring[be] = struct{}{}
		res.retired = append(res.retired, be)
	}
	p.current.Store(&next)
	return res, nil
}

func findByName(list []*Backend, name string) *Backend {
	for _, be := range list {
		if be.name == name {
			return be
		}
	}
	return nil
}

// finishRetired forgets a retired backend once it has nothing in flight.
func (p *pool) finishRetired(be *Backend) {
	p.mu.Lock()
	delete(p.retiring, be)
	p.mu.Unlock()
}

// pickUDP returns the eligible backend with the fewest outstanding queries
// per unit of weight. allDown is true when backends exist but none is up;
// with failOpen, the usable ones are then picked from regardless of health.
func (p *pool) pickUDP(failOpen bool) (be *Backend, allDown bool) {
	return p.pick(outstandingLoad, failOpen, nil)
}

// pickTCP is pickUDP for TCP: fewest active connections per weight.
func (p *pool) pickTCP(failOpen bool) (be *Backend, allDown bool) {
	return p.pick(tcpLoad, failOpen, nil)
}

func outstandingLoad(be *Backend) int64 { return be.outstanding.Load() }

// pick tries the up backends, then, if none is and failOpen is set, every
// usable one. except is never picked (a retry must go elsewhere).
func (p *pool) pick(load func(*Backend) int64, failOpen bool, except *Backend) (*Backend, bool) {
	list := p.list()
	if best := p.scan(list, load, (*Backend).eligible, except); best != nil {
		return best, false
	}
	if failOpen {
		if best := p.scan(list, load, (*Backend).usable, except); best != nil {
			return best, true
		}
	}
	return nil, len(list) > 0
}

// pickRetry picks the backend for a timed-out query's one retry, which is
// the query's last chance, so that it does not follow the first try into
// a second backend that stalled in the same second (two secondaries that
// get the same zone copies reload, and stall, together). In order:
//   - by least outstanding, an eligible backend other than failed that is
//     answering (Backend.answeringSince quiet);
//   - failed itself, if it is eligible and answered at or after quiet
//     (Backend.answeredSince): its timeout was a lost datagram (a socket
//     that overflowed for a moment), and it is the one backend still
//     answering. A 400,000-zone storm lost 386 queries whose first try
//     Knot dropped while both NSD secondaries were stalled: their retries
//     went to the stalled NSDs;
//   - otherwise pick (least outstanding, never failed): the retry still goes
//     somewhere.
func (p *pool) pickRetry(failOpen bool, failed *Backend, quiet int64) *Backend {
	answering := func(be *Backend) bool { return be.eligible() && be.answeringSince(quiet) }
	if best := p.scan(p.list(), outstandingLoad, answering, failed); best != nil {
		return best
	}
	if failed != nil && failed.eligible() && failed.answeredSince(quiet) {
		return failed
	}
	be, _ := p.pick(outstandingLoad, failOpen, failed)
	return be
}

// scan returns the candidate with the least load per weight, scanning from
// a rotating start so that equal candidates take turns.
func (p *pool) scan(list []*Backend, load func(*Backend) int64, ok func(*Backend) bool, except *Backend) *Backend {
	n := len(list)
	if n == 0 {
		return nil
	}
	start := int(p.rr.Add(1) % uint32(n))
	var best *Backend
	var bestLoad, bestWeight int64
	for i := 0; i < n; i++ {
		be := list[(start+i)%n]
		if be == except || !ok(be) {
			continue
		}
		l, w := load(be), be.weight.Load()
		if best == nil {
			best, bestLoad, bestWeight = be, l, w
			continue
		}
		// compare l/w with bestLoad/bestWeight without division
		a, b := l*bestWeight, bestLoad*w
		if a < b || (a == b && clearlyFaster(be, best)) {
			best, bestLoad, bestWeight = be, l, w
		}
	}
	return best
}

// clearlyFaster reports whether a's latency EWMA is lower than b's by more
// than the noise: 50% and 1ms. Smaller differences count as a tie, so that
// equal backends share traffic round-robin at low load; sub-millisecond
// differences do not matter to DNS clients, and probe round trips (which
// also feed the average) run a little slower than the live path.
func clearlyFaster(a, b *Backend) bool {
	la, lb := a.latencyNS.Load(), b.latencyNS.Load()
	return la*3/2+int64(time.Millisecond) < lb
}

// byName returns the configured backend with this name, or nil.
func (p *pool) byName(name string) *Backend { return findByName(p.list(), name) }

// byAddr returns a configured backend with this address, or nil (a linear
// scan: only unmatched answers need it).
func (p *pool) byAddr(addr netip.AddrPort) *Backend {
	for _, be := range p.list() {
		if be.addr == addr {
			return be
		}
	}
	return nil
}
