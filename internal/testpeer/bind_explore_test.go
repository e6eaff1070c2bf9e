package testpeer

import (
	"fmt"
	"github.com/gopacket/gopacket/layers"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TEMPORARY exploration (deleted before hand-off).

type rec struct {
	at   time.Time
	from string
	what string
}

func TestBINDExplore(t *testing.T) {
	if os.Getenv("BIND_EXPLORE") == "" {
		t.Skip("BIND_EXPLORE not set")
	}
	dur, _ := strconv.Atoi(os.Getenv("BIND_EXPLORE"))
	RequireRoot(t)
	lan := NewLAN(t, "bx")
	prim := lan.AddHost(t, "p", netip.PrefixFrom(labPrimary, 24))
	vip := lan.AddHost(t, "lb", netip.PrefixFrom(labVIP, 24))
	s1 := lan.AddHost(t, "s1", netip.PrefixFrom(labSec[0], 24))
	s2 := lan.AddHost(t, "s2", netip.PrefixFrom(labSec[1], 24))
	_ = vip
	var mu sync.Mutex
	var log []rec
	add := func(from, what string) {
		mu.Lock()
		log = append(log, rec{time.Now(), from, what})
		mu.Unlock()
	}
	// silent UDP+TCP on s1:53
	var uc *net.UDPConn
	var tl *net.TCPListener
	s1.Do(t, func() {
		var err error
		uc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap53(labSec[0])))
		if err != nil {
			t.Fatal(err)
		}
		tl, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap53(labSec[0])))
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { uc.Close(); tl.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, a, err := uc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			_ = m.Unpack(buf[:n])
			add("silent-udp "+a.String(), m.Question[0].Name)
		}
	}()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			add("silent-tcp "+c.RemoteAddr().String(), "accept")
			go func() {
				b := make([]byte, 4096)
				n, _ := c.Read(b)
				add("silent-tcp "+c.RemoteAddr().String(), "read "+strconv.Itoa(n))
			}()
		}
	}()
	// refusing on s2:53 (REFUSED) and s2:54 (NOTAUTH), s2:55 (SERVFAIL)
	for _, pr := range []struct {
		port  uint16
		rcode int
	}{{53, dns.RcodeRefused}, {54, dns.RcodeNotAuth}, {55, dns.RcodeServerFailure}} {
		var c *net.UDPConn
		s2.Do(t, func() {
			var err error
			c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(labSec[1], pr.port)))
			if err != nil {
				t.Fatal(err)
			}
		})
		t.Cleanup(func() { c.Close() })
		rcode := pr.rcode
		port := pr.port
		go func() {
			buf := make([]byte, 4096)
			for {
				n, a, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				m := new(dns.Msg)
				if m.Unpack(buf[:n]) != nil {
					continue
				}
				add(dns.RcodeToString[rcode]+"-"+strconv.Itoa(int(port))+" "+a.String(), m.Question[0].Name)
				r := new(dns.Msg)
				r.SetRcode(m, rcode)
				out, _ := r.Pack()
				_, _ = c.WriteToUDPAddrPort(out, a)
			}
		}()
	}
	capP := prim.Capture(t, "eth0", "")
	t0 := time.Now()
	b := StartBIND(t, BINDOptions{Name: "bprimary", Addr: ap53(labPrimary), NetNS: prim, Zones: labZones(), Primary: true,
		NotifyTo: []netip.AddrPort{ap53(labVIP), ap53(labSec[0]), ap53(labSec[1]), netip.AddrPortFrom(labSec[1], 54), netip.AddrPortFrom(labSec[1], 55)}})
	t.Logf("started after %v", time.Since(t0))
	if os.Getenv("BIND_SETSERIAL") != "" {
		time.Sleep(2 * time.Second)
		t1 := time.Now()
		b.SetSerial(t, labZoneA, labSerialA0+1)
		t.Logf("SetSerial took %v", time.Since(t1))
		b.SetSerial(t, labZoneA, labSerialA0+2)
		t.Logf("SetSerial 2 done at %v", time.Since(t1))
		b.Notify(t, labZoneA)
		t.Logf("Notify at %v", time.Since(t1))
	}
	time.Sleep(time.Duration(dur) * time.Second)
	pkts := ReadPackets(t, capP.Stop(t))
	for _, p := range pkts {
		desc := ""
		if nl := p.NetworkLayer(); nl != nil {
			desc = nl.NetworkFlow().String()
		}
		switch l := p.TransportLayer().(type) {
		case *layers.TCP:
			desc += fmt.Sprintf(" tcp %d>%d syn=%v ack=%v fin=%v rst=%v len=%d", l.SrcPort, l.DstPort, l.SYN, l.ACK, l.FIN, l.RST, len(l.Payload))
		case *layers.UDP:
			desc += fmt.Sprintf(" udp %d>%d len=%d", l.SrcPort, l.DstPort, len(l.Payload))
		}
		if ic := p.Layer(layers.LayerTypeICMPv4); ic != nil {
			desc += " icmp " + ic.(*layers.ICMPv4).TypeCode.String()
		}
		if p.Layer(layers.LayerTypeARP) != nil {
			desc += " arp"
		}
		t.Logf("%s %s", p.Metadata().Timestamp.Format("15:04:05.000"), desc)
	}
	for _, m := range DNSMessages(pkts) {
		t.Logf("%v", m)
	}
	mu.Lock()
	for _, r := range log {
		t.Logf("%s %s %s", r.at.Format("15:04:05.000"), r.from, r.what)
	}
	mu.Unlock()
	t.Logf("log:\n%s", b.Log())
}
