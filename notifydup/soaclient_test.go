package notifydup

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSOAClient: many queries in flight on one socket each get their own
// zone's serial; an unanswered one times out; a closed client fails.
func TestSOAClient(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		name := r.Question[0].Name
		if strings.HasPrefix(name, "silent") {
			return
		}
		var serial uint32
		fmt.Sscanf(name, "z%d.", &serial)
		m := new(dns.Msg)
		m.SetReply(r)
		if !strings.HasPrefix(name, "missing") {
			m.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 1}, Ns: "ns.", Mbox: "h.", Serial: serial}}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()
	c, err := newSOAClient(netip.MustParseAddrPort(pc.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	sem := make(chan struct{}, 32) // in flight at once: within the server's socket buffer
	for i := range 500 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := c.query(ctx, fmt.Sprintf("Z%d.test", i))
			if err != nil || got != uint32(i) {
				errs <- fmt.Errorf("z%d: got %d, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.query(ctx, "silent.test."); err == nil {
		t.Error("unanswered query did not time out")
	}
	if _, err := c.query(context.Background(), "missing.test."); err == nil {
		t.Error("answer without SOA gave no error")
	}
	c.close()
	time.Sleep(10 * time.Millisecond)
	if _, err := c.query(context.Background(), "z1.test."); err == nil {
		t.Error("closed client answered")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) != 0 {
		t.Errorf("%d queries left pending", len(c.pending))
	}
}
