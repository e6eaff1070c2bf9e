package notifydup

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// track re-sends the NOTIFY to each backend, with backoff, until the
// backend serves the NOTIFY's serial or the retries are used up. Lag is
// exported only while a backend has not converged.
func (d *Duplicator) track(n *Notify, backends []Backend, retries int) {
	d.mu.Lock()
	if d.tracking >= maxTrackers {
		d.mu.Unlock()
		return
	}
	d.tracking++
	ctx := d.ctx
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			d.mu.Lock()
			d.tracking--
			d.mu.Unlock()
		}()
		d.converge(ctx, n, backends, retries)
	}()
}

// backoff is the wait before the i-th check: 250ms, 500ms, 1s, 2s, 4s, ...
func backoff(i int) time.Duration { return 250 * time.Millisecond << min(i, 6) }

func (d *Duplicator) converge(ctx context.Context, n *Notify, backends []Backend, retries int) {
	start := time.Now()
	pending := append([]Backend(nil), backends...)
	for i := 0; i <= retries && len(pending) > 0; i++ {
		select {
		case <-ctx.Done():
			d.clearLag(pending, n.Zone)
			return
		case <-time.After(backoff(i)):
		}
		var still []Backend
		for _, be := range pending {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			serial, err := d.o.QuerySOA(qctx, be.Addr, n.Zone)
			cancel()
			if err == nil && serialGE(serial, n.Serial) {
				d.m.converge.Observe(time.Since(start).Seconds())
				d.m.lag.DeleteLabelValues(be.Name, n.Zone)
				continue
			}
			if err == nil {
				d.m.lag.WithLabelValues(be.Name, n.Zone).Set(float64(n.Serial - serial))
			}
			still = append(still, be)
			if i < retries {
				d.copyTo(n, be) // again: the first copy may have been lost
			}
		}
		pending = still
	}
	if len(pending) > 0 {
		names := make([]string, len(pending))
		for i, be := range pending {
			names[i] = be.Name
		}
		d.log.Warn("backends did not reach the notified serial", "zone", n.Zone, "serial", n.Serial,
			"backends", fmt.Sprint(names), "after", time.Since(start).Round(time.Millisecond).String())
		d.clearLag(pending, n.Zone)
	}
}

func (d *Duplicator) clearLag(bes []Backend, zone string) {
	for _, be := range bes {
		d.m.lag.DeleteLabelValues(be.Name, zone)
	}
}

// serialGE compares SOA serials with RFC 1982 arithmetic: a >= b.
func serialGE(a, b uint32) bool { return int32(a-b) >= 0 }

// querySOA asks server for zone's SOA serial over UDP from the balancer's
// own address.
func querySOA(ctx context.Context, server netip.AddrPort, zone string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	c := &dns.Client{Net: "udp"}
	r, _, err := c.ExchangeContext(ctx, m, server.String())
	if err != nil {
		return 0, err
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("no SOA for %s from %s (rcode %s)", zone, server, dns.RcodeToString[r.Rcode])
}
