package balancer

import (
	"hash/maphash"

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
	dropTruncated         // a datagram larger than a receive slot (cannot happen with 64 KiB slots)
	dropACL               // client refused by acl.allow/acl.deny
	dropRateLimited       // over limits.qps_per_client, dropped (answered ones are counted as answers)
	dropTCPSlow           // a TCP client message not whole within timeouts.tcp_read
	dropMalformed         // answer/authority/additional records that do not parse, or trailing bytes
	dropTCPWriteTimeout   // a TCP client that did not read its answers within timeouts.tcp_write
	dropTCPAnswerMismatch // a TCP answer that matches no outstanding query: the backend connection is closed
	dropNotifyIgnored     // a NOTIFY notify duplication would not copy (not master, over rate, full, stopping): not answered, so the primary retries
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	dropNone:              "none",
	dropShort:             "short",
	dropResponse:          "response_as_query",
	dropOpcode:            "opcode",
	dropQDCount:           "qdcount",
	dropBadQuestion:       "bad_question",
	dropNoBackend:         "no_backend",
	dropBackendFull:       "backend_full",
	dropSendError:         "send_error",
	dropAnswerMalformed:   "answer_malformed",
	dropAnswerUnmatched:   "answer_unmatched",
	dropTCPMalformed:      "tcp_malformed",
	dropTCPLimit:          "tcp_limit",
	dropTCPClientLimit:    "tcp_client_limit",
	dropTCPTimeout:        "tcp_timeout",
	dropTCPBackendConnect: "tcp_backend_connect",
	dropTruncated:         "truncated",
	dropACL:               "acl_denied",
	dropRateLimited:       "rate_limited",
	dropTCPSlow:           "tcp_slow",
	dropMalformed:         "malformed",
	dropTCPWriteTimeout:   "tcp_write_timeout",
	dropTCPAnswerMismatch: "tcp_answer_mismatch",
	dropNotifyIgnored:     "notify_not_copied",
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
	// qend is the offset just past the question section's only entry
	// (the header's end for a COOKIE-only query).
	qend  int
	qtype uint16
	// qhash is a hash of the question (name, type, class) with the name's
	// ASCII letters lower-cased: an answer matches its query whatever the
	// case (resolvers randomise it, RFC 5452 "0x20"; some servers answer
	// in the zone's case). qexact hashes the bytes as they are, to count
	// answers whose case changed.
	qhash, qexact uint64
	// opt is the offset of the query's OPT record, -1 if it has none.
	opt int
	// cookieOnly marks a query with no question and a COOKIE option, which
	// asks for a server cookie (RFC 7873 5.4).
	cookieOnly bool
	// noQuestion marks an error answer without a question (see
	// parseAnswer): it matches its query by ID and source only.
	noQuestion bool
}

// parseQuery checks that b is a query dnslb may forward: a full header,
// QR=0, opcode QUERY, NOTIFY or UPDATE, exactly one question, and records
// as the contract in doc.go says ("What a backend is handed"), checked by
// dnswire.Check. A QUERY with no question whose only record is an OPT
// with a COOKIE option is accepted too (cookieOnly): dnslb answers it.
func parseQuery(b []byte) (message, dropReason) {
	m, r := parseHeaderAndQuestion(b)
	if r == dropQDCount && b[4]|b[5] == 0 && !m.qr && m.opcode == opcodeQuery {
		return parseCookieQuery(b, m)
	}
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
	rs, p := dnswire.Check(b, m.qend, an, ns, ar)
	if p != dnswire.OK {
		return m, dropMalformed
	}
	m.opt = rs.OPT
	return m, dropNone
}

// parseCookieQuery accepts a QUERY without question that carries nothing
// but an OPT record with a COOKIE option.
func parseCookieQuery(b []byte, m message) (message, dropReason) {
	_, an, ns, ar := dnswire.Counts(b)
	if an != 0 || ns != 0 || ar != 1 {
		return m, dropQDCount
	}
	rs, p := dnswire.Check(b, headerLen, an, ns, ar)
	if p != dnswire.OK || rs.OPT < 0 || dnswire.ParseOPT(b, rs.OPT).Cookie == nil {
		return m, dropQDCount
	}
	m.qend, m.opt, m.cookieOnly = headerLen, rs.OPT, true
	return m, dropNone
}

// parseAnswer checks that b is a response with exactly one question, or
// an error answer with none. Servers may leave the question out of an
// error (RFC 1035 does not require it; Unbound's access-control refuse
// answers REFUSED with QDCOUNT 0), so an answer with no question and an
// rcode other than NOERROR and NXDOMAIN is accepted with noQuestion set;
// its question cannot be checked, so the ID and the
// backend's address alone match it to its query. A NOERROR or NXDOMAIN
// answer without a question is still malformed (outside a zone
// transfer's continuation messages, which the TCP path handles).
func parseAnswer(b []byte) (message, dropReason) {
	m, r := parseHeaderAndQuestion(b)
	if r == dropQDCount && m.qr && b[4]|b[5] == 0 && m.rcode != rcodeNoError && m.rcode != rcodeNXDomain {
		m.noQuestion = true
		return m, dropNone
	}
	if r != dropNone || !m.qr {
		return m, dropAnswerMalformed
	}
	return m, dropNone
}

func parseHeaderAndQuestion(b []byte) (message, dropReason) {
	m := message{opt: -1}
	if len(b) < headerLen {
		return m, dropShort
	}
	m.id = uint16(b[0])<<8 | uint16(b[1])
	m.qr = b[2]&0x80 != 0
	m.opcode = (b[2] >> 3) & 0x0f
	m.rcode = b[3] & 0x0f
	m.qend = headerLen
	if qd := uint16(b[4])<<8 | uint16(b[5]); qd != 1 {
		return m, dropQDCount
	}
	end, p := dnswire.CheckQuestion(b)
	if p != dnswire.OK {
		return m, dropBadQuestion
	}
	m.qend = end
	m.qtype = uint16(b[end-4])<<8 | uint16(b[end-3])
	m.qhash, m.qexact = questionHashes(b[headerLen:end])
	return m, dropNone
}

// questionSeed seeds the question hashes; set once per process, never
// changed.
var questionSeed = maphash.MakeSeed()

// questionHashes returns the hash of q (a question: name, type, class)
// with the name's ASCII letters lower-cased, and the hash of q as it is.
// A question without capitals is hashed once: both are the same.
func questionHashes(q []byte) (folded, exact uint64) {
	name := q[:len(q)-4]
	upper := -1
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			upper = i
			break
		}
	}
	exact = maphash.Bytes(questionSeed, q)
	if upper < 0 {
		return exact, exact
	}
	var buf [dnswire.MaxNameLen + 4]byte
	n := copy(buf[:], q)
	for i := upper; i < n-4; i++ {
		if c := buf[i]; 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	return maphash.Bytes(questionSeed, buf[:n]), exact
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
