package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// Mux shares one Conn (one raw socket per interface and address family)
// among the instances on it: each reads only the adverts of its own VRID,
// so a node running several VRIDs on one link opens one socket, and one
// instance never counts its sibling's adverts as another router's.
// Packets for a VRID no instance has go to the first instance (counted
// there as other_vrid, once).
type Mux struct {
	c       Conn
	mu      sync.Mutex
	subs    map[uint8]*muxConn
	order   []*muxConn // subscription order; the first gets strangers
	started bool
	closed  bool
}

// NewMux shares c; it takes ownership and closes c with its last Conn.
func NewMux(c Conn) *Mux { return &Mux{c: c, subs: map[uint8]*muxConn{}} }

// muxPacket is one packet read from the shared socket.
type muxPacket struct {
	b        []byte
	src, dst netip.Addr
	ttl      int
}

// muxConn is one instance's view of the shared socket.
type muxConn struct {
	m    *Mux
	vrid uint8
	in   chan muxPacket
	done chan struct{}
	once sync.Once
}

// Conn returns the Conn of the instance for vrid. It fails when vrid is
// taken already on this socket (a VRID is unique per link and family,
// RFC 5798 5.2.3).
func (m *Mux) Conn(vrid uint8) (Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("vrrp: socket closed")
	}
	if m.subs[vrid] != nil {
		return nil, fmt.Errorf("vrrp: VRID %d already runs on this interface for this family", vrid)
	}
	mc := &muxConn{m: m, vrid: vrid, in: make(chan muxPacket, 64), done: make(chan struct{})}
	m.subs[vrid] = mc
	m.order = append(m.order, mc)
	if !m.started {
		m.started = true
		go m.read()
	}
	return mc, nil
}

// read hands every packet to the instance of its VRID until the socket
// is closed.
func (m *Mux) read() {
	buf := make([]byte, 1500)
	for {
		n, src, dst, ttl, err := m.c.Read(buf)
		if err != nil {
			m.mu.Lock()
			closed := m.closed
			m.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		m.mu.Lock()
		var to *muxConn
		if n >= 2 {
			to = m.subs[buf[1]] // VRID: the second byte of v2 and v3 headers
		}
		if to == nil && len(m.order) > 0 {
			to = m.order[0]
		}
		m.mu.Unlock()
		if to == nil {
			continue
		}
		select {
		case to.in <- muxPacket{b: append([]byte(nil), buf[:n]...), src: src, dst: dst, ttl: ttl}:
		default: // the instance is behind: drop, as a full socket buffer would
		}
	}
}

// Read implements Conn.
func (c *muxConn) Read(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p.src, p.dst, p.ttl, nil
	case <-c.done:
		return 0, netip.Addr{}, netip.Addr{}, 0, errors.New("vrrp: conn closed")
	}
}

// Write implements Conn: the shared socket sends.
func (c *muxConn) Write(b []byte, dst netip.Addr) error { return c.m.c.Write(b, dst) }

// LocalAddr implements Conn.
func (c *muxConn) LocalAddr() netip.Addr { return c.m.c.LocalAddr() }

// Close unsubscribes; the last Close closes the shared socket.
func (c *muxConn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		m := c.m
		m.mu.Lock()
		delete(m.subs, c.vrid)
		for i, x := range m.order {
			if x == c {
				m.order = append(m.order[:i], m.order[i+1:]...)
				break
			}
		}
		last := len(m.subs) == 0
		if last {
			m.closed = true
		}
		m.mu.Unlock()
		if last {
			err = m.c.Close()
		}
	})
	return err
}
