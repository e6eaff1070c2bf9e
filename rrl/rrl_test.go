package rrl

import (
	"net/netip"
	"testing"
	"time"
)

var (
	victim = netip.MustParseAddr("198.51.100.7")
	other  = netip.MustParseAddr("203.0.113.9")
)

// TestRateSlipAndRecovery: 5/s positive answers for one name to one /24:
// a burst of 5 passes, then every other response slips (slip 2) and the
// rest are dropped; once the flood stops the prefix is served again
// within the window; another prefix and another name are not affected.
func TestRateSlipAndRecovery(t *testing.T) {
	l := New(Config{ResponsesPerSecond: 5, Slip: 2, Window: 2 * time.Second})
	now := int64(time.Hour)
	var allow, slip, drop int
	var started, stopped int
	for i := 0; i < 105; i++ { // 105 responses at once
		d := l.Decide(victim, Positive, 42, now)
		switch d.Action {
		case Allow:
			allow++
		case Slip:
			slip++
		case Drop:
			drop++
		}
		if d.Started {
			started++
		}
		if d.Stopped {
			stopped++
		}
	}
	if allow != 5 || slip != 50 || drop != 50 || started != 1 {
		t.Fatalf("allow %d slip %d drop %d started %d; want 5, 50, 50, 1", allow, slip, drop, started)
	}
	if d := l.Decide(netip.MustParseAddr("198.51.100.200"), Positive, 42, now); d.Action == Allow {
		t.Fatal("the same /24 was not limited")
	}
	if d := l.Decide(other, Positive, 42, now); d.Action != Allow {
		t.Fatal("another prefix was limited")
	}
	if d := l.Decide(victim, Positive, 43, now); d.Action != Allow {
		t.Fatal("another name was limited")
	}
	later := now + int64(3*time.Second) // past the window
	if d := l.Decide(victim, Positive, 42, later); d.Action != Allow || !d.Stopped {
		t.Fatalf("after the window: %+v, want allowed and stopped", d)
	}
}

// TestClassesAndAll: errors have one account per prefix whatever the
// name, so have ANY answers (each at the errors' rate); AllPerSecond caps
// every class together.
func TestClassesAndAll(t *testing.T) {
	l := New(Config{ResponsesPerSecond: 100, ErrorsPerSecond: 2, AllPerSecond: 10})
	now := int64(time.Hour)
	for _, c := range []Class{Error, Any} {
		for i := uint64(0); i < 2; i++ {
			if l.Decide(victim, c, i, now).Action != Allow {
				t.Fatalf("%v limited too early", c)
			}
		}
		if l.Decide(victim, c, 99, now).Action == Allow {
			t.Fatalf("a third %v in the same second, for another name, was allowed", c)
		}
	}
	allowed := 0
	for i := uint64(0); i < 20; i++ { // different names: only the total limits
		if l.Decide(victim, Positive, 1000+i, now).Action == Allow {
			allowed++
		}
	}
	if allowed != 6 { // 10 in all, 4 spent on the errors and ANY above
		t.Fatalf("%d positive answers allowed under all_per_second 10, want 6", allowed)
	}
}

// TestExemptAndLogOnly: exempt prefixes and log-only mode always allow.
func TestExemptAndLogOnly(t *testing.T) {
	l := New(Config{ResponsesPerSecond: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	for i := 0; i < 10; i++ {
		if l.Decide(victim, Positive, 1, int64(time.Hour)).Action != Allow {
			t.Fatal("an exempt client was limited")
		}
	}
	lo := New(Config{ResponsesPerSecond: 1, LogOnly: true})
	var limited int
	for i := 0; i < 10; i++ {
		d := lo.Decide(victim, Positive, 1, int64(time.Hour))
		if d.Action != Allow {
			t.Fatal("log_only dropped")
		}
		if d.Limited {
			limited++
		}
	}
	if limited != 9 {
		t.Fatalf("log_only counted %d limited, want 9", limited)
	}
}

// TestIPv6Prefix: /56 groups IPv6 clients.
func TestIPv6Prefix(t *testing.T) {
	l := New(Config{})
	if p := l.Prefix(netip.MustParseAddr("2001:db8:1:2ff::1")); p.String() != "2001:db8:1:200::/56" {
		t.Fatalf("prefix %s", p)
	}
	if p := l.Prefix(netip.MustParseAddr("::ffff:192.0.2.77")); p.String() != "192.0.2.0/24" {
		t.Fatalf("mapped prefix %s", p)
	}
}

// TestTableBounded: far more prefixes than slots reuse the least
// recently used ones; nothing grows.
func TestTableBounded(t *testing.T) {
	l := New(Config{ResponsesPerSecond: 1, TableSize: 256})
	mem := l.MemoryBytes()
	for i := 0; i < 100000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 1})
		l.Decide(a, Positive, 1, int64(time.Hour)+int64(i))
	}
	// the documentation (rrl/doc.go, config.yaml, docs) says 32 bytes
	if l.MemoryBytes() != mem || mem != 256*32 || AccountBytes != 32 {
		t.Fatalf("memory %d, want %d (accounts of %d bytes)", l.MemoryBytes(), 256*32, AccountBytes)
	}
}

// TestDecideAllocatesNothing: it runs per response.
func TestDecideAllocatesNothing(t *testing.T) {
	l := New(Config{ResponsesPerSecond: 5, NXDomainsPerSecond: 5, ErrorsPerSecond: 5, AllPerSecond: 50, Slip: 2})
	now := int64(time.Hour)
	if n := testing.AllocsPerRun(1000, func() {
		now += 1000
		l.Decide(victim, Positive, 7, now)
	}); n != 0 {
		t.Fatalf("%v allocations per decision", n)
	}
}

func BenchmarkDecide(b *testing.B) {
	l := New(Config{ResponsesPerSecond: 5, AllPerSecond: 50, Slip: 2})
	now := int64(time.Hour)
	for i := 0; i < b.N; i++ {
		now += 1000
		l.Decide(victim, Positive, uint64(i&1023), now)
	}
}
