package notifydup

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"
)

var parseSentinels = []error{ErrNotNotify, ErrMalformed, ErrFragment}

// checkParseErr fails unless err wraps want and no other sentinel (want nil:
// err must wrap exactly one of them).
func checkParseErr(t testing.TB, what string, err, want error) {
	t.Helper()
	var wraps []error
	for _, s := range parseSentinels {
		if errors.Is(err, s) {
			wraps = append(wraps, s)
		}
	}
	if len(wraps) != 1 || want != nil && wraps[0] != want {
		t.Errorf("%s: error %v wraps %v, want %v", what, err, wraps, want)
	}
}

// A fixture from testdata/frames (an Ethernet frame) or testdata/messages
// (a DNS message received over TCP, with its src and dst): "#" comment
// lines with key=value fields, then hex.
type fixture struct {
	name     string
	data     []byte
	capture  string // a pcap file in testdata
	packet   int    // 1-based packet number in it
	src, dst netip.AddrPort
}

func readFixture(t testing.TB, dir, name string) fixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", dir, name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	fx := fixture{name: name}
	var hx strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "#") {
			hx.WriteString(strings.Join(strings.Fields(line), ""))
			continue
		}
		for _, f := range strings.Fields(line[1:]) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			switch k {
			case "capture":
				fx.capture = v
			case "packet":
				fx.packet, err = strconv.Atoi(v)
			case "src":
				fx.src, err = netip.ParseAddrPort(v)
			case "dst":
				fx.dst, err = netip.ParseAddrPort(v)
			}
			if err != nil {
				t.Fatalf("%s/%s: %s: %v", dir, name, f, err)
			}
		}
	}
	if fx.data, err = hex.DecodeString(hx.String()); err != nil {
		t.Fatalf("%s/%s: %v", dir, name, err)
	}
	return fx
}

func fixtureNames(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".hex"))
	}
	return names
}

// testTSIGSecret is the key the captured signed NOTIFYs are signed with,
// from testdata/capture/knot.conf.
func testTSIGSecret(t testing.TB) string {
	t.Helper()
	conf, err := os.ReadFile("testdata/capture/knot.conf")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*secret:\s*(\S+)\s*$`).FindSubmatch(conf)
	if m == nil {
		t.Fatal("no secret in testdata/capture/knot.conf")
	}
	return string(m[1])
}

// checkTSIG fails unless payload's TSIG verifies with secret. A capture
// is older than the 300 s fudge: ErrTime, which miekg/dns returns only
// after the MAC verified, is success too.
func checkTSIG(t testing.TB, what string, payload []byte, secret string) {
	t.Helper()
	if err := dns.TsigVerify(payload, secret, "", false); err != nil && !errors.Is(err, dns.ErrTime) {
		t.Errorf("%s: TSIG does not verify on the payload: %v", what, err)
	}
}

const testTSIGKey = "notify-key."

// signNotify adds a TSIG (hmac-sha256, testTSIGKey) to m and returns the
// signed message.
func signNotify(t testing.TB, m *dns.Msg, secret string) []byte {
	t.Helper()
	m.SetTsig(testTSIGKey, dns.HmacSHA256, 300, time.Now().Unix())
	b, _, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawMsg edits a packed message: f gets a copy.
func rawMsg(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }

func setCount(i int, n uint16) func([]byte) []byte {
	return func(b []byte) []byte { binary.BigEndian.PutUint16(b[4+2*i:], n); return b }
}

func TestParseFrame(t *testing.T) {
	const zone = "example.test."
	soa := notifyMsg(t, zone, true, 2024061501, nil)
	noSOA := notifyMsg(t, zone, false, 0, nil)
	secret := "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcw=="
	m := new(dns.Msg)
	if err := m.Unpack(soa); err != nil {
		t.Fatal(err)
	}
	m.SetEdns0(1232, false)
	signed := signNotify(t, m, secret)
	otherSOA := func(m *dns.Msg) {
		other := *m.Answer[0].(*dns.SOA)
		other.Hdr.Name, other.Serial = "other.test.", 99
		m.Answer = append([]dns.RR{&other, &dns.A{
			Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: testVIP4.AsSlice(),
		}}, m.Answer...)
	}
	sig0 := func(m *dns.Msg) {
		m.Extra = append(m.Extra, &dns.SIG{RRSIG: dns.RRSIG{
			Hdr:         dns.RR_Header{Name: ".", Rrtype: dns.TypeSIG, Class: dns.ClassANY},
			TypeCovered: 0, Algorithm: dns.ED25519, SignerName: "primary.test.", Signature: "AAAA",
		}})
	}
	tsigRR := func() *dns.TSIG {
		return &dns.TSIG{
			Hdr:       dns.RR_Header{Name: testTSIGKey, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm: dns.HmacSHA256, TimeSigned: 1, Fudge: 300, MACSize: 2, MAC: "abcd", OrigId: 0x1234,
		}
	}
	nsRR := &dns.NS{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeNS, Class: dns.ClassINET}, Ns: "ns1." + zone}

	v4 := udpFrame(testVIP4, soa)
	v6 := udpFrame(testVIP6, soa)
	with := func(f testFrame, edit func(*testFrame)) testFrame { edit(&f); return f }
	src4 := netip.AddrPortFrom(testPrimary4, 40000)
	dst4 := netip.AddrPortFrom(testVIP4, 53)
	src6 := netip.AddrPortFrom(testPrimary6, 40000)
	dst6 := netip.AddrPortFrom(testVIP6, 53)
	// editFrame edits a built frame: offsets as in filter.go.
	editFrame := func(f testFrame, edit func([]byte) []byte) []byte { return edit(f.build(t)) }
	udp4 := ethHeaderLen + 20
	// The low byte of the SOA's RDLENGTH in soa (packed uncompressed):
	// header, question (name, type, class), owner, type, class, TTL.
	soaRDLength := dnsHeaderLen + len(zone) + 1 + 4 + len(zone) + 1 + 8 + 1

	tests := []struct {
		name  string
		frame []byte
		want  *Notify // Payload nil: the frame's UDP payload as built
		err   error
	}{
		{"IPv4 NOTIFY with SOA", v4.build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 2024061501, HasSerial: true}, nil},
		{"IPv6 NOTIFY with SOA", v6.build(t),
			&Notify{Src: src6, Dst: dst6, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 2024061501, HasSerial: true}, nil},
		{"NOTIFY without SOA", udpFrame(testVIP4, noSOA).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA}, nil},
		{"mixed-case names", udpFrame(testVIP4, notifyMsg(t, "Example.TEST.", true, 7, func(m *dns.Msg) {
			m.Answer[0].Header().Name = "EXAMPLE.test."
		})).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 7, HasSerial: true}, nil},
		{"SOA of another zone only", udpFrame(testVIP4, notifyMsg(t, zone, true, 5, func(m *dns.Msg) {
			m.Answer[0].Header().Name = "other.test."
		})).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA}, nil},
		{"SOA after another zone's SOA and an A record", udpFrame(testVIP4, notifyMsg(t, zone, true, 5, otherSOA)).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 5, HasSerial: true}, nil},
		{"serial 0", udpFrame(testVIP4, notifyMsg(t, zone, true, 0, nil)).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 0, HasSerial: true}, nil},
		{"serial 2^32-1", udpFrame(testVIP6, notifyMsg(t, zone, true, 1<<32-1, nil)).build(t),
			&Notify{Src: src6, Dst: dst6, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 1<<32 - 1, HasSerial: true}, nil},
		{"root zone", udpFrame(testVIP4, notifyMsg(t, ".", true, 3, nil)).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: ".", QType: dns.TypeSOA, Serial: 3, HasSerial: true}, nil},
		{"QTYPE A", udpFrame(testVIP4, notifyMsg(t, zone, false, 0, func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeA })).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeA}, nil},
		{"TSIG-signed, EDNS", udpFrame(testVIP4, signed).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 2024061501, HasSerial: true, Signed: true}, nil},
		{"SIG(0)", udpFrame(testVIP4, notifyMsg(t, zone, false, 0, sig0)).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Signed: true}, nil},
		{"SIG covering A (not SIG(0))", udpFrame(testVIP4, notifyMsg(t, zone, false, 0, func(m *dns.Msg) {
			sig0(m)
			m.Extra[0].(*dns.SIG).TypeCovered = dns.TypeA
		})).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA}, nil},
		{"IPv4 options", with(v4, func(f *testFrame) {
			f.ip4Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 2024061501, HasSerial: true}, nil},
		{"IPv4 DF", with(v4, func(f *testFrame) { f.ip4Flags = layers.IPv4DontFragment }).build(t),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 2024061501, HasSerial: true}, nil},
		{"Ethernet padding and trailer", append(udpFrame(testVIP4, notifyMsg(t, ".", false, 0, nil)).build(t), 0xde, 0xad),
			&Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: ".", QType: dns.TypeSOA,
				Payload: notifyMsg(t, ".", false, 0, nil)}, nil},
		{"bytes after the UDP length", editFrame(v4, func(b []byte) []byte {
			b = append(b, 1, 2, 3, 4)
			binary.BigEndian.PutUint16(b[offIPv4+2:], binary.BigEndian.Uint16(b[offIPv4+2:])+4)
			return b
		}), &Notify{Src: src4, Dst: dst4, ID: 0x1234, Zone: zone, QType: dns.TypeSOA, Serial: 2024061501, HasSerial: true, Payload: soa}, nil},

		{"query", udpFrame(testVIP4, setFlags(soa, 0x00)).build(t), nil, ErrNotNotify},
		{"NOTIFY response", udpFrame(testVIP4, setFlags(soa, 0xa4)).build(t), nil, ErrNotNotify},
		{"UPDATE", udpFrame(testVIP6, setFlags(soa, 5<<3)).build(t), nil, ErrNotNotify},
		{"port 5353", with(v4, func(f *testFrame) { f.dport = 5353 }).build(t), nil, ErrNotNotify},
		{"TCP", with(v4, func(f *testFrame) { f.tcp = true }).build(t), nil, ErrNotNotify},
		{"TCP over IPv6", with(v6, func(f *testFrame) { f.tcp = true }).build(t), nil, ErrNotNotify},
		{"ARP", arpFrame(t), nil, ErrNotNotify},
		{"802.1Q tag", with(v4, func(f *testFrame) { f.vlan = 10 }).build(t), nil, ErrNotNotify},
		{"802.3 length instead of EtherType", editFrame(v4, func(b []byte) []byte { b[12], b[13] = 0, 46; return b }), nil, ErrNotNotify},
		{"IPv6 hop-by-hop header", withIPv6Ext(t, v6.build(t), 0, hopByHopRouterAlert), nil, ErrNotNotify},
		{"IPv4 MF", with(v4, func(f *testFrame) { f.ip4Flags = layers.IPv4MoreFragments }).build(t), nil, ErrFragment},
		{"IPv4 offset", with(v4, func(f *testFrame) { f.ip4FragOff = 100 }).build(t), nil, ErrFragment},
		{"IPv6 fragment header", withIPv6Ext(t, v6.build(t), 44, fragmentAtomic), nil, ErrFragment},
		{"IPv4 TCP fragment", with(v4, func(f *testFrame) { f.tcp, f.ip4FragOff = true, 100 }).build(t), nil, ErrNotNotify},

		{"empty", nil, nil, ErrMalformed},
		{"QDCOUNT 0", udpFrame(testVIP4, notifyMsg(t, zone, true, 1, func(m *dns.Msg) { m.Question = nil })).build(t), nil, ErrMalformed},
		{"QDCOUNT 2", udpFrame(testVIP4, notifyMsg(t, zone, true, 1, func(m *dns.Msg) {
			m.Question = append(m.Question, m.Question[0])
		})).build(t), nil, ErrMalformed},
		{"QDCOUNT 1, header only", udpFrame(testVIP4, soa[:dnsHeaderLen]).build(t), nil, ErrMalformed},
		{"DNS header cut", udpFrame(testVIP4, soa[:dnsHeaderLen-1]).build(t), nil, ErrMalformed},
		{"ANCOUNT 2, one answer", udpFrame(testVIP4, rawMsg(soa, setCount(1, 2))).build(t), nil, ErrMalformed},
		{"ANCOUNT 0, one answer", udpFrame(testVIP4, rawMsg(soa, setCount(1, 0))).build(t), nil, ErrMalformed},
		{"ARCOUNT 1, none", udpFrame(testVIP4, rawMsg(soa, setCount(3, 1))).build(t), nil, ErrMalformed},
		{"bytes after the DNS message", udpFrame(testVIP4, append(append([]byte(nil), noSOA...), 0, 0, 0)).build(t), nil, ErrMalformed},
		{"RDLENGTH past the end", udpFrame(testVIP4, rawMsg(soa, func(b []byte) []byte { b[soaRDLength]++; return b })).build(t), nil, ErrMalformed},
		{"RDLENGTH short", udpFrame(testVIP4, rawMsg(soa, func(b []byte) []byte { b[soaRDLength]--; return b })).build(t), nil, ErrMalformed},
		{"SOA cut", udpFrame(testVIP4, soa[:len(soa)-1]).build(t), nil, ErrMalformed},
		{"question name past the end", udpFrame(testVIP4, rawMsg(noSOA, func(b []byte) []byte { b[dnsHeaderLen] = 63; return b })).build(t), nil, ErrMalformed},
		{"compression loop", udpFrame(testVIP4, rawMsg(noSOA[:dnsHeaderLen], func(b []byte) []byte {
			return append(b, 0xc0, dnsHeaderLen, 0, 6, 0, 1)
		})).build(t), nil, ErrMalformed},
		{"TSIG not last", udpFrame(testVIP4, notifyMsg(t, zone, true, 1, func(m *dns.Msg) {
			m.Extra = []dns.RR{tsigRR(), nsRR}
		})).build(t), nil, ErrMalformed},
		{"TSIG in the answer", udpFrame(testVIP4, notifyMsg(t, zone, true, 1, func(m *dns.Msg) {
			m.Answer = append(m.Answer, tsigRR())
		})).build(t), nil, ErrMalformed},
		{"two TSIGs", udpFrame(testVIP4, notifyMsg(t, zone, true, 1, func(m *dns.Msg) {
			m.Extra = []dns.RR{tsigRR(), tsigRR()}
		})).build(t), nil, ErrMalformed},
		{"IPv4 total length 0", editFrame(v4, func(b []byte) []byte { b[offIPv4+2], b[offIPv4+3] = 0, 0; return b }), nil, ErrMalformed},
		{"IPv4 total length past the frame", editFrame(v4, func(b []byte) []byte { b[offIPv4+2]++; return b }), nil, ErrMalformed},
		{"IPv4 header length 4", editFrame(v4, func(b []byte) []byte { b[offIPv4] = 0x44; return b }), nil, ErrMalformed},
		{"IPv4 option length 1", editFrame(with(v4, func(f *testFrame) {
			f.ip4Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}), func(b []byte) []byte { b[offIPv4+21] = 1; return b }), nil, ErrMalformed},
		{"IP version 6 in an IPv4 frame", editFrame(v4, func(b []byte) []byte { b[offIPv4] = 0x65; return b }), nil, ErrMalformed},
		{"IP version 4 in an IPv6 frame", editFrame(v6, func(b []byte) []byte { b[offIPv6] = 0x40; return b }), nil, ErrMalformed},
		{"IPv6 payload length past the frame", editFrame(v6, func(b []byte) []byte { b[offIPv6+5]++; return b }), nil, ErrMalformed},
		{"IPv6 payload length 0", editFrame(v6, func(b []byte) []byte { b[offIPv6+4], b[offIPv6+5] = 0, 0; return b }), nil, ErrMalformed},
		{"UDP length 0", editFrame(v4, func(b []byte) []byte { b[udp4+4], b[udp4+5] = 0, 0; return b }), nil, ErrMalformed},
		{"UDP length 7", editFrame(v4, func(b []byte) []byte { b[udp4+4], b[udp4+5] = 0, 7; return b }), nil, ErrMalformed},
		{"UDP length past the IP packet", editFrame(v4, func(b []byte) []byte { b[udp4+5]++; return b }), nil, ErrMalformed},
		{"UDP header cut", v4.build(t)[:udp4+7], nil, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame := append([]byte(nil), tc.frame...)
			n, err := ParseFrame(frame)
			if tc.err != nil {
				if n != nil {
					t.Errorf("ParseFrame(%x) = %+v, want error", tc.frame, n)
				}
				checkParseErr(t, "ParseFrame", err, tc.err)
				return
			}
			if err != nil {
				t.Fatalf("ParseFrame(%x): %v", tc.frame, err)
			}
			want := *tc.want
			if want.Payload == nil {
				want.Payload = tc.frame[len(tc.frame)-len(n.Payload):]
			}
			if !reflect.DeepEqual(n, &want) {
				t.Errorf("ParseFrame(%x)\n = %+v\nwant %+v", tc.frame, n, &want)
			}
			checkNotifyPayload(t, n, frame)
			if n.Signed && strings.HasPrefix(tc.name, "TSIG") {
				if !bytes.Equal(n.Payload, signed) {
					t.Errorf("signed payload %x, sent %x", n.Payload, signed)
				}
				checkTSIG(t, tc.name, n.Payload, secret)
			}
		})
	}
}

// checkNotifyPayload: n.Payload unpacks to a NOTIFY query for n.Zone and
// is a copy: clearing frame (which it came from) leaves it alone.
func checkNotifyPayload(t testing.TB, n *Notify, frame []byte) {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(n.Payload); err != nil {
		t.Fatalf("payload %x does not unpack: %v", n.Payload, err)
	}
	if m.Response || m.Opcode != dns.OpcodeNotify || len(m.Question) != 1 ||
		dns.CanonicalName(m.Question[0].Name) != n.Zone || m.Question[0].Qtype != n.QType || m.Id != n.ID {
		t.Errorf("payload unpacks to\n%v\nwhich does not match %+v", &m, n)
	}
	before := append([]byte(nil), n.Payload...)
	clear(frame)
	if !bytes.Equal(before, n.Payload) {
		t.Errorf("Notify.Payload aliases the frame")
	}
}

// TestParseFrameTruncated: every proper prefix of a NOTIFY frame is
// ErrMalformed.
func TestParseFrameTruncated(t *testing.T) {
	notify := notifyMsg(t, "example.test.", true, 1, nil)
	for _, f := range []testFrame{udpFrame(testVIP4, notify), udpFrame(testVIP6, notify)} {
		frame := f.build(t)
		if _, err := ParseFrame(frame); err != nil {
			t.Fatal(err)
		}
		for n := range len(frame) {
			nt, err := ParseFrame(frame[:n:n])
			if nt != nil {
				t.Errorf("ParseFrame(first %d of %d bytes) = %+v", n, len(frame), nt)
			}
			checkParseErr(t, "truncated frame", err, ErrMalformed)
		}
	}
}

func TestParseMessage(t *testing.T) {
	src := netip.MustParseAddrPort("[fe80::1%eth0]:1053")
	dst := netip.AddrPortFrom(testVIP6, 53)
	msg := notifyMsg(t, "example.test.", true, 42, nil)
	buf := append([]byte(nil), msg...)
	n, err := ParseMessage(buf, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	want := &Notify{Src: src, Dst: dst, Payload: msg, ID: 0x1234, Zone: "example.test.", QType: dns.TypeSOA, Serial: 42, HasSerial: true}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("ParseMessage = %+v, want %+v", n, want)
	}
	checkNotifyPayload(t, n, buf)

	for _, tc := range []struct {
		name string
		msg  []byte
		err  error
	}{
		{"nil", nil, ErrMalformed},
		{"11 bytes", msg[:11], ErrMalformed},
		{"header only", msg[:12], ErrMalformed},
		{"query", setFlags(msg, 0x01), ErrNotNotify},
		{"response", setFlags(msg, 0xa0), ErrNotNotify},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"), ErrNotNotify},
	} {
		n, err := ParseMessage(tc.msg, src, dst)
		if n != nil {
			t.Errorf("%s: ParseMessage = %+v", tc.name, n)
		}
		checkParseErr(t, tc.name, err, tc.err)
	}
}

// TestParseFixtures parses what real primaries sent (testdata/capture).
func TestParseFixtures(t *testing.T) {
	secret := testTSIGSecret(t)
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		dir, name string
		want      *Notify // without Payload: the frame's tail, or the message
		err       error
	}{
		{"frames", "dig-ipv4-notify", &Notify{Src: ap("192.0.2.1:53299"), Dst: ap("192.0.2.53:53"), ID: 279,
			Zone: "example.test.", QType: dns.TypeSOA}, nil},
		{"frames", "dig-ipv6-notify-tsig", &Notify{Src: ap("[2001:db8::1]:44336"), Dst: ap("[2001:db8::53]:53"), ID: 30009,
			Zone: "example.test.", QType: dns.TypeSOA, Signed: true}, nil},
		{"frames", "nsd-ipv4-notify", &Notify{Src: ap("192.0.2.1:56772"), Dst: ap("192.0.2.53:53"), ID: 21099,
			Zone: "nsd.example.test.", QType: dns.TypeSOA, Serial: 7, HasSerial: true}, nil},
		{"frames", "nsd-ipv6-notify", &Notify{Src: ap("[2001:db8::1]:51651"), Dst: ap("[2001:db8::53]:53"), ID: 49993,
			Zone: "nsd.example.test.", QType: dns.TypeSOA, Serial: 7, HasSerial: true}, nil},
		{"frames", "handmade-ipv4-notify", &Notify{Src: ap("192.0.2.1:40000"), Dst: ap("192.0.2.53:53"), ID: 0x1234,
			Zone: "vlan.example.test.", QType: dns.TypeSOA}, nil},
		{"frames", "dig-ipv4-notify-outgoing", &Notify{Src: ap("192.0.2.53:57905"), Dst: ap("192.0.2.1:53"), ID: 17586,
			Zone: "outgoing.example.test.", QType: dns.TypeSOA}, nil},
		{"frames", "dig-ipv4-query", nil, ErrNotNotify},
		{"frames", "dig-ipv4-notify-port5353", nil, ErrNotNotify},
		{"frames", "dig-ipv4-notify-tcp", nil, ErrNotNotify},
		{"frames", "handmade-ipv4-notify-vlan", nil, ErrNotNotify},
		{"frames", "arp-request", nil, ErrNotNotify},
		{"messages", "knot-ipv4-notify", &Notify{ID: 47193, Zone: "example.test.", QType: dns.TypeSOA,
			Serial: 2024061501, HasSerial: true}, nil},
		{"messages", "knot-ipv6-notify-tsig", &Notify{ID: 50475, Zone: "signed.example.test.", QType: dns.TypeSOA,
			Serial: 4000000000, HasSerial: true, Signed: true}, nil},
		{"messages", "dig-ipv4-notify-tcp", &Notify{ID: 22725, Zone: "example.test.", QType: dns.TypeSOA}, nil},
	} {
		fx := readFixture(t, tc.dir, tc.name)
		what := tc.dir + "/" + tc.name
		var n *Notify
		var err error
		if tc.dir == "frames" {
			n, err = ParseFrame(fx.data)
		} else {
			n, err = ParseMessage(fx.data, fx.src, fx.dst)
		}
		if tc.err != nil {
			checkParseErr(t, what, err, tc.err)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		want := *tc.want
		if tc.dir == "frames" {
			want.Payload = fx.data[len(fx.data)-len(n.Payload):]
		} else {
			want.Payload, want.Src, want.Dst = fx.data, fx.src, fx.dst
		}
		if !reflect.DeepEqual(n, &want) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, n, &want)
		}
		if n.Signed {
			checkTSIG(t, what, n.Payload, secret)
		}
	}
}

// TestFixturesMatchCapture: every fixture is the packet of
// testdata/capture/veth0.pcap it names (for messages: the TCP payload
// without its length prefix).
func TestFixturesMatchCapture(t *testing.T) {
	f, err := os.Open("testdata/capture/veth0.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		packets = append(packets, data)
	}
	for _, dir := range []string{"frames", "messages"} {
		for _, name := range fixtureNames(t, dir) {
			fx := readFixture(t, dir, name)
			if fx.capture != "capture/veth0.pcap" || fx.packet < 1 || fx.packet > len(packets) {
				t.Errorf("%s/%s: capture=%q packet=%d not in veth0.pcap (%d packets)", dir, name, fx.capture, fx.packet, len(packets))
				continue
			}
			want := packets[fx.packet-1]
			if dir == "messages" {
				p := gopacket.NewPacket(want, layers.LayerTypeEthernet, gopacket.Default)
				if p.TransportLayer() == nil || len(p.TransportLayer().LayerPayload()) < 2 {
					t.Errorf("%s/%s: packet %d has no TCP payload", dir, name, fx.packet)
					continue
				}
				want = p.TransportLayer().LayerPayload()[2:]
			}
			if !bytes.Equal(fx.data, want) {
				t.Errorf("%s/%s: %x, packet %d is %x", dir, name, fx.data, fx.packet, want)
			}
		}
	}
}
