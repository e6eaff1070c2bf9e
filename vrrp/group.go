package vrrp

import (
	"fmt"
	"sync"
	"time"
)

// Group is a sync group: the instances of one node that must move
// together, like the IPv4 and IPv6 VIPs of one name server. It follows
// keepalived's vrrp_sync_group:
//
//   - when one member leaves master (for backup or fault), every other
//     member that is master steps down at once, with a priority-0 advert
//     so that its peer takes over after Skew_Time;
//   - a member whose own rules say "become master" (its Master_Down timer
//     ran out, or the master left) waits until every other member is
//     master or wants to be; then they all become master together. A
//     member in fault, or one that sees a peer it cannot preempt, holds
//     the whole group back.
//
// So a node holds all of the group's VIPs or none of them (except for the
// instant the transitions take). Becoming master together is make before
// break: every member adds and announces its VIPs (gratuitous ARP,
// unsolicited NA) before any member sends its first advert, because the
// peer steps its whole group down on the first advert it loses to; see
// takeover. Members are the instances created with
// Options.Group; an instance with no group is independent.
type Group struct {
	mu      sync.Mutex
	members map[*Instance]*memberState
}

type memberState struct {
	state State
	wants bool // its timer ran out: it would be master on its own
}

// NewGroup returns an empty sync group.
func NewGroup() *Group { return &Group{members: map[*Instance]*memberState{}} }

// join adds a member (New calls it).
func (g *Group) join(in *Instance) {
	g.mu.Lock()
	g.members[in] = &memberState{state: Initialize}
	g.mu.Unlock()
}

// leave removes a member (its Run returned).
func (g *Group) leave(in *Instance) {
	g.mu.Lock()
	delete(g.members, in)
	g.mu.Unlock()
}

// changed records a member's transition; a member leaving master makes
// every other master member step down.
func (g *Group) changed(in *Instance, from, to State) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.members[in]
	if ms == nil {
		return
	}
	ms.state = to
	ms.wants = false
	if from != Master || to == Master || to == Initialize {
		return
	}
	for other, os := range g.members {
		if other != in && os.state == Master {
			other.post(command{kind: cmdStepDown, reason: fmt.Sprintf("sync group: %s went %s", in.name, to)})
		}
	}
}

// wantMaster is asked by a member in backup whose rules say it should
// become master. It returns a takeover when the whole group can: then the
// other members that are not master are told to become master too, with
// the same takeover. Otherwise it returns nil: the member stays backup and
// asks again later.
func (g *Group) wantMaster(in *Instance) *takeover {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.members[in]
	if ms == nil {
		return newTakeover(1)
	}
	ms.wants = true
	for other, os := range g.members {
		if other != in && os.state != Master && !os.wants {
			return nil
		}
	}
	n := 1
	for other, os := range g.members {
		if other != in && os.state != Master {
			n++
		}
	}
	t := newTakeover(n)
	for other, os := range g.members {
		if other != in && os.state != Master {
			other.post(command{kind: cmdBecomeMaster, reason: fmt.Sprintf("sync group: together with %s", in.name), takeover: t})
		}
		os.wants = false
	}
	return t
}

// takeoverWait bounds how long a member becoming master waits for the
// others to announce their VIPs before it sends its first advert: a
// member whose run loop is slow delays the group's adverts by at most
// this, never blocks them.
const takeoverWait = 50 * time.Millisecond

// takeover is one "become master together" of a sync group. Each member
// adds and announces its VIPs, calls announced, and sends its first advert
// only after wait: so when the peer steps all of its members down on the
// first of these adverts, every client has already been told where every
// VIP went. An instance outside a group uses a takeover of one.
type takeover struct {
	mu   sync.Mutex
	left int
	done chan struct{}
}

func newTakeover(members int) *takeover {
	return &takeover{left: members, done: make(chan struct{})}
}

// announced notes that one member has added and announced its VIPs (or
// will not become master after all).
func (t *takeover) announced() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.left--; t.left == 0 {
		close(t.done)
	}
}

// wait returns when every member has announced, or after takeoverWait.
func (t *takeover) wait() {
	select {
	case <-t.done:
	default:
		tm := time.NewTimer(takeoverWait)
		defer tm.Stop()
		select {
		case <-t.done:
		case <-tm.C:
		}
	}
}

// unwant notes that a member saw a master it cannot preempt: it no
// longer wants to be master.
func (g *Group) unwant(in *Instance) {
	g.mu.Lock()
	if ms := g.members[in]; ms != nil {
		ms.wants = false
	}
	g.mu.Unlock()
}
