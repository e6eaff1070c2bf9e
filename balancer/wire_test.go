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
	if om.qhash == qm.qhash {
		t.Fatal("hash ignores case; 0x20-randomised answers would match the wrong query")
	}
	if _, r := parseAnswer(q); r != dropAnswerMalformed {
		t.Fatalf("a query parsed as an answer: %v", r)
	}
}
