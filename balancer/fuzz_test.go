package balancer

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnswire/dnswiretest"
)

// FuzzParseQuery checks that the hot-path parser never panics and that
// whatever it accepts is inside the contract of doc.go ("What a backend is
// handed") as the reference judges it: dnswiretest.Oracle, which is
// miekg/dns with the types and options the contract treats as opaque made
// opaque. Seed corpus and past finds: testdata/fuzz/FuzzParseQuery (e.g.
// uri_one_byte_rdata, a URI record of one byte that miekg/dns rejects and
// the contract forwards).
func FuzzParseQuery(f *testing.F) {
	f.Add(packQuery(f, "www.example.test.", dns.TypeA, nil))
	f.Add(packQuery(f, "example.test.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, r := parseQuery(b)
		if r != dropNone {
			return
		}
		if m.qend > len(b) || m.qend < headerLen+5 {
			t.Fatalf("qend %d out of range for %d bytes", m.qend, len(b))
		}
		var q dns.Question
		if _, err := dnsUnpackQuestion(b, &q); err != nil {
			t.Fatalf("accepted a question miekg/dns rejects: %v", err)
		}
		if err := dnswiretest.Oracle(b); err != nil {
			t.Fatalf("accepted a message outside the contract: %v", err)
		}
	})
}

// FuzzParseAnswer checks the answer parser never panics and is consistent
// with the query parser on the same bytes.
func FuzzParseAnswer(f *testing.F) {
	r := new(dns.Msg)
	r.SetQuestion("www.example.test.", dns.TypeA)
	r.Response = true
	b, _ := r.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ra := parseAnswer(b)
		q, rq := parseQuery(b)
		if ra == dropNone && rq == dropNone {
			t.Fatal("accepted as both query and answer")
		}
		if ra == dropNone && rq != dropResponse && rq != dropOpcode {
			t.Fatalf("answer accepted but query parser said %v", rq)
		}
		if ra == dropNone && rq == dropResponse && a.qhash != q.qhash {
			t.Fatal("hash differs between parsers")
		}
	})
}
