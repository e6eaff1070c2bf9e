package dnswire_test

import (
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnswire"
)

func subnetOf(t *testing.T, m *dns.Msg) *dns.EDNS0_SUBNET {
	t.Helper()
	o := m.IsEdns0()
	if o == nil {
		return nil
	}
	for _, opt := range o.Option {
		if s, ok := opt.(*dns.EDNS0_SUBNET); ok {
			return s
		}
	}
	return nil
}

func optOffset(t *testing.T, b []byte) int {
	t.Helper()
	qend, p := dnswire.CheckQuestion(b)
	if p != dnswire.OK {
		t.Fatal(p)
	}
	_, an, ns, ar := dnswire.Counts(b)
	rs, p := dnswire.Check(b, qend, an, ns, ar)
	if p != dnswire.OK {
		t.Fatal(p)
	}
	return rs.OPT
}

// TestAddECS: a query without EDNS gets an OPT record (payload 512) with
// the client's /24; one with EDNS gets the option; one with its own ECS
// keeps it unless override; the result passes the contract and unpacks.
func TestAddECS(t *testing.T) {
	addr := []byte{192, 0, 2, 77}
	cases := []struct {
		name     string
		edit     func(*dns.Msg)
		override bool
		added    dnswire.ECSAdded
		want     string // the subnet the backend sees
		size     uint16
	}{
		{"no edns", nil, false, dnswire.AddedOPT, "192.0.2.0/24", 512},
		{"edns", func(m *dns.Msg) { m.SetEdns0(1232, true) }, false, dnswire.AddedOption, "192.0.2.0/24", 1232},
		{"own ecs kept", func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 16, Address: net.IPv4(10, 1, 0, 0)})
		}, false, dnswire.AddedNothing, "10.1.0.0/16", 1232},
		{"own ecs overridden", func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 16, Address: net.IPv4(10, 1, 0, 0)})
		}, true, dnswire.AddedOption, "192.0.2.0/24", 1232},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := pack(t, "www.example.test.", dns.TypeA, c.edit)
			buf := make([]byte, len(q), 512)
			copy(buf, q)
			out, added, ok := dnswire.AddECS(buf, optOffset(t, buf), 1, 24, addr, c.override)
			if !ok || added != c.added {
				t.Fatalf("ok %v added %v, want %v", ok, added, c.added)
			}
			if p := checkMessage(out); p != dnswire.OK {
				t.Fatalf("edited query outside the contract: %v", p)
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatal(err)
			}
			s := subnetOf(t, m)
			if s == nil {
				t.Fatal("no ECS")
			}
			got := (&net.IPNet{IP: s.Address.To4(), Mask: net.CIDRMask(int(s.SourceNetmask), 32)}).String()
			if got != c.want || m.IsEdns0().UDPSize() != c.size {
				t.Fatalf("backend sees %s (payload %d), want %s (%d)", got, m.IsEdns0().UDPSize(), c.want, c.size)
			}
		})
	}
}

// TestAddECSRefusesSigned: a TSIG-signed query is not edited (it would
// break the signature and the TSIG-last rule).
func TestAddECSRefusesSigned(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeSOA)
	m.SetTsig("k.", dns.HmacSHA256, 300, 1700000000)
	b, _, err := dns.TsigGenerate(m, "c2VjcmV0c2VjcmV0c2VjcmV0", "", false)
	if err != nil {
		t.Fatal(err)
	}
	buf := append(make([]byte, 0, 1024), b...)
	if _, _, ok := dnswire.AddECS(buf, optOffset(t, buf), 1, 24, []byte{192, 0, 2, 1}, false); ok {
		t.Fatal("a signed query was edited")
	}
}

// TestStripECS: an answer to a query that had no OPT loses the OPT the
// backend echoed; one to a query that had an OPT loses only the ECS
// option.
func TestStripECS(t *testing.T) {
	answer := func(withOther bool) []byte {
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		m.Response = true
		a, _ := dns.NewRR("www.example.test. 300 IN A 192.0.2.1")
		m.Answer = []dns.RR{a}
		m.SetEdns0(1232, false)
		if withOther {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e73"})
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, SourceScope: 24, Address: net.IPv4(192, 0, 2, 0)})
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	out, ok := dnswire.StripECS(answer(false), dnswire.AddedOPT)
	m := new(dns.Msg)
	if !ok || m.Unpack(out) != nil || m.IsEdns0() != nil || len(m.Answer) != 1 {
		t.Fatalf("AddedOPT: %v %v", ok, m)
	}
	out, ok = dnswire.StripECS(answer(true), dnswire.AddedOption)
	m = new(dns.Msg)
	if !ok || m.Unpack(out) != nil || m.IsEdns0() == nil || subnetOf(t, m) != nil || len(m.IsEdns0().Option) != 1 {
		t.Fatalf("AddedOption: %v %v", ok, m)
	}
}

// TestEditAllocatesNothing: both run per query and answer.
func TestEditAllocatesNothing(t *testing.T) {
	q := pack(t, "www.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, true) })
	buf := make([]byte, len(q), 512)
	addr := []byte{192, 0, 2, 77}
	opt := optOffset(t, q)
	if n := testing.AllocsPerRun(100, func() {
		copy(buf, q)
		out, added, _ := dnswire.AddECS(buf[:len(q)], opt, 1, 24, addr, false)
		out[2] |= 0x80
		dnswire.StripECS(out, added)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
