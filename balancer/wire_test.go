package balancer

import (
	"testing"

	"github.com/miekg/dns"
)

func packQuery(t testing.TB, name string, qtype uint16, mutate func(*dns.Msg)) []byte {
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

func TestParseQuery(t *testing.T) {
	ok := packQuery(t, "www.example.test.", dns.TypeA, nil)
	edns := packQuery(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(4096, true) })
	notify := packQuery(t, "example.test.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })
	resp := packQuery(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.Response = true })
	iquery := packQuery(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeIQuery })
	noq := packQuery(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.Question = nil })
	twoq := packQuery(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })
	root := packQuery(t, ".", dns.TypeNS, nil)
	compressed := append([]byte{}, ok[:12]...)
	compressed = append(compressed, 0xc0, 0x0c, 0, 1, 0, 1)
	long := append([]byte{}, ok[:12]...)
	for i := 0; i < 5; i++ { // 5 labels of 63 = 320 > 255
		long = append(long, 63)
		long = append(long, make([]byte, 63)...)
	}
	long = append(long, 0, 0, 1, 0, 1)

	tests := []struct {
		name string
		pkt  []byte
		want dropReason
	}{
		{"plain", ok, dropNone},
		{"edns", edns, dropNone},
		{"notify", notify, dropNone},
		{"root", root, dropNone},
		{"empty", nil, dropShort},
		{"short header", ok[:11], dropShort},
		{"response", resp, dropResponse},
		{"iquery", iquery, dropOpcode},
		{"no question", noq, dropQDCount},
		{"two questions", twoq, dropQDCount},
		{"truncated name", ok[:15], dropBadQuestion},
		{"missing type", ok[:len(ok)-3], dropBadQuestion},
		{"compression pointer", compressed, dropBadQuestion},
		{"name too long", long, dropBadQuestion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := parseQuery(tt.pkt)
			if got != tt.want {
				t.Fatalf("parseQuery = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQuestionHashMatchesAnswer(t *testing.T) {
	q := packQuery(t, "WwW.Example.test.", dns.TypeAAAA, nil)
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	r.SetReply(m)
	r.Answer = append(r.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: "WwW.Example.test.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}})
	a, _ := r.Pack()
	qm, qr := parseQuery(q)
	am, ar := parseAnswer(a)
	if qr != dropNone || ar != dropNone {
		t.Fatalf("parse: %v %v", qr, ar)
	}
	if qm.qhash != am.qhash {
		t.Fatal("question hash differs between query and its answer")
	}
	other := packQuery(t, "www.example.test.", dns.TypeAAAA, nil) // case differs
	om, _ := parseQuery(other)
	if om.qhash != qm.qhash {
		t.Fatal("the matching hash depends on letter case: a backend answering in the zone's case would never match a 0x20-randomised query")
	}
	if om.qexact == qm.qexact {
		t.Fatal("the exact hash ignores case: a changed case would not be counted")
	}
	a6 := packQuery(t, "www.example.test.", dns.TypeA, nil)
	if m6, _ := parseQuery(a6); m6.qhash == qm.qhash {
		t.Fatal("the hash ignores the type")
	}
	if _, r := parseAnswer(q); r != dropAnswerMalformed {
		t.Fatalf("a query parsed as an answer: %v", r)
	}
}

// TestParseQueryWithRecords: queries that carry records parse: a NOTIFY
// with an SOA in the answer section and a TSIG in the additional one, an
// UPDATE with records in the authority section, an EDNS query; the same
// messages with a record cut short or a byte appended do not.
func TestParseQueryWithRecords(t *testing.T) {
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns1.example.test.", Mbox: "h.example.test.", Serial: 7}
	notify := new(dns.Msg)
	notify.SetNotify("example.test.")
	notify.Answer = []dns.RR{soa}
	notify.SetTsig("k.", dns.HmacSHA256, 300, 1700000000)
	signed, _, err := dns.TsigGenerate(notify, "c2VjcmV0c2VjcmV0c2VjcmV0", "", false)
	if err != nil {
		t.Fatal(err)
	}
	update := new(dns.Msg)
	update.SetUpdate("example.test.")
	a, _ := dns.NewRR("www.example.test. 300 IN A 192.0.2.1")
	update.Insert([]dns.RR{a})
	updateWire, _ := update.Pack()
	edns := packQuery(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, true) })
	for name, b := range map[string][]byte{"notify+soa+tsig": signed, "update": updateWire, "edns": edns} {
		if _, r := parseQuery(b); r != dropNone {
			t.Errorf("%s: %v", name, r)
		}
		if _, r := parseQuery(b[:len(b)-1]); r != dropMalformed {
			t.Errorf("%s cut short: %v, want malformed", name, r)
		}
		if _, r := parseQuery(append(append([]byte(nil), b...), 0)); r != dropMalformed {
			t.Errorf("%s with a trailing byte: %v, want malformed", name, r)
		}
	}
}
