package testpeer

// Queries with a PROXY protocol v2 header in front, for the peers that
// take one (Knot, PowerDNS, Unbound: see pdns.go and unbound.go), and
// queries from a chosen source address. The headers are built with
// github.com/pires/go-proxyproto, the reference implementation dnslb's
// own internal/proxyv2 is tested against, so a peer's behaviour is
// measured independently of dnslb's encoder.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	proxyproto "github.com/pires/go-proxyproto"
)

// ProxyHeader is what ExchangeFrom puts in front of a query: nothing
// (the zero value), a PROXY v2 header naming Client as the client (and
// the server as the destination), or a LOCAL header (no addresses).
type ProxyHeader struct {
	// Client, if valid, makes a PROXY command header for a connection
	// from Client to the server the query goes to (UDP or TCP as the
	// query).
	Client netip.AddrPort
	// Dst, if valid, is the destination the PROXY header names instead
	// of the server (e.g. an IPv6 VIP in front of an IPv4 backend).
	Dst netip.AddrPort
	// Local makes a LOCAL command header instead.
	Local bool
}

// NoProxyHeader sends the query as it is.
var NoProxyHeader = ProxyHeader{}

// ProxyLocal is a LOCAL header: "the connection is the proxy's own".
var ProxyLocal = ProxyHeader{Local: true}

// ProxyFor is a PROXY header naming client.
func ProxyFor(client netip.AddrPort) ProxyHeader { return ProxyHeader{Client: client} }

// String names the header for messages.
func (h ProxyHeader) String() string {
	switch {
	case h.Local:
		return "LOCAL header"
	case h.Client.IsValid():
		return fmt.Sprintf("PROXY header for %v", h.Client)
	}
	return "no header"
}

// bytes returns the header for a query to dst over network ("udp" or
// "tcp"); nil for no header.
func (h ProxyHeader) bytes(network string, dst netip.AddrPort) ([]byte, error) {
	var hdr *proxyproto.Header
	switch {
	case h.Local:
		hdr = &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	case h.Client.IsValid():
		if h.Dst.IsValid() {
			dst = h.Dst
		}
		if network == "tcp" {
			hdr = proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(h.Client), net.TCPAddrFromAddrPort(dst))
		} else {
			hdr = proxyproto.HeaderProxyFromAddrs(2, net.UDPAddrFromAddrPort(h.Client), net.UDPAddrFromAddrPort(dst))
		}
	default:
		return nil, nil
	}
	return hdr.Format()
}

// ErrNoAnswer is returned (wrapped) by ExchangeFrom when the server sent
// nothing within the timeout, or closed or reset a TCP connection
// without an answer: the server dropped the query.
var ErrNoAnswer = errors.New("no answer")

// ExchangeFrom sends m to server over network ("udp" or "tcp") from
// source address src (invalid: the kernel picks), from inside ns (nil:
// the test's own namespace, then server must be a loopback address),
// with h in front (over TCP once, at the start of the connection), and
// returns the answer. An error wraps ErrNoAnswer when the server dropped
// the query (timeout, EOF, reset). Over TCP it reads one answer; an AXFR
// needs TransferFrom.
func ExchangeFrom(ns *NetNS, src netip.Addr, server netip.AddrPort, network string, h ProxyHeader, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	var r *dns.Msg
	var err error
	run := func() { r, err = exchangeProxy(src, server, network, h, m, timeout) }
	if ns == nil {
		if lerr := checkStaysLocal(server); lerr != nil {
			return nil, lerr
		}
		run()
	} else if nerr := inNetNS(ns.name, run); nerr != nil {
		return nil, nerr
	}
	return r, err
}

func exchangeProxy(src netip.Addr, server netip.AddrPort, network string, h ProxyHeader, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	conn, err := dialFrom(src, server, network, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	dst := server
	hdr, err := h.bytes(network, dst)
	if err != nil {
		return nil, fmt.Errorf("build %v: %w", h, err)
	}
	q, err := m.Pack()
	if err != nil {
		return nil, err
	}
	if network == "tcp" {
		out := append(hdr, byte(len(q)>>8), byte(len(q)))
		if _, err := conn.Write(append(out, q...)); err != nil {
			return nil, err
		}
		r, err := readTCPMsg(conn)
		if err != nil {
			return nil, noAnswer(err)
		}
		return r, nil
	}
	if _, err := conn.Write(append(hdr, q...)); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, noAnswer(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			return nil, fmt.Errorf("unpack answer: %w", err)
		}
		if r.Id == m.Id {
			return r, nil
		}
	}
}

// noAnswer wraps a read error that means the server sent nothing.
func noAnswer(err error) error {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &ne) && ne.Timeout()) || isConnReset(err) {
		return fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	return err
}

func isConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// dialFrom dials server from src (if valid).
func dialFrom(src netip.Addr, server netip.AddrPort, network string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if src.IsValid() {
		if network == "tcp" {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		} else {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
	}
	return d.Dial(network, server.String())
}

// readTCPMsg reads one length-prefixed DNS message.
func readTCPMsg(conn net.Conn) (*dns.Msg, error) {
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf); err != nil {
		return nil, fmt.Errorf("unpack answer: %w", err)
	}
	return r, nil
}

// XFRResult is what TransferFrom received.
type XFRResult struct {
	Messages int      // answer messages
	Records  []dns.RR // every answer record, both SOAs included
	Rcode    int      // of the last message
}

// Complete reports whether the transfer ended as an AXFR must: NOERROR,
// at least two records, the first and the last an SOA of the zone.
func (x XFRResult) Complete(zone string) bool {
	n := len(x.Records)
	if x.Rcode != dns.RcodeSuccess || n < 2 {
		return false
	}
	first, ok1 := x.Records[0].(*dns.SOA)
	last, ok2 := x.Records[n-1].(*dns.SOA)
	return ok1 && ok2 && dns.CanonicalName(first.Hdr.Name) == dns.CanonicalName(zone) && first.Serial == last.Serial
}

// TransferFrom asks server for an AXFR of zone over TCP from src (in
// ns, as ExchangeFrom), with h at the start of the connection, and reads
// answers until the closing SOA, an error rcode, or the timeout (for the
// whole transfer). It returns what it got; err is set when the transfer
// did not end with the closing SOA or an error rcode.
func TransferFrom(ns *NetNS, src netip.Addr, server netip.AddrPort, h ProxyHeader, zone string, timeout time.Duration) (XFRResult, error) {
	var res XFRResult
	var err error
	run := func() { res, err = transferProxy(src, server, h, zone, timeout) }
	if ns == nil {
		if lerr := checkStaysLocal(server); lerr != nil {
			return res, lerr
		}
		run()
	} else if nerr := inNetNS(ns.name, run); nerr != nil {
		return res, nerr
	}
	return res, err
}

func transferProxy(src netip.Addr, server netip.AddrPort, h ProxyHeader, zone string, timeout time.Duration) (XFRResult, error) {
	var res XFRResult
	conn, err := dialFrom(src, server, "tcp", timeout)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	hdr, err := h.bytes("tcp", server)
	if err != nil {
		return res, err
	}
	m := new(dns.Msg)
	m.SetAxfr(dns.Fqdn(zone))
	q, err := m.Pack()
	if err != nil {
		return res, err
	}
	out := append(hdr, byte(len(q)>>8), byte(len(q)))
	if _, err := conn.Write(append(out, q...)); err != nil {
		return res, err
	}
	soas := 0
	for {
		r, err := readTCPMsg(conn)
		if err != nil {
			return res, noAnswer(err)
		}
		if r.Id != m.Id {
			return res, fmt.Errorf("answer with ID %d, want %d", r.Id, m.Id)
		}
		res.Messages++
		res.Rcode = r.Rcode
		if r.Rcode != dns.RcodeSuccess {
			return res, nil
		}
		for _, rr := range r.Answer {
			res.Records = append(res.Records, rr)
			if rr.Header().Rrtype == dns.TypeSOA {
				soas++
			}
		}
		if soas >= 2 {
			return res, nil
		}
	}
}

// sbinTool returns the path of a daemon: from PATH, else /usr/sbin or
// /usr/bin (root's PATH may lack sbin). It skips loudly, naming the
// Debian package, if it is not installed.
func sbinTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Skipf("SKIP: %s not installed (apt-get install %s)", name, pkg)
	return ""
}
