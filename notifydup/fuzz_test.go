package notifydup

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzParseFrame from testdata/frames")

// FuzzParseFrame: ParseFrame never panics, never writes to the frame, and
// fails only with exactly one of the sentinel errors. What it accepts is a
// NOTIFY query whose payload miekg/dns unpacks, a copy of the frame's UDP
// payload. And it agrees with the filter (run for the frame's own
// destination address): a frame ParseFrame accepts passes the filter, and a
// frame the filter passes ParseFrame accepts or finds malformed.
//
// Seeds: testdata/fuzz/FuzzParseFrame (the captured testdata/frames, kept
// in step by TestFuzzSeeds) and the frames of fuzzSeedFrames. Crashers the
// fuzzer finds go there too, and become rows of TestParseFrame or
// TestFilter.
func FuzzParseFrame(f *testing.F) {
	for _, frame := range fuzzSeedFrames(f) {
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		buf := bytes.Clone(frame)
		n, err := ParseFrame(buf)
		if !bytes.Equal(buf, frame) {
			t.Fatalf("ParseFrame(%x) changed the frame to %x", frame, buf)
		}
		if err != nil {
			if n != nil {
				t.Fatalf("ParseFrame(%x) = %+v and %v", frame, n, err)
			}
			checkParseErr(t, fmt.Sprintf("ParseFrame(%x)", frame), err, nil)
		} else {
			if n.Dst.Port() != dnsPort || !bytes.Contains(frame, n.Payload) {
				t.Fatalf("ParseFrame(%x) = %+v: not to port 53, or payload not from the frame", frame, n)
			}
			checkNotifyPayload(t, n, buf)
		}

		vip, ok := frameDst(frame)
		if !ok {
			return
		}
		pass := runFilter(t, filterVM(t, []netip.Addr{vip}, pktHost, 0), frame)
		switch {
		case err == nil && !pass:
			t.Fatalf("ParseFrame accepts %x, the filter for %v drops it", frame, vip)
		case pass && err != nil && !errors.Is(err, ErrMalformed):
			t.Fatalf("the filter for %v passes %x, ParseFrame says %v", vip, frame, err)
		}
	})
}

// frameDst returns the address at the destination offset of an IPv4 or
// IPv6 header after an Ethernet header, if the frame is long enough and is
// not an IPv4-mapped address in IPv6 (the filter would take it for IPv4).
func frameDst(frame []byte) (netip.Addr, bool) {
	if len(frame) < ethHeaderLen {
		return netip.Addr{}, false
	}
	switch {
	case frame[12] == 0x08 && frame[13] == 0x00 && len(frame) >= offIPv4Dst+4:
		return netip.AddrFrom4([4]byte(frame[offIPv4Dst:])), true
	case frame[12] == 0x86 && frame[13] == 0xdd && len(frame) >= offIPv6Dst+16:
		a := netip.AddrFrom16([16]byte(frame[offIPv6Dst:]))
		return a, !a.Is4In6()
	}
	return netip.Addr{}, false
}

// fuzzSeedFrames are built NOTIFYs in the shapes the captures lack.
func fuzzSeedFrames(t testing.TB) [][]byte {
	m := new(dns.Msg)
	if err := m.Unpack(notifyMsg(t, "example.test.", true, 1, nil)); err != nil {
		t.Fatal(err)
	}
	signed := signNotify(t, m, "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcw==")
	notify := notifyMsg(t, "Example.Test.", true, 2024061501, nil)
	opt := []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	v6 := udpFrame(testVIP6, notify).build(t)
	return [][]byte{
		udpFrame(testVIP4, notify).build(t),
		v6,
		udpFrame(testVIP4, signed).build(t),
		udpFrame(testVIP4, notifyMsg(t, ".", false, 0, nil)).build(t), // padded to 60 bytes
		testFrame{src: testPrimary4, dst: testVIP4, sport: 53, dport: 53, ip4Options: opt, payload: notify}.build(t),
		testFrame{src: testPrimary4, dst: testVIP4, sport: 53, dport: 53, ip4Flags: layers.IPv4MoreFragments, payload: notify}.build(t),
		withIPv6Ext(t, v6, 0, hopByHopRouterAlert),
		withIPv6Ext(t, v6, 44, fragmentAtomic),
	}
}

// TestFuzzSeeds keeps one seed per testdata/frames fixture in
// testdata/fuzz/FuzzParseFrame; -update-seeds writes them.
func TestFuzzSeeds(t *testing.T) {
	for _, name := range fixtureNames(t, "frames") {
		fx := readFixture(t, "frames", name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", fx.data)
		seed := filepath.Join("testdata", "fuzz", "FuzzParseFrame", name)
		if *updateSeeds {
			if err := os.MkdirAll(filepath.Dir(seed), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(seed, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(seed)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q (go test ./notifydup -run TestFuzzSeeds -update-seeds)", seed, got, err, want)
		}
	}
}
