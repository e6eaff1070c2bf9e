package notifydup

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
	"golang.org/x/net/bpf"
)

// Addresses of the tests and of the captured fixtures (testdata/capture).
var (
	testPrimary4 = netip.MustParseAddr("192.0.2.1")
	testPrimary6 = netip.MustParseAddr("2001:db8::1")
	testVIP4     = netip.MustParseAddr("192.0.2.53")
	testVIP6     = netip.MustParseAddr("2001:db8::53")
	testVIPs     = []netip.Addr{testVIP4, testVIP6}
)

// skb->pkt_type values (linux/if_packet.h).
const (
	pktHost      = 0
	pktBroadcast = 1
	pktMulticast = 2
	pktOtherHost = 3
	pktOutgoing  = 4
	pktLoopback  = 5
)

// filterVM returns x/net/bpf's VM running Filter(vips) as assembled, with
// the two loads the VM cannot do (SKF_AD_PKTTYPE, SKF_AD_VLAN_TAG_PRESENT)
// replaced by loads of the constants pktType and vlanPresent: the same
// instruction count, so every jump lands where it does in the kernel.
func filterVM(t testing.TB, vips []netip.Addr, pktType, vlanPresent uint32) *bpf.VM {
	t.Helper()
	raw, err := Filter(vips)
	if err != nil {
		t.Fatalf("Filter(%v): %v", vips, err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("Filter(%v): program does not disassemble: %v", vips, prog)
	}
	seen := map[bpf.Extension]int{}
	for i, ins := range prog {
		ext, ok := ins.(bpf.LoadExtension)
		if !ok {
			continue
		}
		seen[ext.Num]++
		switch ext.Num {
		case bpf.ExtType:
			prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: pktType}
		case bpf.ExtVLANTagPresent:
			prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: vlanPresent}
		default:
			t.Fatalf("instruction %d: unexpected extension load %v", i, ext)
		}
	}
	if seen[bpf.ExtType] != 1 || seen[bpf.ExtVLANTagPresent] != 1 {
		t.Fatalf("extension loads %v, want one pkttype and one VLAN-tag-present", seen)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("bpf.NewVM: %v", err)
	}
	return vm
}

// runFilter runs vm over frame and reports whether the frame passed; a
// passing frame must be kept whole.
func runFilter(t testing.TB, vm *bpf.VM, frame []byte) bool {
	t.Helper()
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatalf("vm.Run(%x): %v", frame, err)
	}
	switch n {
	case 0:
		return false
	case filterSnapLen:
		if n < len(frame) {
			t.Fatalf("filter keeps %d bytes of a %d-byte frame", n, len(frame))
		}
		return true
	}
	t.Fatalf("filter returned %d, want 0 or %d", n, filterSnapLen)
	return false
}

// testFrame describes an Ethernet frame for the tests; build makes it
// with gopacket, lengths and checksums computed.
type testFrame struct {
	src, dst     netip.Addr
	sport, dport uint16
	tcp          bool
	vlan         uint16 // an 802.1Q tag in the frame, if non-zero
	ip4Options   []layers.IPv4Option
	ip4Flags     layers.IPv4Flag
	ip4FragOff   uint16
	payload      []byte
}

// udpFrame is a frame from testPrimary4/6 port 40000 to dst port 53.
func udpFrame(dst netip.Addr, payload []byte) testFrame {
	src := testPrimary4
	if dst.Is6() {
		src = testPrimary6
	}
	return testFrame{src: src, dst: dst, sport: 40000, dport: 53, payload: payload}
}

var (
	testMACVIP     = net.HardwareAddr{0x02, 0, 0x5e, 0, 0, 0x53}
	testMACPrimary = net.HardwareAddr{0x02, 0, 0x5e, 0, 0, 0x01}
)

func (f testFrame) build(t testing.TB) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: testMACPrimary, DstMAC: testMACVIP}
	ls := []gopacket.SerializableLayer{eth}
	ipType := layers.EthernetTypeIPv4
	if f.dst.Is6() {
		ipType = layers.EthernetTypeIPv6
	}
	if f.vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: f.vlan, Type: ipType})
	} else {
		eth.EthernetType = ipType
	}
	proto := layers.IPProtocolUDP
	if f.tcp {
		proto = layers.IPProtocolTCP
	}
	var ip gopacket.NetworkLayer
	if f.dst.Is4() {
		ip = &layers.IPv4{
			Version: 4, TTL: 64, Protocol: proto, Id: 1,
			Flags: f.ip4Flags, FragOffset: f.ip4FragOff, Options: f.ip4Options,
			SrcIP: f.src.AsSlice(), DstIP: f.dst.AsSlice(),
		}
	} else {
		ip = &layers.IPv6{
			Version: 6, HopLimit: 64, NextHeader: proto,
			SrcIP: f.src.AsSlice(), DstIP: f.dst.AsSlice(),
		}
	}
	ls = append(ls, ip.(gopacket.SerializableLayer))
	if f.tcp {
		tcp := &layers.TCP{
			SrcPort: layers.TCPPort(f.sport), DstPort: layers.TCPPort(f.dport),
			Seq: 1, Ack: 1, ACK: true, PSH: true, Window: 1024,
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		msg := binary.BigEndian.AppendUint16(nil, uint16(len(f.payload)))
		ls = append(ls, tcp, gopacket.Payload(append(msg, f.payload...)))
	} else {
		udp := &layers.UDP{SrcPort: layers.UDPPort(f.sport), DstPort: layers.UDPPort(f.dport)}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, udp, gopacket.Payload(f.payload))
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serializing %+v: %v", f, err)
	}
	return buf.Bytes()
}

// withIPv6Ext inserts the 8-byte extension header ext of type nh between
// the IPv6 header and the UDP header of an untagged frame.
func withIPv6Ext(t testing.TB, frame []byte, nh byte, ext []byte) []byte {
	t.Helper()
	if len(ext) != 8 || binary.BigEndian.Uint16(frame[12:]) != 0x86dd {
		t.Fatalf("withIPv6Ext: bad use")
	}
	ext = append([]byte{frame[offIPv6Next]}, ext[1:]...)
	out := append(append(append([]byte(nil), frame[:offIPv6UDP]...), ext...), frame[offIPv6UDP:]...)
	out[offIPv6Next] = nh
	binary.BigEndian.PutUint16(out[offIPv6+4:], binary.BigEndian.Uint16(frame[offIPv6+4:])+8)
	return out
}

var (
	// IPv6 hop-by-hop header: Router Alert (RFC 2711), PadN.
	hopByHopRouterAlert = []byte{0, 0, 5, 2, 0, 0, 1, 0}
	// IPv6 fragment header: offset 0, M=0 (an atomic fragment, RFC 6946).
	fragmentAtomic = []byte{0, 0, 0, 0, 0, 0, 0x12, 0x34}
)

// notifyMsg is a NOTIFY for zone from miekg/dns, with the SOA (serial) in
// the answer section if soa; edit may change it before packing.
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

func TestFilter(t *testing.T) {
	notify := notifyMsg(t, "example.test.", true, 2024061501, nil)
	query := notifyMsg(t, "example.test.", false, 0, func(m *dns.Msg) { m.Opcode = dns.OpcodeQuery })
	rrOption := layers.IPv4Option{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}} // Router Alert
	recordRoute := layers.IPv4Option{OptionType: 7, OptionLength: 39, OptionData: append([]byte{4}, make([]byte, 36)...)}
	eol := layers.IPv4Option{OptionType: 0, OptionLength: 1}

	v4 := udpFrame(testVIP4, notify)
	v6 := udpFrame(testVIP6, notify)
	with := func(f testFrame, edit func(*testFrame)) testFrame { edit(&f); return f }
	ihl := func(frame []byte, n byte) []byte {
		frame = append([]byte(nil), frame...)
		frame[offIPv4] = 0x40 | n
		return frame
	}

	tests := []struct {
		name  string
		frame []byte
		vips  []netip.Addr // testVIPs if nil
		pass  bool
	}{
		{"NOTIFY to the IPv4 VIP", v4.build(t), nil, true},
		{"NOTIFY to the IPv6 VIP", v6.build(t), nil, true},
		{"NOTIFY with AA RD TC", udpFrame(testVIP4, setFlags(notify, 0x27)).build(t), nil, true},
		{"NOTIFY, IPv4 DF set", with(v4, func(f *testFrame) { f.ip4Flags = layers.IPv4DontFragment }).build(t), nil, true},
		{"NOTIFY, IPv4 options (IHL 6)", with(v4, func(f *testFrame) { f.ip4Options = []layers.IPv4Option{rrOption} }).build(t), nil, true},
		{"NOTIFY, IPv4 options (IHL 15)", with(v4, func(f *testFrame) { f.ip4Options = []layers.IPv4Option{recordRoute, eol} }).build(t), nil, true},
		{"NOTIFY from port 53", with(v4, func(f *testFrame) { f.sport = 53 }).build(t), nil, true},
		{"NOTIFY, IPv4 VIP among 16", v4.build(t), manyVIPs(16, 16), true},
		{"NOTIFY, IPv6 VIP among 16", udpFrame(netip.MustParseAddr("2001:db8:53::f"), notify).build(t), manyVIPs(16, 16), true},
		{"NOTIFY, IPv4 VIP given as IPv4-mapped IPv6", v4.build(t), []netip.Addr{netip.AddrFrom16(testVIP4.As16())}, true},
		{"NOTIFY, IPv6 VIP given with a zone", v6.build(t), []netip.Addr{testVIP6.WithZone("eth0")}, true},

		{"query to the VIP", udpFrame(testVIP4, query).build(t), nil, false},
		{"NOTIFY response (QR=1)", udpFrame(testVIP4, setFlags(notify, 0xa4)).build(t), nil, false},
		{"NOTIFY response over IPv6", udpFrame(testVIP6, setFlags(notify, 0xa4)).build(t), nil, false},
		{"UPDATE (opcode 5)", udpFrame(testVIP4, setFlags(notify, 5<<3)).build(t), nil, false},
		{"opcode 12", udpFrame(testVIP4, setFlags(notify, 12<<3)).build(t), nil, false},
		{"NOTIFY to another IPv4 address", udpFrame(netip.MustParseAddr("192.0.2.54"), notify).build(t), nil, false},
		{"NOTIFY to another IPv6 address (last word)", udpFrame(netip.MustParseAddr("2001:db8::54"), notify).build(t), nil, false},
		{"NOTIFY to another IPv6 address (first word)", udpFrame(netip.MustParseAddr("2001:db9::53"), notify).build(t), nil, false},
		{"NOTIFY to another IPv4 address among 16", udpFrame(netip.MustParseAddr("192.0.2.54"), notify).build(t), manyVIPs(16, 16), false},
		{"NOTIFY to another IPv6 address among 16", udpFrame(netip.MustParseAddr("2001:db8:53::11"), notify).build(t), manyVIPs(16, 16), false},
		{"IPv6 NOTIFY, IPv4 VIPs only", v6.build(t), []netip.Addr{testVIP4}, false},
		{"IPv4 NOTIFY, IPv6 VIPs only", v4.build(t), []netip.Addr{testVIP6}, false},
		{"NOTIFY to port 5353", with(v4, func(f *testFrame) { f.dport = 5353 }).build(t), nil, false},
		{"NOTIFY from port 53 to 5353", with(v4, func(f *testFrame) { f.sport, f.dport = 53, 5353 }).build(t), nil, false},
		{"NOTIFY over TCP", with(v4, func(f *testFrame) { f.tcp = true }).build(t), nil, false},
		{"NOTIFY over TCP, IPv6", with(v6, func(f *testFrame) { f.tcp = true }).build(t), nil, false},
		{"IPv4 fragment, MF set", with(v4, func(f *testFrame) { f.ip4Flags = layers.IPv4MoreFragments }).build(t), nil, false},
		{"IPv4 fragment, offset 185", with(v4, func(f *testFrame) { f.ip4FragOff = 185 }).build(t), nil, false},
		{"IPv4 fragment, offset 1 and DF", with(v4, func(f *testFrame) { f.ip4FragOff, f.ip4Flags = 1, layers.IPv4DontFragment }).build(t), nil, false},
		{"IPv6 hop-by-hop header", withIPv6Ext(t, v6.build(t), 0, hopByHopRouterAlert), nil, false},
		{"IPv6 fragment header", withIPv6Ext(t, v6.build(t), 44, fragmentAtomic), nil, false},
		{"IPv4 header length 4", ihl(v4.build(t), 4), nil, false},
		{"IPv4 header length 0", ihl(v4.build(t), 0), nil, false},
		// With IHL 4 the "UDP header" starts 4 bytes early: its port is the
		// low half of the destination 10.0.0.53, its DNS flags byte the
		// high byte of the real UDP checksum, set to 0x20 here.
		{"IPv4 header length 4, looking like a NOTIFY", func() []byte {
			b := ihl(udpFrame(netip.MustParseAddr("10.0.0.53"), notify).build(t), 4)
			b[ethHeaderLen+16+8+2] = dnsNotifyQuery
			return b
		}(), []netip.Addr{netip.MustParseAddr("10.0.0.53")}, false},
		{"IP version 6 in an IPv4 frame", func() []byte { b := v4.build(t); b[offIPv4] = 0x65; return b }(), nil, false},
		{"IP version 4 in an IPv6 frame", func() []byte { b := v6.build(t); b[offIPv6] = 0x40; return b }(), nil, false},
		{"802.1Q-tagged NOTIFY", with(v4, func(f *testFrame) { f.vlan = 10 }).build(t), nil, false},
		{"802.1Q-tagged IPv6 NOTIFY", with(v6, func(f *testFrame) { f.vlan = 10 }).build(t), nil, false},
		{"802.1ad EtherType", func() []byte {
			b := with(v4, func(f *testFrame) { f.vlan = 10 }).build(t)
			b[12], b[13] = 0x88, 0xa8
			return b
		}(), nil, false},
		{"ARP", arpFrame(t), nil, false},
		{"empty", nil, nil, false},
		{"Ethernet header only", v4.build(t)[:ethHeaderLen], nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vips := tc.vips
			if vips == nil {
				vips = testVIPs
			}
			if got := runFilter(t, filterVM(t, vips, pktHost, 0), tc.frame); got != tc.pass {
				t.Errorf("filter passes %x: %t, want %t", tc.frame, got, tc.pass)
			}
		})
	}
}

// TestFilterTruncated: a NOTIFY frame cut anywhere before the end of the
// DNS header is dropped; cut after it, the filter lets it pass (ParseFrame
// rejects it).
func TestFilterTruncated(t *testing.T) {
	notify := notifyMsg(t, "example.test.", true, 1, nil)
	opt := []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	for _, f := range []testFrame{
		udpFrame(testVIP4, notify),
		udpFrame(testVIP6, notify),
		{src: testPrimary4, dst: testVIP4, sport: 1, dport: 53, ip4Options: opt, payload: notify},
	} {
		frame := f.build(t)
		ipLen := 40
		if f.dst.Is4() {
			ipLen = int(frame[offIPv4]&0xf) * 4
		}
		dnsEnd := ethHeaderLen + ipLen + 8 + dnsHeaderLen
		vm := filterVM(t, testVIPs, pktHost, 0)
		for n := range len(frame) + 1 {
			if got, want := runFilter(t, vm, frame[:n]), n >= dnsEnd; got != want {
				t.Errorf("%v: filter passes the first %d bytes: %t, want %t", f.dst, n, got, want)
			}
		}
	}
}

// TestFilterPktType: the emulated pkttype and VLAN-tag-present loads (see
// filterVM); TestFilterAncillaryLoads checks that the real program makes
// them.
func TestFilterPktType(t *testing.T) {
	frames := map[string][]byte{
		"IPv4": udpFrame(testVIP4, notifyMsg(t, "example.test.", true, 1, nil)).build(t),
		"IPv6": udpFrame(testVIP6, notifyMsg(t, "example.test.", true, 1, nil)).build(t),
	}
	for name, frame := range frames {
		for _, tc := range []struct {
			pktType, vlan uint32
			pass          bool
		}{
			{pktHost, 0, true},
			{pktBroadcast, 0, true},
			{pktMulticast, 0, true},
			{pktOtherHost, 0, true},
			{pktLoopback, 0, true},
			{pktOutgoing, 0, false},
			{pktHost, 1, false},
			{pktOutgoing, 1, false},
		} {
			if got := runFilter(t, filterVM(t, testVIPs, tc.pktType, tc.vlan), frame); got != tc.pass {
				t.Errorf("%s NOTIFY, pkttype %d, VLAN tag present %d: passes %t, want %t", name, tc.pktType, tc.vlan, got, tc.pass)
			}
		}
	}
}

// TestFilterAncillaryLoads checks the raw program the kernel gets: it
// starts with the pkttype and VLAN-tag-present loads (SKF_AD_OFF = -0x1000,
// SKF_AD_PKTTYPE = 4, SKF_AD_VLAN_TAG_PRESENT = 48; linux/filter.h) and
// their tests jump to the last instruction, "ret #0".
func TestFilterAncillaryLoads(t *testing.T) {
	for _, vips := range [][]netip.Addr{testVIPs, {testVIP4}, {testVIP6}, manyVIPs(16, 16)} {
		raw, err := Filter(vips)
		if err != nil {
			t.Fatal(err)
		}
		last := len(raw) - 1
		const (
			ldAbsW = 0x20 // BPF_LD | BPF_W | BPF_ABS
			jeqK   = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
			retK   = 0x06 // BPF_RET | BPF_K
		)
		want := []struct {
			op     uint16
			k      uint32
			jt, jf int // absolute targets; -1: don't care
		}{
			{ldAbsW, 0xfffff000 + 4, -1, -1},
			{jeqK, pktTypeOutgoing, last, 2},
			{ldAbsW, 0xfffff000 + 48, -1, -1},
			{jeqK, 0, 4, last},
		}
		for i, w := range want {
			r := raw[i]
			if r.Op != w.op || r.K != w.k ||
				(w.jt >= 0 && i+1+int(r.Jt) != w.jt) || (w.jf >= 0 && i+1+int(r.Jf) != w.jf) {
				t.Errorf("%v: instruction %d is %+v, want op %#x k %#x, jumps to %d/%d", vips, i, r, w.op, w.k, w.jt, w.jf)
			}
		}
		if r := raw[last]; r.Op != retK || r.K != 0 {
			t.Errorf("%v: last instruction %+v, want ret #0", vips, r)
		}
		// The largest frame with a UDP NOTIFY: Ethernet, IPv6, 65535 bytes.
		if filterSnapLen < ethHeaderLen+40+65535 {
			t.Errorf("snap length %d cuts large frames", filterSnapLen)
		}
		if r := raw[last-1]; r.Op != retK || r.K != filterSnapLen {
			t.Errorf("%v: instruction %d %+v, want ret #%d", vips, last-1, r, filterSnapLen)
		}
		for i, r := range raw {
			// No backward or out-of-program jump (the kernel refuses them).
			const ja = 0x05 // BPF_JMP | BPF_JA; other jumps are conditional
			if r.Op == ja && i+1+int(r.K) > last ||
				r.Op != ja && r.Op&0x07 == 0x05 && (i+1+int(r.Jt) > last || i+1+int(r.Jf) > last) {
				t.Errorf("%v: instruction %d %+v jumps past the end", vips, i, r)
			}
		}
	}
}

func TestFilterVIPs(t *testing.T) {
	for _, tc := range []struct {
		vips []netip.Addr
		err  string
	}{
		{nil, "no VIP"},
		{[]netip.Addr{{}}, "invalid"},
		{[]netip.Addr{testVIP4, {}}, "invalid"},
		{manyVIPs(17, 0), "17 IPv4 VIPs"},
		{manyVIPs(0, 17), "17 IPv6 VIPs"},
		{manyVIPs(16, 16), ""},
		// Duplicates, also as IPv4-mapped or zoned, count once.
		{append(manyVIPs(16, 16), testVIP4, netip.AddrFrom16(testVIP4.As16()), netip.MustParseAddr("2001:db8:53::1%eth0")), ""},
	} {
		prog, err := FilterInstructions(tc.vips)
		if tc.err == "" {
			if err != nil {
				t.Errorf("FilterInstructions(%v): %v", tc.vips, err)
			}
			if _, err := bpf.Assemble(prog); err != nil {
				t.Errorf("FilterInstructions(%v) does not assemble: %v", tc.vips, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("FilterInstructions(%v) = %v, want error with %q", tc.vips, err, tc.err)
		}
		if _, err := Filter(tc.vips); err == nil {
			t.Errorf("Filter(%v) accepted", tc.vips)
		}
	}
}

// TestFilterFixtures runs the frames captured from BIND dig, NSD and the
// kernel (testdata/frames) through the filter.
func TestFilterFixtures(t *testing.T) {
	outgoingVIPs := []netip.Addr{testPrimary4}
	for _, tc := range []struct {
		name    string
		vips    []netip.Addr
		pktType uint32
		pass    bool
	}{
		{"dig-ipv4-notify", nil, pktHost, true},
		{"dig-ipv6-notify-tsig", nil, pktHost, true},
		{"nsd-ipv4-notify", nil, pktHost, true},
		{"nsd-ipv6-notify", nil, pktHost, true},
		{"handmade-ipv4-notify", nil, pktHost, true},
		{"dig-ipv4-query", nil, pktHost, false},
		{"dig-ipv4-notify-port5353", nil, pktHost, false},
		{"dig-ipv4-notify-tcp", nil, pktHost, false},
		{"handmade-ipv4-notify-vlan", nil, pktHost, false},
		{"arp-request", nil, pktHost, false},
		{"dig-ipv4-notify", []netip.Addr{testPrimary4, testVIP6}, pktHost, false},
		{"dig-ipv4-notify-outgoing", outgoingVIPs, pktOutgoing, false},
		{"dig-ipv4-notify-outgoing", outgoingVIPs, pktHost, true}, // were it inbound
	} {
		vips := tc.vips
		if vips == nil {
			vips = testVIPs
		}
		frame := readFixture(t, "frames", tc.name).data
		if got := runFilter(t, filterVM(t, vips, tc.pktType, 0), frame); got != tc.pass {
			t.Errorf("%s, VIPs %v, pkttype %d: passes %t, want %t", tc.name, vips, tc.pktType, got, tc.pass)
		}
	}
}

// manyVIPs returns n4 IPv4 VIPs (testVIP4 and 192.0.2.100 on) and n6 IPv6
// VIPs (2001:db8:53::N), in no particular order.
func manyVIPs(n4, n6 int) []netip.Addr {
	var vips []netip.Addr
	for i := range n6 {
		vips = append(vips, netip.MustParseAddr(fmt.Sprintf("2001:db8:53::%x", n6-i)))
	}
	for i := range n4 {
		if i == 0 {
			vips = append(vips, testVIP4)
			continue
		}
		vips = append(vips, netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}))
	}
	return vips
}

func arpFrame(t testing.TB) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: testMACPrimary, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, Operation: layers.ARPRequest,
			SourceHwAddress: testMACPrimary, SourceProtAddress: testPrimary4.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: testVIP4.AsSlice(),
		})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
