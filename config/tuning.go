package config

import (
	"strconv"
	"strings"
)

// Tuning holds the data path's performance settings (key tuning). Every
// change needs a restart ([RestartOnly] reports "tuning").
type Tuning struct {
	// UDPWorkers is the number of UDP sockets (SO_REUSEPORT) and reader
	// goroutines per listen address (tuning.udp_workers), 0-1024; 0, the
	// default, means one per CPU the process may run on (GOMAXPROCS).
	UDPWorkers int
	// UpstreamSockets is the number of UDP sockets towards the backends per
	// address family, shared by all backends (tuning.upstream_sockets),
	// 1-64; default 4. Each carries up to 4096 queries in flight.
	UpstreamSockets int
	// BatchSize is the most datagrams one recvmmsg or sendmmsg call moves
	// (tuning.batch_size), 1-1024; default 32.
	BatchSize int
	// SocketBuffer is the receive and send buffer size in bytes asked for
	// every UDP socket (tuning.socket_buffer), 64KiB-1GiB; default 4MiB.
	// Written as a number of bytes or with a unit: 512KiB, 4MiB, 1GiB.
	SocketBuffer int
}

const (
	defaultUDPWorkers      = 0
	defaultUpstreamSockets = 4
	defaultBatchSize       = 32
	defaultSocketBuffer    = "4MiB"
	minSocketBuffer        = 64 << 10
	maxSocketBuffer        = 1 << 30
)

func tuningKeys() []string {
	return []string{"udp_workers", "upstream_sockets", "batch_size", "socket_buffer"}
}

// tuning decodes the tuning section.
func (d *decoder) tuning() Tuning {
	var t Tuning
	if v, ok := d.scalar("tuning.udp_workers"); ok {
		t.UDPWorkers, _ = d.integer("tuning.udp_workers", v, 0, 1024)
	}
	if v, ok := d.scalar("tuning.upstream_sockets"); ok {
		t.UpstreamSockets, _ = d.integer("tuning.upstream_sockets", v, 1, 64)
	}
	if v, ok := d.scalar("tuning.batch_size"); ok {
		t.BatchSize, _ = d.integer("tuning.batch_size", v, 1, 1024)
	}
	if v, ok := d.scalar("tuning.socket_buffer"); ok {
		t.SocketBuffer, _ = d.byteSize("tuning.socket_buffer", v, minSocketBuffer, maxSocketBuffer)
	}
	return t
}

// byteSize decodes a size in bytes: an integer, or a number with one of
// the units KiB, MiB, GiB (powers of 1024), within [lo, hi].
func (d *decoder) byteSize(path string, v any, lo, hi int64) (int, bool) {
	s, isText := v.(string)
	if !isText {
		return d.integer(path, v, lo, hi)
	}
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		d.add(path, "%q: not a size (bytes, or a whole number of KiB, MiB or GiB, e.g. 4MiB)", v)
		return 0, false
	}
	if n > hi/mult || n*mult < lo {
		d.add(path, "%q out of range 64KiB-1GiB", v)
		return 0, false
	}
	return int(n * mult), true
}
