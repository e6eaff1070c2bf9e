package main

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Counters a forwarder publishes in a small shared file (MAP_SHARED), so
// that `xdpspike measure` reads them at the exact start and end of a
// measurement window without any call into the forwarder.
const (
	statQueries = iota // queries forwarded to the backend
	statAnswers        // answers forwarded to clients
	statDropped        // packets not forwarded (unknown ID, not DNS/UDP to us)
	statBatches        // non-empty receive batches
	statKicks          // sendto/sendmmsg calls
	statPolls          // times the forwarder went to sleep (poll / Go poller)
	numStats
)

var statNames = [numStats]string{"queries", "answers", "dropped", "batches", "kicks", "polls"}

type stats struct {
	v *[numStats]uint64
}

func openStats(path string) (stats, error) {
	if path == "" {
		return stats{v: new([numStats]uint64)}, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return stats{}, err
	}
	defer f.Close()
	if err := f.Truncate(int64(numStats * 8)); err != nil {
		return stats{}, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, numStats*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return stats{}, err
	}
	return stats{v: (*[numStats]uint64)(unsafe.Pointer(&mem[0]))}, nil
}

func (s stats) add(i int, n uint64) { atomic.AddUint64(&s.v[i], n) }
func (s stats) set(i int, n uint64) { atomic.StoreUint64(&s.v[i], n) }

// readStats reads a stats file written by another process (native byte
// order, as stored).
func readStats(path string) ([numStats]uint64, error) {
	var out [numStats]uint64
	b, err := os.ReadFile(path)
	if err != nil {
		return out, err
	}
	for i := range out {
		if len(b) >= (i+1)*8 {
			out[i] = binary.NativeEndian.Uint64(b[i*8:])
		}
	}
	return out, nil
}
