package vrrp

import (
	"fmt"
	"sync"
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
// instant the transitions take). Members are the instances created with
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
// become master. It returns true when the whole group can: then the other
// members that wanted it are told to become master too. Otherwise the
// member stays backup and asks again later.
func (g *Group) wantMaster(in *Instance) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.members[in]
	if ms == nil {
		return true
	}
	ms.wants = true
	for other, os := range g.members {
		if other != in && os.state != Master && !os.wants {
			return false
		}
	}
	for other, os := range g.members {
		if other != in && os.state != Master {
			other.post(command{kind: cmdBecomeMaster, reason: fmt.Sprintf("sync group: together with %s", in.name)})
		}
		os.wants = false
	}
	return true
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
