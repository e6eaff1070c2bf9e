package dnswire

// HeaderLen is the size of the DNS message header.
const HeaderLen = 12

// MaxNameLen is the longest domain name in wire format (RFC 1035 3.1).
const MaxNameLen = 255

// maxPointers bounds the compression pointers followed in one name, as
// miekg/dns does: a name has at most 127 labels.
const maxPointers = 126

// Record types whose RDATA Check looks into, and the signature types that
// must come last.
const (
	TypeNS    = 2
	TypeMD    = 3
	TypeMF    = 4
	TypeCNAME = 5
	TypeSOA   = 6
	TypeMB    = 7
	TypeMG    = 8
	TypeMR    = 9
	TypePTR   = 12
	TypeMINFO = 14
	TypeMX    = 15
	TypeRP    = 17
	TypeAFSDB = 18
	TypeRT    = 21
	TypeSIG   = 24
	TypePX    = 26
	TypeSRV   = 33
	TypeNAPTR = 35
	TypeKX    = 36
	TypeDNAME = 39
	TypeOPT   = 41
	TypeTSIG  = 250
)

// EDNS options Check looks into.
const (
	OptionECS    = 8  // EDNS Client Subnet, RFC 7871
	OptionCookie = 10 // DNS Cookies, RFC 7873
)

// Problem says what is wrong with a message; OK when nothing is.
type Problem uint8

// The problems Check and CheckQuestion find.
const (
	OK               Problem = iota
	Short                    // shorter than a header
	BadQuestion              // the question's name or type/class cut or malformed
	BadOwner                 // a record's owner name malformed or cut
	RecordCut                // a record's fixed part or RDATA past the end
	BadRDATA                 // names or fields of a known type do not fill RDLENGTH
	BadOPT                   // a second OPT, OPT outside additional or not owned by the root, options not filling it
	BadECS                   // EDNS Client Subnet option malformed (RFC 7871 6)
	BadCookie                // COOKIE option of a wrong length (RFC 7873 4)
	SignatureNotLast         // TSIG or SIG(0) not the last additional record
	Trailing                 // bytes after the last record
	numProblems
)

var problemNames = [numProblems]string{
	OK:               "ok",
	Short:            "short",
	BadQuestion:      "bad question",
	BadOwner:         "bad owner name",
	RecordCut:        "record cut",
	BadRDATA:         "bad rdata",
	BadOPT:           "bad opt",
	BadECS:           "bad edns client subnet",
	BadCookie:        "bad cookie",
	SignatureNotLast: "signature not last",
	Trailing:         "trailing bytes",
}

// String describes the problem in a few words.
func (p Problem) String() string {
	if p < numProblems {
		return problemNames[p]
	}
	return "unknown"
}

// Counts returns the header's QDCOUNT, ANCOUNT, NSCOUNT and ARCOUNT; b
// must hold a header.
func Counts(b []byte) (qd, an, ns, ar int) {
	return u16(b, 4), u16(b, 6), u16(b, 8), u16(b, 10)
}

func u16(b []byte, off int) int { return int(b[off])<<8 | int(b[off+1]) }

// SkipQuestionName returns the offset after the uncompressed name at off.
// Questions carry no compression pointers in practice (RFC 1035 4.1.4
// allows them, but there is nothing before the first name to point to),
// so a pointer is malformed here.
func SkipQuestionName(b []byte, off int) (int, bool) {
	total := 0
	for {
		if off >= len(b) {
			return 0, false
		}
		l := int(b[off])
		off++
		if l == 0 {
			return off, total+1 <= MaxNameLen
		}
		if l&0xc0 != 0 {
			return 0, false
		}
		total += l + 1
		if total > MaxNameLen {
			return 0, false
		}
		off += l
	}
}

// SkipName returns the offset after the name at off, which may end in a
// compression pointer. Pointers must point backwards, so they cannot loop,
// and the whole name, pointers followed, must be valid and at most 255
// bytes.
func SkipName(b []byte, off int) (int, bool) {
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
			return end, total+1 <= MaxNameLen
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
			if total > MaxNameLen {
				return 0, false
			}
			off += 1 + l
		}
	}
}

// CheckQuestion checks the single question right after the header and
// returns the offset after it. It does not look at the header's counts.
func CheckQuestion(b []byte) (int, Problem) {
	if len(b) < HeaderLen {
		return 0, Short
	}
	end, ok := SkipQuestionName(b, HeaderLen)
	if !ok || end+4 > len(b) {
		return 0, BadQuestion
	}
	return end + 4, OK
}

// Records is what Check learned on its way through the records.
type Records struct {
	// End is the offset after the last record.
	End int
	// OPT is the offset of the OPT record (its owner name), or -1.
	OPT int
}

// Check walks the an+ns+ar records that start at off (after the question)
// and checks them as the package comment says; the message must end right
// after them. It allocates nothing.
func Check(b []byte, off, an, ns, ar int) (Records, Problem) {
	rs := Records{OPT: -1}
	total := an + ns + ar
	for i := 0; i < total; i++ {
		start := off
		var ok bool
		if off, ok = SkipName(b, off); !ok {
			return rs, BadOwner
		}
		if off+10 > len(b) {
			return rs, RecordCut
		}
		rrtype := u16(b, off)
		rdlen := u16(b, off+8)
		off += 10
		end := off + rdlen
		if end > len(b) {
			return rs, RecordCut
		}
		additional := i >= an+ns
		switch rrtype {
		case TypeOPT:
			if rs.OPT >= 0 || !additional || b[start] != 0 {
				return rs, BadOPT
			}
			if p := checkOptions(b[off:end]); p != OK {
				return rs, p
			}
			rs.OPT = start
		case TypeTSIG:
			if !additional || i != total-1 {
				return rs, SignatureNotLast
			}
		case TypeSIG:
			// SIG(0) covers type 0 and signs the whole message.
			if rdlen >= 2 && u16(b, off) == 0 && (!additional || i != total-1) {
				return rs, SignatureNotLast
			}
		}
		if rdlen > 0 && !checkRDATA(b, off, end, rrtype) {
			return rs, BadRDATA
		}
		off = end
	}
	rs.End = off
	if off != len(b) {
		return rs, Trailing
	}
	return rs, OK
}

// checkRDATA checks that the RDATA of a type whose names a server must
// decompress is exactly its fields and names; other types are opaque.
func checkRDATA(b []byte, off, end int, rrtype int) bool {
	r := rdata{b: b, off: off, end: end, ok: true}
	switch rrtype {
	case TypeNS, TypeMD, TypeMF, TypeCNAME, TypeMB, TypeMG, TypeMR, TypePTR, TypeDNAME:
		r.name()
	case TypeSOA:
		r.name()
		r.name()
		r.fixed(20) // serial, refresh, retry, expire, minimum
	case TypeMINFO, TypeRP:
		r.name()
		r.name()
	case TypeMX, TypeAFSDB, TypeRT, TypeKX:
		r.fixed(2)
		r.name()
	case TypePX:
		r.fixed(2)
		r.name()
		r.name()
	case TypeSRV:
		r.fixed(6)
		r.name()
	case TypeNAPTR:
		r.fixed(4)
		r.str()
		r.str()
		r.str()
		r.name()
	case TypeSIG:
		r.fixed(18) // type covered ... key tag
		r.name()    // signer; the signature is the rest
		r.off = r.end
	case TypeTSIG:
		r.name()   // algorithm
		r.fixed(8) // time signed (48 bits), fudge
		r.sized()  // MAC
		r.fixed(4) // original ID, error
		r.sized()  // other data
	default:
		return true
	}
	return r.ok && r.off == r.end
}

// rdata reads fields inside one record's RDATA; any field that does not
// fit clears ok.
type rdata struct {
	b        []byte
	off, end int
	ok       bool
}

func (r *rdata) fixed(n int) {
	if r.ok && r.off+n <= r.end {
		r.off += n
		return
	}
	r.ok = false
}

func (r *rdata) name() {
	if !r.ok {
		return
	}
	next, ok := SkipName(r.b[:r.end], r.off)
	r.off, r.ok = next, ok
}

// str skips a <character-string>: a length byte and that many bytes.
func (r *rdata) str() {
	if r.ok && r.off < r.end {
		r.fixed(1 + int(r.b[r.off]))
		return
	}
	r.ok = false
}

// sized skips a 16-bit length and that many bytes.
func (r *rdata) sized() {
	if r.ok && r.off+2 <= r.end {
		r.fixed(2 + u16(r.b, r.off))
		return
	}
	r.ok = false
}

// checkOptions checks that an OPT record's RDATA is a sequence of options
// (code, length, data) that ends exactly at its end, and the options
// dnslb and the servers act on.
func checkOptions(rdata []byte) Problem {
	for len(rdata) > 0 {
		if len(rdata) < 4 {
			return BadOPT
		}
		code, n := u16(rdata, 0), u16(rdata, 2)
		if 4+n > len(rdata) {
			return BadOPT
		}
		data := rdata[4 : 4+n]
		switch code {
		case OptionECS:
			if !ValidECS(data) {
				return BadECS
			}
		case OptionCookie:
			// client cookie alone, or with a server cookie of 8 to 32 bytes
			if n != 8 && (n < 16 || n > 40) {
				return BadCookie
			}
		}
		rdata = rdata[4+n:]
	}
	return OK
}

// ValidECS reports whether data, the payload of an EDNS Client Subnet
// option in a query, is well formed (RFC 7871 section 6): family 1 (IPv4)
// or 2 (IPv6), a source prefix length within the family, a scope prefix
// length of 0, exactly as many address bytes as the source prefix needs,
// and no bits set beyond it. Family 0 with prefix 0 and no address, which
// some clients send to opt out, is accepted too.
func ValidECS(data []byte) bool {
	if len(data) < 4 {
		return false
	}
	family, source, scope := u16(data, 0), int(data[2]), data[3]
	addr := data[4:]
	switch family {
	case 0:
		return source == 0 && scope == 0 && len(addr) == 0
	case 1:
		if source > 32 {
			return false
		}
	case 2:
		if source > 128 {
			return false
		}
	default:
		return false
	}
	if scope != 0 || len(addr) != (source+7)/8 {
		return false
	}
	if rem := source % 8; rem != 0 && addr[len(addr)-1]&(0xff>>rem) != 0 {
		return false
	}
	return true
}

// RR is a resource record found by Iter: its type and class, TTL, and
// where its RDATA is in the message.
type RR struct {
	// Name is the offset of the owner name (see CanonicalName).
	Name        int
	Type, Class uint16
	TTL         uint32
	// RDATA is the offset of the RDATA in the message, RDLen its length.
	RDATA, RDLen int
}

// Iter walks resource records in place. It checks names (as SkipName
// does) and bounds, nothing else; Check is the validator.
type Iter struct {
	b         []byte
	off, left int
	bad       bool
}

// NewIter returns an iterator over count records starting at off.
func NewIter(b []byte, off, count int) Iter { return Iter{b: b, off: off, left: count} }

// Next returns the next record; ok is false after the last one or at a
// malformed one (then Bad reports true).
func (it *Iter) Next() (rr RR, ok bool) {
	if it.left <= 0 || it.bad {
		return rr, false
	}
	off, ok := SkipName(it.b, it.off)
	if !ok || off+10 > len(it.b) {
		it.bad = true
		return rr, false
	}
	rr = RR{Name: it.off, Type: uint16(u16(it.b, off)), Class: uint16(u16(it.b, off+2)),
		TTL:   uint32(u16(it.b, off+4))<<16 | uint32(u16(it.b, off+6)),
		RDATA: off + 10, RDLen: u16(it.b, off+8)}
	if rr.RDATA+rr.RDLen > len(it.b) {
		it.bad = true
		return RR{}, false
	}
	it.off, it.left = rr.RDATA+rr.RDLen, it.left-1
	return rr, true
}

// Bad reports whether Next stopped at a malformed record.
func (it *Iter) Bad() bool { return it.bad }

// Offset is where the next record starts.
func (it *Iter) Offset() int { return it.off }

// SOASerial returns the serial of a SOA record found in b.
func SOASerial(b []byte, rr RR) (uint32, bool) {
	if rr.Type != TypeSOA {
		return 0, false
	}
	r := rdata{b: b, off: rr.RDATA, end: rr.RDATA + rr.RDLen, ok: true}
	r.name()
	r.name()
	if !r.ok || r.off+4 > r.end {
		return 0, false
	}
	return uint32(u16(b, r.off))<<16 | uint32(u16(b, r.off+2)), true
}

// OPT is what an OPT record says (RFC 6891 6.1.3).
type OPT struct {
	// UDPSize is the requestor's UDP payload size (the record's class).
	UDPSize uint16
	// ExtRcode is the upper 8 bits of the extended RCODE.
	ExtRcode uint8
	// Version is the EDNS version.
	Version uint8
	// DO is the DNSSEC OK bit.
	DO bool
	// Cookie is the COOKIE option's data (client cookie, then the server
	// cookie if any), aliasing the message; nil without one.
	Cookie []byte
	// ECS is the offset of the EDNS Client Subnet option (its code) in
	// the message, or -1.
	ECS int
	// RDATA is the offset of the record's RDATA in the message, RDLen its
	// length.
	RDATA, RDLen int
}

// ParseOPT reads the OPT record that starts (with its root owner name) at
// off, as Records.OPT gives it; the message must have passed Check.
func ParseOPT(b []byte, off int) OPT {
	// owner (1 byte, the root), type (2), class (2), TTL (4), RDLENGTH (2)
	o := OPT{UDPSize: uint16(u16(b, off+3)), ExtRcode: b[off+5], Version: b[off+6], DO: b[off+7]&0x80 != 0,
		ECS: -1, RDATA: off + 11, RDLen: u16(b, off+9)}
	opts := b[o.RDATA : o.RDATA+o.RDLen]
	for at := 0; at+4 <= len(opts); {
		code, n := u16(opts, at), u16(opts, at+2)
		switch code {
		case OptionCookie:
			o.Cookie = opts[at+4 : at+4+n]
		case OptionECS:
			o.ECS = o.RDATA + at
		}
		at += 4 + n
	}
	return o
}

// CanonicalName writes the name at off in b, compression pointers
// followed, in uncompressed wire form with ASCII letters lower-cased
// into dst (RFC 4034 6.2), and returns its length; ok is false when the
// name is malformed. It allocates nothing: dst is the caller's (a
// stack array on the hot path).
func CanonicalName(b []byte, off int, dst *[MaxNameLen]byte) (n int, ok bool) {
	hops := 0
	for {
		if off >= len(b) {
			return 0, false
		}
		l := int(b[off])
		switch {
		case l == 0:
			if n+1 > MaxNameLen {
				return 0, false
			}
			dst[n] = 0
			return n + 1, true
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return 0, false
			}
			target := (l&0x3f)<<8 | int(b[off+1])
			if target >= off || hops >= maxPointers {
				return 0, false
			}
			hops++
			off = target
		case l&0xc0 != 0:
			return 0, false
		default:
			if off+1+l > len(b) || n+1+l+1 > MaxNameLen {
				return 0, false
			}
			dst[n] = byte(l)
			for i, c := range b[off+1 : off+1+l] {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				dst[n+1+i] = c
			}
			n += 1 + l
			off += 1 + l
		}
	}
}
