package balancer

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeNotifier decides every NOTIFY with verdict; for accept it calls
// done after delay, with answer.
type fakeNotifier struct {
	mu      sync.Mutex
	verdict NotifyVerdict
	delay   time.Duration
	answer  []byte
	got     []netip.AddrPort // sources, in order
}

func (f *fakeNotifier) Notify(msg []byte, src, dst netip.AddrPort, done func([]byte)) NotifyVerdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, src)
	if f.verdict == NotifyAccept {
		answer, delay := f.answer, f.delay
		go func() {
			time.Sleep(delay)
			done(answer)
		}()
	}
	return f.verdict
}

func startWithNotifier(t *testing.T, n Notifier) (*Balancer, netip.AddrPort, *fakeBackend) {
	t.Helper()
	f := startFake(t, "one")
	listen := freeAddr(t)
	b, err := New(Options{Listen: listen1(listen), Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]BackendSpec{{Name: "one", Addr: f.addr, Weight: 1}}, Settings{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	return b, listen, f
}

// TestNotifyHandedToNotifier: with a Notifier, a NOTIFY is never forwarded
// to a backend, over UDP or TCP. Accepted: the NOERROR answer (AA, same ID
// and question, OPT echoed) comes only once the Notifier says the copies
// are out. Refused: REFUSED at once. Ignored: no answer at all (the
// primary retries).
func TestNotifyHandedToNotifier(t *testing.T) {
	for _, tc := range []struct {
		name    string
		verdict NotifyVerdict
		rcode   int // -1: no answer
		aa      bool
	}{
		{"accept", NotifyAccept, dns.RcodeSuccess, true},
		{"refuse", NotifyRefuse, dns.RcodeRefused, false},
		{"ignore", NotifyIgnore, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNotifier{verdict: tc.verdict, delay: 100 * time.Millisecond}
			b, listen, f := startWithNotifier(t, n)
			for _, network := range []string{"udp", "tcp"} {
				m := new(dns.Msg)
				m.SetNotify("example.test.")
				m.SetEdns0(1232, false)
				m.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns.", Mbox: "h.", Serial: 7}}
				start := time.Now()
				r, _, err := (&dns.Client{Net: network, Timeout: 500 * time.Millisecond}).Exchange(m, listen.String())
				if tc.rcode < 0 {
					if err == nil {
						t.Fatalf("%s: an ignored NOTIFY was answered: %v", network, r)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if r.Id != m.Id || r.Opcode != dns.OpcodeNotify || !r.Response || r.Rcode != tc.rcode || r.Authoritative != tc.aa ||
					len(r.Question) != 1 || r.Question[0] != m.Question[0] || len(r.Answer) != 0 || r.IsEdns0() == nil {
					t.Fatalf("%s: answer %v", network, r)
				}
				if took := time.Since(start); tc.verdict == NotifyAccept && took < 100*time.Millisecond {
					t.Fatalf("%s: answered after %v, before the copies were out", network, took)
				}
			}
			if f.hits.Load() != 0 {
				t.Fatal("a NOTIFY was forwarded to a backend")
			}
			n.mu.Lock()
			saw := len(n.got)
			n.mu.Unlock()
			if saw != 2 {
				t.Fatalf("the Notifier saw %d NOTIFYs, want 2 (UDP, TCP)", saw)
			}
			if tc.verdict == NotifyIgnore && b.Dropped()["notify_not_copied"] != 2 {
				t.Fatalf("notify_not_copied = %d", b.Dropped()["notify_not_copied"])
			}
		})
	}
}

// TestNotifyAnswerSentAsIs: an answer the Notifier gives (in real life a
// TSIG-signed one) is sent verbatim, over UDP and TCP.
func TestNotifyAnswerSentAsIs(t *testing.T) {
	n := &fakeNotifier{verdict: NotifyAccept}
	_, listen, _ := startWithNotifier(t, n)
	for _, network := range []string{"udp", "tcp"} {
		q := new(dns.Msg)
		q.SetNotify("example.test.")
		r := new(dns.Msg)
		r.SetReply(q)
		r.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"from the notifier"}}}
		answer, err := r.Pack()
		if err != nil {
			t.Fatal(err)
		}
		n.mu.Lock()
		n.answer = answer
		n.mu.Unlock()
		got, _, err := (&dns.Client{Net: network, Timeout: time.Second}).Exchange(q, listen.String())
		if err != nil || len(got.Answer) != 1 || got.Answer[0].(*dns.TXT).Txt[0] != "from the notifier" {
			t.Fatalf("%s: %v %v", network, got, err)
		}
	}
}

// TestNotifyAnswerGoesToItsPrimary: the answer to an accepted NOTIFY is
// sent once the copies are out, after the worker has received more
// datagrams into the buffers the NOTIFY came in. It must still go to the
// primary (it once went to whoever's query had taken the NOTIFY's receive
// slot: in a storm the primaries' NOTIFYs went unanswered and were
// retried, and clients got stray answers).
func TestNotifyAnswerGoesToItsPrimary(t *testing.T) {
	n := &fakeNotifier{verdict: NotifyAccept, delay: 200 * time.Millisecond}
	_, listen, _ := startWithNotifier(t, n)
	primary, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	to := net.UDPAddrFromAddrPort(listen)
	q := new(dns.Msg)
	q.SetNotify("example.test.")
	out, _ := q.Pack()
	if _, err := primary.WriteToUDP(out, to); err != nil {
		t.Fatal(err)
	}
	// While the copies are "out", the client sends queries: they fill the
	// worker's receive buffers, the NOTIFY's slot among them.
	for i := range 200 {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeA)
		m.Id = uint16(i)
		b, _ := m.Pack()
		client.WriteToUDP(b, to)
	}
	primary.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	nr, _, err := primary.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("the primary got no answer to its NOTIFY: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:nr]); err != nil || r.Id != q.Id || r.Opcode != dns.OpcodeNotify || !r.Response {
		t.Fatalf("primary got %v (%v)", r, err)
	}
	// The client must not get it.
	client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	for {
		nr, _, err := client.ReadFromUDP(buf)
		if err != nil {
			break
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:nr]) == nil && m.Opcode == dns.OpcodeNotify {
			t.Fatalf("the client got the NOTIFY's answer: %v", m)
		}
	}
}
