package main

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// xdpProgram builds the XDP program with cilium/ebpf's assembler (no clang):
// an IPv4 UDP datagram to proxyIP whose destination port is 53 (a query) or
// whose source port is 53 (an answer from a backend) is redirected to the
// AF_XDP socket of its receive queue in xskmap; everything else (ARP,
// other ports, IPv4 options, IPv6) goes on to the kernel (XDP_PASS). The
// XDP_PASS in bpf_redirect_map's flags is the action taken when the queue
// has no socket.
func xdpProgram(xskmap *ebpf.Map, proxyIP netip.Addr) asm.Instructions {
	ip := proxyIP.As4()
	// Packet loads are little-endian on x86/arm64: a big-endian field
	// loaded as a word compares against its bytes read little-endian.
	dstLE := int32(uint32(ip[0]) | uint32(ip[1])<<8 | uint32(ip[2])<<16 | uint32(ip[3])<<24)
	const port53LE = 0x3500 // htons(53) loaded as a little-endian half word
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),               // r6 = ctx
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),  // r2 = data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),  // r3 = data_end
		asm.Mov.Reg(asm.R4, asm.R2),               //
		asm.Add.Imm(asm.R4, 42),                   // eth(14)+ip(20)+udp(8)
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),       //
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half), // ethertype
		asm.JNE.Imm32(asm.R5, 0x0008, "pass"),     // != IPv4
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte), // version/IHL
		asm.JNE.Imm32(asm.R5, 0x45, "pass"),       // options: let the kernel have it
		asm.LoadMem(asm.R5, asm.R2, 23, asm.Byte), // protocol
		asm.JNE.Imm32(asm.R5, 17, "pass"),         // != UDP
		asm.LoadMem(asm.R5, asm.R2, 30, asm.Word), // destination address
		asm.JNE.Imm32(asm.R5, dstLE, "pass"),      //
		asm.LoadMem(asm.R5, asm.R2, 36, asm.Half), // destination port
		asm.JEq.Imm32(asm.R5, port53LE, "redir"),  // a query
		asm.LoadMem(asm.R5, asm.R2, 34, asm.Half), // source port
		asm.JNE.Imm32(asm.R5, port53LE, "pass"),   // not an answer either
		asm.LoadMapPtr(asm.R1, xskmap.FD()).WithSymbol("redir"),
		asm.LoadMem(asm.R2, asm.R6, 16, asm.Word), // ctx->rx_queue_index
		asm.Mov.Imm(asm.R3, 2),                    // XDP_PASS if no socket
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS
		asm.Return(),
	}
}

// xdpAttachment holds what must stay open while the program is attached.
type xdpAttachment struct {
	xskmap *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
}

func (a *xdpAttachment) Close() {
	if a.link != nil {
		a.link.Close()
	}
	if a.prog != nil {
		a.prog.Close()
	}
	if a.xskmap != nil {
		a.xskmap.Close()
	}
}

// attachRedirect creates the XSKMAP and attaches the redirect program to
// ifindex in native (driver) mode. The link is a bpf_link: it detaches
// when this process exits, however it exits.
func attachRedirect(ifindex int, proxyIP netip.Addr, queues int) (*xdpAttachment, error) {
	a := &xdpAttachment{}
	var err error
	a.xskmap, err = ebpf.NewMap(&ebpf.MapSpec{Name: "xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues)})
	if err != nil {
		return nil, fmt.Errorf("xskmap: %w", err)
	}
	a.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xdpspike", Type: ebpf.XDP, License: "GPL", Instructions: xdpProgram(a.xskmap, proxyIP)})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("xdp program: %w", err)
	}
	a.link, err = link.AttachXDP(link.XDPOptions{Program: a.prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("attach xdp (native): %w", err)
	}
	return a, nil
}
