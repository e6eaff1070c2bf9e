package notifydup

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/net/bpf"
)

// The kernel filter for the capture socket. Offsets are from the start of
// the Ethernet header: the program is for an AF_PACKET SOCK_RAW socket on
// an Ethernet interface (SOCK_DGRAM would start at the IP header).

const (
	// maxVIPsPerFamily bounds the program: with 16 IPv4 and 16 IPv6 VIPs
	// every conditional jump still fits its 8-bit offset.
	maxVIPsPerFamily = 16

	// filterSnapLen is what the filter returns for a packet it passes: the
	// number of bytes to capture, more than any frame that can carry a UDP
	// NOTIFY (14 + 40 + 65535; IPv6 jumbograms need a hop-by-hop header,
	// which the filter refuses). 262144 is tcpdump's maximum snaplen.
	filterSnapLen = 262144

	// pktTypeOutgoing is PACKET_OUTGOING (linux/if_packet.h), the value
	// of skb->pkt_type (SKF_AD_PKTTYPE) for a packet the host sends.
	pktTypeOutgoing = 4

	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	ipProtoUDP    = 17
	dnsPort       = 53

	// The DNS flags byte with QR (0x80) and the opcode (0x78) masked in:
	// QR=0, opcode 4 (NOTIFY, RFC 1996).
	dnsQROpcodeMask = 0xf8
	dnsNotifyQuery  = 4 << 3

	ethHeaderLen = 14
	dnsHeaderLen = 12
)

// Offsets in a frame. After an IPv4 header they are relative to its end:
// loads indexed by X = 4*IHL add ethHeaderLen.
const (
	offEtherType = 12
	offIPv4      = ethHeaderLen // version and IHL
	offIPv4Frag  = offIPv4 + 6  // flags (3 bits) and fragment offset
	offIPv4Proto = offIPv4 + 9
	offIPv4Dst   = offIPv4 + 16
	offIPv6      = ethHeaderLen // version, traffic class
	offIPv6Next  = offIPv6 + 6  // next header
	offIPv6Dst   = offIPv6 + 24 // 16 bytes
	offIPv6UDP   = offIPv6 + 40 // the UDP header (no extension headers)
	// From the start of the UDP header.
	offUDPDst   = 2
	offDNSFlags = 8 + 2                // QR, opcode, AA, TC, RD
	offDNSLast  = 8 + dnsHeaderLen - 1 // the last byte of the DNS header
)

// Filter returns the classic BPF program for an AF_PACKET socket (SOCK_RAW)
// on an Ethernet interface that passes only inbound, unfragmented UDP
// packets to one of vips on port 53 whose DNS header has QR=0 and opcode 4
// (NOTIFY), in full (the program returns 262144), and drops everything else.
//
// In detail, a frame passes when all of these hold:
//   - skb->pkt_type (SKF_AD_PKTTYPE) is not PACKET_OUTGOING: the host's
//     own packets, including the copies notifydup injects, are not seen;
//   - no VLAN tag: neither one the NIC or kernel stripped into the skb
//     (SKF_AD_VLAN_TAG_PRESENT; on Linux the tag of a frame received on
//     the parent device is always out of band by the time taps see it,
//     and a capture on the VLAN device itself sees it untagged) nor one
//     in the frame (EtherType 0x8100 or 0x88a8 is neither IPv4 nor IPv6);
//   - IPv4 (EtherType 0x0800, version 4, IHL 5 to 15 — options allowed),
//     protocol UDP, MF clear and fragment offset 0, destination one of the
//     IPv4 vips; or IPv6 (EtherType 0x86dd, version 6) with next header
//     UDP right after the fixed header (a frame with any extension
//     header, hop-by-hop and fragment included, is dropped), destination
//     one of the IPv6 vips;
//   - UDP destination port 53;
//   - the whole 12-byte DNS header is in the frame, and its flags byte
//     masked with 0xf8 is 0x20 (QR=0, opcode NOTIFY).
//
// The rest (IP and UDP lengths, QDCOUNT, the message itself) ParseFrame
// checks. IPv4-mapped IPv6 vips count as IPv4; zones are dropped;
// duplicates are ignored. At least one and at most 16 vips of each family.
func Filter(vips []netip.Addr) ([]bpf.RawInstruction, error) {
	ins, err := FilterInstructions(vips)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(ins)
	if err != nil {
		return nil, fmt.Errorf("notifydup: assembling filter: %w", err)
	}
	return raw, nil
}

// FilterInstructions returns Filter's program before assembly, for tests
// and debugging.
func FilterInstructions(vips []netip.Addr) ([]bpf.Instruction, error) {
	var v4, v6 []netip.Addr
	for _, a := range vips {
		if !a.IsValid() {
			return nil, errors.New("notifydup: filter: invalid (zero) VIP address")
		}
		a = a.Unmap().WithZone("")
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	v4, v6 = slices.Compact(v4), slices.Compact(v6)
	switch {
	case len(v4)+len(v6) == 0:
		return nil, errors.New("notifydup: filter: no VIP")
	case len(v4) > maxVIPsPerFamily:
		return nil, fmt.Errorf("notifydup: filter: %d IPv4 VIPs, at most %d", len(v4), maxVIPsPerFamily)
	case len(v6) > maxVIPsPerFamily:
		return nil, fmt.Errorf("notifydup: filter: %d IPv6 VIPs, at most %d", len(v6), maxVIPsPerFamily)
	}
	return buildFilter(v4, v6)
}

// Labels of the program; every jump goes forward to one of them.
type filterLabel int

const (
	lNext filterLabel = iota // the next instruction (no jump)
	lIPv4
	lIPv4Dst
	lIPv6
	lIPv6Dst
	lPass
	lDrop
	// lDrop+1+i: the comparison with the i-th IPv6 VIP (see vip6Label).
)

func vip6Label(i int) filterLabel { return lDrop + 1 + filterLabel(i) }

// filterAsm collects instructions with symbolic jump targets and resolves
// them to skip counts once the program is complete.
type filterAsm struct {
	ins    []bpf.Instruction
	jumps  map[int][2]filterLabel // instruction index: true, false target
	labels map[filterLabel]int
}

func (p *filterAsm) emit(ins ...bpf.Instruction) { p.ins = append(p.ins, ins...) }

// jump emits "if A <cond> val goto t else goto f".
func (p *filterAsm) jump(cond bpf.JumpTest, val uint32, t, f filterLabel) {
	p.jumps[len(p.ins)] = [2]filterLabel{t, f}
	p.emit(bpf.JumpIf{Cond: cond, Val: val})
}

func (p *filterAsm) label(l filterLabel) { p.labels[l] = len(p.ins) }

func (p *filterAsm) skip(from int, l filterLabel) (uint32, error) {
	if l == lNext {
		return 0, nil
	}
	to, ok := p.labels[l]
	if !ok || to <= from {
		return 0, fmt.Errorf("notifydup: filter: instruction %d jumps to undefined or earlier label %d", from, l)
	}
	return uint32(to - from - 1), nil
}

func (p *filterAsm) resolve() ([]bpf.Instruction, error) {
	for i, t := range p.jumps {
		st, err := p.skip(i, t[0])
		if err != nil {
			return nil, err
		}
		sf, err := p.skip(i, t[1])
		if err != nil {
			return nil, err
		}
		switch ins := p.ins[i].(type) {
		case bpf.Jump:
			ins.Skip = st
			p.ins[i] = ins
		case bpf.JumpIf:
			if st > 255 || sf > 255 {
				return nil, fmt.Errorf("notifydup: filter: conditional jump at %d too long (%d, %d)", i, st, sf)
			}
			ins.SkipTrue, ins.SkipFalse = uint8(st), uint8(sf)
			p.ins[i] = ins
		}
	}
	return p.ins, nil
}

// buildFilter returns the program for sorted, distinct v4 and v6 VIPs, not
// both empty. Every load past the end of the frame ends the program with 0
// (drop), in the kernel as in x/net/bpf's VM.
func buildFilter(v4, v6 []netip.Addr) ([]bpf.Instruction, error) {
	p := &filterAsm{jumps: map[int][2]filterLabel{}, labels: map[filterLabel]int{}}

	// Inbound only, untagged only.
	p.emit(bpf.LoadExtension{Num: bpf.ExtType})
	p.jump(bpf.JumpEqual, pktTypeOutgoing, lDrop, lNext)
	p.emit(bpf.LoadExtension{Num: bpf.ExtVLANTagPresent})
	p.jump(bpf.JumpNotEqual, 0, lDrop, lNext)

	p.emit(bpf.LoadAbsolute{Off: offEtherType, Size: 2})
	switch {
	case len(v4) > 0 && len(v6) > 0:
		p.jump(bpf.JumpEqual, etherTypeIPv4, lIPv4, lNext)
		p.jump(bpf.JumpEqual, etherTypeIPv6, lIPv6, lDrop)
	case len(v4) > 0:
		p.jump(bpf.JumpEqual, etherTypeIPv4, lIPv4, lDrop)
	default:
		p.jump(bpf.JumpEqual, etherTypeIPv6, lIPv6, lDrop)
	}

	if len(v4) > 0 {
		p.label(lIPv4)
		// Version 4 and IHL 5..15 in one range check of the first byte.
		p.emit(bpf.LoadAbsolute{Off: offIPv4, Size: 1})
		p.jump(bpf.JumpLessThan, 0x45, lDrop, lNext)
		p.jump(bpf.JumpGreaterThan, 0x4f, lDrop, lNext)
		p.emit(bpf.LoadAbsolute{Off: offIPv4Proto, Size: 1})
		p.jump(bpf.JumpNotEqual, ipProtoUDP, lDrop, lNext)
		p.emit(bpf.LoadAbsolute{Off: offIPv4Frag, Size: 2})
		p.jump(bpf.JumpBitsSet, 0x3fff, lDrop, lNext) // MF and fragment offset
		p.emit(bpf.LoadAbsolute{Off: offIPv4Dst, Size: 4})
		for i, a := range v4 {
			b := a.As4()
			val := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			f := lNext
			if i == len(v4)-1 {
				f = lDrop
			}
			p.jump(bpf.JumpEqual, val, lIPv4Dst, f)
		}
		p.label(lIPv4Dst)
		p.emit(bpf.LoadMemShift{Off: offIPv4}) // X = 4*IHL
		p.emit(bpf.LoadIndirect{Off: ethHeaderLen + offUDPDst, Size: 2})
		p.jump(bpf.JumpNotEqual, dnsPort, lDrop, lNext)
		p.emit(bpf.LoadIndirect{Off: ethHeaderLen + offDNSLast, Size: 1})
		p.emit(bpf.LoadIndirect{Off: ethHeaderLen + offDNSFlags, Size: 1})
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: dnsQROpcodeMask})
		p.jump(bpf.JumpEqual, dnsNotifyQuery, lPass, lDrop)
	}

	if len(v6) > 0 {
		p.label(lIPv6)
		p.emit(bpf.LoadAbsolute{Off: offIPv6, Size: 1})
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
		p.jump(bpf.JumpNotEqual, 0x60, lDrop, lNext)
		p.emit(bpf.LoadAbsolute{Off: offIPv6Next, Size: 1})
		p.jump(bpf.JumpNotEqual, ipProtoUDP, lDrop, lNext)
		// Each VIP: compare the four words of the destination; on the
		// first mismatch go on to the next VIP, after the last to drop.
		for i, a := range v6 {
			b := a.As16()
			miss := vip6Label(i + 1)
			if i == len(v6)-1 {
				miss = lDrop
			}
			p.label(vip6Label(i))
			for w := range 4 {
				val := uint32(b[4*w])<<24 | uint32(b[4*w+1])<<16 | uint32(b[4*w+2])<<8 | uint32(b[4*w+3])
				p.emit(bpf.LoadAbsolute{Off: offIPv6Dst + uint32(4*w), Size: 4})
				if w < 3 {
					p.jump(bpf.JumpNotEqual, val, miss, lNext)
				} else {
					p.jump(bpf.JumpEqual, val, lIPv6Dst, miss)
				}
			}
		}
		p.label(lIPv6Dst)
		p.emit(bpf.LoadAbsolute{Off: offIPv6UDP + offUDPDst, Size: 2})
		p.jump(bpf.JumpNotEqual, dnsPort, lDrop, lNext)
		p.emit(bpf.LoadAbsolute{Off: offIPv6UDP + offDNSLast, Size: 1})
		p.emit(bpf.LoadAbsolute{Off: offIPv6UDP + offDNSFlags, Size: 1})
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: dnsQROpcodeMask})
		p.jump(bpf.JumpEqual, dnsNotifyQuery, lPass, lDrop)
	}

	p.label(lPass)
	p.emit(bpf.RetConstant{Val: filterSnapLen})
	p.label(lDrop)
	p.emit(bpf.RetConstant{Val: 0})
	return p.resolve()
}
