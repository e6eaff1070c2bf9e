package balancer

import "github.com/miekg/dns"

// Header-and-question parsing for the hot path. Nothing here allocates; the
// full unpacking that miekg/dns does is too expensive per packet and is left
// to tests and the control plane.

const (
	headerLen = 12
	// maxNameLen is the largest wire-format name (RFC 1035 section 3.1).
	maxNameLen = 255

	opcodeQuery  = 0
	opcodeNotify = 4
	opcodeUpdate = 5
)

// dropReason names why a packet was not relayed. Its String form is the
// `reason` label of dnslb_frontend_dropped_total.
type dropReason uint8

const (
	dropNone dropReason = iota
	dropShort
	dropResponse
	dropOpcode
	dropQDCount
	dropBadQuestion
	dropNoBackend
	dropBackendFull
	dropSendError
	dropAnswerMalformed
	dropAnswerUnmatched
	dropTCPMalformed
	dropTCPLimit
	dropTCPClientLimit
	dropTCPTimeout
	dropTCPBackendConnect
	dropAllDownRefused
	dropTruncated          // a datagram larger than a receive slot (cannot happen with 64 KiB slots)
	dropACL                // client refused by acl.allow/acl.deny
	dropRateLimited        // over limits.qps_per_client, dropped
	dropRateLimitedRefused // over limits.qps_per_client, answered REFUSED
	dropTCPSlow            // a TCP client message not whole within timeouts.tcp_read
	dropMalformed          // answer/authority/additional records that do not parse, or trailing bytes
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	dropNone:               "none",
	dropShort:              "short",
	dropResponse:           "response_as_query",
	dropOpcode:             "opcode",
	dropQDCount:            "qdcount",
	dropBadQuestion:        "bad_question",
	dropNoBackend:          "no_backend",
	dropBackendFull:        "backend_full",
	dropSendError:          "send_error",
	dropAnswerMalformed:    "answer_malformed",
	dropAnswerUnmatched:    "answer_unmatched",
	dropTCPMalformed:       "tcp_malformed",
	dropTCPLimit:           "tcp_limit",
	dropTCPClientLimit:     "tcp_client_limit",
	dropTCPTimeout:         "tcp_timeout",
	dropTCPBackendConnect:  "tcp_backend_connect",
	dropAllDownRefused:     "all_down_refused",
	dropTruncated:          "truncated",
	dropACL:                "acl_denied",
	dropRateLimited:        "rate_limited",
	dropRateLimitedRefused: "rate_limited_refused",
	dropTCPSlow:            "tcp_slow",
	dropMalformed:          "malformed",
}

func (r dropReason) String() string {
	if r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// message is what the hot path needs to know about a DNS message.
type message struct {
	id     uint16
	opcode uint8
	rcode  uint8
	qr     bool
	// qend is the offset just past the question section's only entry.
	qend int
	// qhash is an FNV-1a hash of the question bytes exactly as on the wire
	// (name, type, class), so the answer's question must match byte for byte.
	qhash uint64
}

// parseQuery checks that b is a query dnslb may forward: a full header,
// QR=0, opcode QUERY, NOTIFY or UPDATE, exactly one well-formed question,
// and answer, authority and additional records that parse (names within
// bounds, compression pointers only backwards, RDATA within the message,
// at most one OPT whose options fill it exactly) with nothing after them.
// A backend never sees a query it could only answer with FORMERR.
func parseQuery(b []byte) (message, dropReason) {
	m, r := parseHeaderAndQuestion(b)
	if r != dropNone {
		return m, r
	}
	if m.qr {
		return m, dropResponse
	}
	switch m.opcode {
	case opcodeQuery, opcodeNotify, opcodeUpdate:
	default:
		return m, dropOpcode
	}
	count := (int(b[6])<<8 | int(b[7])) + (int(b[8])<<8 | int(b[9])) + (int(b[10])<<8 | int(b[11]))
	if count == 0 {
		if m.qend != len(b) {
			return m, dropMalformed
		}
		return m, dropNone
	}
	if end, ok := skipRecords(b, m.qend, count); !ok || end != len(b) {
		return m, dropMalformed
	}
	return m, dropNone
}

// typeOPT is the EDNS pseudo-record type (RFC 6891).
const typeOPT = 41

// skipRecords walks count resource records from off and returns the
// offset after the last one.
func skipRecords(b []byte, off, count int) (int, bool) {
	opts := 0
	for i := 0; i < count; i++ {
		start := off
		var ok bool
		if off, ok = skipAnyName(b, off); !ok || off+10 > len(b) {
			return 0, false
		}
		rrtype := int(b[off])<<8 | int(b[off+1])
		rdlen := int(b[off+8])<<8 | int(b[off+9])
		off += 10
		if off+rdlen > len(b) {
			return 0, false
		}
		if rrtype == typeOPT {
			// one OPT, owned by the root, options filling its RDATA
			if opts++; opts > 1 || b[start] != 0 || !optionsFit(b[off:off+rdlen]) {
				return 0, false
			}
		}
		off += rdlen
	}
	return off, true
}

// optionsFit reports whether rdata is a sequence of EDNS options (code,
// length, data) that ends exactly at its end.
func optionsFit(rdata []byte) bool {
	for len(rdata) > 0 {
		if len(rdata) < 4 {
			return false
		}
		n := int(rdata[2])<<8 | int(rdata[3])
		if 4+n > len(rdata) {
			return false
		}
		rdata = rdata[4+n:]
	}
	return true
}

// maxPointers bounds the compression pointers followed in one name (as
// miekg/dns does): a name has at most 127 labels.
const maxPointers = 126

// skipAnyName returns the offset after the name at off, which may end in a
// compression pointer. Pointers must point backwards (so they cannot
// loop) and the whole name, pointers followed, must be valid and at most
// 255 bytes.
func skipAnyName(b []byte, off int) (int, bool) {
	end := -1 // where the name ends in place, once a pointer was taken
	total, hops := 0, 0
	for {
		if off >= len(b) {
			return 0, false
		}
		l := int(b[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			return end, total+1 <= maxNameLen
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return 0, false
			}
			target := (l&0x3f)<<8 | int(b[off+1])
			if target >= off || hops >= maxPointers {
				return 0, false
			}
			if end < 0 {
				end = off + 2
			}
			hops++
			off = target
		case l&0xc0 != 0:
			return 0, false // 0x40 and 0x80: reserved label types
		default:
			total += l + 1
			if total > maxNameLen {
				return 0, false
			}
			off += 1 + l
		}
	}
}

// parseAnswer checks that b is a response with exactly one question.
func parseAnswer(b []byte) (message, dropReason) {
	m, r := parseHeaderAndQuestion(b)
	if r != dropNone || !m.qr {
		return m, dropAnswerMalformed
	}
	return m, dropNone
}

func parseHeaderAndQuestion(b []byte) (message, dropReason) {
	var m message
	if len(b) < headerLen {
		return m, dropShort
	}
	m.id = uint16(b[0])<<8 | uint16(b[1])
	m.qr = b[2]&0x80 != 0
	m.opcode = (b[2] >> 3) & 0x0f
	m.rcode = b[3] & 0x0f
	if qd := uint16(b[4])<<8 | uint16(b[5]); qd != 1 {
		return m, dropQDCount
	}
	end, ok := skipName(b, headerLen)
	if !ok || end+4 > len(b) {
		return m, dropBadQuestion
	}
	m.qend = end + 4
	m.qhash = fnv1a(b[headerLen:m.qend])
	return m, dropNone
}

// skipName returns the offset after the uncompressed name starting at off.
// Questions in queries carry no compression pointers (RFC 1035 4.1.4 allows
// them, but no real client uses one for the first name), so a pointer is
// treated as malformed.
func skipName(b []byte, off int) (int, bool) {
	total := 0
	for {
		if off >= len(b) {
			return 0, false
		}
		l := int(b[off])
		off++
		if l == 0 {
			return off, total+1 <= maxNameLen
		}
		if l&0xc0 != 0 {
			return 0, false
		}
		total += l + 1
		if total > maxNameLen {
			return 0, false
		}
		off += l
	}
}

func fnv1a(b []byte) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime64
	}
	return h
}

// setID writes id into the first two bytes of a message.
func setID(b []byte, id uint16) {
	b[0] = byte(id >> 8)
	b[1] = byte(id)
}

// dnsUnpackQuestion unpacks the first question with miekg/dns (for the
// sampled query log and the tests, not the hot path).
func dnsUnpackQuestion(b []byte, q *dns.Question) (int, error) {
	name, off, err := dns.UnpackDomainName(b, headerLen)
	if err != nil {
		return 0, err
	}
	q.Name = name
	if off+4 > len(b) {
		return 0, dns.ErrBuf
	}
	q.Qtype = uint16(b[off])<<8 | uint16(b[off+1])
	q.Qclass = uint16(b[off+2])<<8 | uint16(b[off+3])
	return off + 4, nil
}
