package main

import (
	"encoding/binary"
	"net/netip"
)

// The AF_XDP forwarder's packet work: the same job as a UDP proxy with one
// upstream socket per backend. A query (client -> proxy:53) leaves as
// proxy:upPort -> backend:53 with a fresh DNS ID; the client's MAC,
// address, port and original ID are kept in a table indexed by that ID. An
// answer (backend:53 -> proxy:upPort) is looked up by its ID and leaves as
// proxy:53 -> client with the original ID. Ethernet, IPv4 and UDP headers
// are rewritten in place; the IPv4 header checksum is recomputed (20
// bytes) and the UDP checksum updated incrementally (RFC 1624), so the
// payload is never read beyond the ID.

const (
	offEthType = 12
	offIP      = 14
	offIPSrc   = offIP + 12
	offIPDst   = offIP + 16
	offUDP     = offIP + 20
	offUDPSum  = offUDP + 6
	offDNS     = offUDP + 8
	minDNSPkt  = offDNS + 12
)

type flowEntry struct {
	mac   [6]byte
	port  uint16 // client port, network order bytes as uint16 read big-endian
	ip    [4]byte
	id    uint16
	inUse bool
}

// forwarder holds the rewrite state. It is used by one goroutine.
type forwarder struct {
	myMAC, beMAC [6]byte
	myIP, beIP   [4]byte
	upPort       uint16
	nextID       uint16
	table        [65536]flowEntry

	queries, answers, dropped uint64
}

func newForwarder(myMAC, beMAC [6]byte, myIP, beIP netip.Addr, upPort uint16) *forwarder {
	return &forwarder{myMAC: myMAC, beMAC: beMAC, myIP: myIP.As4(), beIP: beIP.As4(), upPort: upPort}
}

// csumAdd adds the 16-bit words of b (even length) to sum.
func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	return sum
}

// csumSub adds the one's complement of b's words (removing them from a
// one's complement sum).
func csumSub(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(^(uint16(b[i])<<8 | uint16(b[i+1])))
	}
	return sum
}

func csumFold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func ipHeaderChecksum(h []byte) uint16 {
	h[10], h[11] = 0, 0
	return ^csumFold(csumAdd(0, h[:20]))
}

// handle rewrites pkt in place and reports whether to send it back out.
func (f *forwarder) handle(pkt []byte) bool {
	if len(pkt) < minDNSPkt || pkt[offEthType] != 0x08 || pkt[offEthType+1] != 0x00 ||
		pkt[offIP] != 0x45 || pkt[offIP+9] != 17 || pkt[offIP+6]&0x3f != 0 || pkt[offIP+7] != 0 ||
		[4]byte(pkt[offIPDst:offIPDst+4]) != f.myIP {
		f.dropped++
		return false
	}
	sport := binary.BigEndian.Uint16(pkt[offUDP:])
	dport := binary.BigEndian.Uint16(pkt[offUDP+2:])
	oldSum := binary.BigEndian.Uint16(pkt[offUDPSum:])
	// The checksum update removes the old words of everything that changes
	// (addresses, ports, ID), then adds the new ones.
	var sum uint32
	if oldSum != 0 {
		sum = uint32(^oldSum)
		sum = csumSub(sum, pkt[offIPSrc:offIPDst+4])
		sum = csumSub(sum, pkt[offUDP:offUDP+4])
		sum = csumSub(sum, pkt[offDNS:offDNS+2])
	}
	switch {
	case dport == 53:
		id := f.nextID
		f.nextID++
		e := &f.table[id]
		copy(e.mac[:], pkt[6:12])
		copy(e.ip[:], pkt[offIPSrc:offIPSrc+4])
		e.port = sport
		e.id = binary.BigEndian.Uint16(pkt[offDNS:])
		e.inUse = true
		copy(pkt[0:6], f.beMAC[:])
		copy(pkt[6:12], f.myMAC[:])
		copy(pkt[offIPSrc:], f.myIP[:])
		copy(pkt[offIPDst:], f.beIP[:])
		binary.BigEndian.PutUint16(pkt[offUDP:], f.upPort)
		binary.BigEndian.PutUint16(pkt[offUDP+2:], 53)
		binary.BigEndian.PutUint16(pkt[offDNS:], id)
		f.queries++
	case sport == 53 && dport == f.upPort && [4]byte(pkt[offIPSrc:offIPSrc+4]) == f.beIP:
		e := &f.table[binary.BigEndian.Uint16(pkt[offDNS:])]
		if !e.inUse {
			f.dropped++
			return false
		}
		e.inUse = false
		copy(pkt[0:6], e.mac[:])
		copy(pkt[6:12], f.myMAC[:])
		copy(pkt[offIPSrc:], f.myIP[:])
		copy(pkt[offIPDst:], e.ip[:])
		binary.BigEndian.PutUint16(pkt[offUDP:], 53)
		binary.BigEndian.PutUint16(pkt[offUDP+2:], e.port)
		binary.BigEndian.PutUint16(pkt[offDNS:], e.id)
		f.answers++
	default:
		f.dropped++
		return false
	}
	binary.BigEndian.PutUint16(pkt[offIP+10:], ipHeaderChecksum(pkt[offIP:]))
	if oldSum != 0 {
		sum = csumAdd(sum, pkt[offIPSrc:offIPDst+4])
		sum = csumAdd(sum, pkt[offUDP:offUDP+4])
		sum = csumAdd(sum, pkt[offDNS:offDNS+2])
		s := ^csumFold(sum)
		if s == 0 {
			s = 0xffff
		}
		binary.BigEndian.PutUint16(pkt[offUDPSum:], s)
	}
	return true
}
