package balancer

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The UDP data path reads and writes datagrams in batches with recvmmsg
// and sendmmsg, through syscall.RawConn so that Go's poller still does the
// waiting. golang.org/x/net/ipv4's ReadBatch would do the same, but it
// allocates a net.Addr per datagram; these helpers keep every address in
// kernel format in preallocated arrays and allocate nothing per packet.
//
// Both calls are made with RawSyscall6, not Syscall6: they never block
// (MSG_DONTWAIT), and Syscall6's entersyscall wakes the runtime's sysmon
// thread from its deep sleep whenever the process was idle. At moderate
// load (the process idles between most packets) those wake-ups cost about
// a fifth of the CPU per query; see docs/performance.md.

// maxDatagram is the largest UDP payload; every receive slot has room for
// it (pages the kernel never writes to are never touched, so a slot costs
// the size of the datagrams it actually holds).
const maxDatagram = 65535

// sockaddr holds an IPv4 or IPv6 socket address in kernel format.
type sockaddr struct {
	raw unix.RawSockaddrInet6 // an unix.RawSockaddrInet4 when family is AF_INET
	len uint32
}

// setSockaddr stores ap for a socket of the given family (an IPv4 address on
// an IPv6 socket becomes v4-mapped).
func (sa *sockaddr) set(ap netip.AddrPort, family int) {
	if family == unix.AF_INET {
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().Unmap().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:], ap.Port())
		sa.len = unix.SizeofSockaddrInet4
		return
	}
	sa.raw = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.raw.Port))[:], ap.Port())
	sa.len = unix.SizeofSockaddrInet6
}

// addrPort returns the address without its IPv6 zone (the raw form keeps
// the scope for replies); v4-mapped addresses are unmapped.
func (sa *sockaddr) addrPort() netip.AddrPort {
	return rawAddrPort(&sa.raw)
}

func rawAddrPort(raw *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:])
	switch raw.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(raw.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// udpSock is a UDP socket read and written in batches.
type udpSock struct {
	conn   *net.UDPConn
	rc     syscall.RawConn
	family int // unix.AF_INET or unix.AF_INET6
}

func newUDPSock(conn *net.UDPConn, v6 bool) (*udpSock, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &udpSock{conn: conn, rc: rc, family: unix.AF_INET}
	if v6 {
		s.family = unix.AF_INET6
	}
	return s, nil
}

// recvBatch is a preallocated vector of receive slots for recvmmsg.
type recvBatch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte // one slot per datagram: head bytes of room, then the datagram
	head  int
}

// newRecvBatch returns n receive slots, each with head bytes of room in
// front of the datagram (for a PROXY v2 header added in place).
func newRecvBatch(n, head int) *recvBatch {
	r := &recvBatch{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		bufs:  make([][]byte, n),
		head:  head,
	}
	size := head + maxDatagram
	mem := make([]byte, n*size)
	for i := range r.hdrs {
		r.bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
		r.iovs[i].Base = &r.bufs[i][head]
		r.iovs[i].SetLen(maxDatagram)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
		r.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	return r
}

// recv reads up to len(r.hdrs) datagrams without blocking. It returns how
// many, or the errno (EAGAIN when none is queued).
func (r *recvBatch) recv(fd uintptr) (int, syscall.Errno) {
	for i := range r.hdrs {
		r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].Hdr.Flags = 0
	}
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), 0
	}
}

// drain is the body of a RawConn.Read callback: it receives batches and
// hands each to serve until the socket is empty, then returns false so that
// Go's poller waits for the next datagram. An incomplete batch proves the
// queue was empty at some point during the call, so a datagram queued
// later raises a new readiness event and nothing is left waiting. It
// returns true (stop reading) when stop is set or on an error other than
// EAGAIN, which it stores in *errp.
func (r *recvBatch) drain(fd uintptr, serve func(n int), stop *atomic.Bool, errp *syscall.Errno) bool {
	for {
		if stop.Load() {
			return true
		}
		n, e := r.recv(fd)
		if e == unix.EAGAIN {
			return false
		}
		if e != 0 {
			*errp = e
			return true
		}
		serve(n)
		if n < len(r.hdrs) {
			return false
		}
	}
}

// datagram returns the i-th datagram of the last recv and its source;
// ok is false when it was truncated (larger than a slot). Its capacity
// runs to the end of the slot.
func (r *recvBatch) datagram(i int) (pkt []byte, from *unix.RawSockaddrInet6, ok bool) {
	h := &r.hdrs[i]
	return r.bufs[i][r.head : r.head+int(h.Len)], &r.names[i], h.Hdr.Flags&unix.MSG_TRUNC == 0
}

// slot returns the i-th receive slot: the room in front of the datagram
// (recvBatch.head bytes), the datagram, and the spare space behind it.
func (r *recvBatch) slot(i int) []byte { return r.bufs[i] }

// sendFailure is told about a datagram the kernel refused to send.
type sendFailure interface {
	sendFailed(ref sendRef, err syscall.Errno)
}

// sendRef identifies what an outgoing datagram is, so that a failed send
// can be undone (a query's in-flight entry freed).
type sendRef struct {
	up *upstream // the upstream socket a query was tracked on; nil for answers
	be *Backend
	id uint16
}

// outbox collects datagrams for one or more sockets and sends them with
// one sendmmsg per socket. Packets are referenced, not copied: they must
// stay unchanged until flush returns.
type outbox struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []sockaddr
	dsts  []*udpSock
	refs  []sendRef
	n     int
	fail  sendFailure

	// state of the flush in progress, read by writeFn; group and groupIx
	// are resliced from groupBuf and groupIxBuf
	group, groupBuf     []unix.Mmsghdr
	groupIx, groupIxBuf []int
	writeFn             func(fd uintptr) bool
}

func newOutbox(n int, fail sendFailure) *outbox {
	o := &outbox{
		hdrs:       make([]unix.Mmsghdr, n),
		iovs:       make([]unix.Iovec, n),
		names:      make([]sockaddr, n),
		dsts:       make([]*udpSock, n),
		refs:       make([]sendRef, n),
		groupBuf:   make([]unix.Mmsghdr, 0, n),
		groupIxBuf: make([]int, 0, n),
		fail:       fail,
	}
	o.writeFn = o.write
	return o
}

// add queues pkt for dst, to the address in to (nil on a connected socket).
// A full outbox is flushed first.
func (o *outbox) add(dst *udpSock, pkt []byte, to *unix.RawSockaddrInet6, tolen uint32, ref sendRef) {
	if o.n == len(o.hdrs) {
		o.flush()
	}
	i := o.n
	o.n++
	o.dsts[i], o.refs[i] = dst, ref
	o.iovs[i].Base = &pkt[0]
	o.iovs[i].SetLen(len(pkt))
	h := &o.hdrs[i]
	h.Hdr.Iov = &o.iovs[i]
	h.Hdr.SetIovlen(1)
	h.Hdr.Name, h.Hdr.Namelen = nil, 0
	if to != nil {
		o.names[i].raw, o.names[i].len = *to, tolen
		h.Hdr.Name = (*byte)(unsafe.Pointer(&o.names[i].raw))
		h.Hdr.Namelen = tolen
	}
}

// flush sends everything queued: one sendmmsg per destination socket, in
// the order the first datagram for each was queued.
func (o *outbox) flush() {
	for i := 0; i < o.n; i++ {
		dst := o.dsts[i]
		if dst == nil {
			continue
		}
		o.group, o.groupIx = o.groupBuf[:0], o.groupIxBuf[:0]
		for j := i; j < o.n; j++ {
			if o.dsts[j] == dst {
				o.group = append(o.group, o.hdrs[j])
				o.groupIx = append(o.groupIx, j)
				o.dsts[j] = nil
			}
		}
		if err := dst.rc.Write(o.writeFn); err != nil {
			// The socket is closed (shutting down): nothing more can go out.
			for _, j := range o.groupIx {
				o.fail.sendFailed(o.refs[j], unix.EBADF)
			}
		}
	}
	for i := 0; i < o.n; i++ {
		o.refs[i] = sendRef{}
	}
	o.n = 0
}

// write is the RawConn.Write callback: it sends o.group, waiting for room
// in the socket buffer when the kernel says EAGAIN. A datagram the kernel
// refuses (e.g. no route) is reported and skipped.
func (o *outbox) write(fd uintptr) bool {
	for len(o.group) > 0 {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&o.group[0])), uintptr(len(o.group)), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return false
		case e != 0:
			o.fail.sendFailed(o.refs[o.groupIx[0]], e)
			n = 1
		}
		o.group, o.groupIx = o.group[n:], o.groupIx[n:]
	}
	return true
}
