// Package integration runs the dnslb binary against real DNS servers (NSD)
// and real clients (miekg/dns, dig, kdig). Tests need root, nsd, dig and
// iproute2; without them they are skipped with the reason printed. The
// binary is built once, with the race detector, by TestMain.
package integration
