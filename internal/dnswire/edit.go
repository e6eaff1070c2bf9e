package dnswire

// Editing messages in place, for the client_address: ecs mode: adding
// an EDNS Client Subnet option to a query and taking what dnslb added out
// of the answer again. Every function works within the buffer's capacity
// and allocates nothing; it reports false when the message cannot be
// edited (no room, or the OPT record is not where it can be extended).

// ecsOptionLen is the size of an ECS option for a prefix of bits.
func ecsOptionLen(bits int) int { return 4 + 4 + (bits+7)/8 }

// appendECS writes an ECS option (code, length, family, source prefix,
// scope 0, address truncated to the prefix) at b[0:].
func putECS(b []byte, family int, bits int, addr []byte) int {
	n := (bits + 7) / 8
	b[0], b[1] = 0, OptionECS
	b[2], b[3] = byte((4+n)>>8), byte(4+n)
	b[4], b[5] = 0, byte(family)
	b[6], b[7] = byte(bits), 0
	copy(b[8:8+n], addr[:n])
	if rem := bits % 8; rem != 0 {
		b[8+n-1] &= 0xff << (8 - rem)
	}
	return 8 + n
}

// ECSAdded says what AddECS added, for StripECS on the answer.
type ECSAdded uint8

const (
	// AddedNothing: the query kept its own ECS option (or none was added).
	AddedNothing ECSAdded = iota
	// AddedOption: an ECS option was added to the query's OPT record.
	AddedOption
	// AddedOPT: the query had no OPT record; one was added, with the ECS
	// option and a UDP payload size of 512, so that the backend truncates
	// exactly as it would for the query without EDNS.
	AddedOPT
)

// AddECS gives the query msg (records checked by Check, opt the offset of
// its OPT record or -1) an ECS option for addr (family 1: 4 bytes, 2: 16
// bytes) truncated to bits. A query with an ECS option already keeps it
// (AddedNothing: the answer's ECS is the client's business) unless
// override, which replaces it (AddedOption: the answer's ECS describes
// dnslb's subnet, not the client's, so it is taken out, and the client
// sees an answer from a server without ECS, RFC 7871 7.2.1). The result
// aliases msg's buffer; ok is false
// when its capacity is too small or the OPT record is followed by other
// records (a TSIG: signed queries are left alone).
func AddECS(msg []byte, opt int, family, bits int, addr []byte, override bool) (out []byte, added ECSAdded, ok bool) {
	if opt < 0 {
		need := len(msg) + 11 + ecsOptionLen(bits)
		if need > cap(msg) || !lastRecordEnds(msg, len(msg)) {
			return msg, AddedNothing, false
		}
		out = msg[:need]
		o := out[len(msg):]
		o[0] = 0 // root
		o[1], o[2] = 0, TypeOPT
		o[3], o[4] = 512>>8, 512&0xff
		o[5], o[6], o[7], o[8] = 0, 0, 0, 0
		n := putECS(o[11:], family, bits, addr)
		o[9], o[10] = byte(n>>8), byte(n)
		ar := u16(out, 10) + 1
		out[10], out[11] = byte(ar>>8), byte(ar)
		return out, AddedOPT, true
	}
	o := ParseOPT(msg, opt)
	end := o.RDATA + o.RDLen
	if end != len(msg) {
		return msg, AddedNothing, false // records after the OPT (TSIG)
	}
	if o.ECS >= 0 {
		if !override {
			return msg, AddedNothing, true
		}
		// drop the client's option, then add ours below
		old := 4 + u16(msg, o.ECS+2)
		copy(msg[o.ECS:], msg[o.ECS+old:])
		msg = msg[:len(msg)-old]
		setU16(msg, opt+9, o.RDLen-old)
		o.RDLen -= old
	}
	add := ecsOptionLen(bits)
	if len(msg)+add > cap(msg) {
		return msg, AddedNothing, false
	}
	out = msg[:len(msg)+add]
	putECS(out[len(msg):], family, bits, addr)
	setU16(out, opt+9, o.RDLen+add)
	return out, AddedOption, true
}

func setU16(b []byte, off, v int) { b[off], b[off+1] = byte(v>>8), byte(v) }

// lastRecordEnds reports whether the message's records end at end (so
// that a record can be appended); a message with a TSIG or SIG(0) is
// left alone.
func lastRecordEnds(msg []byte, end int) bool {
	qend, p := CheckQuestion(msg)
	if p != OK {
		return false
	}
	_, an, ns, ar := Counts(msg)
	it := NewIter(msg, qend, an+ns+ar)
	for {
		rr, ok := it.Next()
		if !ok {
			break
		}
		if rr.Type == TypeTSIG || rr.Type == TypeSIG {
			return false
		}
	}
	return !it.Bad() && it.Offset() == end
}

// StripECS takes out of the answer msg what AddECS added to its query:
// the whole OPT record (AddedOPT) or the ECS option (AddedOption), so the
// client sees what it would have without dnslb. It returns the shortened
// answer (aliasing msg); ok is false when msg is malformed.
func StripECS(msg []byte, added ECSAdded) ([]byte, bool) {
	if added == AddedNothing {
		return msg, true
	}
	qend, p := CheckQuestion(msg)
	if p != OK {
		return msg, false
	}
	_, an, ns, ar := Counts(msg)
	it := NewIter(msg, qend, an+ns+ar)
	start := qend
	for i := 0; i < an+ns+ar; i++ {
		rr, ok := it.Next()
		if !ok {
			return msg, false
		}
		if rr.Type == TypeOPT && i >= an+ns {
			recEnd := rr.RDATA + rr.RDLen
			if added == AddedOPT {
				copy(msg[start:], msg[recEnd:])
				msg = msg[:len(msg)-(recEnd-start)]
				setU16(msg, 10, ar-1)
				return msg, true
			}
			// remove the ECS option(s) from the RDATA
			at := rr.RDATA
			for at+4 <= recEnd {
				code, n := u16(msg, at), u16(msg, at+2)
				if code != OptionECS {
					at += 4 + n
					continue
				}
				copy(msg[at:], msg[at+4+n:])
				msg = msg[:len(msg)-(4+n)]
				recEnd -= 4 + n
				setU16(msg, rr.RDATA-2, recEnd-rr.RDATA)
			}
			return msg, true
		}
		start = it.Offset()
	}
	return msg, true // the backend sent no OPT back
}
