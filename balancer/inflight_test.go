package balancer

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func testBackend(name, addr string) *Backend {
	return newBackend(BackendSpec{Name: name, Addr: netip.MustParseAddrPort(addr), Weight: 1})
}

func TestInflightAddTake(t *testing.T) {
	tab := newInflight(42)
	var client sockaddr
	client.set(netip.MustParseAddrPort("127.0.0.1:5353"), unix.AF_INET)
	be := testBackend("be", "127.0.0.2:53")
	id, ok := tab.add(be, &udpQuery{origID: 0x1234, qhash: 99, client: client}, 10)
	if !ok {
		t.Fatal("add failed")
	}
	if _, owner, ok := tab.take(id, 98, false, be.addr); ok || owner != be {
		t.Fatal("matched with wrong question hash, or not counted against its backend")
	}
	if _, _, ok := tab.take(id^0x8000, 99, false, be.addr); ok {
		t.Fatal("matched with wrong random ID bits")
	}
	if _, owner, ok := tab.take(id, 99, false, netip.MustParseAddrPort("127.0.0.3:53")); ok || owner != nil {
		t.Fatal("matched an answer from another source")
	}
	p, _, ok := tab.take(id, 99, false, be.addr)
	if !ok || p.origID != 0x1234 || p.client.addrPort() != client.addrPort() || p.be != be {
		t.Fatalf("take = %+v, %v", p, ok)
	}
	if _, _, ok := tab.take(id, 99, false, be.addr); ok {
		t.Fatal("answer matched twice")
	}
	if tab.len() != 0 {
		t.Fatalf("len = %d", tab.len())
	}
}

func TestInflightGrowsAndFills(t *testing.T) {
	tab := newInflight(1)
	be := testBackend("be", "127.0.0.2:53")
	seen := map[uint16]bool{}
	for i := 0; i < maxInflight; i++ {
		id, ok := tab.add(be, &udpQuery{origID: uint16(i), qhash: uint64(i), client: sockaddr{}}, 0)
		if !ok {
			t.Fatalf("add %d failed", i)
		}
		if seen[id&idIndexMask] {
			t.Fatalf("slot %d handed out twice", id&idIndexMask)
		}
		seen[id&idIndexMask] = true
	}
	if _, ok := tab.add(be, &udpQuery{origID: 0, qhash: 0, client: sockaddr{}}, 0); ok {
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
	be := testBackend("be", "127.0.0.2:53")
	old, _ := tab.add(be, &udpQuery{origID: 1, qhash: 1, client: sockaddr{}}, 100)
	recent, _ := tab.add(be, &udpQuery{origID: 2, qhash: 2, client: sockaddr{}}, 500)
	var expired []uint16
	tab.expire(300, func(p *pending) { expired = append(expired, p.origID) })
	if len(expired) != 1 || expired[0] != 1 {
		t.Fatalf("expired %v", expired)
	}
	if _, _, ok := tab.take(old, 1, false, be.addr); ok {
		t.Fatal("expired entry still matches")
	}
	if _, _, ok := tab.take(recent, 2, false, be.addr); !ok {
		t.Fatal("recent entry lost")
	}
}
