package balancer

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestNotifyAnsweredByBalancer: with NotifyPrimaries set, a NOTIFY is never
// forwarded to a backend: a primary gets NOERROR with AA (same ID and
// question), anyone else REFUSED; over TCP the primary's NOTIFY is also
// handed to OnTCPNotify for copying.
func TestNotifyAnsweredByBalancer(t *testing.T) {
	f := startFake(t, "one")
	var mu sync.Mutex
	var handed []netip.AddrPort
	for _, tc := range []struct {
		name    string
		primary string
		rcode   int
		aa      bool
		copyTCP bool
	}{
		{"from primary", "127.0.0.0/8", dns.RcodeSuccess, true, true},
		{"from stranger", "192.0.2.1/32", dns.RcodeRefused, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handed = nil
			s := Settings{NotifyPrimaries: []netip.Prefix{netip.MustParsePrefix(tc.primary)}}
			listen := freeAddr(t)
			b, err := New(Options{Listen: listen1(listen), Settings: s, OnTCPNotify: func(msg []byte, src, dst netip.AddrPort) {
				mu.Lock()
				handed = append(handed, src)
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Apply([]BackendSpec{{Name: "one", Addr: f.addr, Weight: 1}}, s); err != nil {
				t.Fatal(err)
			}
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			defer b.Shutdown(context.Background())
			before := f.hits.Load()
			for _, network := range []string{"udp", "tcp"} {
				m := new(dns.Msg)
				m.SetNotify("example.test.")
				m.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 0}, Ns: "ns.", Mbox: "h.", Serial: 7}}
				r, _, err := (&dns.Client{Net: network, Timeout: time.Second}).Exchange(m, listen.String())
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if r.Id != m.Id || r.Opcode != dns.OpcodeNotify || !r.Response || r.Rcode != tc.rcode || r.Authoritative != tc.aa ||
					len(r.Question) != 1 || r.Question[0] != m.Question[0] || len(r.Answer) != 0 {
					t.Fatalf("%s: answer %v", network, r)
				}
			}
			if f.hits.Load() != before {
				t.Fatal("a NOTIFY was forwarded to a backend")
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.copyTCP != (len(handed) == 1) {
				t.Fatalf("OnTCPNotify calls: %v", handed)
			}
		})
	}
}

// TestSignedNotifyAnswer: a NOTIFY signed with a configured key gets a
// signed answer that the primary's TSIG check accepts, over UDP and TCP;
// with an unknown key the answer is plain.
func TestSignedNotifyAnswer(t *testing.T) {
	f := startFake(t, "one")
	const name, secret = "notify-key.", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
	s := Settings{
		NotifyPrimaries: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		NotifyKeys:      []TSIGKey{{Name: name, Algorithm: dns.HmacSHA256, Secret: secret}},
	}
	listen := freeAddr(t)
	b, err := New(Options{Listen: listen1(listen), Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]BackendSpec{{Name: "one", Addr: f.addr, Weight: 1}}, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	for _, network := range []string{"udp", "tcp"} {
		for _, keyName := range []string{name, "other-key."} {
			m := new(dns.Msg)
			m.SetNotify("example.test.")
			m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
			c := &dns.Client{Net: network, Timeout: time.Second, TsigSecret: map[string]string{keyName: secret}}
			r, _, err := c.Exchange(m, listen.String())
			if keyName == name {
				if err != nil || r.Rcode != dns.RcodeSuccess || r.IsTsig() == nil || !r.Authoritative {
					t.Fatalf("%s: signed NOTIFY: %v %v", network, r, err)
				}
			} else if r == nil || r.IsTsig() != nil {
				t.Fatalf("%s: unknown key: want a plain (unsigned) answer, got %v %v", network, r, err)
			}
		}
	}
	if b.signedNotifies.Load() != 2 {
		t.Fatalf("signed answers %d, want 2", b.signedNotifies.Load())
	}
}
