// Command xdpspike is the spike of issue 19: a minimal pure-Go AF_XDP UDP
// forwarder and a socket forwarder doing the same job, and the tools that
// measure them. bench/xdpspike/run.sh builds the topology (network
// namespaces joined by veth pairs on a bridge), runs the load and calls
// these subcommands:
//
//	xdpspike xdpfwd  ...   AF_XDP forwarder (XDP program + XSK, copy mode)
//	xdpspike sockfwd ...   socket forwarder (recvmmsg/sendmmsg)
//	xdpspike measure ...   CPU and packet counters over a window (JSON line)
//	xdpspike report FILE   markdown tables from measure's lines
//
// See docs/performance.md, section "AF_XDP".
package main

import (
	"fmt"
	"log"
	"os"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: xdpspike xdpfwd|sockfwd|measure|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "xdpfwd":
		err = runXDPForwarder(os.Args[2:])
	case "sockfwd":
		err = runSockForwarder(os.Args[2:])
	case "measure":
		err = runMeasure(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		log.Fatalf("xdpspike %s: %v", os.Args[1], err)
	}
}
