package testpeer

import (
	"fmt"
	"strings"
)

// Zone is the origin of the test zone served by NSD.
const Zone = "example.test."

// Facts about DefaultZone, for assertions in tests.
const (
	ZoneSerial      = 2026112501 // SOA serial
	BigTXTCount     = 40         // TXT records at big.example.test.
	MediumTXTCount  = 12         // TXT records at medium.example.test.
	TXTLen          = 100        // characters in each big/medium TXT string
	HostCount       = 2000       // A records h0..h1999.example.test.
	WhoamiName      = "whoami." + Zone
	defaultZoneTTL  = 300
	hostAddrPattern = "198.18.%d.%d" // RFC 2544 benchmarking range
)

// DefaultZone returns the text of zone example.test. for a server called
// name:
//
//	@       SOA  ns1 hostmaster 2026112501 ...
//	@       NS   ns1.example.test.
//	ns1     A    127.0.0.1
//	www     A    192.0.2.1
//	www     AAAA 2001:db8::1
//	mx      MX   10 mail.example.test.
//	mail    A    192.0.2.25
//	whoami  TXT  "<name>"            (which backend answered)
//	big     TXT  40 x 100 chars     (> 4096 bytes: TC=1 over UDP even with EDNS 4096)
//	medium  TXT  12 x 100 chars     (> 512 bytes, < 4096: TC=1 without EDNS only)
//	h0..h1999 A 198.18.x.y          (AXFR spans several messages)
//
// name must be a plain label (letters, digits, '.', '_', '-'); StartNSD
// checks that.
func DefaultZone(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL %d\n", Zone, defaultZoneTTL)
	fmt.Fprintf(&b, "@\tIN\tSOA\tns1.%[1]s hostmaster.%[1]s %d 3600 900 604800 300\n", Zone, ZoneSerial)
	fmt.Fprintf(&b, "@\tIN\tNS\tns1.%s\n", Zone)
	b.WriteString("ns1\tIN\tA\t127.0.0.1\n")
	b.WriteString("www\tIN\tA\t192.0.2.1\n")
	b.WriteString("www\tIN\tAAAA\t2001:db8::1\n")
	fmt.Fprintf(&b, "mx\tIN\tMX\t10 mail.%s\n", Zone)
	b.WriteString("mail\tIN\tA\t192.0.2.25\n")
	fmt.Fprintf(&b, "whoami\tIN\tTXT\t%q\n", name)
	for i := range BigTXTCount {
		fmt.Fprintf(&b, "big\tIN\tTXT\t%q\n", txtString("big", i))
	}
	for i := range MediumTXTCount {
		fmt.Fprintf(&b, "medium\tIN\tTXT\t%q\n", txtString("medium", i))
	}
	for i := range HostCount {
		fmt.Fprintf(&b, "h%d\tIN\tA\t"+hostAddrPattern+"\n", i, i/256, i%256)
	}
	return b.String()
}

// txtString returns a distinct TXTLen-character string ("big-07-xxxx...").
func txtString(prefix string, i int) string {
	s := fmt.Sprintf("%s-%02d-", prefix, i)
	return s + strings.Repeat("x", TXTLen-len(s))
}
