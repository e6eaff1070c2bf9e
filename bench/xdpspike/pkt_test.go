package main

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// udpChecksum computes the IPv4 UDP checksum of a frame from scratch.
func udpChecksum(pkt []byte) uint16 {
	udp := pkt[offUDP:]
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	var sum uint32
	sum = csumAdd(sum, pkt[offIPSrc:offIPDst+4])
	sum += 17 + uint32(ulen)
	c := make([]byte, ulen+1) // padded to even
	copy(c, udp[:ulen])
	c[6], c[7] = 0, 0
	sum = csumAdd(sum, c[:ulen+ulen%2])
	s := ^csumFold(sum)
	if s == 0 {
		s = 0xffff
	}
	return s
}

func frame(srcMAC, dstMAC [6]byte, src, dst netip.Addr, sport, dport, id uint16, payload []byte) []byte {
	p := make([]byte, offDNS+2+len(payload))
	copy(p[0:6], dstMAC[:])
	copy(p[6:12], srcMAC[:])
	p[12], p[13] = 0x08, 0x00
	ip := p[offIP:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(p)-offIP))
	ip[6] = 0x40 // DF
	ip[8], ip[9] = 64, 17
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ipHeaderChecksum(ip))
	binary.BigEndian.PutUint16(p[offUDP:], sport)
	binary.BigEndian.PutUint16(p[offUDP+2:], dport)
	binary.BigEndian.PutUint16(p[offUDP+4:], uint16(len(p)-offUDP))
	binary.BigEndian.PutUint16(p[offDNS:], id)
	copy(p[offDNS+2:], payload)
	binary.BigEndian.PutUint16(p[offUDPSum:], udpChecksum(p))
	return p
}

func TestForwarderRoundTrip(t *testing.T) {
	cMAC, pMAC, bMAC := [6]byte{2, 0, 0, 0, 0, 0x10}, [6]byte{2, 0, 0, 0, 0, 0x53}, [6]byte{2, 0, 0, 0, 0, 2}
	c, p, b := netip.MustParseAddr("10.97.53.10"), netip.MustParseAddr("10.97.53.53"), netip.MustParseAddr("10.97.53.2")
	f := newForwarder(pMAC, bMAC, p, b, 40053)
	f.nextID = 0xfff0
	payload := []byte{1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}
	for i := 0; i < 40; i++ {
		q := frame(cMAC, pMAC, c, p, 33000+uint16(i), 53, 0x1234+uint16(i), payload[:len(payload)-i%2])
		if !f.handle(q) {
			t.Fatal("query not forwarded")
		}
		if [6]byte(q[0:6]) != bMAC || [6]byte(q[6:12]) != pMAC || [4]byte(q[offIPSrc:]) != p.As4() || [4]byte(q[offIPDst:]) != b.As4() ||
			binary.BigEndian.Uint16(q[offUDP:]) != 40053 || binary.BigEndian.Uint16(q[offUDP+2:]) != 53 {
			t.Fatalf("query headers: % x", q[:offDNS+2])
		}
		if got, want := binary.BigEndian.Uint16(q[offUDPSum:]), udpChecksum(q); got != want {
			t.Fatalf("query UDP checksum %#04x, want %#04x", got, want)
		}
		if csumFold(csumAdd(0, q[offIP:offIP+20])) != 0xffff {
			t.Fatal("query IP checksum")
		}
		// The backend answers: swap addresses, ports and MACs, keep the ID.
		id := binary.BigEndian.Uint16(q[offDNS:])
		a := frame(bMAC, pMAC, b, p, 53, 40053, id, append([]byte{0x81, 0x80}, payload[2:]...))
		if !f.handle(a) {
			t.Fatal("answer not forwarded")
		}
		if [6]byte(a[0:6]) != cMAC || [4]byte(a[offIPDst:]) != c.As4() || [4]byte(a[offIPSrc:]) != p.As4() ||
			binary.BigEndian.Uint16(a[offUDP:]) != 53 || binary.BigEndian.Uint16(a[offUDP+2:]) != 33000+uint16(i) ||
			binary.BigEndian.Uint16(a[offDNS:]) != 0x1234+uint16(i) {
			t.Fatalf("answer headers: % x", a[:offDNS+2])
		}
		if got, want := binary.BigEndian.Uint16(a[offUDPSum:]), udpChecksum(a); got != want {
			t.Fatalf("answer UDP checksum %#04x, want %#04x", got, want)
		}
		if csumFold(csumAdd(0, a[offIP:offIP+20])) != 0xffff {
			t.Fatal("answer IP checksum")
		}
		if f.handle(a) {
			t.Fatal("a second answer with the same ID was forwarded")
		}
	}
}

func TestForwarderZeroAlloc(t *testing.T) {
	pMAC, bMAC := [6]byte{2, 0, 0, 0, 0, 0x53}, [6]byte{2, 0, 0, 0, 0, 2}
	c, p, b := netip.MustParseAddr("10.97.53.10"), netip.MustParseAddr("10.97.53.53"), netip.MustParseAddr("10.97.53.2")
	f := newForwarder(pMAC, bMAC, p, b, 40053)
	q := frame([6]byte{2}, pMAC, c, p, 33000, 53, 7, make([]byte, 30))
	a := frame(bMAC, pMAC, b, p, 53, 40053, 0, make([]byte, 40))
	qb, ab := make([]byte, len(q)), make([]byte, len(a))
	var fwd int
	allocs := testing.AllocsPerRun(1000, func() {
		copy(qb, q)
		copy(ab, a)
		if f.handle(qb) {
			fwd++
		}
		binary.BigEndian.PutUint16(ab[offDNS:], f.nextID-1)
		if f.handle(ab) {
			fwd++
		}
	})
	if fwd != 2002 { // AllocsPerRun runs the function once more to warm up
		t.Fatalf("%d packets forwarded, want 2002", fwd)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per query+answer", allocs)
	}
}
