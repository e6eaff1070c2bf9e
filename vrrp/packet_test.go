package vrrp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var update = flag.Bool("update", false, "rewrite the hex of testdata/*.hex from the captures they name, and the fuzz seeds")

var (
	v4Src = netip.MustParseAddr("10.99.0.1")
	v6Src = netip.MustParseAddr("fe80::5eff:fe99:1")
	vip4  = netip.MustParseAddr("10.99.0.100")
	vip6  = netip.MustParseAddr("fd00:99::100")
)

// fixture is one testdata/*.hex file: comment lines starting with '#', some
// holding key=value pairs (src, dst, mode, capture, packet), and the hex of
// a VRRP message (the IP payload), whitespace ignored.
type fixture struct {
	name     string
	comments []string
	src, dst netip.Addr
	mode     ChecksumMode
	capture  string // pcap under testdata/ the bytes come from
	packet   int    // 1-based packet number in capture
	payload  []byte
}

func readFixture(t testing.TB, name string) fixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	fx := fixture{name: name}
	var hx strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "#") {
			fx.comments = append(fx.comments, line)
			for _, f := range strings.Fields(line[1:]) {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					continue
				}
				switch k {
				case "src":
					fx.src = netip.MustParseAddr(v)
				case "dst":
					fx.dst = netip.MustParseAddr(v)
				case "mode":
					fx.mode = parseMode(t, v)
				case "capture":
					fx.capture = v
				case "packet":
					if fx.packet, err = strconv.Atoi(v); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
			}
			continue
		}
		hx.WriteString(strings.Join(strings.Fields(line), ""))
	}
	if fx.payload, err = hex.DecodeString(hx.String()); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return fx
}

func writeFixture(t testing.TB, fx fixture) {
	t.Helper()
	var b strings.Builder
	for _, c := range fx.comments {
		b.WriteString(c + "\n")
	}
	for i := 0; i < len(fx.payload); i += 16 {
		row := fx.payload[i:min(i+16, len(fx.payload))]
		var words []string
		for j := 0; j < len(row); j += 4 {
			words = append(words, hex.EncodeToString(row[j:min(j+4, len(row))]))
		}
		b.WriteString(strings.Join(words, " ") + "\n")
	}
	if err := os.WriteFile(filepath.Join("testdata", fx.name+".hex"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func parseMode(t testing.TB, s string) ChecksumMode {
	for _, m := range []ChecksumMode{ChecksumPseudoHeader, ChecksumRFC9568} {
		if m.String() == s {
			return m
		}
	}
	t.Fatalf("unknown checksum mode %q", s)
	return 0
}

// readPcap returns the frames of an Ethernet pcap under testdata/.
func readPcap(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("%s: link type %v", name, r.LinkType())
	}
	var frames [][]byte
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if ci.CaptureLength != ci.Length {
			t.Fatalf("%s: packet %d cut by the snap length", name, len(frames)+1)
		}
		frames = append(frames, data)
	}
	return frames
}

// capturedVRRP returns the IP source, destination and payload of VRRP packet n
// (1-based) of a pcap.
func capturedVRRP(t testing.TB, name string, n int) (src, dst netip.Addr, payload []byte) {
	t.Helper()
	frames := readPcap(t, name)
	if n < 1 || n > len(frames) {
		t.Fatalf("%s has %d packets, not %d", name, len(frames), n)
	}
	p := gopacket.NewPacket(frames[n-1], layers.LayerTypeEthernet, gopacket.Default)
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		if ip.Protocol != ProtocolNumber {
			t.Fatalf("%s #%d: protocol %v", name, n, ip.Protocol)
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		return src, dst, ip.Payload
	case *layers.IPv6:
		if ip.NextHeader != ProtocolNumber {
			t.Fatalf("%s #%d: next header %v", name, n, ip.NextHeader)
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		return src, dst, ip.Payload
	}
	t.Fatalf("%s #%d: not IP: %v", name, n, p)
	return
}

// TestFixturesMatchCaptures checks that each testdata/*.hex holds the bytes
// and addresses of the packet it names in a pcap. With -update it rewrites
// the hex from the pcap: that is how the fixtures were made.
func TestFixturesMatchCaptures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.hex")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".hex")
		t.Run(name, func(t *testing.T) {
			fx := readFixture(t, name)
			if fx.capture == "" {
				t.Fatal("no capture= comment")
			}
			src, dst, payload := capturedVRRP(t, fx.capture, fx.packet)
			if src != fx.src || dst != fx.dst {
				t.Errorf("capture has %v > %v, fixture says %v > %v", src, dst, fx.src, fx.dst)
			}
			if *update {
				fx.payload = payload
				writeFixture(t, fx)
			}
			if !bytes.Equal(fx.payload, payload) {
				t.Errorf("fixture\n%x\ncapture\n%x", fx.payload, payload)
			}
		})
	}
}

// fixtureAdverts are the testdata/*.hex fixtures as Adverts.
var fixtureAdverts = map[string]Advert{
	"v3-ipv4-pseudoheader": {
		Version: 3, VRID: 51, Priority: 150, Interval: time.Second,
		Addrs: []netip.Addr{vip4}, Src: v4Src, Dst: GroupV4, Mode: ChecksumPseudoHeader, Checksum: 0x42ad,
	},
	"v3-ipv4-frr": {
		Version: 3, VRID: 51, Priority: 150, Interval: time.Second,
		Addrs: []netip.Addr{vip4}, Src: v4Src, Dst: GroupV4, Mode: ChecksumPseudoHeader, Checksum: 0x42ad,
	},
	"v3-ipv4-rfc9568": {
		Version: 3, VRID: 51, Priority: 150, Interval: time.Second,
		Addrs: []netip.Addr{vip4}, Src: v4Src, Dst: GroupV4, Mode: ChecksumRFC9568, Checksum: 0x2da0,
	},
	"v3-ipv4-prio0": {
		Version: 3, VRID: 51, Priority: 0, Interval: time.Second,
		Addrs: []netip.Addr{vip4}, Src: v4Src, Dst: GroupV4, Mode: ChecksumPseudoHeader, Checksum: 0xd8ad,
	},
	"v3-ipv4-multi": {
		Version: 3, VRID: 7, Priority: 200, Interval: 250 * time.Millisecond,
		Addrs: []netip.Addr{vip4, netip.MustParseAddr("10.99.0.101"), netip.MustParseAddr("10.99.0.102")},
		Src:   v4Src, Dst: GroupV4, Mode: ChecksumPseudoHeader, Checksum: 0xfb88,
	},
	"v3-ipv6": {
		Version: 3, VRID: 51, Priority: 150, Interval: time.Second,
		Addrs: []netip.Addr{vip6}, Src: v6Src, Dst: GroupV6, Checksum: 0xde14,
	},
	"v3-ipv6-prio0": {
		Version: 3, VRID: 51, Priority: 0, Interval: time.Second,
		Addrs: []netip.Addr{vip6}, Src: v6Src, Dst: GroupV6, Checksum: 0x7415,
	},
	"v3-ipv6-multi": {
		Version: 3, VRID: 7, Priority: 200, Interval: 250 * time.Millisecond,
		Addrs: []netip.Addr{netip.MustParseAddr("fe80::7"), vip6, netip.MustParseAddr("fd00:99::101")},
		Src:   v6Src, Dst: GroupV6, Checksum: 0xaf46,
	},
	"v2-ipv4-noauth": {
		Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
		Addrs: []netip.Addr{vip4}, Src: v4Src, Dst: GroupV4, Checksum: 0x3e03,
	},
	"v2-ipv4-secret": {
		Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
		AuthType: 1, AuthData: [8]byte{'s', 'e', 'c', 'r', 'e', 't'},
		Addrs: []netip.Addr{vip4}, Src: v4Src, Dst: GroupV4, Checksum: 0x00b7,
	},
}

func TestFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.hex")
	if len(files) != len(fixtureAdverts) {
		t.Errorf("%d fixture files, %d expectations", len(files), len(fixtureAdverts))
	}
	for name, want := range fixtureAdverts {
		t.Run(name, func(t *testing.T) {
			fx := readFixture(t, name)
			got := Advert{Src: fx.src, Dst: fx.dst, Mode: fx.mode}
			if err := got.UnmarshalBinary(fx.payload); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("UnmarshalBinary:\n got %+v\nwant %+v", got, want)
			}

			re := got
			re.Checksum = 0
			b, err := re.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(b, fx.payload) {
				t.Errorf("MarshalBinary:\n got %x\nwant %x", b, fx.payload)
			}
			if re.Checksum != want.Checksum {
				t.Errorf("MarshalBinary set Checksum %#04x, want %#04x", re.Checksum, want.Checksum)
			}

			// The same fields built by hand marshal to the same bytes.
			w := want
			b, err = w.MarshalBinary()
			if err != nil || !bytes.Equal(b, fx.payload) {
				t.Errorf("MarshalBinary of the expected Advert: %x, %v", b, err)
			}
		})
	}
}

// TestFixturesOtherMode: a VRRPv3-over-IPv4 packet checked with the other
// checksum mode fails, and the error names the mode that would verify.
func TestFixturesOtherMode(t *testing.T) {
	for _, name := range []string{"v3-ipv4-pseudoheader", "v3-ipv4-rfc9568", "v3-ipv4-prio0", "v3-ipv4-multi"} {
		fx := readFixture(t, name)
		a := Advert{Src: fx.src, Dst: fx.dst, Mode: ChecksumRFC9568 - fx.mode}
		err := a.UnmarshalBinary(fx.payload)
		if !errors.Is(err, ErrChecksum) {
			t.Errorf("%s in mode %v: %v, want ErrChecksum", name, a.Mode, err)
			continue
		}
		if want := "the sender uses mode " + fx.mode.String(); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not say %q", name, err, want)
		}
	}
	// Mode does not matter for version 2 and IPv6.
	for _, name := range []string{"v2-ipv4-noauth", "v2-ipv4-secret", "v3-ipv6"} {
		fx := readFixture(t, name)
		a := Advert{Src: fx.src, Dst: fx.dst, Mode: ChecksumRFC9568}
		if err := a.UnmarshalBinary(fx.payload); err != nil {
			t.Errorf("%s with mode rfc9568: %v", name, err)
		}
	}
}

func addrs4(n int) []netip.Addr {
	as := make([]netip.Addr, n)
	for i := range as {
		as[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	}
	return as
}

func addrs6(n int) []netip.Addr {
	as := make([]netip.Addr, n)
	for i := range as {
		as[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
	}
	return as
}

func TestRoundTrip(t *testing.T) {
	v4 := func(mode ChecksumMode) Advert {
		return Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs4(1), Src: v4Src, Dst: GroupV4, Mode: mode}
	}
	for _, tc := range []struct {
		name string
		a    Advert
		len  int
	}{
		{"v3 ipv4 pseudo-header", v4(ChecksumPseudoHeader), 12},
		{"v3 ipv4 rfc9568", v4(ChecksumRFC9568), 12},
		{"v3 ipv4 rfc9568 without src and dst", Advert{Version: 3, VRID: 9, Priority: 1, Interval: 10 * time.Millisecond, Addrs: addrs4(2), Mode: ChecksumRFC9568}, 16},
		{"v3 ipv4 unicast", Advert{Version: 3, VRID: 200, Priority: 254, Interval: 40950 * time.Millisecond, Addrs: addrs4(3), Src: v4Src, Dst: netip.MustParseAddr("10.99.0.2")}, 20},
		{"v3 ipv4 255 addresses", Advert{Version: 3, VRID: 255, Priority: 255, Interval: 1230 * time.Millisecond, Addrs: addrs4(255), Src: v4Src, Dst: GroupV4}, 8 + 255*4},
		{"v3 ipv6", Advert{Version: 3, VRID: 1, Priority: 0, Interval: 100 * time.Millisecond, Addrs: addrs6(1), Src: v6Src, Dst: GroupV6}, 24},
		{"v3 ipv6 rfc9568 mode", Advert{Version: 3, VRID: 1, Priority: 10, Interval: time.Second, Addrs: addrs6(2), Src: v6Src, Dst: GroupV6, Mode: ChecksumRFC9568}, 40},
		{"v3 ipv6 255 addresses", Advert{Version: 3, VRID: 4, Priority: 4, Interval: 40950 * time.Millisecond, Addrs: addrs6(255), Src: v6Src, Dst: GroupV6}, 8 + 255*16},
		{"v2", Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs4(1), Src: v4Src, Dst: GroupV4}, 20},
		{"v2 without src and dst", Advert{Version: 2, VRID: 1, Priority: 100, Interval: 255 * time.Second, Addrs: addrs4(4)}, 32},
		{"v2 password", Advert{Version: 2, VRID: 2, Priority: 255, Interval: 3 * time.Second, AuthType: 1, AuthData: [8]byte{'p', 'a', 's', 's', 'w', 'o', 'r', 'd'}, Addrs: addrs4(2), Src: v4Src, Dst: GroupV4}, 24},
		{"v2 255 addresses", Advert{Version: 2, VRID: 3, Priority: 0, Interval: 10 * time.Second, Addrs: addrs4(255), Src: v4Src, Dst: GroupV4}, 8 + 255*4 + 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			b, err := a.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if len(b) != tc.len {
				t.Errorf("length %d, want %d", len(b), tc.len)
			}
			if a.Checksum != binary.BigEndian.Uint16(b[6:]) {
				t.Errorf("Checksum field %#04x, bytes %x", a.Checksum, b[6:8])
			}
			got := Advert{Src: a.Src, Dst: a.Dst, Mode: a.Mode}
			noSrc := a.Version == 3 && !a.Src.IsValid()
			if noSrc {
				got.Src = v4Src // parsing version 3 needs the family
			}
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if noSrc {
				got.Src = netip.Addr{}
			}
			if !reflect.DeepEqual(got, a) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, a)
			}
		})
	}
}

func TestAppendBinary(t *testing.T) {
	a := fixtureAdverts["v3-ipv4-pseudoheader"]
	want, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix")
	b, err := a.AppendBinary(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:len(prefix)], prefix) || !bytes.Equal(b[len(prefix):], want) {
		t.Errorf("AppendBinary = %x, want %x + %x", b, prefix, want)
	}
	a.VRID = 0
	b, err = a.AppendBinary(prefix)
	if err == nil || !bytes.Equal(b, prefix) {
		t.Errorf("AppendBinary of an invalid advert = %q, %v; want the input and an error", b, err)
	}
}

// IPv4-mapped addresses count as IPv4: net.IP values often come in 16 bytes.
func TestMappedAddresses(t *testing.T) {
	a := fixtureAdverts["v3-ipv4-pseudoheader"]
	want, _ := a.MarshalBinary()
	m := a
	m.Src = netip.AddrFrom16(a.Src.As16())
	m.Dst = netip.AddrFrom16(a.Dst.As16())
	m.Addrs = []netip.Addr{netip.AddrFrom16(vip4.As16())}
	b, err := m.MarshalBinary()
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("mapped: %x, %v; want %x", b, err, want)
	}
	got := Advert{Src: m.Src, Dst: m.Dst}
	if err := got.UnmarshalBinary(want); err != nil {
		t.Fatalf("UnmarshalBinary with mapped src/dst: %v", err)
	}
	if got.Addrs[0] != vip4 {
		t.Errorf("address %v, want %v", got.Addrs[0], vip4)
	}
	// A zone on a link-local source changes nothing.
	fx := readFixture(t, "v3-ipv6")
	z := Advert{Src: fx.src.WithZone("eth0"), Dst: fx.dst}
	if err := z.UnmarshalBinary(fx.payload); err != nil {
		t.Errorf("zoned source: %v", err)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	fix := func(name string) fixture { return readFixture(t, name) }
	v3 := fix("v3-ipv4-pseudoheader")
	v6 := fix("v3-ipv6")
	v2 := fix("v2-ipv4-noauth")
	v3multi := fix("v3-ipv4-multi")

	// edit copies b, applies f and, unless keep, fixes the checksum so that
	// only the edit is wrong.
	edit := func(fx fixture, keep bool, f func([]byte) []byte) []byte {
		b := f(append([]byte(nil), fx.payload...))
		if !keep && len(b) >= 8 {
			a := Advert{Version: b[0] >> 4, Src: fx.src, Dst: fx.dst, Mode: fx.mode}
			b[6], b[7] = 0, 0
			binary.BigEndian.PutUint16(b[6:], a.checksum(b, fx.src.Is6()))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		fx   fixture
		b    []byte
		ctx  func(*Advert) // changes the context before parsing
		want error
	}{
		{"empty", v3, nil, nil, ErrTruncated},
		{"truncated header", v3, v3.payload[:7], nil, ErrTruncated},
		{"truncated address v3 ipv4", v3, v3.payload[:10], nil, ErrTruncated},
		{"truncated address v3 ipv6", v6, v6.payload[:23], nil, ErrTruncated},
		{"truncated auth data v2", v2, v2.payload[:19], nil, ErrTruncated},
		{"missing auth data v2", v2, v2.payload[:12], nil, ErrTruncated},
		{"count says more addresses than sent", v3, edit(v3, false, func(b []byte) []byte { b[3] = 2; return b }), nil, ErrTruncated},
		{"count says fewer addresses than sent", v3multi, edit(v3multi, false, func(b []byte) []byte { b[3] = 2; return b }), nil, ErrAddrCount},
		{"trailing byte", v3, edit(v3, false, func(b []byte) []byte { return append(b, 0) }), nil, ErrAddrCount},
		{"trailing bytes v2", v2, edit(v2, false, func(b []byte) []byte { return append(b, 0, 0, 0, 0) }), nil, ErrAddrCount},
		{"count 0", v3, edit(v3, false, func(b []byte) []byte { b[3] = 0; return b[:8] }), nil, ErrAddrCount},
		{"count 0 v2", v2, edit(v2, false, func(b []byte) []byte { b[3] = 0; return append(b[:8], b[12:]...) }), nil, ErrAddrCount},
		{"ipv6 packet parsed as ipv4", v6, v6.payload, func(a *Advert) { a.Src, a.Dst = v4Src, GroupV4 }, ErrAddrCount},
		{"ipv4 packet parsed as ipv6", v3, v3.payload, func(a *Advert) { a.Src, a.Dst = v6Src, GroupV6 }, ErrTruncated},
		{"version 1", v3, edit(v3, false, func(b []byte) []byte { b[0] = 0x11; return b }), nil, ErrVersion},
		{"version 4", v3, edit(v3, false, func(b []byte) []byte { b[0] = 0x41; return b }), nil, ErrVersion},
		{"version 0", v3, edit(v3, false, func(b []byte) []byte { b[0] = 0x01; return b }), nil, ErrVersion},
		{"type 2", v3, edit(v3, false, func(b []byte) []byte { b[0] = 0x32; return b }), nil, ErrType},
		{"type 0 v2", v2, edit(v2, false, func(b []byte) []byte { b[0] = 0x20; return b }), nil, ErrType},
		{"bad checksum v3 ipv4", v3, edit(v3, true, func(b []byte) []byte { b[7] ^= 1; return b }), nil, ErrChecksum},
		{"bad checksum v3 ipv6", v6, edit(v6, true, func(b []byte) []byte { b[7] ^= 1; return b }), nil, ErrChecksum},
		{"bad checksum v2", v2, edit(v2, true, func(b []byte) []byte { b[7] ^= 1; return b }), nil, ErrChecksum},
		{"priority changed, checksum not", v3, edit(v3, true, func(b []byte) []byte { b[2] = 1; return b }), nil, ErrChecksum},
		{"auth data changed, checksum not", v2, edit(v2, true, func(b []byte) []byte { b[19] = 'x'; return b }), nil, ErrChecksum},
		{"v3 ipv4 in the other mode", v3, v3.payload, func(a *Advert) { a.Mode = ChecksumRFC9568 }, ErrChecksum},
		{"v3 ipv4 from another source", v3, v3.payload, func(a *Advert) { a.Src = netip.MustParseAddr("10.99.0.2") }, ErrChecksum},
		{"v3 ipv4 to another destination", v3, v3.payload, func(a *Advert) { a.Dst = netip.MustParseAddr("10.99.0.2") }, ErrChecksum},
		{"v3 ipv6 from another source", v6, v6.payload, func(a *Advert) { a.Src = netip.MustParseAddr("fe80::1") }, ErrChecksum},
		{"VRID 0", v3, edit(v3, false, func(b []byte) []byte { b[1] = 0; return b }), nil, ErrInvalid},
		{"VRID 0, checksum not fixed", v3, edit(v3, true, func(b []byte) []byte { b[1] = 0; return b }), nil, ErrChecksum},
		{"v3 reserved bits", v3, edit(v3, false, func(b []byte) []byte { b[4] |= 0x10; return b }), nil, ErrInvalid},
		{"v3 interval 0", v3, edit(v3, false, func(b []byte) []byte { b[4], b[5] = 0, 0; return b }), nil, ErrInvalid},
		{"v2 interval 0", v2, edit(v2, false, func(b []byte) []byte { b[5] = 0; return b }), nil, ErrInvalid},
		{"v3 without src", v3, v3.payload, func(a *Advert) { a.Src = netip.Addr{} }, ErrInvalid},
		{"v3 ipv4 without dst", v3, v3.payload, func(a *Advert) { a.Dst = netip.Addr{} }, ErrInvalid},
		{"v3 ipv6 without dst", v6, v6.payload, func(a *Advert) { a.Dst = netip.Addr{} }, ErrInvalid},
		{"src and dst families differ", v3, v3.payload, func(a *Advert) { a.Dst = GroupV6 }, ErrInvalid},
		{"v2 over ipv6", v2, v2.payload, func(a *Advert) { a.Src, a.Dst = v6Src, GroupV6 }, ErrInvalid},
		{"unknown checksum mode", v3, v3.payload, func(a *Advert) { a.Mode = 2 }, ErrInvalid},
		{"v3 ipv4 rfc9568 mode without dst", v3, v3.payload, func(a *Advert) { a.Mode, a.Dst = ChecksumRFC9568, netip.Addr{} }, ErrChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Advert{Src: tc.fx.src, Dst: tc.fx.dst, Mode: tc.fx.mode}
			if tc.ctx != nil {
				tc.ctx(&a)
			}
			before := a
			err := a.UnmarshalBinary(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("UnmarshalBinary(%x) = %v, want %v", tc.b, err, tc.want)
			}
			if !reflect.DeepEqual(a, before) {
				t.Errorf("failed UnmarshalBinary changed the Advert: %+v", a)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	v3 := func(f func(*Advert)) Advert {
		a := Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs4(1), Src: v4Src, Dst: GroupV4}
		f(&a)
		return a
	}
	v2 := func(f func(*Advert)) Advert {
		a := Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs4(1)}
		f(&a)
		return a
	}
	for _, tc := range []struct {
		name string
		a    Advert
		want error
	}{
		{"version 0", v3(func(a *Advert) { a.Version = 0 }), ErrVersion},
		{"version 4", v3(func(a *Advert) { a.Version = 4 }), ErrVersion},
		{"VRID 0", v3(func(a *Advert) { a.VRID = 0 }), ErrInvalid},
		{"no addresses", v3(func(a *Advert) { a.Addrs = nil }), ErrAddrCount},
		{"256 addresses", v3(func(a *Advert) { a.Addrs = addrs4(256) }), ErrAddrCount},
		{"v2 256 addresses", v2(func(a *Advert) { a.Addrs = addrs4(256) }), ErrAddrCount},
		{"unset address", v3(func(a *Advert) { a.Addrs = []netip.Addr{vip4, {}} }), ErrInvalid},
		{"mixed families", v3(func(a *Advert) { a.Addrs = []netip.Addr{vip4, vip6} }), ErrInvalid},
		{"mixed families v6 first", v3(func(a *Advert) { a.Addrs = []netip.Addr{vip6, vip4}; a.Src, a.Dst = v6Src, GroupV6 }), ErrInvalid},
		{"v2 ipv6 address", v2(func(a *Advert) { a.Addrs = addrs6(1) }), ErrInvalid},
		{"v2 ipv6 context", v2(func(a *Advert) { a.Src, a.Dst = v6Src, GroupV6 }), ErrInvalid},
		{"v3 ipv6 addresses, ipv4 source", v3(func(a *Advert) { a.Addrs = addrs6(1) }), ErrInvalid},
		{"v3 ipv4 addresses, ipv6 context", v3(func(a *Advert) { a.Src, a.Dst = v6Src, GroupV6 }), ErrInvalid},
		{"v3 ipv4 pseudo-header without src", v3(func(a *Advert) { a.Src = netip.Addr{} }), ErrInvalid},
		{"v3 ipv4 pseudo-header without dst", v3(func(a *Advert) { a.Dst = netip.Addr{} }), ErrInvalid},
		{"v3 ipv6 without src", v3(func(a *Advert) { a.Addrs = addrs6(1); a.Src, a.Dst = netip.Addr{}, GroupV6 }), ErrInvalid},
		{"v3 ipv6 without dst", v3(func(a *Advert) { a.Addrs = addrs6(1); a.Src, a.Dst = v6Src, netip.Addr{} }), ErrInvalid},
		{"v3 auth type", v3(func(a *Advert) { a.AuthType = 1 }), ErrInvalid},
		{"v3 auth data", v3(func(a *Advert) { a.AuthData[7] = 1 }), ErrInvalid},
		{"unknown checksum mode", v3(func(a *Advert) { a.Mode = 2 }), ErrInvalid},
		{"unknown checksum mode v2", v2(func(a *Advert) { a.Mode = 7 }), ErrInvalid},
		// Intervals: version 2 carries whole seconds 1..255, version 3
		// centiseconds 1..4095.
		{"v2 interval 0", v2(func(a *Advert) { a.Interval = 0 }), ErrInvalid},
		{"v2 interval negative", v2(func(a *Advert) { a.Interval = -time.Second }), ErrInvalid},
		{"v2 interval 500ms", v2(func(a *Advert) { a.Interval = 500 * time.Millisecond }), ErrInvalid},
		{"v2 interval 1.5s", v2(func(a *Advert) { a.Interval = 1500 * time.Millisecond }), ErrInvalid},
		{"v2 interval 256s", v2(func(a *Advert) { a.Interval = 256 * time.Second }), ErrInvalid},
		{"v3 interval 0", v3(func(a *Advert) { a.Interval = 0 }), ErrInvalid},
		{"v3 interval 5ms", v3(func(a *Advert) { a.Interval = 5 * time.Millisecond }), ErrInvalid},
		{"v3 interval 15ms", v3(func(a *Advert) { a.Interval = 15 * time.Millisecond }), ErrInvalid},
		{"v3 interval 1s+1ns", v3(func(a *Advert) { a.Interval = time.Second + 1 }), ErrInvalid},
		{"v3 interval 40.96s", v3(func(a *Advert) { a.Interval = 40960 * time.Millisecond }), ErrInvalid},
		{"v3 interval 1m", v3(func(a *Advert) { a.Interval = time.Minute }), ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			a.Checksum = 0xbeef
			b, err := a.MarshalBinary()
			if !errors.Is(err, tc.want) {
				t.Fatalf("MarshalBinary = %x, %v; want %v", b, err, tc.want)
			}
			if a.Checksum != 0xbeef {
				t.Errorf("failed MarshalBinary set Checksum")
			}
		})
	}
	// The limits themselves are fine.
	for _, a := range []Advert{
		v2(func(a *Advert) { a.Interval = time.Second }),
		v2(func(a *Advert) { a.Interval = 255 * time.Second }),
		v3(func(a *Advert) { a.Interval = 10 * time.Millisecond }),
		v3(func(a *Advert) { a.Interval = 40950 * time.Millisecond }),
		v3(func(a *Advert) { a.Addrs = addrs4(255) }),
	} {
		if _, err := a.MarshalBinary(); err != nil {
			t.Errorf("interval %v, %d addresses: %v", a.Interval, len(a.Addrs), err)
		}
	}
}

// TestGopacketDecodesV2: gopacket's VRRPv2 layer reads what we send.
func TestGopacketDecodesV2(t *testing.T) {
	for _, a := range []Advert{
		fixtureAdverts["v2-ipv4-noauth"],
		fixtureAdverts["v2-ipv4-secret"],
		{Version: 2, VRID: 200, Priority: 255, Interval: 17 * time.Second, Addrs: addrs4(5), Src: v4Src, Dst: GroupV4},
	} {
		t.Run(fmt.Sprintf("vrid %d auth %d", a.VRID, a.AuthType), func(t *testing.T) {
			b, err := a.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			// As gopacket sees it on the wire: inside an IPv4 packet.
			ip := &layers.IPv4{Version: 4, TTL: 255, Protocol: layers.IPProtocolVRRP, SrcIP: a.Src.AsSlice(), DstIP: a.Dst.AsSlice()}
			buf := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload(b)); err != nil {
				t.Fatal(err)
			}
			p := gopacket.NewPacket(buf.Bytes(), layers.LayerTypeIPv4, gopacket.Default)
			if el := p.ErrorLayer(); el != nil {
				t.Fatalf("gopacket: %v", el.Error())
			}
			v, ok := p.Layer(layers.LayerTypeVRRP).(*layers.VRRPv2)
			if !ok {
				t.Fatalf("no VRRP layer in %v", p)
			}
			var ips []net.IP
			for _, x := range a.Addrs {
				ips = append(ips, x.AsSlice())
			}
			if v.Version != 2 || v.Type != layers.VRRPv2Advertisement || v.VirtualRtrID != a.VRID ||
				v.Priority != a.Priority || int(v.CountIPAddr) != len(a.Addrs) || uint8(v.AuthType) != a.AuthType ||
				time.Duration(v.AdverInt)*time.Second != a.Interval || v.Checksum != a.Checksum ||
				!reflect.DeepEqual(v.IPAddress, ips) {
				t.Errorf("gopacket decoded %+v from %+v", v, a)
			}
		})
	}
}

// TestChecksum checks the Internet checksum helper on RFC 1071's example and
// against gopacket's UDP checksums over IPv4 and IPv6.
func TestChecksum(t *testing.T) {
	// RFC 1071 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
	rfc := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := finish(onesSum(0, rfc)); got != ^uint16(0xddf2) {
		t.Errorf("RFC 1071 example: %#04x, want %#04x", got, ^uint16(0xddf2))
	}
	// Odd lengths pad with a zero byte; long input carries correctly.
	if got, want := finish(onesSum(0, []byte{0x12, 0x34, 0x56})), finish(onesSum(0, []byte{0x12, 0x34, 0x56, 0x00})); got != want {
		t.Errorf("odd length: %#04x, want %#04x", got, want)
	}
	big := bytes.Repeat([]byte{0xff}, 1<<17)
	if got := finish(onesSum(0, big)); got != 0 {
		t.Errorf("all ones: %#04x, want 0", got)
	}

	for _, pair := range [][2]string{{"192.0.2.1", "198.51.100.7"}, {"2001:db8::1", "ff02::1:ff00:1"}} {
		src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		for _, size := range []int{0, 1, 7, 100} {
			udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
			var ip gopacket.NetworkLayer
			if src.Is4() {
				ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
			} else {
				ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
			}
			if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			buf := gopacket.NewSerializeBuffer()
			payload := bytes.Repeat([]byte{0xa5}, size)
			if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, udp, gopacket.Payload(payload)); err != nil {
				t.Fatal(err)
			}
			seg := buf.Bytes()
			if got := finish(onesSum(pseudoHeaderSum(src, dst, uint8(layers.IPProtocolUDP), len(seg)), seg)); got != 0 {
				t.Errorf("UDP %v > %v, %d bytes: gopacket's checksum %#04x does not verify (%#04x)", src, dst, size, udp.Checksum, got)
			}
		}
	}
}

func TestChecksumModeString(t *testing.T) {
	for m, want := range map[ChecksumMode]string{ChecksumPseudoHeader: "pseudo-header", ChecksumRFC9568: "rfc9568", 9: "ChecksumMode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("%d: %q, want %q", m, got, want)
		}
	}
}
