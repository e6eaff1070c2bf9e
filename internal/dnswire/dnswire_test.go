package dnswire_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnswire"
	"github.com/dnslb/dnslb/internal/dnswire/dnswiretest"
)

// pack packs a query for name/qtype after mutate.
func pack(t testing.TB, name string, qtype uint16, mutate func(*dns.Msg)) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if mutate != nil {
		mutate(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withRecord appends a raw record (owner root unless owner is given) to
// the section (1 answer, 2 authority, 3 additional) of msg, which must
// have no record in a later section.
func withRecord(msg []byte, section int, owner []byte, rrtype uint16, rdata []byte) []byte {
	out := append([]byte(nil), msg...)
	if owner == nil {
		owner = []byte{0}
	}
	out = append(out, owner...)
	out = binary.BigEndian.AppendUint16(out, rrtype)
	out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
	out = binary.BigEndian.AppendUint32(out, 300)
	out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
	out = append(out, rdata...)
	i := 4 + 2*section
	binary.BigEndian.PutUint16(out[i:], binary.BigEndian.Uint16(out[i:])+1)
	return out
}

// ecs builds an OPT record's RDATA with one EDNS Client Subnet option.
func ecs(family uint16, source, scope uint8, addr ...byte) []byte {
	o := binary.BigEndian.AppendUint16(nil, dnswire.OptionECS)
	o = binary.BigEndian.AppendUint16(o, uint16(4+len(addr)))
	o = binary.BigEndian.AppendUint16(o, family)
	o = append(o, source, scope)
	return append(o, addr...)
}

func option(code uint16, data []byte) []byte {
	o := binary.BigEndian.AppendUint16(nil, code)
	o = binary.BigEndian.AppendUint16(o, uint16(len(data)))
	return append(o, data...)
}

// name is an uncompressed wire-format name.
func name(s string) []byte {
	b, _ := packName(s)
	return b
}

func packName(s string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(s), buf, 0, nil, false)
	return buf[:n], err
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestCheck is the contract, case by case; every accepted message must also
// satisfy dnswiretest.Oracle (miekg/dns with opaque types opaque).
func TestCheck(t *testing.T) {
	q := pack(t, "www.example.test.", dns.TypeA, nil)
	notify := pack(t, "example.test.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })
	soaRdata := cat(name("ns1.example.test."), name("hostmaster.example.test."), make([]byte, 20))
	fwdPointer := []byte{0xc0, 0xff} // points past itself
	signed := func() []byte {
		m := new(dns.Msg)
		m.SetNotify("example.test.")
		m.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns1.example.test.", Mbox: "h.example.test.", Serial: 7}}
		m.SetTsig("k.", dns.HmacSHA256, 300, 1700000000)
		b, _, err := dns.TsigGenerate(m, "c2VjcmV0c2VjcmV0c2VjcmV0", "", false)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	tsigLast := signed
	// the same TSIG followed by an OPT: no longer last
	tsigNotLast := withRecord(signed, 3, nil, dnswire.TypeOPT, nil)
	update := func() []byte {
		m := new(dns.Msg)
		m.SetUpdate("example.test.")
		a, _ := dns.NewRR("www.example.test. 300 IN A 192.0.2.1")
		rp, _ := dns.NewRR("www.example.test. 300 IN RP mbox.example.test. txt.example.test.")
		m.Insert([]dns.RR{a, rp})
		m.RemoveRRset([]dns.RR{a}) // class ANY, RDLENGTH 0
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()

	tests := []struct {
		name string
		msg  []byte
		want dnswire.Problem
	}{
		{"plain", q, dnswire.OK},
		{"edns", pack(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, true) }), dnswire.OK},
		{"notify with soa and tsig", tsigLast, dnswire.OK},
		{"update with rp and a delete", update, dnswire.OK},
		{"soa in notify", withRecord(notify, 1, name("example.test."), dnswire.TypeSOA, soaRdata), dnswire.OK},
		{"soa compressed names", withRecord(notify, 1, []byte{0xc0, 12}, dnswire.TypeSOA, cat([]byte{0xc0, 12, 0xc0, 12}, make([]byte, 20))), dnswire.OK},
		{"uri of one byte is opaque", withRecord(q, 3, nil, 256, []byte{7}), dnswire.OK},
		{"a of three bytes is opaque", withRecord(q, 1, nil, dns.TypeA, []byte{1, 2, 3}), dnswire.OK},
		{"ecs v4 /24", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(1, 24, 0, 192, 0, 2)), dnswire.OK},
		{"ecs v6 /56", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0x12)), dnswire.OK},
		{"ecs opt-out family 0", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(0, 0, 0)), dnswire.OK},
		{"ecs /0", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(1, 0, 0)), dnswire.OK},
		{"cookie client", withRecord(q, 3, nil, dnswire.TypeOPT, option(dnswire.OptionCookie, make([]byte, 8))), dnswire.OK},
		{"cookie client+server", withRecord(q, 3, nil, dnswire.TypeOPT, option(dnswire.OptionCookie, make([]byte, 24))), dnswire.OK},
		{"unknown option is opaque", withRecord(q, 3, nil, dnswire.TypeOPT, option(9, []byte{1})), dnswire.OK},

		{"empty", nil, dnswire.Short},
		{"header only", q[:dnswire.HeaderLen], dnswire.BadQuestion},
		{"trailing byte", append(append([]byte(nil), q...), 0), dnswire.Trailing},
		{"record cut", withRecord(q, 3, nil, 256, []byte{7})[:len(q)+5], dnswire.RecordCut},
		{"owner forward pointer", withRecord(q, 1, fwdPointer, dns.TypeA, make([]byte, 4)), dnswire.BadOwner},
		{"soa name with forward pointer", withRecord(notify, 1, name("example.test."), dnswire.TypeSOA, cat(fwdPointer, name("h."), make([]byte, 20))), dnswire.BadRDATA},
		{"soa fields short", withRecord(notify, 1, name("example.test."), dnswire.TypeSOA, cat(name("a."), name("b."), make([]byte, 19))), dnswire.BadRDATA},
		{"soa fields long", withRecord(notify, 1, name("example.test."), dnswire.TypeSOA, cat(name("a."), name("b."), make([]byte, 21))), dnswire.BadRDATA},
		{"rp name cut", withRecord(q, 2, nil, dnswire.TypeRP, cat(name("a."), []byte{5, 'b'})), dnswire.BadRDATA},
		{"afsdb without name", withRecord(q, 2, nil, dnswire.TypeAFSDB, []byte{0, 1}), dnswire.BadRDATA},
		{"mx reserved label type", withRecord(q, 1, nil, dnswire.TypeMX, []byte{0, 10, 0x40, 0}), dnswire.BadRDATA},
		{"naptr string past rdata", withRecord(q, 1, nil, dnswire.TypeNAPTR, []byte{0, 1, 0, 1, 9, 'x'}), dnswire.BadRDATA},
		{"opt in answer", withRecord(q, 1, nil, dnswire.TypeOPT, nil), dnswire.BadOPT},
		{"two opts", withRecord(withRecord(q, 3, nil, dnswire.TypeOPT, nil), 3, nil, dnswire.TypeOPT, nil), dnswire.BadOPT},
		{"opt not root", withRecord(q, 3, name("x."), dnswire.TypeOPT, nil), dnswire.BadOPT},
		{"options not filling", withRecord(q, 3, nil, dnswire.TypeOPT, []byte{0, 8, 0}), dnswire.BadOPT},
		{"option longer than opt", withRecord(q, 3, nil, dnswire.TypeOPT, []byte{0, 9, 0, 5, 1}), dnswire.BadOPT},
		{"ecs family 3", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(3, 8, 0, 1)), dnswire.BadECS},
		{"ecs v4 prefix 33", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(1, 33, 0, 1, 2, 3, 4, 5)), dnswire.BadECS},
		{"ecs v6 prefix 129", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(2, 129, 0, make([]byte, 17)...)), dnswire.BadECS},
		{"ecs address too long", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(1, 24, 0, 192, 0, 2, 1)), dnswire.BadECS},
		{"ecs address too short", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(1, 24, 0, 192, 0)), dnswire.BadECS},
		{"ecs bits past prefix", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(1, 23, 0, 192, 0, 3)), dnswire.BadECS},
		{"ecs scope in query", withRecord(q, 3, nil, dnswire.TypeOPT, ecs(1, 24, 24, 192, 0, 2)), dnswire.BadECS},
		{"ecs too short", withRecord(q, 3, nil, dnswire.TypeOPT, option(dnswire.OptionECS, []byte{0, 1, 0})), dnswire.BadECS},
		{"cookie 5 bytes", withRecord(q, 3, nil, dnswire.TypeOPT, option(dnswire.OptionCookie, make([]byte, 5))), dnswire.BadCookie},
		{"cookie 41 bytes", withRecord(q, 3, nil, dnswire.TypeOPT, option(dnswire.OptionCookie, make([]byte, 41))), dnswire.BadCookie},
		{"tsig not last", tsigNotLast, dnswire.SignatureNotLast},
		{"tsig in answer", withRecord(q, 1, name("k."), dnswire.TypeTSIG, nil), dnswire.SignatureNotLast},
		{"sig(0) not last", withRecord(withRecord(q, 3, nil, dnswire.TypeSIG, cat(make([]byte, 18), name("k."))), 3, nil, dnswire.TypeOPT, nil), dnswire.SignatureNotLast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkMessage(tt.msg); got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
			if tt.want == dnswire.OK {
				if err := dnswiretest.Oracle(tt.msg); err != nil {
					t.Fatalf("accepted, but dnswiretest.Oracle says: %v", err)
				}
			}
		})
	}
}

// TestCheckAllocatesNothing: the walk runs per packet.
func TestCheckAllocatesNothing(t *testing.T) {
	m := new(dns.Msg)
	m.SetNotify("example.test.")
	m.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns1.example.test.", Mbox: "h.example.test."}}
	m.SetEdns0(1232, true)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if checkMessage(b) != dnswire.OK {
			t.Fatal("rejected")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

// FuzzCheck: Check never panics, and every message it accepts is one the
// contract allows, as miekg/dns judges it (oracle). Past finds are
// committed in testdata/fuzz/FuzzCheck and replay in go test.
func FuzzCheck(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		qend, p := dnswire.CheckQuestion(b)
		if p != dnswire.OK {
			return
		}
		qd, an, ns, ar := dnswire.Counts(b)
		if qd != 1 {
			return
		}
		rs, p := dnswire.Check(b, qend, an, ns, ar)
		if p != dnswire.OK {
			return
		}
		if rs.End != len(b) || rs.OPT >= len(b) {
			t.Fatalf("records end at %d, OPT at %d, message %d bytes", rs.End, rs.OPT, len(b))
		}
		if err := dnswiretest.Oracle(b); err != nil {
			t.Fatalf("accepted a message outside the contract: %v", err)
		}
		checkCanonicalNames(t, b, qend, an+ns+ar)
		for _, added := range []dnswire.ECSAdded{dnswire.AddedOption, dnswire.AddedOPT} {
			c := append([]byte(nil), b...)
			out, ok := dnswire.StripECS(c, added)
			if !ok {
				t.Fatalf("StripECS(%v) failed on a valid message", added)
			}
			qend, p := dnswire.CheckQuestion(out)
			_, an, ns, ar := dnswire.Counts(out)
			if _, p2 := dnswire.Check(out, qend, an, ns, ar); p != dnswire.OK || p2 != dnswire.OK {
				t.Fatalf("StripECS(%v) left a message outside the contract: %v %v", added, p, p2)
			}
		}
	})
}

// checkCanonicalNames compares CanonicalName of every record's owner
// with miekg/dns's unpacked, lower-cased and packed name.
func checkCanonicalNames(t *testing.T, b []byte, off, count int) {
	it := dnswire.NewIter(b, off, count)
	for {
		rr, ok := it.Next()
		if !ok {
			return
		}
		var got [dnswire.MaxNameLen]byte
		n, ok := dnswire.CanonicalName(b, rr.Name, &got)
		name, _, err := dns.UnpackDomainName(b, rr.Name)
		if !ok || err != nil {
			t.Fatalf("owner at %d: CanonicalName ok %v, miekg %v", rr.Name, ok, err)
		}
		want := make([]byte, 256)
		wn, err := dns.PackDomainName(strings.ToLower(name), want, 0, nil, false)
		if err != nil || string(got[:n]) != string(want[:wn]) {
			t.Fatalf("owner at %d: CanonicalName %q, want %q (%v)", rr.Name, got[:n], want[:wn], err)
		}
	}
}

// seeds are well-formed messages of the kinds dnslb forwards.
func seeds(t testing.TB) [][]byte {
	q := pack(t, "www.example.test.", dns.TypeA, nil)
	out := [][]byte{
		q,
		pack(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, true) }),
		withRecord(q, 3, nil, dnswire.TypeOPT, cat(ecs(1, 24, 0, 192, 0, 2), option(dnswire.OptionCookie, make([]byte, 8)))),
		withRecord(pack(t, "example.test.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), 1, []byte{0xc0, 12}, dnswire.TypeSOA,
			cat(name("ns1.example.test."), []byte{0xc0, 12}, make([]byte, 20))),
		withRecord(q, 2, nil, dnswire.TypeNAPTR, cat([]byte{0, 1, 0, 2, 1, 'u', 0, 0}, name("x."))),
	}
	return out
}

// TestCorpusReplays reads the committed corpora of the balancer's fuzz
// targets too: the contract is the same whichever caller found the input.
func TestCorpusReplays(t *testing.T) {
	dirs := []string{"testdata/fuzz/FuzzCheck", "../../balancer/testdata/fuzz/FuzzParseQuery"}
	n := 0
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b, ok := corpusBytes(string(data))
			if !ok {
				t.Fatalf("%s: not a []byte corpus file", f)
			}
			n++
			if checkMessage(b) == dnswire.OK {
				if err := dnswiretest.Oracle(b); err != nil {
					t.Errorf("%s: accepted a message outside the contract: %v", f, err)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no corpus files found")
	}
}

// corpusBytes decodes a "go test fuzz v1" file holding one []byte.
func corpusBytes(s string) ([]byte, bool) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil, false
	}
	v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	return []byte(v), err == nil
}

// checkMessage runs the question check and Check on a whole message.
func checkMessage(b []byte) dnswire.Problem {
	qend, p := dnswire.CheckQuestion(b)
	if p != dnswire.OK {
		return p
	}
	qd, an, ns, ar := dnswire.Counts(b)
	if qd != 1 {
		return dnswire.BadQuestion
	}
	_, p = dnswire.Check(b, qend, an, ns, ar)
	return p
}
