package integration

import (
	be "encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnswire"
	"github.com/dnslb/dnslb/internal/testpeer"
)

// TestBackendsAnswerOpaqueRDATA backs the validation contract of
// balancer/doc.go: dnslb forwards queries whose records are well formed
// but whose RDATA, of a type the contract treats as opaque, miekg/dns
// cannot unpack (a URI record of one byte, an A record of three). Each of
// NSD, Knot and BIND is sent every such input straight, must answer each
// one (same ID, QR=1: nothing confuses it into silence or a crash), and
// must still answer a normal query afterwards. The rcodes are logged.
func TestBackendsAnswerOpaqueRDATA(t *testing.T) {
	testpeer.RequireRoot(t)
	inputs := opaqueInputs(t)
	if len(inputs) < 5 {
		t.Fatalf("only %d opaque inputs", len(inputs))
	}
	for _, name := range []string{"nsd", "knotd", "named"} {
		testpeer.RequireTool(t, name)
	}
	servers := map[string]netip.AddrPort{}
	servers["nsd"] = testpeer.StartNSD(t, testpeer.NSDOptions{Name: "nsd", Addr: netip.MustParseAddrPort("127.0.0.61:0")}).Addr
	zone := testpeer.ZoneSpec{Name: "example.test.", Serial: 1}
	servers["knot"] = testpeer.StartKnot(t, testpeer.KnotOptions{Name: "knot", Addr: netip.MustParseAddrPort("127.0.0.62:0"), Zones: []testpeer.ZoneSpec{zone}, Primary: true}).Addr
	servers["bind"] = testpeer.StartBIND(t, testpeer.BINDOptions{Name: "bind", Addr: netip.MustParseAddrPort("127.0.0.1:0"), Zones: []testpeer.ZoneSpec{zone}, Primary: true}).Addr

	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, server := range []string{"nsd", "knot", "bind"} {
		addr := servers[server]
		rcodes := map[string]int{}
		for _, n := range names {
			r, err := rawExchange(addr, inputs[n])
			if err != nil {
				t.Errorf("%s: %s: %v", server, n, err)
				continue
			}
			rc := dns.RcodeToString[int(r[3]&0x0f)]
			rcodes[rc]++
			t.Logf("%s: %s: %s", server, n, rc)
		}
		if m := testpeer.Query(t, addr, "example.test.", dns.TypeSOA); m.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: SOA after the opaque inputs: %s", server, dns.RcodeToString[m.Rcode])
		}
		t.Logf("%s answered %d opaque inputs: %v", server, len(names), rcodes)
	}
}

// opaqueInputs are queries the contract forwards (dnswire.Check accepts
// them) that miekg/dns cannot unpack: hand-made ones and every such file of
// the committed fuzz corpora.
func opaqueInputs(t *testing.T) map[string][]byte {
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	base, _ := q.Pack()
	rr := func(section int, rrtype uint16, rdata ...byte) []byte {
		out := append([]byte(nil), base...)
		out = append(out, 0)
		out = be.BigEndian.AppendUint16(out, rrtype)
		out = be.BigEndian.AppendUint16(out, dns.ClassINET)
		out = be.BigEndian.AppendUint32(out, 300)
		out = be.BigEndian.AppendUint16(out, uint16(len(rdata)))
		out = append(out, rdata...)
		be.BigEndian.PutUint16(out[4+2*section:], 1)
		return out
	}
	in := map[string][]byte{
		"uri of 1 byte (additional)":  rr(3, dns.TypeURI, 7),
		"a of 3 bytes (answer)":       rr(1, dns.TypeA, 1, 2, 3),
		"aaaa of 5 bytes (authority)": rr(2, dns.TypeAAAA, 1, 2, 3, 4, 5),
		"caa of 1 byte (additional)":  rr(3, dns.TypeCAA, 0),
		"ds of 2 bytes (additional)":  rr(3, dns.TypeDS, 0, 1),
	}
	for _, dir := range []string{"../../balancer/testdata/fuzz/FuzzParseQuery", "../../internal/dnswire/testdata/fuzz/FuzzCheck"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) != 2 {
				continue
			}
			b, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			if err != nil {
				continue
			}
			in[filepath.Base(dir)+"/"+filepath.Base(f)] = []byte(b)
		}
	}
	for n, b := range in {
		qend, p := dnswire.CheckQuestion(b)
		qd, an, ns, ar := 0, 0, 0, 0
		if p == dnswire.OK {
			qd, an, ns, ar = dnswire.Counts(b)
			_, p = dnswire.Check(b, qend, an, ns, ar)
		}
		if p != dnswire.OK || qd != 1 || b[2]&0x80 != 0 || new(dns.Msg).Unpack(b) == nil {
			delete(in, n) // not forwarded, or not opaque
		}
	}
	return in
}

// rawExchange sends b over UDP and returns the answer with b's ID.
func rawExchange(server netip.AddrPort, b []byte) ([]byte, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(2 * time.Second)
	for {
		c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if n >= dnswire.HeaderLen && buf[0] == b[0] && buf[1] == b[1] && buf[2]&0x80 != 0 {
			return buf[:n], nil
		}
	}
}
