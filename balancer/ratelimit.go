package balancer

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// Sizes of the per-client rate limiter's table: 64 shards of 1024 slots
// track 65536 clients at once; a new client takes the slot of the least
// recently limited one among the 4 its hash may use.
const (
	limiterShards = 64
	limiterSlots  = 1024
	limiterProbe  = 4
)

// clientLimiter enforces Settings.QPSPerClient with GCRA (a token bucket
// that stores one time per client): each query moves the client's
// theoretical arrival time (tat) on by 1s/qps, and a query is allowed
// while tat is at most one second ahead of now (a burst of qps queries).
// The table is fixed: nothing is allocated per packet.
type clientLimiter struct {
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

type limiterShard struct {
	mu   sync.Mutex
	keys [limiterSlots]netip.Addr
	tat  [limiterSlots]int64
}

// allow reports whether client may send one more query at now
// (nanoseconds on the balancer's clock) under a limit of qps.
func (l *clientLimiter) allow(client netip.Addr, now int64, qps int) bool {
	interval := int64(time.Second) / int64(qps)
	h := l.addrHash(client)
	sh := &l.shards[h%limiterShards]
	base := int(h/limiterShards) % limiterSlots
	sh.mu.Lock()
	slot, oldest := -1, -1
	for i := 0; i < limiterProbe; i++ {
		j := (base + i) % limiterSlots
		if sh.keys[j] == client {
			slot = j
			break
		}
		if oldest < 0 || sh.tat[j] < sh.tat[oldest] {
			oldest = j
		}
	}
	if slot < 0 { // a new client (or one forgotten): a full bucket
		slot = oldest
		sh.keys[slot], sh.tat[slot] = client, now
	}
	tat := max(sh.tat[slot], now)
	ok := tat-now <= int64(time.Second)-interval
	if ok {
		sh.tat[slot] = tat + interval
	}
	sh.mu.Unlock()
	return ok
}

// addrHash spreads client addresses over the table, with a per-limiter
// random seed so that an attacker cannot aim at one slot.
func (l *clientLimiter) addrHash(a netip.Addr) uint64 {
	return maphash.Comparable(l.seed, a)
}

// logOverLimit logs, at most every 10 s, that a client is over
// limits.qps_per_client.
func (b *Balancer) logOverLimit(s *Settings, client netip.Addr) {
	if b.logDue(dropRateLimited) {
		b.log.Warn("client over limits.qps_per_client", "client", client.String(), "limit", s.QPSPerClient,
			"dropped_total", b.ctr.drops[dropRateLimited].Load(), "refused_total", b.ctr.answers[answerOverLimit].Load())
	}
}

// clientLimiter returns the per-client rate limiter, allocating its table
// (about 2 MB) the first time limits.qps_per_client is on.
func (b *Balancer) clientLimiter() *clientLimiter {
	b.adm.limiterOnce.Do(func() { b.adm.limiter = &clientLimiter{seed: maphash.MakeSeed()} })
	return b.adm.limiter
}
