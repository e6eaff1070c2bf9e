package testpeer

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
)

// CapturedDNS is one DNS message found in a capture by DNSMessages.
type CapturedDNS struct {
	Time      time.Time
	Src, Dst  netip.AddrPort
	Transport string // "udp" or "tcp"
	Msg       *dns.Msg
}

// IsNotify reports whether the message is a NOTIFY request (QR=0).
func (c CapturedDNS) IsNotify() bool {
	return c.Msg.Opcode == dns.OpcodeNotify && !c.Msg.Response
}

// IsNotifyReply reports whether the message answers a NOTIFY (QR=1).
func (c CapturedDNS) IsNotifyReply() bool {
	return c.Msg.Opcode == dns.OpcodeNotify && c.Msg.Response
}

// String is one line: time, transport, src > dst, opcode, rcode, question,
// and the SOA serial a NOTIFY carries.
func (c CapturedDNS) String() string {
	qr := "query"
	if c.Msg.Response {
		qr = "reply " + dns.RcodeToString[c.Msg.Rcode]
	}
	q := "-"
	if len(c.Msg.Question) > 0 {
		q = c.Msg.Question[0].Name + " " + dns.TypeToString[c.Msg.Question[0].Qtype]
	}
	extra := ""
	for _, rr := range c.Msg.Answer {
		if soa, ok := rr.(*dns.SOA); ok && c.Msg.Opcode == dns.OpcodeNotify {
			extra = fmt.Sprintf(" serial %d", soa.Serial)
		}
	}
	if c.Msg.IsTsig() != nil {
		extra += " TSIG"
	}
	return fmt.Sprintf("%s %s %v > %v %s %s id %d %s%s", c.Time.Format("15:04:05.000000"), c.Transport,
		c.Src, c.Dst, dns.OpcodeToString[c.Msg.Opcode], qr, c.Msg.Id, q, extra)
}

// DNSMessages decodes the DNS messages in pkts (UDP or TCP, either port
// 53 or any port if the payload parses). A TCP segment is decoded only if
// it holds whole length-prefixed messages (as NOTIFYs and small answers
// are); messages spanning segments (a big AXFR) are skipped, not
// reassembled.
func DNSMessages(pkts []gopacket.Packet) []CapturedDNS {
	var out []CapturedDNS
	for _, p := range pkts {
		var src, dst netip.Addr
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		case *layers.IPv6:
			src, _ = netip.AddrFromSlice(ip.SrcIP.To16())
			dst, _ = netip.AddrFromSlice(ip.DstIP.To16())
		default:
			continue
		}
		ts := p.Metadata().Timestamp
		switch l := p.TransportLayer().(type) {
		case *layers.UDP:
			m := new(dns.Msg)
			if err := m.Unpack(l.Payload); err != nil {
				continue
			}
			out = append(out, CapturedDNS{Time: ts, Transport: "udp", Msg: m,
				Src: netip.AddrPortFrom(src, uint16(l.SrcPort)), Dst: netip.AddrPortFrom(dst, uint16(l.DstPort))})
		case *layers.TCP:
			b := l.Payload
			for len(b) >= 2 {
				n := int(binary.BigEndian.Uint16(b))
				if len(b) < 2+n {
					break
				}
				m := new(dns.Msg)
				if err := m.Unpack(b[2 : 2+n]); err != nil {
					break
				}
				out = append(out, CapturedDNS{Time: ts, Transport: "tcp", Msg: m,
					Src: netip.AddrPortFrom(src, uint16(l.SrcPort)), Dst: netip.AddrPortFrom(dst, uint16(l.DstPort))})
				b = b[2+n:]
			}
		}
	}
	return out
}

// Notifies returns the NOTIFY requests among msgs for zone ("" = any)
// sent to dst (invalid = any address).
func Notifies(msgs []CapturedDNS, zone string, dst netip.Addr) []CapturedDNS {
	var out []CapturedDNS
	for _, m := range msgs {
		if !m.IsNotify() {
			continue
		}
		if zone != "" && (len(m.Msg.Question) == 0 || !strings.EqualFold(m.Msg.Question[0].Name, dns.Fqdn(zone))) {
			continue
		}
		if dst.IsValid() && m.Dst.Addr() != dst.Unmap() {
			continue
		}
		out = append(out, m)
	}
	return out
}
