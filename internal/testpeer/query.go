package testpeer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// queryTimeout bounds every query made by this package.
const queryTimeout = 2 * time.Second

// Query sends one query for name/qtype over UDP with EDNS0 (buffer 4096) to
// server and returns the reply as received: a truncated reply is returned
// with TC=1, not retried over TCP. It fails the test on a network error.
//
// Called inside NetNS.Do, the query is sent from inside the namespace.
func Query(t testing.TB, server netip.AddrPort, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(4096, false)
	return Exchange(t, server, "udp", m)
}

// Exchange sends m to server over network ("udp" or "tcp") and returns the
// reply; it fails the test on a network error. Use it for queries Query
// cannot express, such as UDP without EDNS.
func Exchange(t testing.TB, server netip.AddrPort, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	r, err := exchange(server, network, m)
	if err != nil {
		t.Fatalf("testpeer: %s query %s %s to %v: %v", network, questionName(m), questionType(m), server, err)
	}
	return r
}

func exchange(server netip.AddrPort, network string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: queryTimeout}
	r, _, err := c.Exchange(m, server.String())
	return r, err
}

// Whoami asks server for TXT whoami.example.test. and returns the text,
// which is the Name of the NSD that answered.
func Whoami(t testing.TB, server netip.AddrPort) string {
	t.Helper()
	r := Query(t, server, WhoamiName, dns.TypeTXT)
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("testpeer: whoami from %v: rcode %s", server, dns.RcodeToString[r.Rcode])
	}
	if name, ok := WhoamiAnswer(r); ok {
		return name
	}
	t.Fatalf("testpeer: whoami from %v: no TXT in answer:\n%v", server, r)
	return ""
}

// WhoamiAnswer returns the server name in an answer to a whoami query:
// its first TXT record's text.
func WhoamiAnswer(r *dns.Msg) (string, bool) {
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			return strings.Join(txt.Txt, ""), true
		}
	}
	return "", false
}

// FreePort returns addr with a port that was free for both UDP and TCP a
// moment ago (bound on :0, then closed). Another process may still take it;
// StartNSD retries with a new port when NSD cannot bind an auto-picked one.
func FreePort(t testing.TB, addr netip.Addr) netip.AddrPort {
	t.Helper()
	ap, err := freePort(addr)
	if err != nil {
		t.Fatalf("testpeer: free port on %v: %v", addr, err)
	}
	return ap
}

// freePortIn is FreePort inside the named netns ("" = current one).
func freePortIn(nsName string, addr netip.Addr) (netip.AddrPort, error) {
	if nsName == "" {
		return freePort(addr)
	}
	var ap netip.AddrPort
	var perr error
	if err := inNetNS(nsName, func() { ap, perr = freePort(addr) }); err != nil {
		return netip.AddrPort{}, err
	}
	return ap, perr
}

func freePort(addr netip.Addr) (netip.AddrPort, error) {
	var lastErr error
	for range 20 {
		uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			return netip.AddrPort{}, err
		}
		ap := uc.LocalAddr().(*net.UDPAddr).AddrPort()
		tl, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
		uc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		tl.Close()
		return netip.AddrPortFrom(addr, ap.Port()), nil
	}
	return netip.AddrPort{}, fmt.Errorf("no port free for both UDP and TCP after 20 tries: %w", lastErr)
}

func questionName(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return "<no question>"
	}
	return m.Question[0].Name
}

func questionType(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return ""
	}
	return dns.TypeToString[m.Question[0].Qtype]
}

// errNotReady is returned by a readiness probe that got no usable answer.
var errNotReady = errors.New("no SOA answer yet")
