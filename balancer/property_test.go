package balancer

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnswire/dnswiretest"
)

// TestAnyInputAnsweredOrDroppedAndCounted is a property test over a running
// balancer: for 3000 datagrams (the fuzz seed corpora, valid queries, and
// random mutations of them), every datagram is either dropped and counted
// under a reason, or forwarded as a query the backend can parse (one
// question, QR=0, records inside the contract of doc.go as
// dnswiretest.Oracle judges it); nothing malformed reaches the backend,
// and every forwarded query's answer reaches the client.
func TestAnyInputAnsweredOrDroppedAndCounted(t *testing.T) {
	var mu sync.Mutex
	var got int
	var bad []string
	// the backend: checks each query, answers it as-is with QR set
	be := rawBackend(t, "recorder", func(pc *net.UDPConn, pkt []byte, from netip.AddrPort) {
		err := dnswiretest.Oracle(pkt)
		mu.Lock()
		got++
		if err == nil && pkt[2]&0x80 != 0 {
			err = errors.New("a response (QR=1)")
		}
		if err != nil {
			bad = append(bad, err.Error())
		}
		mu.Unlock()
		pkt[2] |= 0x80
		pc.WriteToUDPAddrPort(pkt, from)
	})
	b, lb := startBalancer(t, Settings{UDPRetry: false}, be)

	inputs := seedInputs(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for len(inputs) < 3000 {
		in := append([]byte(nil), inputs[rng.IntN(len(inputs))]...)
		for k := 0; k < 1+rng.IntN(4) && len(in) > 0; k++ {
			switch rng.IntN(4) {
			case 0:
				in[rng.IntN(len(in))] = byte(rng.UintN(256))
			case 1:
				in = in[:rng.IntN(len(in))]
			case 2:
				in = append(in, byte(rng.UintN(256)))
			case 3:
				in[rng.IntN(len(in))] ^= 1 << rng.UintN(8)
			}
		}
		inputs = append(inputs, in)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(lb))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := 0
	for i, in := range inputs {
		if len(in) == 0 {
			continue
		}
		if _, err := c.Write(in); err != nil {
			t.Fatal(err)
		}
		sent++
		if i%64 == 0 {
			time.Sleep(time.Millisecond) // keep the socket buffers from overflowing
		}
	}
	answers := 0
	buf := make([]byte, 65535)
	for {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		answers++
		if n < headerLen || buf[2]&0x80 == 0 {
			t.Fatalf("client got a non-answer: %x", buf[:n])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var dropped uint64
	for _, n := range b.Dropped() {
		dropped += n
	}
	t.Logf("%d datagrams: %d forwarded and answered, %d dropped and counted (%v)", sent, got, dropped, nonZero(b.Dropped()))
	if len(bad) > 0 {
		t.Fatalf("%d malformed queries reached the backend, e.g. %s", len(bad), bad[0])
	}
	if uint64(got)+dropped != uint64(sent) {
		t.Fatalf("forwarded %d + dropped %d != sent %d: something was neither", got, dropped, sent)
	}
	if answers != got {
		t.Fatalf("backend answered %d queries, client got %d answers", got, answers)
	}
	if got == 0 || dropped == 0 {
		t.Fatal("the inputs did not exercise both outcomes")
	}
}

// seedInputs returns the fuzz seed corpora of both parsers and a few
// valid queries.
func seedInputs(t *testing.T) [][]byte {
	var out [][]byte
	for _, dir := range []string{"testdata/fuzz/FuzzParseQuery", "testdata/fuzz/FuzzParseAnswer"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if b, ok := corpusBytes(string(data)); ok {
				out = append(out, b)
			}
		}
	}
	for _, q := range []struct {
		name string
		t    uint16
	}{{"www.example.test.", dns.TypeA}, {"example.test.", dns.TypeMX}, {"a.b.c.d.example.test.", dns.TypeAAAA}} {
		out = append(out, packQuery(t, q.name, q.t, func(m *dns.Msg) { m.SetEdns0(1232, true) }))
	}
	return out
}

// corpusBytes decodes a "go test fuzz v1" file holding one []byte.
func corpusBytes(s string) ([]byte, bool) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil, false
	}
	lit := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
	v, err := strconv.Unquote(lit)
	return []byte(v), err == nil
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}
