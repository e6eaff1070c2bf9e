package healthcheck

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dnslb/dnslb/internal/proxyv2"
	"github.com/miekg/dns"
)

// Check describes the probe for one target and how to judge its answer.
type Check struct {
	Name           string // query name, fully qualified
	Type           uint16 // query type, e.g. dns.TypeSOA
	Class          uint16 // query class, default dns.ClassINET
	RD             bool   // recursion desired bit
	Rcodes         []int  // acceptable rcodes, default NOERROR only
	Authoritative  bool   // require the AA bit
	AnswerContains string // if set, some answer RR's text must contain it
	Transport      string // "udp" (default) or "tcp"
	// ProxyHeader puts a PROXY v2 header in front of the probe (each UDP
	// query, the start of the TCP connection) that names the probe's own
	// socket as the client: for backends that take client_address:
	// proxy_v2 and want a header on every query (health_check.proxy_v2:
	// self).
	ProxyHeader bool
	Interval    time.Duration
	Timeout     time.Duration
	Rise, Fall  int
}

func (c Check) withDefaults() Check {
	if c.Class == 0 {
		c.Class = dns.ClassINET
	}
	if c.Type == 0 {
		c.Type = dns.TypeSOA
	}
	if len(c.Rcodes) == 0 {
		c.Rcodes = []int{dns.RcodeSuccess}
	}
	if c.Transport == "" {
		c.Transport = "udp"
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 500 * time.Millisecond
	}
	if c.Rise <= 0 {
		c.Rise = 2
	}
	if c.Fall <= 0 {
		c.Fall = 3
	}
	c.Name = dns.Fqdn(c.Name)
	return c
}

// Result classifies one probe; its String is the `result` label of
// dnslb_healthcheck_probes_total.
type Result uint8

const (
	// OK: the answer met every expectation.
	OK Result = iota
	// Timeout: no answer within the timeout.
	Timeout
	// NetError: the query could not be sent or the connection failed.
	NetError
	// Malformed: the answer could not be parsed.
	Malformed
	// Mismatch: the answer's ID or question is not the probe's.
	Mismatch
	// BadRcode: the rcode is not one of the expected ones.
	BadRcode
	// NotAuthoritative: AA was required and not set (a lame server).
	NotAuthoritative
	// MissingAnswer: no answer record contains the expected text.
	MissingAnswer
)

// String returns the result's metric label.
func (r Result) String() string {
	return [...]string{"ok", "timeout", "error", "malformed", "mismatch", "rcode", "not_authoritative", "missing_answer"}[r]
}

// outcome is one probe's result with the human reason and round-trip time.
type outcome struct {
	result Result
	reason string
	rtt    time.Duration
}

// exchangeFunc sends a packed query to addr over transport, behind a
// PROXY v2 header naming the probe's socket if proxy, and returns the raw
// answer. It is a test seam; the default uses real sockets.
type exchangeFunc func(ctx context.Context, transport string, addr netip.AddrPort, query []byte, proxy bool) ([]byte, error)

// newQuery builds the probe message with a random ID.
func newQuery(c Check) *dns.Msg {
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.RecursionDesired = c.RD
	m.Question = []dns.Question{{Name: c.Name, Qtype: c.Type, Qclass: c.Class}}
	return m
}

// probe sends one query and judges the answer.
func probe(ctx context.Context, ex exchangeFunc, c Check, addr netip.AddrPort) outcome {
	q := newQuery(c)
	packed, err := q.Pack()
	if err != nil {
		return outcome{result: NetError, reason: "cannot build query: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	start := time.Now()
	raw, err := ex(ctx, c.Transport, addr, packed, c.ProxyHeader)
	rtt := time.Since(start)
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return outcome{result: Timeout, reason: fmt.Sprintf("timeout after %v", c.Timeout), rtt: rtt}
		}
		return outcome{result: NetError, reason: c.Transport + ": " + errorPhrase(err), rtt: rtt}
	}
	o := judge(c, q, raw)
	o.rtt = rtt
	return o
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errorPhrase turns a socket error into the short phrase an operator reads
// in `dnslb status`: "connection refused" rather than "read udp
// 127.0.0.1:45678->127.0.0.1:5301: recvfrom: connection refused". Errors
// without a phrase of their own give the innermost error's text, without
// the operation and socket addresses of *net.OpError and *os.SyscallError.
func errorPhrase(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case isTimeout(err):
		return "timeout"
	}
	for {
		var op *net.OpError
		var se *os.SyscallError
		switch {
		case errors.As(err, &op) && op.Err != nil:
			err = op.Err
		case errors.As(err, &se) && se.Err != nil:
			err = se.Err
		default:
			return err.Error()
		}
	}
}

// judge checks a raw answer against the query and the expectations. It is
// the part fuzzed: any bytes give a Result, never a panic.
func judge(c Check, q *dns.Msg, raw []byte) outcome {
	r := new(dns.Msg)
	if err := r.Unpack(raw); err != nil {
		return outcome{result: Malformed, reason: "malformed answer: " + err.Error()}
	}
	if r.Id != q.Id {
		return outcome{result: Mismatch, reason: fmt.Sprintf("answer ID %d, sent %d", r.Id, q.Id)}
	}
	if !r.Response {
		return outcome{result: Mismatch, reason: "answer is not a response (QR=0)"}
	}
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, q.Question[0].Name) ||
		r.Question[0].Qtype != q.Question[0].Qtype || r.Question[0].Qclass != q.Question[0].Qclass {
		return outcome{result: Mismatch, reason: "answer is for another question"}
	}
	if !slices.Contains(c.Rcodes, r.Rcode) {
		return outcome{result: BadRcode, reason: "rcode " + rcodeName(r.Rcode) + ", want " + rcodeList(c.Rcodes)}
	}
	if c.Authoritative && !r.Authoritative {
		return outcome{result: NotAuthoritative, reason: "answer not authoritative (AA=0): lame for " + c.Name}
	}
	if c.AnswerContains != "" {
		found := false
		for _, rr := range r.Answer {
			if strings.Contains(rr.String(), c.AnswerContains) {
				found = true
				break
			}
		}
		if !found {
			return outcome{result: MissingAnswer, reason: fmt.Sprintf("no answer record contains %q", c.AnswerContains)}
		}
	}
	return outcome{result: OK, reason: "answer " + rcodeName(r.Rcode)}
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

func rcodeList(rcs []int) string {
	names := make([]string, len(rcs))
	for i, rc := range rcs {
		names[i] = rcodeName(rc)
	}
	return strings.Join(names, "|")
}

// exchange is the real exchangeFunc: a fresh socket per probe (random
// source port), one answer read.
func exchange(ctx context.Context, transport string, addr netip.AddrPort, query []byte, proxy bool) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, transport, addr.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var msg []byte
	if proxy {
		self, _ := netip.ParseAddrPort(conn.LocalAddr().String())
		msg = proxyv2.Append(msg, self, addr, transport == "tcp")
	}
	if transport == "tcp" {
		msg = binary.BigEndian.AppendUint16(msg, uint16(len(query)))
		msg = append(msg, query...)
		if _, err := conn.Write(msg); err != nil {
			return nil, err
		}
		var l [2]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return nil, err
		}
		buf := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(conn, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	if _, err := conn.Write(append(msg, query...)); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
