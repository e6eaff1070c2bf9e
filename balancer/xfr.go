package balancer

import "github.com/dnslb/dnslb/internal/dnswire"

// DNS types whose answer is a stream of messages on TCP.
const (
	typeIXFR = 251
	typeAXFR = 252
)

// xfr follows the answer stream of one zone transfer on TCP, so that the
// stream's end is known: messages with the query's ID after it are not
// relayed (a backend that sends them is broken).
//
//   - AXFR (RFC 5936 2.2): the first record is the zone's SOA; the stream
//     ends with the next SOA record.
//   - IXFR (RFC 1995 4): the first record is the new SOA. A reply of that
//     SOA alone (up to date) ends there. If the second record is a SOA
//     (an older serial), the reply is incremental: the new SOA appears
//     again at the start of the last difference's additions and once more
//     at the end, so the third new-serial SOA ends it. Otherwise it is
//     AXFR-style and ends with the next new-serial SOA.
//   - A message with an error rcode, or whose first message has no SOA
//     first, is a single-message answer (a refusal).
type xfr struct {
	qtype       uint16
	records     int    // answer records seen so far
	serial      uint32 // the first SOA's serial
	newSOAs     int    // SOA records with that serial seen
	incremental bool
}

// isBareAnswer reports whether msg is a response with no question, as
// the second and later messages of a zone transfer may be.
func isBareAnswer(msg []byte) bool {
	return len(msg) >= headerLen && msg[2]&0x80 != 0 && msg[4]|msg[5] == 0
}

// feed takes the next message of the stream (without its length prefix;
// qend is the end of its question) and reports whether the stream is
// complete with it. A malformed message ends it too.
func (x *xfr) feed(msg []byte, qend int) (done bool) {
	if msg[3]&0x0f != 0 {
		return true // error rcode
	}
	_, an, _, _ := dnswire.Counts(msg)
	it := dnswire.NewIter(msg, qend, an)
	for {
		rr, ok := it.Next()
		if !ok {
			break
		}
		x.records++
		serial, isSOA := dnswire.SOASerial(msg, rr)
		switch {
		case x.records == 1:
			if !isSOA {
				return true // not a transfer: a referral or a refusal
			}
			x.serial, x.newSOAs = serial, 1
		case x.qtype == typeIXFR && x.records == 2 && isSOA && serial != x.serial:
			x.incremental = true
		case isSOA && x.qtype == typeAXFR:
			return true
		case isSOA && serial == x.serial:
			x.newSOAs++
			if !x.incremental || x.newSOAs == 3 {
				return true
			}
		}
	}
	if it.Bad() {
		return true
	}
	// no record at all: a refusal; an IXFR answered by the new SOA alone:
	// the client is up to date
	return x.records == 0 || (x.qtype == typeIXFR && x.records == 1)
}
