package balancer

import (
	"net/netip"
	"testing"
)

func TestInflightAddTake(t *testing.T) {
	tab := newInflight(42)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	id, ok := tab.add(0x1234, 99, client, nil, 10, nil, false)
	if !ok {
		t.Fatal("add failed")
	}
	if _, ok := tab.take(id, 98); ok {
		t.Fatal("matched with wrong question hash")
	}
	if _, ok := tab.take(id^0x8000, 99); ok {
		t.Fatal("matched with wrong random ID bits")
	}
	p, ok := tab.take(id, 99)
	if !ok || p.origID != 0x1234 || p.client != client {
		t.Fatalf("take = %+v, %v", p, ok)
	}
	if _, ok := tab.take(id, 99); ok {
		t.Fatal("answer matched twice")
	}
	if tab.len() != 0 {
		t.Fatalf("len = %d", tab.len())
	}
}

func TestInflightGrowsAndFills(t *testing.T) {
	tab := newInflight(1)
	seen := map[uint16]bool{}
	for i := 0; i < maxInflight; i++ {
		id, ok := tab.add(uint16(i), uint64(i), netip.AddrPort{}, nil, 0, nil, false)
		if !ok {
			t.Fatalf("add %d failed", i)
		}
		if seen[id&idIndexMask] {
			t.Fatalf("slot %d handed out twice", id&idIndexMask)
		}
		seen[id&idIndexMask] = true
	}
	if _, ok := tab.add(0, 0, netip.AddrPort{}, nil, 0, nil, false); ok {
		t.Fatal("add beyond capacity succeeded")
	}
	n := 0
	tab.expire(1, func(*pending) { n++ })
	if n != maxInflight || tab.len() != 0 {
		t.Fatalf("expired %d, left %d", n, tab.len())
	}
}

func TestInflightExpireKeepsRecent(t *testing.T) {
	tab := newInflight(7)
	old, _ := tab.add(1, 1, netip.AddrPort{}, nil, 100, nil, false)
	recent, _ := tab.add(2, 2, netip.AddrPort{}, nil, 500, nil, false)
	var expired []uint16
	tab.expire(300, func(p *pending) { expired = append(expired, p.origID) })
	if len(expired) != 1 || expired[0] != 1 {
		t.Fatalf("expired %v", expired)
	}
	if _, ok := tab.take(old, 1); ok {
		t.Fatal("expired entry still matches")
	}
	if _, ok := tab.take(recent, 2); !ok {
		t.Fatal("recent entry lost")
	}
}
