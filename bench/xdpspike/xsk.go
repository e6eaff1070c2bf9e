package main

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An AF_XDP socket with its own UMEM, set up with golang.org/x/sys/unix
// only: the UMEM is an anonymous mapping registered with XDP_UMEM_REG, and
// the four rings (fill, completion, rx, tx) are mapped from the socket at
// the offsets XDP_MMAP_OFFSETS gives. Each ring is a power-of-two array
// with a producer and a consumer index shared with the kernel; one side
// only ever writes each index (release), the other reads it (acquire).
// Go's sync/atomic loads and stores are sequentially consistent, which is
// at least that.

// ring is one single-producer single-consumer ring shared with the kernel.
type ring struct {
	producer *uint32
	consumer *uint32
	flags    *uint32
	descs    unsafe.Pointer // []uint64 (fill, completion) or []unix.XDPDesc (rx, tx)
	mask     uint32
	size     uint32
	mem      []byte
}

func mapRing(fd int, off unix.XDPRingOffset, pgoff int64, n uint32, descSize uintptr) (ring, error) {
	length := int(off.Desc) + int(n)*int(descSize)
	mem, err := unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, err
	}
	base := unsafe.Pointer(&mem[0])
	return ring{
		producer: (*uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*uint32)(unsafe.Add(base, off.Consumer)),
		flags:    (*uint32)(unsafe.Add(base, off.Flags)),
		descs:    unsafe.Add(base, off.Desc),
		mask:     n - 1,
		size:     n,
		mem:      mem,
	}, nil
}

func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&r.mask)*8))
}

func (r *ring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

func (r *ring) needWakeup() bool { return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0 }

// xsk is an AF_XDP socket bound to one queue of one interface.
type xsk struct {
	fd        int
	umem      []byte
	frameSize uint64
	fill      ring // we produce free frames, the kernel consumes
	comp      ring // the kernel produces sent frames, we consume
	rx        ring // the kernel produces received frames, we consume
	tx        ring // we produce frames to send, the kernel consumes
	zerocopy  bool
}

type xskConfig struct {
	ifindex   int
	queue     int
	frames    uint32 // UMEM frames; also the fill and completion ring size
	frameSize uint32 // 2048 or 4096
	ringSize  uint32 // rx and tx ring size
	copyMode  bool   // force XDP_COPY (veth has no zero-copy anyway)
	txBudget  int    // XDP_MAX_TX_SKB_BUDGET: frames one sendto may send in copy mode (0: kernel default, 32)
}

func setsockoptPtr(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func newXSK(c xskConfig) (*xsk, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_XDP): %w", err)
	}
	x := &xsk{fd: fd, frameSize: uint64(c.frameSize)}
	fail := func(what string, err error) (*xsk, error) {
		x.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	x.umem, err = unix.Mmap(-1, 0, int(c.frames*c.frameSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap umem", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))), Len: uint64(len(x.umem)), Size: c.frameSize}
	if err := setsockoptPtr(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fail("XDP_UMEM_REG", err)
	}
	for _, o := range []struct {
		opt int
		n   uint32
	}{{unix.XDP_UMEM_FILL_RING, c.frames}, {unix.XDP_UMEM_COMPLETION_RING, c.frames}, {unix.XDP_RX_RING, c.ringSize}, {unix.XDP_TX_RING, c.ringSize}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o.opt, int(o.n)); err != nil {
			return fail(fmt.Sprintf("ring option %d", o.opt), err)
		}
	}
	var off unix.XDPMmapOffsets
	size := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return fail("XDP_MMAP_OFFSETS", e)
	}
	if x.fill, err = mapRing(fd, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, c.frames, 8); err != nil {
		return fail("mmap fill ring", err)
	}
	if x.comp, err = mapRing(fd, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, c.frames, 8); err != nil {
		return fail("mmap completion ring", err)
	}
	if x.rx, err = mapRing(fd, off.Rx, unix.XDP_PGOFF_RX_RING, c.ringSize, unsafe.Sizeof(unix.XDPDesc{})); err != nil {
		return fail("mmap rx ring", err)
	}
	if x.tx, err = mapRing(fd, off.Tx, unix.XDP_PGOFF_TX_RING, c.ringSize, unsafe.Sizeof(unix.XDPDesc{})); err != nil {
		return fail("mmap tx ring", err)
	}
	if c.txBudget > 0 {
		// Kernel 6.16+; older kernels send 32 frames per sendto.
		_ = unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, c.txBudget)
	}
	// Every frame starts on the fill ring: the ring holds all of them, so
	// returning a frame to it can never fail.
	for i := uint32(0); i < c.frames; i++ {
		*x.fill.addr(i) = uint64(i) * x.frameSize
	}
	atomic.StoreUint32(x.fill.producer, c.frames)

	flags := uint16(unix.XDP_USE_NEED_WAKEUP)
	if c.copyMode {
		flags |= unix.XDP_COPY
	}
	if err := unix.Bind(fd, &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(c.ifindex), QueueID: uint32(c.queue)}); err != nil {
		return fail("bind", err)
	}
	var opts uint32
	size = 4
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_OPTIONS, uintptr(unsafe.Pointer(&opts)), uintptr(unsafe.Pointer(&size)), 0); e == 0 {
		x.zerocopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	}
	return x, nil
}

func (x *xsk) Close() {
	for _, r := range []*ring{&x.fill, &x.comp, &x.rx, &x.tx} {
		if r.mem != nil {
			unix.Munmap(r.mem)
		}
	}
	if x.fd >= 0 {
		unix.Close(x.fd)
	}
	if x.umem != nil {
		unix.Munmap(x.umem)
	}
}

// kickTx asks the kernel to send what is on the tx ring. In copy mode the
// kernel sends from inside this sendto (it builds an skb per frame and
// hands it to the driver), up to the tx budget per call; EAGAIN means more
// is left, EBUSY/ENOBUFS that the driver pushed back.
func (x *xsk) kickTx() {
	for i := 0; i < 64; i++ {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(x.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		if e != unix.EAGAIN && e != unix.EINTR {
			return
		}
		if atomic.LoadUint32(x.tx.consumer) == atomic.LoadUint32(x.tx.producer) {
			return
		}
	}
}

func (x *xsk) statistics() (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	size := uint32(unsafe.Sizeof(st))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(x.fd), unix.SOL_XDP, unix.XDP_STATISTICS, uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return st, e
	}
	return st, nil
}
