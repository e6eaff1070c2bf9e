// Package dnswiretest holds the reference that dnswire's contract is
// tested against: miekg/dns, with what the contract treats as opaque made
// opaque. Tests of every package that relies on the contract use it.
package dnswiretest

import (
	"bytes"
	"fmt"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnswire"
)

// checkedTypes are the types whose RDATA Check looks into (see doc.go).
var checkedTypes = map[uint16]bool{
	dnswire.TypeNS: true, dnswire.TypeMD: true, dnswire.TypeMF: true, dnswire.TypeCNAME: true, dnswire.TypeSOA: true, dnswire.TypeMB: true, dnswire.TypeMG: true,
	dnswire.TypeMR: true, dnswire.TypePTR: true, dnswire.TypeMINFO: true, dnswire.TypeMX: true, dnswire.TypeRP: true, dnswire.TypeAFSDB: true, dnswire.TypeRT: true,
	dnswire.TypeSIG: true, dnswire.TypePX: true, dnswire.TypeSRV: true, dnswire.TypeNAPTR: true, dnswire.TypeKX: true, dnswire.TypeDNAME: true, dnswire.TypeTSIG: true,
}

// opaqueType is a private-use type (RFC 6895): miekg/dns unpacks it as
// RFC 3597 unknown data, checking only that it fits RDLENGTH.
const opaqueType = 0xff00

// opaqueOption is a local-use EDNS option code, unpacked as raw bytes.
const opaqueOption = 65001

// Oracle is the contract as miekg/dns sees it: b must unpack completely,
// with the header's counts, nothing after the last record, and the types
// and options the contract treats as opaque rewritten to unknown ones (so
// that miekg/dns does not judge an RDATA the contract says dnslb does not
// look into, e.g. a URI record of one byte). The walk that finds the type
// fields uses miekg/dns's name unpacker, not ours.
func Oracle(b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("miekg/dns panicked: %v", r)
		}
	}()
	if len(b) < dnswire.HeaderLen {
		return fmt.Errorf("short")
	}
	c := bytes.Clone(b)
	qd, an, ns, ar := dnswire.Counts(c)
	if qd != 1 {
		return fmt.Errorf("qdcount %d", qd)
	}
	_, off, err := dns.UnpackDomainName(c, dnswire.HeaderLen)
	if err != nil {
		return fmt.Errorf("question: %w", err)
	}
	off += 4
	for i := 0; i < an+ns+ar; i++ {
		if _, off, err = dns.UnpackDomainName(c, off); err != nil {
			return fmt.Errorf("record %d owner: %w", i, err)
		}
		if off+10 > len(c) {
			return fmt.Errorf("record %d cut", i)
		}
		t, rdlen := uint16(be16(c, off)), be16(c, off+8)
		if off+10+rdlen > len(c) {
			return fmt.Errorf("record %d rdata cut", i)
		}
		switch {
		case t == dnswire.TypeOPT:
			opts := c[off+10 : off+10+rdlen]
			for len(opts) >= 4 {
				if code := int(opts[0])<<8 | int(opts[1]); code != dnswire.OptionECS && code != dnswire.OptionCookie {
					opts[0], opts[1] = opaqueOption>>8, opaqueOption&0xff
				}
				opts = opts[min(len(opts), 4+be16(opts, 2)):]
			}
		case !checkedTypes[uint16(t)]:
			c[off], c[off+1] = opaqueType>>8, opaqueType&0xff
		}
		off += 10 + rdlen
	}
	if off != len(c) {
		return fmt.Errorf("%d bytes after the last record", len(c)-off)
	}
	m := new(dns.Msg)
	if err := m.Unpack(c); err != nil {
		return err
	}
	if got := [4]int{len(m.Question), len(m.Answer), len(m.Ns), len(m.Extra)}; got != [4]int{qd, an, ns, ar} {
		return fmt.Errorf("sections %v, header %v", got, [4]int{qd, an, ns, ar})
	}
	return nil
}

func be16(b []byte, off int) int { return int(b[off])<<8 | int(b[off+1]) }
