package notifydup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
)

// Errors of ParseFrame and ParseMessage; every error they return wraps
// exactly one of these.
var (
	// ErrNotNotify: well-formed as far as read, but not a NOTIFY query to
	// port 53 over UDP in IPv4 or IPv6 in Ethernet (ARP, a VLAN-tagged
	// frame, TCP, an IPv6 extension header, another port, a response, a
	// query with another opcode).
	ErrNotNotify = errors.New("notifydup: not a DNS NOTIFY")
	// ErrMalformed: truncated or inconsistent headers, lengths or counts,
	// or a DNS message that does not unpack.
	ErrMalformed = errors.New("notifydup: malformed packet")
	// ErrFragment: an IPv4 fragment of UDP (MF set or offset non-zero),
	// or an IPv6 packet whose first extension header is a fragment
	// header. NOTIFYs are small; one that arrives fragmented is not
	// copied.
	ErrFragment = errors.New("notifydup: IP fragment")
)

// Notify is a NOTIFY found in a captured frame (ParseFrame) or a message
// received over TCP (ParseMessage).
type Notify struct {
	// Src is the IP source and UDP source port (the primary), Dst the IP
	// destination (the VIP) and port 53. Addresses from a frame carry no
	// IPv6 zone.
	Src, Dst netip.AddrPort
	// Payload is the DNS message, verbatim: a copy, not aliasing the
	// frame or the caller's buffer.
	Payload []byte
	ID      uint16
	// Zone is the question name, lower-cased (ASCII only, as DNS
	// compares names) and fully qualified, in miekg/dns presentation
	// format ("example.test.", special characters escaped).
	Zone string
	// QType is the question type, normally SOA.
	QType uint16
	// Serial is the serial of the first SOA record for Zone in the answer
	// section (RFC 1996 3.7), if there is one (HasSerial).
	Serial    uint32
	HasSerial bool
	// Signed: the message ends with a TSIG record (RFC 8945) or a SIG(0)
	// (RFC 2931) in the additional section; copies must stay verbatim.
	Signed bool
}

// ParseFrame finds a NOTIFY in an Ethernet frame as an AF_PACKET SOCK_RAW
// socket delivers it (no FCS, no VLAN tag). It checks again everything
// Filter checks except the pkttype, the out-of-band VLAN tag and the
// destination address (so that frames need not come through the filter):
// EtherType IPv4 or IPv6 matching the IP version, not a fragment, UDP
// right after the IP header (no IPv6 extension headers), destination port
// 53; and more: the IP and UDP lengths must fit in the frame (Ethernet
// padding after the IP packet is ignored, bytes past the UDP length as
// well, as Linux does), no IPv4-mapped address in an IPv6 header, and the
// payload must be a NOTIFY ParseMessage accepts. Checksums are not
// verified: locally sent packets seen on veth or loopback carry a partial
// UDP checksum.
//
// Any error wraps ErrNotNotify, ErrMalformed or ErrFragment. Per call it
// allocates a small decoder besides the Notify; NOTIFYs are rare and the
// filter drops everything else in the kernel.
func ParseFrame(frame []byte) (*Notify, error) {
	var (
		eth layers.Ethernet
		ip4 layers.IPv4
		ip6 layers.IPv6
		udp layers.UDP
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &udp)
	// Stop quietly at a layer we do not decode (ARP, 802.1Q, TCP, an
	// IPv4 fragment, the DNS payload) and look at what was decoded.
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 4)
	if err := parser.DecodeLayers(frame, &decoded); err != nil {
		return nil, fmt.Errorf("%w: %d-byte frame: %v", ErrMalformed, len(frame), err)
	}
	if len(decoded) == 0 {
		return nil, fmt.Errorf("%w: %d-byte frame: no Ethernet header", ErrMalformed, len(frame))
	}
	if eth.EthernetType != layers.EthernetTypeIPv4 && eth.EthernetType != layers.EthernetTypeIPv6 {
		return nil, fmt.Errorf("%w: EtherType %#04x", ErrNotNotify, uint16(eth.EthernetType))
	}
	if len(decoded) < 2 {
		return nil, fmt.Errorf("%w: %v frame without an IP header", ErrMalformed, eth.EthernetType)
	}

	var src, dst netip.Addr
	switch decoded[1] {
	case layers.LayerTypeIPv4:
		switch {
		case ip4.Version != 4:
			return nil, fmt.Errorf("%w: IP version %d in an IPv4 frame", ErrMalformed, ip4.Version)
		case binary.BigEndian.Uint16(ip4.Contents[2:4]) == 0:
			// gopacket takes 0 for TSO on send; on receive it is wrong.
			return nil, fmt.Errorf("%w: IPv4 total length 0", ErrMalformed)
		case ip4.Protocol != layers.IPProtocolUDP:
			return nil, fmt.Errorf("%w: IPv4 protocol %d", ErrNotNotify, ip4.Protocol)
		case ip4.Flags&layers.IPv4MoreFragments != 0 || ip4.FragOffset != 0:
			return nil, fmt.Errorf("%w: IPv4 MF=%t offset=%d", ErrFragment,
				ip4.Flags&layers.IPv4MoreFragments != 0, ip4.FragOffset)
		}
		src, dst = netip.AddrFrom4([4]byte(ip4.SrcIP)), netip.AddrFrom4([4]byte(ip4.DstIP))
	case layers.LayerTypeIPv6:
		switch {
		case ip6.Version != 6:
			return nil, fmt.Errorf("%w: IP version %d in an IPv6 frame", ErrMalformed, ip6.Version)
		case netip.AddrFrom16([16]byte(ip6.SrcIP)).Is4In6() || netip.AddrFrom16([16]byte(ip6.DstIP)).Is4In6():
			// Never on the wire (RFC 4291 2.5.5.2); Linux drops them.
			return nil, fmt.Errorf("%w: IPv4-mapped address in an IPv6 header", ErrMalformed)
		case ip6.NextHeader == layers.IPProtocolIPv6Fragment:
			return nil, fmt.Errorf("%w: IPv6 fragment header", ErrFragment)
		case ip6.NextHeader != layers.IPProtocolUDP:
			return nil, fmt.Errorf("%w: IPv6 next header %d", ErrNotNotify, ip6.NextHeader)
		}
		src, dst = netip.AddrFrom16([16]byte(ip6.SrcIP)), netip.AddrFrom16([16]byte(ip6.DstIP))
	default:
		return nil, fmt.Errorf("%w: %v after %v", ErrMalformed, decoded[1], eth.EthernetType)
	}

	switch {
	case parser.Truncated:
		return nil, fmt.Errorf("%w: %d-byte frame shorter than its IP or UDP length", ErrMalformed, len(frame))
	case len(decoded) < 3 || decoded[2] != layers.LayerTypeUDP:
		return nil, fmt.Errorf("%w: no UDP header", ErrMalformed)
	case udp.Length == 0:
		// Only an IPv6 jumbogram (RFC 2675) may say 0, and it needs a
		// hop-by-hop header, refused above.
		return nil, fmt.Errorf("%w: UDP length 0", ErrMalformed)
	case udp.DstPort != dnsPort:
		return nil, fmt.Errorf("%w: UDP destination port %d", ErrNotNotify, udp.DstPort)
	}
	return ParseMessage(udp.Payload,
		netip.AddrPortFrom(src, uint16(udp.SrcPort)), netip.AddrPortFrom(dst, uint16(udp.DstPort)))
}

// ParseMessage finds a NOTIFY in a DNS message: the UDP payload, or the
// message a TCP connection carried without its two-byte length prefix.
// src and dst are stored as given.
//
// The header must have QR=0 and opcode NOTIFY (else ErrNotNotify) and
// QDCOUNT 1; the records the header counts must end exactly at the end of
// the message, which must unpack with miekg/dns, and a TSIG or SIG(0)
// record may only be the last additional record (else ErrMalformed).
func ParseMessage(payload []byte, src, dst netip.AddrPort) (*Notify, error) {
	if len(payload) < dnsHeaderLen {
		return nil, fmt.Errorf("%w: %d-byte DNS message, shorter than its header", ErrMalformed, len(payload))
	}
	if flags := payload[2]; flags&dnsQROpcodeMask != dnsNotifyQuery {
		return nil, fmt.Errorf("%w: DNS QR=%d opcode %d", ErrNotNotify, flags>>7, flags>>3&0xf)
	}
	counts := [4]int{}
	for i := range counts {
		counts[i] = int(binary.BigEndian.Uint16(payload[4+2*i:]))
	}
	if counts[0] != 1 {
		return nil, fmt.Errorf("%w: NOTIFY with QDCOUNT %d", ErrMalformed, counts[0])
	}

	if end, err := dnsMessageEnd(payload, counts); err != nil {
		return nil, fmt.Errorf("%w: NOTIFY: %v", ErrMalformed, err)
	} else if end != len(payload) {
		return nil, fmt.Errorf("%w: NOTIFY: %d bytes after the last record", ErrMalformed, len(payload)-end)
	}

	n := &Notify{
		Src:     src,
		Dst:     dst,
		Payload: bytes.Clone(payload),
		ID:      binary.BigEndian.Uint16(payload),
	}
	var m dns.Msg
	if err := unpackDNS(&m, n.Payload); err != nil {
		return nil, fmt.Errorf("%w: NOTIFY does not unpack: %v", ErrMalformed, err)
	}
	// Belt and braces: dnsMessageEnd found every record the header
	// counts, and miekg/dns would shorten a section silently if not.
	got := [4]int{len(m.Question), len(m.Answer), len(m.Ns), len(m.Extra)}
	if got != counts {
		return nil, fmt.Errorf("%w: NOTIFY sections hold %v records, the header says %v", ErrMalformed, got, counts)
	}

	q := m.Question[0]
	n.Zone = dns.CanonicalName(q.Name)
	n.QType = q.Qtype
	for _, rr := range m.Answer {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == n.Zone {
			n.Serial, n.HasSerial = soa.Serial, true
			break
		}
	}
	for s, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for i, rr := range section {
			if !isSignature(rr) {
				continue
			}
			if s != 2 || i != len(section)-1 {
				return nil, fmt.Errorf("%w: %v record is not the last additional record",
					ErrMalformed, dns.TypeToString[rr.Header().Rrtype])
			}
			n.Signed = true
		}
	}
	return n, nil
}

// dnsMessageEnd returns the offset where the question and the records that
// counts (QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT) announce end in msg, without
// decoding them: miekg/dns's Unpack ignores bytes after the last record
// and stops early when a count is too high.
func dnsMessageEnd(msg []byte, counts [4]int) (int, error) {
	off := dnsHeaderLen
	for i := range counts[0] + counts[1] + counts[2] + counts[3] {
		var err error
		if _, off, err = dns.UnpackDomainName(msg, off); err != nil {
			return 0, fmt.Errorf("record %d: %w", i, err)
		}
		fixed := 4 // question: type, class
		if i >= counts[0] {
			fixed = 10 // record: type, class, TTL, RDLENGTH
		}
		if len(msg)-off < fixed {
			return 0, fmt.Errorf("record %d cut after its name", i)
		}
		if i >= counts[0] {
			fixed += int(binary.BigEndian.Uint16(msg[off+8:]))
			if len(msg)-off < fixed {
				return 0, fmt.Errorf("record %d: RDATA past the end", i)
			}
		}
		off += fixed
	}
	return off, nil
}

// isSignature reports whether rr signs the whole message: TSIG, or SIG(0)
// (a SIG covering type 0).
func isSignature(rr dns.RR) bool {
	switch rr := rr.(type) {
	case *dns.TSIG:
		return true
	case *dns.SIG:
		return rr.TypeCovered == 0
	}
	return false
}

// unpackDNS is m.Unpack(b), with a panic (a miekg/dns bug on hostile
// input) turned into an error: a captured packet must not stop the
// capture loop.
func unpackDNS(m *dns.Msg, b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("miekg/dns panicked: %v", r)
		}
	}()
	return m.Unpack(b)
}
