package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var sentinels = []error{ErrTruncated, ErrVersion, ErrType, ErrChecksum, ErrAddrCount, ErrInvalid}

// fuzzContext is the IP context a fuzz input is parsed in: IPv4, IPv6, IPv4
// without a destination, IPv4-mapped IPv4, or none.
func fuzzContext(ctx uint8) (src, dst netip.Addr) {
	switch ctx % 5 {
	case 0:
		return v4Src, GroupV4
	case 1:
		return v6Src, GroupV6
	case 2:
		return v4Src, netip.Addr{}
	case 3:
		return netip.AddrFrom16(v4Src.As16()), netip.AddrFrom16(GroupV4.As16())
	}
	return netip.Addr{}, netip.Addr{}
}

// FuzzUnmarshal: UnmarshalBinary never panics, fails only with one of the
// sentinel errors, and whatever it accepts MarshalBinary turns back into the
// same bytes. Each input is tried as is and with its checksum made right, so
// that the fuzzer gets past the checksum to the rest of the parser.
//
// Seeds: testdata/fuzz/FuzzUnmarshal, the testdata/*.hex fixtures (kept in
// step by TestFuzzSeeds) and any crash the fuzzer found, which also become a
// row of TestUnmarshalErrors or TestRoundTrip.
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, ctx uint8, mode uint8) {
		src, dst := fuzzContext(ctx)
		checkUnmarshal(t, b, src, dst, ChecksumMode(mode))
		if len(b) >= headerLen {
			c := append([]byte(nil), b...)
			c[6], c[7] = 0, 0
			a := Advert{Version: c[0] >> 4, Src: src, Dst: dst, Mode: ChecksumMode(mode)}
			binary.BigEndian.PutUint16(c[6:], a.checksum(c, src.Unmap().Is6()))
			checkUnmarshal(t, c, src, dst, ChecksumMode(mode))
		}
	})
}

func checkUnmarshal(t *testing.T, b []byte, src, dst netip.Addr, mode ChecksumMode) {
	t.Helper()
	a := Advert{Src: src, Dst: dst, Mode: mode}
	if err := a.UnmarshalBinary(b); err != nil {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("UnmarshalBinary(%x): %v wraps no sentinel error", b, err)
	}
	got := a
	out, err := got.MarshalBinary()
	if err != nil {
		t.Fatalf("UnmarshalBinary accepted %x as %+v, MarshalBinary refuses it: %v", b, a, err)
	}
	if !bytes.Equal(out, b) {
		t.Fatalf("UnmarshalBinary(%x) = %+v, which marshals to %x", b, a, out)
	}
	if got.Checksum != a.Checksum {
		t.Fatalf("checksum %#04x received, %#04x sent", a.Checksum, got.Checksum)
	}
}

// TestFuzzSeeds keeps one seed per testdata/*.hex fixture in
// testdata/fuzz/FuzzUnmarshal; -update writes them.
func TestFuzzSeeds(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.hex")
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".hex")
		fx := readFixture(t, name)
		ctx := 0 // fuzzContext: IPv4
		if fx.src.Is6() {
			ctx = 1
		}
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbyte(%q)\nbyte(%q)\n", fx.payload, rune(ctx), rune(fx.mode))
		seed := filepath.Join("testdata", "fuzz", "FuzzUnmarshal", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(seed), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(seed, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(seed)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q (run go test -run TestFuzzSeeds -update)", seed, got, err, want)
		}
	}
}
