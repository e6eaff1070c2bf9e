package notifydup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnswire"
)

// Errors of ParseMessage; every error it returns wraps exactly one of
// these.
var (
	// ErrNotNotify: well-formed as far as read, but not a NOTIFY query (a
	// response, a query with another opcode).
	ErrNotNotify = errors.New("notifydup: not a DNS NOTIFY")
	// ErrMalformed: truncated or inconsistent header, counts or records,
	// or a DNS message that does not unpack.
	ErrMalformed = errors.New("notifydup: malformed NOTIFY")
)

// Notify is a NOTIFY the balancer received (over UDP or TCP).
type Notify struct {
	// Src is the primary's address and port, Dst the listen address (the
	// VIP) it was sent to.
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

// ParseMessage finds a NOTIFY in a DNS message: a UDP payload, or the
// message a TCP connection carried without its two-byte length prefix.
// src and dst are stored as given.
//
// The header must have QR=0 and opcode NOTIFY (else ErrNotNotify) and
// QDCOUNT 1; the message must pass dnswire.Check (the validation
// contract: records whole and ending with the message, TSIG or SIG(0)
// last) and unpack with miekg/dns (else ErrMalformed).
func ParseMessage(payload []byte, src, dst netip.AddrPort) (*Notify, error) {
	if len(payload) < dnswire.HeaderLen {
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

	qend, p := dnswire.CheckQuestion(payload)
	if p == dnswire.OK {
		_, p = dnswire.Check(payload, qend, counts[1], counts[2], counts[3])
	}
	if p != dnswire.OK {
		return nil, fmt.Errorf("%w: NOTIFY: %v", ErrMalformed, p)
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
	// Belt and braces: dnswire.Check found every record the header
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

// DNS header values ParseMessage checks.
const (
	// The flags byte with QR (0x80) and the opcode (0x78) masked in:
	// QR=0, opcode 4 (NOTIFY, RFC 1996).
	dnsQROpcodeMask = 0xf8
	dnsNotifyQuery  = 4 << 3
)
