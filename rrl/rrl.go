package rrl

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
	"unsafe"
)

// Class is a response class: each has its own rate and its own accounts.
type Class uint8

const (
	// Positive is an answer with data: accounted per name and type.
	Positive Class = iota
	// NXDomain is a name error: accounted per zone (the key the caller
	// gives is the zone's).
	NXDomain
	// Error is any other error rcode (SERVFAIL, REFUSED, FORMERR, ...):
	// one account per prefix.
	Error
	// Any is an answer to a query of type ANY (a favourite of reflection
	// attacks): one account per prefix, at the errors' rate.
	Any
	numClasses
	// all is the account of every response to a prefix (AllPerSecond).
	all = numClasses
)

var classNames = [numClasses]string{Positive: "positive", NXDomain: "nxdomain", Error: "error", Any: "any"}

// String names the class ("positive", "nxdomain", "error", "any").
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// Classes lists every class, for counters.
func Classes() []Class { return []Class{Positive, NXDomain, Error, Any} }

// Action is what to do with a response.
type Action uint8

const (
	// Allow: send it.
	Allow Action = iota
	// Slip: send a truncated answer (TC=1, the question only) instead.
	Slip
	// Drop: send nothing.
	Drop
)

// Config configures a Limiter. Rates of 0 turn their class's limit off.
type Config struct {
	ResponsesPerSecond int // Positive
	NXDomainsPerSecond int
	ErrorsPerSecond    int // Error and Any
	AllPerSecond       int // every response to a prefix, whatever its class
	// Slip makes every Slip-th limited response a truncated answer (1:
	// every one, 0: none; BIND and NSD use 2).
	Slip int
	// Window bounds how far an account can be overspent: a prefix that
	// stops flooding is served again within Window (default 15s).
	Window time.Duration
	// IPv4PrefixLen and IPv6PrefixLen group clients (default 24 and 56).
	IPv4PrefixLen, IPv6PrefixLen int
	// Exempt clients are never limited.
	Exempt []netip.Prefix
	// LogOnly decides and counts but always allows (to try settings out).
	LogOnly bool
	// TableSize is how many accounts are kept (default 65536, rounded up
	// to a multiple of 256); the least recently used one is reused.
	TableSize int
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = 15 * time.Second
	}
	if c.IPv4PrefixLen <= 0 || c.IPv4PrefixLen > 32 {
		c.IPv4PrefixLen = 24
	}
	if c.IPv6PrefixLen <= 0 || c.IPv6PrefixLen > 128 {
		c.IPv6PrefixLen = 56
	}
	if c.TableSize <= 0 {
		c.TableSize = 65536
	}
	return c
}

// Decision is the verdict on one response.
type Decision struct {
	Action Action
	// Limited is true when the account is over its rate (also with
	// LogOnly, whose Action is Allow).
	Limited bool
	// Started and Stopped mark the responses where an account's limiting
	// began or ended: sample these for the log.
	Started, Stopped bool
	// Prefix is the client prefix accounted.
	Prefix netip.Prefix
}

// account is one (prefix, class, key) bucket: GCRA, the theoretical
// arrival time of the next response.
type account struct {
	key     uint64
	tat     int64 // ns on the caller's clock
	seen    int64 // last use, for eviction
	slip    uint32
	limited bool
}

const (
	shards    = 64
	probeWays = 4
)

type shard struct {
	mu    sync.Mutex
	slots []account
}

// Limiter decides responses. It is safe for concurrent use and allocates
// nothing per decision.
type Limiter struct {
	c      Config
	seed   maphash.Seed
	shards [shards]shard
}

// New returns a Limiter for c.
func New(c Config) *Limiter {
	c = c.withDefaults()
	per := max(probeWays, (c.TableSize+shards-1)/shards)
	l := &Limiter{c: c, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].slots = make([]account, per)
	}
	return l
}

// Config returns the configuration in force (defaults applied).
func (l *Limiter) Config() Config { return l.c }

// MemoryBytes is the table's size.
func (l *Limiter) MemoryBytes() int { return shards * len(l.shards[0].slots) * AccountBytes }

// AccountBytes is the size of one account of the table.
const AccountBytes = int(unsafe.Sizeof(account{}))

func (l *Limiter) rate(class Class) int {
	switch class {
	case Positive:
		return l.c.ResponsesPerSecond
	case NXDomain:
		return l.c.NXDomainsPerSecond
	case Error, Any:
		return l.c.ErrorsPerSecond
	case all:
		return l.c.AllPerSecond
	}
	return 0
}

// Prefix returns the client's accounting prefix.
func (l *Limiter) Prefix(client netip.Addr) netip.Prefix {
	client = client.Unmap()
	bits := l.c.IPv6PrefixLen
	if client.Is4() {
		bits = l.c.IPv4PrefixLen
	}
	p, _ := client.Prefix(bits)
	return p
}

// Decide accounts one UDP response of class to client at now (monotonic
// nanoseconds); key identifies what is accounted within the class: a hash
// of the question (name, type) for Positive, of the zone for NXDomain,
// unused for Error and Any.
func (l *Limiter) Decide(client netip.Addr, class Class, key uint64, now int64) Decision {
	p := l.Prefix(client)
	d := Decision{Prefix: p}
	for _, e := range l.c.Exempt {
		if e.Contains(client.Unmap()) {
			return d
		}
	}
	if class == Error || class == Any {
		key = 0
	}
	if r := l.rate(class); r > 0 {
		l.account(&d, p, class, key, r, now)
	}
	if r := l.rate(all); r > 0 && !d.Limited {
		l.account(&d, p, all, 0, r, now)
	}
	switch {
	case !d.Limited || l.c.LogOnly:
		d.Action = Allow
	}
	return d
}

// account charges one response to the (p, class, key) account at rate
// per second and fills in d when it is over.
func (l *Limiter) account(d *Decision, p netip.Prefix, class Class, key uint64, rate int, now int64) {
	h := maphash.Comparable(l.seed, p) ^ (uint64(class) << 56) ^ key*0x9e3779b97f4a7c15
	if h == 0 {
		h = 1 // 0 marks a free slot
	}
	sh := &l.shards[h%shards]
	n := len(sh.slots)
	base := int(h/shards) % n
	interval := int64(time.Second) / int64(rate)
	burst := int64(time.Second)
	window := int64(l.c.Window)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var a, victim *account
	for i := 0; i < probeWays; i++ {
		s := &sh.slots[(base+i)%n]
		if s.key == h {
			a = s
			break
		}
		// reuse a free slot, else the least recently used one
		if victim == nil || (victim.key != 0 && (s.key == 0 || s.seen < victim.seen)) {
			victim = s
		}
	}
	if a == nil {
		a = victim
		*a = account{key: h, tat: now}
	}
	a.seen = now
	tat := max(a.tat, now)
	over := tat-now >= burst
	a.tat = min(tat+interval, now+window)
	if !over {
		if a.limited {
			a.limited = false
			d.Stopped = true
		}
		return
	}
	d.Limited = true
	if !a.limited {
		a.limited = true
		a.slip = 0
		d.Started = true
	}
	a.slip++
	d.Action = Drop
	if l.c.Slip > 0 && a.slip%uint32(l.c.Slip) == 0 {
		d.Action = Slip
	}
}
