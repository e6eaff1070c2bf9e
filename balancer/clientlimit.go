package balancer

import (
	"net/netip"
	"sync"
	"time"
)

// permitted applies the client ACL: a Deny prefix refuses, then a
// non-empty Allow list must contain the address.
func (s *Settings) permitted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.Deny {
		if p.Contains(a) {
			return false
		}
	}
	if len(s.Allow) == 0 {
		return true
	}
	for _, p := range s.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

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
	h := addrHash(client)
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

// addrHash is FNV-1a over the 16-byte form of a.
func addrHash(a netip.Addr) uint64 {
	b := a.As16()
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
