package balancer

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzTCPFraming writes arbitrary bytes as a client's TCP stream into a
// running balancer whose backend checks every message it receives: each
// must be a whole, parseable query (the balancer forwards only complete,
// valid messages), and the balancer must close the connection rather than
// hang on a bad stream. Seed corpus: testdata/fuzz/FuzzTCPFraming.
func FuzzTCPFraming(f *testing.F) {
	q := packQuery(f, "www.example.test.", dns.TypeA, nil)
	framed := func(msgs ...[]byte) []byte {
		var out []byte
		for _, m := range msgs {
			out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
			out = append(out, m...)
		}
		return out
	}
	f.Add(framed(q))
	f.Add(framed(q, q))
	f.Add(framed(q)[:1])                    // half a length prefix
	f.Add(framed(q)[:10])                   // a prefix and part of the message
	f.Add([]byte{0, 0})                     // zero length
	f.Add(framed([]byte{1, 2, 3, 4, 5}))    // shorter than a header
	f.Add(append([]byte{0xff, 0xff}, q...)) // longer than what follows

	// the backend: reads framed messages, checks them, answers each
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	var mu sync.Mutex
	var bad []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				for {
					var l [2]byte
					if _, err := io.ReadFull(c, l[:]); err != nil {
						return
					}
					msg := make([]byte, binary.BigEndian.Uint16(l[:]))
					if _, err := io.ReadFull(c, msg); err != nil {
						mu.Lock()
						bad = append(bad, "partial message forwarded")
						mu.Unlock()
						return
					}
					m := new(dns.Msg)
					if err := m.Unpack(msg); err != nil || m.Response || len(m.Question) != 1 {
						mu.Lock()
						bad = append(bad, "malformed message forwarded")
						mu.Unlock()
						return
					}
					msg[2] |= 0x80
					c.Write(append(l[:], msg...))
				}
			}(c)
		}
	}()
	f.Cleanup(func() { ln.Close() })
	listen := netip.MustParseAddrPort("127.0.0.1:0")
	probe, err := net.Listen("tcp", listen.String())
	if err != nil {
		f.Fatal(err)
	}
	listen = probe.Addr().(*net.TCPAddr).AddrPort()
	probe.Close()
	b, err := New(Options{Listen: []netip.AddrPort{listen}, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	s := Settings{TCPReadTimeout: 200 * time.Millisecond, MaxTCPConnsPerClient: 1000}
	if err := b.Apply([]BackendSpec{{Name: "checker", Addr: ln.Addr().(*net.TCPAddr).AddrPort(), Weight: 1}}, s); err != nil {
		f.Fatal(err)
	}
	if err := b.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Shutdown(contextWithTimeout(f, time.Second)) })

	f.Fuzz(func(t *testing.T, data []byte) {
		d := net.Dialer{Timeout: time.Second, Control: reuseAddr} // see reuseAddr
		c, err := d.Dial("tcp", listen.String())
		if err != nil {
			t.Skip("dial:", err) // the fuzzer's own load, not a finding
		}
		c.(*net.TCPConn).SetLinger(0)
		defer c.Close()
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		// closed (EOF) or, after a malformed message with bytes left unread,
		// reset; only a timeout means the balancer hung on the stream
		if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("balancer did not close the connection after the stream ended: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("backend got: %s (input %x)", bad[0], data)
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// contextWithTimeout is a context cancelled after d or at the end of the test.
func contextWithTimeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
