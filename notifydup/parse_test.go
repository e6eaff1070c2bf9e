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

	"github.com/dnslb/dnslb/internal/dnswire/dnswiretest"
)

var parseSentinels = []error{ErrNotNotify, ErrMalformed}

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

// TestParseFixtures parses what real primaries and dig sent
// (testdata/capture): UDP NOTIFYs (the payloads of captured frames) and
// NOTIFYs received over TCP.
func TestParseFixtures(t *testing.T) {
	secret := testTSIGSecret(t)
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		dir, name string
		want      *Notify // without Payload: the frame's UDP payload, or the message
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
		{"frames", "dig-ipv4-query", nil, ErrNotNotify},
		{"messages", "knot-ipv4-notify", &Notify{ID: 47193, Zone: "example.test.", QType: dns.TypeSOA,
			Serial: 2024061501, HasSerial: true}, nil},
		{"messages", "knot-ipv6-notify-tsig", &Notify{ID: 50475, Zone: "signed.example.test.", QType: dns.TypeSOA,
			Serial: 4000000000, HasSerial: true, Signed: true}, nil},
		{"messages", "dig-ipv4-notify-tcp", &Notify{ID: 22725, Zone: "example.test.", QType: dns.TypeSOA}, nil},
	} {
		fx := readFixture(t, tc.dir, tc.name)
		what := tc.dir + "/" + tc.name
		msg, src, dst := fx.data, fx.src, fx.dst
		if tc.dir == "frames" {
			msg, src, dst = udpPayload(t, fx.data)
		}
		n, err := ParseMessage(msg, src, dst)
		if tc.err != nil {
			checkParseErr(t, what, err, tc.err)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		want := *tc.want
		want.Payload, want.Src, want.Dst = msg, src, dst
		if !reflect.DeepEqual(n, &want) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, n, &want)
		}
		if n.Signed {
			checkTSIG(t, what, n.Payload, secret)
		}
	}
}

// udpPayload returns a captured frame's UDP payload and addresses.
func udpPayload(t testing.TB, frame []byte) ([]byte, netip.AddrPort, netip.AddrPort) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp == nil || p.NetworkLayer() == nil {
		t.Fatalf("frame %x has no UDP", frame)
	}
	src, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Src().Raw())
	dst, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Dst().Raw())
	return udp.Payload, netip.AddrPortFrom(src, uint16(udp.SrcPort)), netip.AddrPortFrom(dst, uint16(udp.DstPort))
}

// FuzzParseMessage: ParseMessage never panics, never writes to its input,
// fails only with one sentinel error, and what it accepts is a NOTIFY
// query inside the validation contract that miekg/dns unpacks, with a
// payload that is a copy. Seeds: the captured NOTIFYs and hand-made ones;
// past finds go to testdata/fuzz/FuzzParseMessage.
func FuzzParseMessage(f *testing.F) {
	for _, dir := range []string{"frames", "messages"} {
		for _, name := range fixtureNames(f, dir) {
			fx := readFixture(f, dir, name)
			if dir == "frames" {
				p := gopacket.NewPacket(fx.data, layers.LayerTypeEthernet, gopacket.Default)
				if udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
					f.Add(udp.Payload)
				}
				continue
			}
			f.Add(fx.data)
		}
	}
	f.Add(notifyMsg(f, "example.test.", true, 7, nil))
	src, dst := netip.MustParseAddrPort("192.0.2.1:4000"), netip.MustParseAddrPort("192.0.2.53:53")
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := bytes.Clone(msg)
		n, err := ParseMessage(in, src, dst)
		if !bytes.Equal(in, msg) {
			t.Fatal("ParseMessage changed its input")
		}
		if err != nil {
			checkParseErr(t, "fuzz", err, nil)
			if n != nil {
				t.Fatal("a Notify with an error")
			}
			return
		}
		if err := dnswiretest.Oracle(msg); err != nil {
			t.Fatalf("accepted a message outside the contract: %v", err)
		}
		checkNotifyPayload(t, n, in)
	})
}

// notifyMsg is a NOTIFY for zone from miekg/dns (ID 0x1234), with the SOA
// (serial) in the answer section if soa; edit may change it before
// packing.
func notifyMsg(t testing.TB, zone string, soa bool, serial uint32, edit func(*dns.Msg)) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetNotify(zone)
	m.Id = 0x1234
	if soa {
		m.Answer = append(m.Answer, &dns.SOA{
			Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
			Ns:  dns.Fqdn("ns1." + strings.TrimPrefix(zone, ".")), Mbox: dns.Fqdn("hostmaster." + strings.TrimPrefix(zone, ".")),
			Serial: serial, Refresh: 3600, Retry: 900, Expire: 604800, Minttl: 300,
		})
	}
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("packing %v: %v", m, err)
	}
	return b
}

func setFlags(b []byte, flags byte) []byte {
	b = append([]byte(nil), b...)
	b[2] = flags
	return b
}

// testVIP6 is the captured fixtures' IPv6 VIP.
var testVIP6 = netip.MustParseAddr("2001:db8::53")

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
