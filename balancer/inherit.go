package balancer

import (
	"fmt"
	"net"
	"net/netip"
	"os"
)

// ListenerFile is one listening socket as a file, to hand to another
// process (graceful restart): the UDP sockets of every worker and the TCP
// listener of each listen address.
type ListenerFile struct {
	Network string // "udp" or "tcp"
	Addr    netip.AddrPort
	File    *os.File
}

// ListenerFiles returns duplicates of every listening socket. The caller
// owns (and must close) the files; the balancer keeps its own copies.
func (b *Balancer) ListenerFiles() ([]ListenerFile, error) {
	var out []ListenerFile
	fail := func(err error) ([]ListenerFile, error) {
		for _, f := range out {
			f.File.Close()
		}
		return nil, err
	}
	for _, f := range b.tcpf.listeners {
		file, err := f.ln.File()
		if err != nil {
			return fail(fmt.Errorf("tcp %s: %w", f.addr, err))
		}
		out = append(out, ListenerFile{Network: "tcp", Addr: f.addr, File: file})
	}
	for _, w := range b.udpf.sockets {
		file, err := w.sock.conn.File()
		if err != nil {
			return fail(fmt.Errorf("udp %s: %w", w.addr, err))
		}
		out = append(out, ListenerFile{Network: "udp", Addr: w.addr, File: file})
	}
	return out, nil
}

// inheritedTCP returns the inherited TCP listener for addr, if any.
func (b *Balancer) inheritedTCP(addr netip.AddrPort) (*net.TCPListener, error) {
	for _, lf := range b.inherited {
		if lf.Network != "tcp" || lf.Addr != addr {
			continue
		}
		ln, err := net.FileListener(lf.File)
		lf.File.Close()
		if err != nil {
			return nil, fmt.Errorf("inherited tcp %s: %w", addr, err)
		}
		tl, ok := ln.(*net.TCPListener)
		if !ok {
			ln.Close()
			return nil, fmt.Errorf("inherited tcp %s: not a TCP listener", addr)
		}
		return tl, nil
	}
	return nil, nil
}

// inheritedUDP returns the inherited UDP sockets for addr (one per worker
// of the previous process), if any.
func (b *Balancer) inheritedUDP(addr netip.AddrPort) ([]*net.UDPConn, error) {
	var out []*net.UDPConn
	for _, lf := range b.inherited {
		if lf.Network != "udp" || lf.Addr != addr {
			continue
		}
		pc, err := net.FilePacketConn(lf.File)
		lf.File.Close()
		if err != nil {
			return out, fmt.Errorf("inherited udp %s: %w", addr, err)
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return out, fmt.Errorf("inherited udp %s: not a UDP socket", addr)
		}
		out = append(out, uc)
	}
	return out, nil
}

// PauseTCP stops accepting TCP connections (new ones wait in the kernel's
// listen queue) and returns once the accept loops have returned. A
// graceful restart pauses before handing the listeners over: exec puts a
// passed descriptor into blocking mode, and an accept blocked in the
// kernel could not be stopped. keep must hold duplicates of the TCP
// listeners (ListenerFiles), which keep them open.
func (b *Balancer) PauseTCP() {
	for _, f := range b.tcpf.listeners {
		f.ln.Close()
		<-f.done
	}
}

// ResumeTCP accepts again on the listeners in files (duplicates from
// ListenerFiles) after PauseTCP, when a graceful restart failed.
func (b *Balancer) ResumeTCP(files []ListenerFile) error {
	for _, f := range b.tcpf.listeners {
		for _, lf := range files {
			if lf.Network != "tcp" || lf.Addr != f.addr {
				continue
			}
			ln, err := net.FileListener(lf.File) // also makes it non-blocking again
			if err != nil {
				return fmt.Errorf("tcp %s: %w", f.addr, err)
			}
			f.ln, f.done = ln.(*net.TCPListener), make(chan struct{})
			b.workers.Add(1)
			go b.acceptLoop(f)
		}
	}
	return nil
}
