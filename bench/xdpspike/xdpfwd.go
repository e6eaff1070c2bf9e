package main

import (
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

	"golang.org/x/sys/unix"
)

// runXDPForwarder is `xdpspike xdpfwd`: a single-arm AF_XDP UDP forwarder
// on one interface (one queue), one goroutine on one locked OS thread.
//
// Loop: move finished tx frames (completion ring) back to the fill ring;
// take up to -batch received frames from the rx ring, rewrite each in
// place and put it on the tx ring (or straight back on the fill ring if it
// is not forwarded); kick the kernel with one sendto if the tx ring says it
// needs a wakeup (always, in copy mode). When the rx ring is empty it
// sleeps in poll(POLLIN), so an idle forwarder costs nothing. No memory is
// allocated after setup: frames circulate fill -> rx -> tx -> completion ->
// fill, and every ring holds all frames.
func runXDPForwarder(args []string) error {
	fs := flag.NewFlagSet("xdpfwd", flag.ExitOnError)
	ifname := fs.String("iface", "", "interface (in this network namespace)")
	proxyIP := fs.String("ip", "", "the proxy's (listening) IPv4 address on -iface")
	backendIP := fs.String("backend", "", "backend IPv4 address (port 53)")
	backendMAC := fs.String("backend-mac", "", "backend MAC address (single arm: same L2 segment)")
	upPort := fs.Uint("up-port", 40053, "source port towards the backend")
	batch := fs.Int("batch", 64, "max frames per rx batch")
	frames := fs.Uint("frames", 16384, "UMEM frames (power of two); 32 MiB: as much buffering as the sockets' 4 MiB of small skbs")
	ringSize := fs.Uint("ring", 8192, "rx/tx ring size (power of two)")
	txBudget := fs.Int("tx-budget", 256, "XDP_MAX_TX_SKB_BUDGET (frames per sendto in copy mode)")
	busy := fs.Bool("busy", false, "spin instead of sleeping in poll when idle (not used in the spike)")
	statsPath := fs.String("stats", "", "shared counters file")
	fs.Parse(args)

	ifc, err := net.InterfaceByName(*ifname)
	if err != nil {
		return err
	}
	pip, err := netip.ParseAddr(*proxyIP)
	if err != nil {
		return err
	}
	bip, err := netip.ParseAddr(*backendIP)
	if err != nil {
		return err
	}
	bmac, err := net.ParseMAC(*backendMAC)
	if err != nil {
		return err
	}
	st, err := openStats(*statsPath)
	if err != nil {
		return err
	}
	runtime.LockOSThread()

	att, err := attachRedirect(ifc.Index, pip, 1)
	if err != nil {
		return err
	}
	defer att.Close()
	x, err := newXSK(xskConfig{ifindex: ifc.Index, queue: 0, frames: uint32(*frames), frameSize: 2048, ringSize: uint32(*ringSize), copyMode: true, txBudget: *txBudget})
	if err != nil {
		return err
	}
	defer x.Close()
	if err := att.xskmap.Put(uint32(0), uint32(x.fd)); err != nil {
		return fmt.Errorf("xskmap put: %w", err)
	}
	f := newForwarder([6]byte(ifc.HardwareAddr), [6]byte(bmac), pip, bip, uint16(*upPort))

	var stop atomic.Bool
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; stop.Store(true) }()

	log.Printf("xdpfwd: %s ifindex %d queue 0, zerocopy=%v, forwarding %s:53 -> %s:53 (%s)", *ifname, ifc.Index, x.zerocopy, pip, bip, bmac)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	xdpLoop(x, f, st, *batch, *busy, &stop)
	runtime.ReadMemStats(&m1)
	log.Printf("xdpfwd: heap allocations while forwarding: %d (for %d packets)", m1.Mallocs-m0.Mallocs, f.queries+f.answers)
	if s, err := x.statistics(); err == nil {
		log.Printf("xdpfwd: xsk stats %+v", s)
	}
	log.Printf("xdpfwd: queries %d answers %d dropped %d", f.queries, f.answers, f.dropped)
	return nil
}

func xdpLoop(x *xsk, f *forwarder, st stats, batch int, busy bool, stop *atomic.Bool) {
	pfd := []unix.PollFd{{Fd: int32(x.fd), Events: unix.POLLIN}}
	mask := ^(x.frameSize - 1)
	var fillProd = atomic.LoadUint32(x.fill.producer)
	var compCons = atomic.LoadUint32(x.comp.consumer)
	var rxCons = atomic.LoadUint32(x.rx.consumer)
	var txProd = atomic.LoadUint32(x.tx.producer)
	var batches, kicks, polls uint64
	for !stop.Load() {
		// Completed transmissions: their frames go back to the fill ring.
		if n := atomic.LoadUint32(x.comp.producer) - compCons; n > 0 {
			for i := uint32(0); i < n; i++ {
				*x.fill.addr(fillProd) = *x.comp.addr(compCons) & mask
				fillProd++
				compCons++
			}
			atomic.StoreUint32(x.comp.consumer, compCons)
			atomic.StoreUint32(x.fill.producer, fillProd)
		}

		n := atomic.LoadUint32(x.rx.producer) - rxCons
		if n == 0 {
			if busy {
				continue
			}
			polls++
			st.set(statPolls, polls)
			// A full fill ring never needs a kick in copy mode; poll waits
			// for rx (and wakes the kernel's rx side where it needs it).
			if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
				log.Printf("poll: %v", err)
				return
			}
			continue
		}
		if n > uint32(batch) {
			n = uint32(batch)
		}
		var sent, q0, a0, d0 = uint32(0), f.queries, f.answers, f.dropped
		for i := uint32(0); i < n; i++ {
			d := x.rx.desc(rxCons)
			rxCons++
			pkt := x.umem[d.Addr : d.Addr+uint64(d.Len)]
			if f.handle(pkt) {
				if txProd-atomic.LoadUint32(x.tx.consumer) >= x.tx.size {
					// tx ring full (the driver pushed back): drop.
					*x.fill.addr(fillProd) = d.Addr & mask
					fillProd++
					f.dropped++
					continue
				}
				td := x.tx.desc(txProd)
				td.Addr, td.Len, td.Options = d.Addr, d.Len, 0
				txProd++
				sent++
			} else {
				*x.fill.addr(fillProd) = d.Addr & mask
				fillProd++
			}
		}
		atomic.StoreUint32(x.rx.consumer, rxCons)
		atomic.StoreUint32(x.fill.producer, fillProd)
		batches++
		if sent > 0 {
			atomic.StoreUint32(x.tx.producer, txProd)
			if x.tx.needWakeup() {
				x.kickTx()
				kicks++
			}
		}
		st.add(statQueries, f.queries-q0)
		st.add(statAnswers, f.answers-a0)
		st.add(statDropped, f.dropped-d0)
		st.set(statBatches, batches)
		st.set(statKicks, kicks)
	}
}
