package notifydup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// soaClient asks one backend for SOA serials over a single UDP socket,
// many queries in flight, matched by ID and question: convergence
// tracking at track_qps costs no socket per query.
type soaClient struct {
	conn *net.UDPConn

	mu      sync.Mutex
	next    uint16
	pending map[uint16]*soaWait
	err     error // the reader's, once it stopped
}

// soaWait is one query waiting for its answer.
type soaWait struct {
	zone string
	done chan soaResult // buffered: the reader never blocks
}

type soaResult struct {
	serial uint32
	err    error
}

var errClientClosed = errors.New("notifydup: SOA client closed")

// newSOAClient opens a socket towards server (from the balancer's own
// address, as the kernel picks it) and starts reading answers.
func newSOAClient(server netip.AddrPort) (*soaClient, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(1 << 20)
	c := &soaClient{conn: conn, pending: map[uint16]*soaWait{}, next: uint16(server.Port()) * 7919}
	go c.read()
	return c, nil
}

// query asks the SOA of zone and waits for the answer or ctx.
func (c *soaClient) query(ctx context.Context, zone string) (uint32, error) {
	w := &soaWait{zone: strings.ToLower(dns.Fqdn(zone)), done: make(chan soaResult, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, c.err
	}
	if len(c.pending) >= 1<<15 {
		c.mu.Unlock()
		return 0, errors.New("notifydup: too many SOA queries in flight")
	}
	for c.pending[c.next] != nil {
		c.next++
	}
	id := c.next
	c.next++
	c.pending[id] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.pending[id] == w {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}()
	m := new(dns.Msg)
	m.SetQuestion(w.zone, dns.TypeSOA)
	m.Id = id
	out, err := m.Pack()
	if err != nil {
		return 0, err
	}
	if _, err := c.conn.Write(out); err != nil {
		return 0, err
	}
	select {
	case r := <-w.done:
		return r.serial, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// read delivers answers until the socket is closed.
func (c *soaClient) read() {
	buf := make([]byte, 65535)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				continue // e.g. ICMP port unreachable: the waiter times out
			}
			c.mu.Lock()
			c.err = errClientClosed
			for id, w := range c.pending {
				w.done <- soaResult{err: errClientClosed}
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) != nil || !r.Response || len(r.Question) != 1 {
			continue
		}
		c.mu.Lock()
		w := c.pending[r.Id]
		if w == nil || !strings.EqualFold(r.Question[0].Name, w.zone) {
			c.mu.Unlock()
			continue // late, or not ours
		}
		delete(c.pending, r.Id)
		c.mu.Unlock()
		w.done <- soaSerial(r, w.zone)
	}
}

// soaSerial finds zone's SOA serial in an answer.
func soaSerial(r *dns.Msg, zone string) soaResult {
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, zone) {
			return soaResult{serial: soa.Serial}
		}
	}
	return soaResult{err: fmt.Errorf("no SOA for %s (rcode %s)", zone, dns.RcodeToString[r.Rcode])}
}

func (c *soaClient) close() { c.conn.Close() }
