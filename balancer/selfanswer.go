package balancer

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/dnslb/dnslb/internal/dnswire"
)

// answerKind says why dnslb answered a query itself instead of a backend.
// Its String form is the `reason` label of dnslb_frontend_answered_total.
type answerKind uint8

const (
	answerAllDown        answerKind = iota // REFUSED: backends exist, none is up, health_check.all_down is refuse
	answerOverLimit                        // REFUSED: over limits.qps_per_client with limits.over_limit refuse
	answerNotify                           // NOERROR: a NOTIFY from a primary (copied by notifydup)
	answerNotifyStranger                   // REFUSED: a NOTIFY from anyone else
	answerCookie                           // NOERROR: a query with no question and a COOKIE option (RFC 7873 5.4)
	answerFormErr                          // FORMERR: a TCP message outside the validation contract
	answerServFail                         // SERVFAIL: a TCP query no backend answered, even after a re-send
	answerNoBackend                        // SERVFAIL: a TCP query with no backend to send it to
	numAnswerKinds
)

var answerKindNames = [numAnswerKinds]string{
	answerAllDown:        "all_down",
	answerOverLimit:      "over_limit",
	answerNotify:         "notify",
	answerNotifyStranger: "notify_stranger",
	answerCookie:         "cookie",
	answerFormErr:        "formerr",
	answerServFail:       "backend_failed",
	answerNoBackend:      "no_backend",
}

func (k answerKind) String() string {
	if k < numAnswerKinds {
		return answerKindNames[k]
	}
	return "unknown"
}

// Response codes dnslb answers with.
const (
	rcodeNoError  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeBadVers  = 16 // extended (RFC 6891 9)
)

// ednsUDPSize is the UDP payload size dnslb offers in its own OPT records
// (DNS Flag Day 2020).
const ednsUDPSize = 1232

// optLen is the size of an OPT record without options; cookieOptLen that
// of a COOKIE option with a client and a 16-byte server cookie.
const (
	optLen       = 11
	cookieOptLen = 4 + 8 + 16
)

// selfAnswer turns the parsed query in pkt into dnslb's own answer with
// rcode, in place, and returns it: the header with QR set, the opcode, RD
// and CD kept, AA as given, no answer or authority records, and the
// question (none for a COOKIE-only query). A query with an OPT record gets
// one back (RFC 6891 6.1.1): payload size 1232, DO copied, and its COOKIE
// answered with a server cookie (RFC 7873 5.2); a query with an EDNS
// version other than 0 gets BADVERS instead of rcode (RFC 6891 6.1.3).
// pkt must have room (cap) for the OPT record and cookie after the
// question; every buffer dnslb reads into does.
//
// Nothing here allocates; it runs on the hot path (over_limit: refuse).
func (b *Balancer) selfAnswer(pkt []byte, m message, rcode int, aa bool, client netip.Addr) []byte {
	var opt dnswire.OPT
	var clientCookie [8]byte
	hasOPT, hasCookie := m.opt >= 0, false
	if hasOPT {
		opt = dnswire.ParseOPT(pkt, m.opt)
		hasCookie = len(opt.Cookie) >= 8
		copy(clientCookie[:], opt.Cookie)
		if opt.Version != 0 {
			rcode = rcodeBadVers
		}
	}
	need := m.qend
	if hasOPT {
		need += optLen
		if hasCookie {
			need += cookieOptLen
		}
	}
	if cap(pkt) < need {
		hasOPT, need = false, m.qend // cannot happen with dnslb's buffers
	}
	r := pkt[:need]
	r[2] = (r[2] | 0x80) &^ 0x06 // QR=1, AA=0, TC=0; opcode and RD kept
	if aa {
		r[2] |= 0x04
	}
	r[3] = r[3]&0x10 | byte(rcode&0x0f) // RA=0, Z=0, AD=0; CD kept
	qd := 1
	if m.cookieOnly || m.qend == headerLen {
		qd = 0
	}
	binary.BigEndian.PutUint16(r[4:], uint16(qd))
	binary.BigEndian.PutUint16(r[6:], 0)
	binary.BigEndian.PutUint16(r[8:], 0)
	binary.BigEndian.PutUint16(r[10:], 0)
	if !hasOPT {
		return r
	}
	binary.BigEndian.PutUint16(r[10:], 1)
	o := r[m.qend:]
	o[0] = 0 // the root
	binary.BigEndian.PutUint16(o[1:], dnswire.TypeOPT)
	binary.BigEndian.PutUint16(o[3:], ednsUDPSize)
	o[5], o[6], o[7], o[8] = byte(rcode>>4), 0, 0, 0 // extended rcode, version 0, flags
	if opt.DO {
		o[7] = 0x80
	}
	binary.BigEndian.PutUint16(o[9:], 0)
	if hasCookie {
		binary.BigEndian.PutUint16(o[9:], cookieOptLen)
		c := o[optLen:]
		binary.BigEndian.PutUint16(c[0:], dnswire.OptionCookie)
		binary.BigEndian.PutUint16(c[2:], 8+16)
		copy(c[4:], clientCookie[:])
		b.serverCookie(c[12:28], clientCookie, client)
	}
	return r
}

// serverCookie writes a 16-byte server cookie for client into dst, in the
// layout of RFC 9018 (version 1, three reserved bytes, a timestamp, an
// 8-byte hash), with SHA-256 under the balancer's random secret as the
// hash. dnslb does not check cookies it is sent (backends do, with their
// own secrets): it hands one out so that its own answers follow RFC 7873
// and a COOKIE-only query gets what it asks for.
func (b *Balancer) serverCookie(dst []byte, clientCookie [8]byte, client netip.Addr) {
	dst[0], dst[1], dst[2], dst[3] = 1, 0, 0, 0
	binary.BigEndian.PutUint32(dst[4:], uint32(time.Now().Unix()))
	var in [16 + 8 + 8 + 16]byte
	copy(in[:16], b.adm.cookieSecret[:])
	copy(in[16:], clientCookie[:])
	copy(in[24:], dst[:8])
	a := client.As16()
	copy(in[32:], a[:])
	sum := sha256.Sum256(in[:])
	copy(dst[8:16], sum[:8])
}

// reply builds dnslb's own answer to a message admission answers, and
// counts it.
func (b *Balancer) reply(pkt []byte, m message, v verdict, client netip.Addr) []byte {
	b.ctr.answers[v.kind].Add(1)
	return b.selfAnswer(pkt, m, v.rcode, v.aa, client)
}
