package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// runSockForwarder is `xdpspike sockfwd`: the reference, a plain UDP relay
// doing the same job as the AF_XDP forwarder. A listening socket on
// proxy:53 takes queries; each gets a fresh DNS ID and goes out on one
// upstream socket (proxy:up-port, connected to backend:53); the client's
// address, port and original ID are kept in a table indexed by that ID.
// Answers come in on the upstream socket and go back out of the listening
// socket. Reads and writes are batched (recvmmsg/sendmmsg):
//
//	-io xnet: golang.org/x/net/ipv4 ReadBatch/WriteBatch, one goroutine per
//	          direction, waiting in Go's poller; allocates a net.Addr per
//	          datagram received.
//	-io raw:  recvmmsg/sendmmsg with RawSyscall6 as dnslb's balancer/mmsg.go
//	          does (addresses in kernel format, nothing allocated per
//	          datagram), in one loop on one locked thread that serves both
//	          sockets and sleeps in epoll_wait: the AF_XDP loop's shape.
//	          (Two goroutines on GOMAXPROCS=1 starve each other here:
//	          RawSyscall6 never yields, and a goroutine woken by the
//	          netpoller waits behind a runtime.Gosched'd one.)
func runSockForwarder(args []string) error {
	fs := flag.NewFlagSet("sockfwd", flag.ExitOnError)
	proxyIP := fs.String("ip", "", "listening IPv4 address (port 53)")
	backendIP := fs.String("backend", "", "backend IPv4 address (port 53)")
	upPort := fs.Uint("up-port", 40053, "source port towards the backend")
	batch := fs.Int("batch", 64, "datagrams per recvmmsg/sendmmsg")
	io := fs.String("io", "raw", "xnet or raw")
	sockBuf := fs.Int("sockbuf", 4<<20, "SO_RCVBUF/SO_SNDBUF (forced)")
	statsPath := fs.String("stats", "", "shared counters file")
	fs.Parse(args)

	pip, err := netip.ParseAddr(*proxyIP)
	if err != nil {
		return err
	}
	bip, err := netip.ParseAddr(*backendIP)
	if err != nil {
		return err
	}
	st, err := openStats(*statsPath)
	if err != nil {
		return err
	}
	lc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(pip, 53)))
	if err != nil {
		return err
	}
	uc, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(pip, uint16(*upPort))), net.UDPAddrFromAddrPort(netip.AddrPortFrom(bip, 53)))
	if err != nil {
		return err
	}
	for _, c := range []*net.UDPConn{lc, uc} {
		rc, _ := c.SyscallConn()
		rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, *sockBuf)
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, *sockBuf)
		})
	}
	// table[id] = client IPv4 (32) | client port (16) | original ID (16).
	table := make([]atomic.Uint64, 65536)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 2)
	var stop atomic.Bool
	log.Printf("sockfwd(%s): %s:53 -> %s:53 from port %d", *io, pip, bip, *upPort)
	switch *io {
	case "xnet":
		go func() { errc <- xnetQueries(lc, uc, table, *batch, st) }()
		go func() { errc <- xnetAnswers(lc, uc, table, *batch, st) }()
	case "raw":
		go func() { errc <- rawForward(lc, uc, table, *batch, st, &stop) }()
	default:
		return fmt.Errorf("unknown -io %q", *io)
	}
	select {
	case <-sig:
		stop.Store(true)
		return nil
	case err := <-errc:
		return err
	}
}

func packEntry(ip [4]byte, port, id uint16) uint64 {
	return uint64(binary.BigEndian.Uint32(ip[:]))<<32 | uint64(port)<<16 | uint64(id)
}

func unpackEntry(v uint64) (ip [4]byte, port, id uint16) {
	binary.BigEndian.PutUint32(ip[:], uint32(v>>32))
	return ip, uint16(v >> 16), uint16(v)
}

// --- golang.org/x/net/ipv4 batches ---

func newMessages(n int) []ipv4.Message {
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 4096)}
	}
	return ms
}

func xnetQueries(lc, uc *net.UDPConn, table []atomic.Uint64, batch int, st stats) error {
	in, out := ipv4.NewPacketConn(lc), ipv4.NewPacketConn(uc)
	rms, wms := newMessages(batch), newMessages(batch)
	var id uint16
	for {
		n, err := in.ReadBatch(rms, 0)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return err
		}
		k := 0
		for i := 0; i < n; i++ {
			m := &rms[i]
			b := m.Buffers[0][:m.N]
			ua, ok := m.Addr.(*net.UDPAddr)
			if len(b) < 12 || !ok || ua.IP.To4() == nil {
				st.add(statDropped, 1)
				continue
			}
			table[id].Store(packEntry([4]byte(ua.IP.To4()), uint16(ua.Port), binary.BigEndian.Uint16(b)))
			binary.BigEndian.PutUint16(b, id)
			id++
			wms[k].Buffers[0] = b
			k++
		}
		st.add(statBatches, 1)
		if k > 0 {
			if err := writeAll(out, wms[:k], st); err != nil {
				return err
			}
			st.add(statKicks, 1)
		}
		st.add(statQueries, uint64(k))
	}
}

func xnetAnswers(lc, uc *net.UDPConn, table []atomic.Uint64, batch int, st stats) error {
	in, out := ipv4.NewPacketConn(uc), ipv4.NewPacketConn(lc)
	rms, wms := newMessages(batch), newMessages(batch)
	addrs := make([]net.UDPAddr, batch)
	for i := range addrs {
		addrs[i].IP = make(net.IP, 4)
	}
	for {
		n, err := in.ReadBatch(rms, 0)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return err
		}
		k := 0
		for i := 0; i < n; i++ {
			m := &rms[i]
			b := m.Buffers[0][:m.N]
			if len(b) < 12 {
				st.add(statDropped, 1)
				continue
			}
			ip, port, oid := unpackEntry(table[binary.BigEndian.Uint16(b)].Load())
			if port == 0 { // no query with this ID (e.g. an answer to an earlier forwarder)
				st.add(statDropped, 1)
				continue
			}
			binary.BigEndian.PutUint16(b, oid)
			copy(addrs[k].IP, ip[:])
			addrs[k].Port = int(port)
			wms[k].Buffers[0] = b
			wms[k].Addr = &addrs[k]
			k++
		}
		st.add(statBatches, 1)
		if k > 0 {
			if err := writeAll(out, wms[:k], st); err != nil {
				return err
			}
			st.add(statKicks, 1)
		}
		st.add(statAnswers, uint64(k))
	}
}

// writeAll sends ms; a datagram the kernel refuses is dropped (counted),
// as a proxy would.
func writeAll(pc *ipv4.PacketConn, ms []ipv4.Message, st stats) error {
	for len(ms) > 0 {
		n, err := pc.WriteBatch(ms, 0)
		if err != nil {
			st.add(statDropped, 1)
			n = 1
		}
		ms = ms[n:]
	}
	return nil
}

// --- raw recvmmsg/sendmmsg, as balancer/mmsg.go does ---

type mmsgVec struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	bufs  [][]byte
}

func newMmsgVec(n, bufSize int) *mmsgVec {
	v := &mmsgVec{hdrs: make([]unix.Mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet4, n), bufs: make([][]byte, n)}
	for i := range v.hdrs {
		if bufSize > 0 {
			v.bufs[i] = make([]byte, bufSize)
			v.iovs[i].Base = &v.bufs[i][0]
			v.iovs[i].SetLen(bufSize)
		}
		v.hdrs[i].Hdr.Iov = &v.iovs[i]
		v.hdrs[i].Hdr.SetIovlen(1)
	}
	return v
}

func recvmmsg(fd uintptr, v *mmsgVec) (int, syscall.Errno) {
	for i := range v.hdrs {
		v.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&v.names[i]))
		v.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		v.hdrs[i].Hdr.Flags = 0
	}
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&v.hdrs[0])), uintptr(len(v.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		return int(n), e
	}
}

// sendmmsg sends v.hdrs[:n]; datagrams the socket refuses (EAGAIN) are
// dropped, as dnslb does.
func sendmmsg(fd uintptr, v *mmsgVec, n int) int {
	sent := 0
	for sent < n {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&v.hdrs[sent])), uintptr(n-sent), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return sent
		}
		sent += int(r)
	}
	return sent
}

func rawFD(c *net.UDPConn) uintptr {
	rc, _ := c.SyscallConn()
	var out uintptr
	rc.Control(func(fd uintptr) { out = fd })
	return out
}

// rawForward is the -io raw forwarder: one loop on one locked OS thread,
// the same shape as the AF_XDP loop. Each turn reads one batch of queries
// (recvmmsg on the listening socket) and one batch of answers (recvmmsg on
// the upstream socket), each forwarded with one sendmmsg; when both sockets
// are empty it sleeps in epoll_wait. The sockets are non-blocking (Go made
// them so) and never go through Go's poller.
func rawForward(lc, uc *net.UDPConn, table []atomic.Uint64, batch int, st stats, stop *atomic.Bool) error {
	runtime.LockOSThread()
	lfd, ufd := rawFD(lc), rawFD(uc)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	for _, fd := range []uintptr{lfd, ufd} {
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, int(fd), &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return err
		}
	}
	events := make([]unix.EpollEvent, 2)
	qr, qw := newMmsgVec(batch, 4096), newMmsgVec(batch, 0) // qw's iovecs point into qr's buffers
	ar, aw := newMmsgVec(batch, 4096), newMmsgVec(batch, 0)
	var id uint16
	for !stop.Load() {
		got := 0
		// Queries: client -> proxy:53, out to the backend with a new ID.
		n, e := recvmmsg(lfd, qr)
		if e != 0 && e != unix.EAGAIN && e != unix.EINTR {
			return e
		}
		if n > 0 {
			got += n
			st.add(statBatches, 1)
			k := 0
			for i := 0; i < n; i++ {
				l := int(qr.hdrs[i].Len)
				b := qr.bufs[i][:l]
				sa := &qr.names[i]
				if l < 12 || sa.Family != unix.AF_INET {
					st.add(statDropped, 1)
					continue
				}
				port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
				table[id].Store(packEntry(sa.Addr, port, binary.BigEndian.Uint16(b)))
				binary.BigEndian.PutUint16(b, id)
				id++
				qw.iovs[k].Base = &b[0]
				qw.iovs[k].SetLen(l)
				qw.hdrs[k].Hdr.Name, qw.hdrs[k].Hdr.Namelen = nil, 0 // connected socket
				k++
			}
			if k > 0 {
				sent := sendmmsg(ufd, qw, k)
				st.add(statKicks, 1)
				st.add(statQueries, uint64(sent))
				st.add(statDropped, uint64(k-sent))
			}
		}
		// Answers: backend:53 -> proxy:up-port, back to the client.
		n, e = recvmmsg(ufd, ar)
		if e != 0 && e != unix.EAGAIN && e != unix.EINTR && e != unix.ECONNREFUSED {
			return e
		}
		if n > 0 {
			got += n
			st.add(statBatches, 1)
			k := 0
			for i := 0; i < n; i++ {
				l := int(ar.hdrs[i].Len)
				b := ar.bufs[i][:l]
				if l < 12 {
					st.add(statDropped, 1)
					continue
				}
				ip, port, oid := unpackEntry(table[binary.BigEndian.Uint16(b)].Load())
				if port == 0 { // no query with this ID (e.g. an answer to an earlier forwarder)
					st.add(statDropped, 1)
					continue
				}
				binary.BigEndian.PutUint16(b, oid)
				sa := &aw.names[k]
				sa.Family = unix.AF_INET
				sa.Addr = ip
				binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], port)
				aw.iovs[k].Base = &b[0]
				aw.iovs[k].SetLen(l)
				aw.hdrs[k].Hdr.Name = (*byte)(unsafe.Pointer(sa))
				aw.hdrs[k].Hdr.Namelen = unix.SizeofSockaddrInet4
				k++
			}
			if k > 0 {
				sent := sendmmsg(lfd, aw, k)
				st.add(statKicks, 1)
				st.add(statAnswers, uint64(sent))
				st.add(statDropped, uint64(k-sent))
			}
		}
		if got == 0 {
			st.add(statPolls, 1)
			if _, err := unix.EpollWait(ep, events, 100); err != nil && err != unix.EINTR {
				return err
			}
		}
	}
	return nil
}
