package balancer

import (
	"hash/maphash"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/dnslb/dnslb/internal/dnswire"
	"github.com/dnslb/dnslb/rrl"
	"golang.org/x/time/rate"
)

// Response rate limiting (rrl in the configuration) applies the rrl
// package's verdicts to UDP answers on their way to the client: relayed
// answers and dnslb's own. TCP is never limited: a TCP client cannot
// spoof its address, which is what the slipped TC=1 answers send real
// clients to.

// RRLSettings turn response rate limiting on and configure it.
type RRLSettings struct {
	Enabled bool
	rrl.Config
}

func (r RRLSettings) equal(o RRLSettings) bool {
	a, b := r.Config, o.Config
	return r.Enabled == o.Enabled && slices.Equal(a.Exempt, b.Exempt) &&
		a.ResponsesPerSecond == b.ResponsesPerSecond && a.NXDomainsPerSecond == b.NXDomainsPerSecond &&
		a.ErrorsPerSecond == b.ErrorsPerSecond && a.AllPerSecond == b.AllPerSecond && a.Slip == b.Slip &&
		a.Window == b.Window && a.IPv4PrefixLen == b.IPv4PrefixLen && a.IPv6PrefixLen == b.IPv6PrefixLen &&
		a.LogOnly == b.LogOnly && a.TableSize == b.TableSize
}

const (
	typeANY       = 255
	rcodeNXDomain = 3
)

// RRL actions counted per class.
const (
	rrlDropped = iota
	rrlSlipped
	rrlLogOnly // over the limit in log_only mode: sent anyway
	numRRLActions
)

var rrlActionNames = [numRRLActions]string{"dropped", "slipped", "log_only"}

// responseLimit is the balancer's side of RRL: the limiter in force and
// its counters.
type responseLimit struct {
	settings RRLSettings
	limiter  atomic.Pointer[rrl.Limiter] // nil when off
	seed     maphash.Seed                // hashes zone names (NXDOMAIN accounts)
	limited  [4][numRRLActions]atomic.Uint64
	log      *rate.Limiter // start/stop lines: a sample, at most 5 a second
}

func newResponseLimit() *responseLimit {
	return &responseLimit{seed: maphash.MakeSeed(), log: rate.NewLimiter(5, 5)}
}

// apply puts s in force; a change of settings starts a new table, an
// unchanged one keeps its accounts (a reload does not forgive a flood).
// Called by Apply, one at a time.
func (r *responseLimit) apply(s RRLSettings) {
	if s.equal(r.settings) {
		return
	}
	r.settings = s
	if !s.Enabled {
		r.limiter.Store(nil)
		return
	}
	r.limiter.Store(rrl.New(s.Config))
}

// classify returns an answer's RRL class and the key of its account:
// ANY queries by prefix; answers with records by question (name and
// type); answers without (NXDOMAIN, NODATA, referrals) by the owner of
// the first authority record, the zone or the delegation, so that random
// names under one zone share an account (as BIND does); other errors by
// prefix.
func (r *responseLimit) classify(pkt []byte, m *message) (rrl.Class, uint64) {
	if m.qtype == typeANY {
		return rrl.Any, 0
	}
	if m.rcode != 0 && m.rcode != rcodeNXDomain {
		return rrl.Error, 0
	}
	_, an, ns, _ := dnswire.Counts(pkt)
	class := rrl.Positive
	if m.rcode == rcodeNXDomain {
		class = rrl.NXDomain
	}
	if an > 0 && class == rrl.Positive {
		return class, m.qhash
	}
	if ns == 0 {
		return class, m.qhash
	}
	it := dnswire.NewIter(pkt, m.qend, an+ns)
	for i := 0; i < an; i++ {
		if _, ok := it.Next(); !ok {
			return class, m.qhash
		}
	}
	rr, ok := it.Next()
	if !ok {
		return class, m.qhash
	}
	var name [dnswire.MaxNameLen]byte
	n, ok := dnswire.CanonicalName(pkt, rr.Name, &name)
	if !ok {
		return class, m.qhash
	}
	return class, maphash.Bytes(r.seed, name[:n])
}

// limitSelf decides dnslb's own UDP answer pkt (an error, or a cookie),
// accounted as an error of the client's prefix.
func (b *Balancer) limitSelf(l *rrl.Limiter, pkt []byte, qend int, client netip.Addr) (out []byte, send bool) {
	return b.decide(l, pkt, qend, client, rrl.Error, 0)
}

// limit decides the UDP answer pkt (parsed as m) to client and returns
// what to send: pkt, a truncated answer made of pkt in place (slip), or
// nothing (send false). It allocates nothing.
func (b *Balancer) limit(l *rrl.Limiter, pkt []byte, m *message, client netip.Addr) (out []byte, send bool) {
	class, key := b.rrl.classify(pkt, m)
	return b.decide(l, pkt, m.qend, client, class, key)
}

func (b *Balancer) decide(l *rrl.Limiter, pkt []byte, qend int, client netip.Addr, class rrl.Class, key uint64) (out []byte, send bool) {
	r := b.rrl
	d := l.Decide(client, class, key, b.now())
	if d.Started || d.Stopped {
		r.logChange(b, d, class, l)
	}
	if !d.Limited {
		return pkt, true
	}
	switch d.Action {
	case rrl.Drop:
		r.limited[class][rrlDropped].Add(1)
		return nil, false
	case rrl.Slip:
		r.limited[class][rrlSlipped].Add(1)
		return truncated(pkt, qend), true
	}
	r.limited[class][rrlLogOnly].Add(1)
	return pkt, true
}

// truncated turns an answer into a TC=1 answer carrying its question only
// (the slip of BIND, NSD and Knot RRL: a real client retries over
// TCP), in place.
func truncated(pkt []byte, qend int) []byte {
	pkt = pkt[:qend]
	pkt[2] |= 0x02 // TC
	for i := 6; i < 12; i++ {
		pkt[i] = 0 // ANCOUNT, NSCOUNT, ARCOUNT
	}
	return pkt
}

// logChange logs a sample of the prefixes whose limiting starts or
// stops (a stop is seen with the prefix's first answer served again).
func (r *responseLimit) logChange(b *Balancer, d rrl.Decision, class rrl.Class, l *rrl.Limiter) {
	if !r.log.Allow() {
		return
	}
	logOnly := l.Config().LogOnly
	if d.Started {
		b.log.Warn("rrl: limiting answers to a client prefix", "prefix", d.Prefix.String(), "class", class.String(),
			"log_only", logOnly, "dropped_total", r.total(rrlDropped), "slipped_total", r.total(rrlSlipped))
		return
	}
	b.log.Info("rrl: client prefix no longer limited", "prefix", d.Prefix.String(), "class", class.String(), "log_only", logOnly)
}

func (r *responseLimit) total(action int) uint64 {
	var n uint64
	for c := range r.limited {
		n += r.limited[c][action].Load()
	}
	return n
}

// RRLStats are response rate limiting's counters: limited answers by
// class (positive, nxdomain, error, any) and action (dropped, slipped,
// log_only).
type RRLStats struct {
	Enabled    bool
	TableBytes int // the account table's fixed size
	Limited    map[string]map[string]uint64
}

// RRL returns response rate limiting's counters.
func (b *Balancer) RRL() RRLStats {
	r := b.rrl
	st := RRLStats{Limited: map[string]map[string]uint64{}}
	if l := r.limiter.Load(); l != nil {
		st.Enabled, st.TableBytes = true, l.MemoryBytes()
	}
	for _, c := range rrl.Classes() {
		m := map[string]uint64{}
		for a, name := range rrlActionNames {
			m[name] = r.limited[c][a].Load()
		}
		st.Limited[c.String()] = m
	}
	return st
}
