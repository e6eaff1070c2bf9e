package vrrp

// Receiving adverts: the reader goroutine validates every packet (TTL,
// checksum, version, VRID, v2 authentication and interval) and hands the
// valid ones to the run loop, which applies RFC 5798 6.4.2/6.4.3.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// onAdvert applies RFC 5798 6.4.2 (backup) and 6.4.3 (master).
func (in *Instance) onAdvert(p received) {
	a := p.a
	switch in.state {
	case Backup:
		switch {
		case a.Priority == 0:
			// The master is leaving: take over after Skew_Time only.
			resetTimer(in.downTimer, in.skew())
			in.masterLeft = true
			in.noteMaster(p.src, 0)
		case !in.o.Preempt || a.Priority >= in.priority() || time.Since(in.start) < in.o.PreemptDelay:
			if in.o.Version == 3 {
				in.masterInterval = a.Interval
			}
			resetTimer(in.downTimer, in.masterDown())
			in.masterLeft = false
			in.noteMaster(p.src, a.Priority)
			if in.group != nil {
				in.group.unwant(in) // a master we cannot preempt
			}
		default:
			// A lower-priority master and we preempt: let the timer run out.
		}
	case Master:
		switch {
		case a.Priority == 0:
			in.sendAdvert(in.priority())
			resetTimer(in.adverTimer, in.o.Interval)
		case a.Priority > in.priority() || (a.Priority == in.priority() && p.src.Compare(in.local) > 0):
			if in.o.Version == 3 {
				in.masterInterval = a.Interval
			}
			in.noteMaster(p.src, a.Priority)
			in.becomeBackup(fmt.Sprintf("advert from %s with priority %d (ours %d)", p.src, a.Priority, in.priority()), in.masterDown())
		default:
			// A lower-priority router thinks it is master (it missed our
			// adverts, e.g. in a stall) and has announced the VIPs: RFC
			// 5798 6.4.3 only discards its advert, but then clients stay
			// pointed at it after it steps down on our next advert. Like
			// keepalived, advertise now, so that it steps down at once,
			// and announce the VIPs again, so that clients come back.
			in.sendAdvert(in.priority())
			resetTimer(in.adverTimer, in.o.Interval)
			in.announce()
			in.log.Debug("vrrp: advert from a lower-priority router, VIPs announced again", "src", p.src.String(), "priority", a.Priority)
		}
	}
}

func (in *Instance) noteMaster(src netip.Addr, prio uint8) {
	in.mu.Lock()
	in.status.Master, in.status.MasterPriority, in.status.AdvertInterval = src.String(), prio, in.masterInterval
	in.mu.Unlock()
}

// readLoop reads, validates and forwards adverts for our VRID; everything
// else is counted and dropped.
func (in *Instance) readLoop(ctx context.Context, conn Conn) {
	buf := make([]byte, 1500)
	for {
		n, src, dst, ttl, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			in.log.Debug("vrrp: read failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if src == in.local {
			continue // our own advert looped back
		}
		if reason := in.validate(buf[:n], src, dst, ttl); reason != "" {
			in.m.invalid.WithLabelValues(reason).Inc()
			in.log.Debug("vrrp: advert ignored", "src", src.String(), "reason", reason)
			continue
		}
	}
}

// validate parses one packet and, if it is a valid advert for us, hands it
// to the run loop; it returns the reason it was dropped otherwise.
func (in *Instance) validate(b []byte, src, dst netip.Addr, ttl int) string {
	o := in.Options() // the run loop may update them (reload)
	if ttl != 255 {
		return "ttl"
	}
	a := Advert{Src: src, Dst: dst, Mode: o.ChecksumMode}
	if err := a.UnmarshalBinary(b); err != nil {
		switch {
		case errors.Is(err, ErrChecksum):
			return "checksum"
		case errors.Is(err, ErrVersion):
			return "version"
		case errors.Is(err, ErrTruncated):
			return "truncated"
		}
		return "malformed"
	}
	if a.VRID != o.VRID {
		return "other_vrid"
	}
	if a.Version != o.Version {
		return "version"
	}
	if o.Version == 2 {
		var want [8]byte
		wantType := uint8(0)
		if o.AuthPass != "" {
			wantType = 1
			copy(want[:], o.AuthPass)
		}
		if a.AuthType != wantType || (wantType == 1 && a.AuthData != want) {
			return "auth"
		}
		if a.Interval != o.Interval {
			return "interval" // RFC 3768 7.1: the interval must match
		}
	}
	in.m.received.Inc()
	select {
	case in.packets <- received{a: a, src: src}:
	default:
		return "overload"
	}
	return ""
}
