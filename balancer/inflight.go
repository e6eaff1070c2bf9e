package balancer

import (
	"net/netip"
	"sync"

	"github.com/dnslb/dnslb/internal/dnswire"
)

const (
	// idIndexBits is how many low bits of an upstream DNS ID index the
	// in-flight table; the remaining high bits are random per query, so an
	// answer with a stale or guessed ID for a reused slot does not match.
	idIndexBits = 12
	// maxInflight is the most queries one upstream socket carries at once.
	maxInflight   = 1 << idIndexBits
	idIndexMask   = maxInflight - 1
	initialSlots  = 64
	randomIDShift = idIndexBits
)

// maxRetryQuery is the largest query kept for a retry after a timeout;
// larger ones (rare: big EDNS options) are not retried.
const maxRetryQuery = 512

// pending is one query waiting for its answer.
type pending struct {
	used    bool
	retried bool             // already a retry: never retried again
	id      uint16           // the ID sent upstream
	origID  uint16           // the client's ID
	qlen    uint16           // bytes of query kept for a retry, 0 if none
	qopt    int16            // offset of its OPT record, -1 if none
	ecs     dnswire.ECSAdded // what client_address: ecs added, to take out of the answer
	qhash   uint64           // question hash, case folded
	qexact  uint64           // question hash as sent
	sent    int64            // monotonic nanoseconds since the balancer's epoch
	be      *Backend         // the backend the query went to
	client  sockaddr         // as the kernel gave it, IPv6 scope included
	front   *udpWorker
	// query is a frame (see udpQuery) holding the message for a retry.
	query [udpHeadroom + maxRetryQuery + ecsRoom]byte
}

// match is what an answer needs from its pending entry.
type match struct {
	origID uint16
	qexact uint64
	sent   int64
	be     *Backend
	client sockaddr
	front  *udpWorker
	ecs    dnswire.ECSAdded
}

// inflight is the in-flight table of one upstream socket, shared by every
// backend of the socket's address family. The table grows
// (by doubling, up to maxInflight) only when it is full, so steady state
// allocates nothing.
type inflight struct {
	mu    sync.Mutex
	slots []pending
	free  []uint16 // stack of free slot indexes
	inUse int
	rng   uint64 // xorshift state for the random ID bits
}

func newInflight(seed uint64) *inflight {
	t := &inflight{rng: seed | 1}
	t.grow(initialSlots)
	return t
}

func (t *inflight) grow(n int) {
	old := len(t.slots)
	if n > maxInflight {
		n = maxInflight
	}
	if n <= old {
		return
	}
	slots := make([]pending, n)
	copy(slots, t.slots)
	t.slots = slots
	free := make([]uint16, len(t.free), n)
	copy(free, t.free)
	// push new indexes so that the lowest is handed out first
	for i := n - 1; i >= old; i-- {
		free = append(free, uint16(i))
	}
	t.free = free
}

func (t *inflight) nextRandom() uint16 {
	x := t.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	t.rng = x
	return uint16(x >> 32)
}

// add stores q, sent to be, and returns the ID to send upstream; ok is
// false when the table is full. Its message is kept for a retry if
// q.retry (and it fits).
func (t *inflight) add(be *Backend, q *udpQuery, now int64) (id uint16, ok bool) {
	t.mu.Lock()
	if len(t.free) == 0 {
		t.grow(len(t.slots) * 2)
		if len(t.free) == 0 {
			t.mu.Unlock()
			return 0, false
		}
	}
	idx := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	id = t.nextRandom()&^idIndexMask | idx
	p := &t.slots[idx]
	p.used, p.retried, p.id, p.origID, p.qhash, p.qexact, p.sent, p.be, p.client, p.front = true, q.retried, id, q.origID, q.qhash, q.qexact, now, be, q.client, q.front
	p.qlen, p.qopt, p.ecs = 0, int16(q.opt), dnswire.AddedNothing
	if q.retry && q.n <= maxRetryQuery {
		p.qlen = uint16(copy(p.query[udpHeadroom:], q.msg()))
	}
	t.inUse++
	t.mu.Unlock()
	return id, true
}

// take removes and returns the entry that an answer from src with this ID
// and question hash belongs to; ok is false when nothing matches. When the
// ID is in use by a query to src but the question differs, owner is that
// query's backend (the answer is counted against it).
func (t *inflight) take(id uint16, qhash uint64, anyQuestion bool, src netip.AddrPort) (m match, owner *Backend, ok bool) {
	idx := id & idIndexMask
	t.mu.Lock()
	if int(idx) >= len(t.slots) {
		t.mu.Unlock()
		return m, nil, false
	}
	s := &t.slots[idx]
	if !s.used || s.id != id || s.be.addr != src {
		t.mu.Unlock()
		return m, nil, false
	}
	if s.qhash != qhash && !anyQuestion {
		owner := s.be
		t.mu.Unlock()
		return m, owner, false
	}
	m = match{origID: s.origID, qexact: s.qexact, sent: s.sent, be: s.be, client: s.client, front: s.front, ecs: s.ecs}
	t.release(idx)
	t.mu.Unlock()
	return m, m.be, true
}

// setAdded records what client_address: ecs added to the query sent
// with this ID, for its answer.
func (t *inflight) setAdded(id uint16, added dnswire.ECSAdded) {
	idx := id & idIndexMask
	t.mu.Lock()
	if int(idx) < len(t.slots) && t.slots[idx].used && t.slots[idx].id == id {
		t.slots[idx].ecs = added
	}
	t.mu.Unlock()
}

// remove frees the entry with this upstream ID (a failed send) and
// reports whether it was still there.
func (t *inflight) remove(id uint16) bool {
	idx := id & idIndexMask
	t.mu.Lock()
	defer t.mu.Unlock()
	if int(idx) < len(t.slots) && t.slots[idx].used && t.slots[idx].id == id {
		t.release(idx)
		return true
	}
	return false
}

func (t *inflight) release(idx uint16) {
	s := &t.slots[idx]
	s.used, s.front, s.be = false, nil, nil
	t.free = append(t.free, idx)
	t.inUse--
}

// expire frees every entry sent before deadline and calls fn for each, with
// the lock held; fn must not call back into t.
func (t *inflight) expire(deadline int64, fn func(p *pending)) {
	t.mu.Lock()
	if t.inUse > 0 {
		for i := range t.slots {
			s := &t.slots[i]
			if s.used && s.sent < deadline {
				fn(s)
				t.release(uint16(i))
			}
		}
	}
	t.mu.Unlock()
}

// len returns the number of queries in flight.
func (t *inflight) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inUse
}
