package balancer

import (
	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnswire"
)

// Header-and-question parsing for the hot path. Nothing here allocates; the
// full unpacking that miekg/dns does is too expensive per packet and is left
// to tests and the control plane.

const (
	headerLen = dnswire.HeaderLen

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
// QR=0, opcode QUERY, NOTIFY or UPDATE, exactly one question, and records
// as the contract in doc.go says ("What a backend is handed"), checked by
// dnswire.Check.
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
	_, an, ns, ar := dnswire.Counts(b)
	if _, p := dnswire.Check(b, m.qend, an, ns, ar); p != dnswire.OK {
		return m, dropMalformed
	}
	return m, dropNone
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
	end, p := dnswire.CheckQuestion(b)
	if p != dnswire.OK {
		return m, dropBadQuestion
	}
	m.qend = end
	m.qhash = fnv1a(b[headerLen:m.qend])
	return m, dropNone
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
