package vrrp

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ProtocolNumber is VRRP's IP protocol number.
const ProtocolNumber = 112

// Multicast groups adverts are sent to (RFC 5798 5.1.1.2 and 5.1.2.2).
var (
	GroupV4 = netip.MustParseAddr("224.0.0.18")
	GroupV6 = netip.MustParseAddr("ff02::12")
)

// ChecksumMode selects how a VRRPv3 checksum over IPv4 is computed.
//
// Version 2 always sums the VRRP message alone (RFC 3768 5.3.8). Version 3
// over IPv6 always adds the IPv6 pseudo-header (RFC 2460 8.1, next header
// 112). Only version 3 over IPv4 differs between implementations.
type ChecksumMode uint8

const (
	// ChecksumPseudoHeader adds the IPv4 pseudo-header to the sum: RFC 5798
	// 5.2.8 as keepalived (the default) and FRR 8.x read it.
	ChecksumPseudoHeader ChecksumMode = iota
	// ChecksumRFC9568 sums the VRRP message only for IPv4: RFC 9568 5.2.8,
	// Cisco and Juniper, keepalived's v3_checksum_as_v2.
	ChecksumRFC9568
)

// String returns "pseudo-header" or "rfc9568".
func (m ChecksumMode) String() string {
	switch m {
	case ChecksumPseudoHeader:
		return "pseudo-header"
	case ChecksumRFC9568:
		return "rfc9568"
	}
	return fmt.Sprintf("ChecksumMode(%d)", uint8(m))
}

// Sentinel errors. The codec wraps them with detail: test with errors.Is.
var (
	// ErrTruncated: the packet is shorter than its header or than its
	// address count says.
	ErrTruncated = errors.New("vrrp: truncated packet")
	// ErrVersion: a version other than 2 or 3.
	ErrVersion = errors.New("vrrp: unsupported version")
	// ErrType: a type other than 1 (advertisement).
	ErrType = errors.New("vrrp: unknown packet type")
	// ErrChecksum: the checksum does not verify.
	ErrChecksum = errors.New("vrrp: bad checksum")
	// ErrAddrCount: no addresses, more than 255, or a packet longer than
	// its address count says.
	ErrAddrCount = errors.New("vrrp: bad address count")
	// ErrInvalid: any other field out of range or inconsistent.
	ErrInvalid = errors.New("vrrp: invalid advertisement")
)

const (
	headerLen    = 8
	authDataLen  = 8 // version 2 only
	typeAdvert   = 1
	maxV3Centis  = 0x0fff
	v3IntervalMu = 10 * time.Millisecond
)

// Advert is one VRRP advertisement. Src, Dst and Mode give the checksum's
// context: set them before MarshalBinary and UnmarshalBinary.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) in Src, Dst and Addrs count as
// IPv4; zones are ignored.
type Advert struct {
	Version  uint8         // 2 or 3
	VRID     uint8         // 1..255
	Priority uint8         // 0 = master is leaving, 255 = address owner
	Interval time.Duration // v3: Max Adver Int, 12 bits of centiseconds (10ms..40.95s); v2: Adver Int, 8 bits of whole seconds (1..255s)
	AuthType uint8         // v2 only: 0 none, 1 simple text password (RFC 2338)
	AuthData [8]byte       // v2 only
	Addrs    []netip.Addr  // the virtual addresses (all IPv4, or all IPv6 for v3); count 1..255
	Src, Dst netip.Addr    // IP source and destination of the packet (pseudo-header)
	Mode     ChecksumMode
	Checksum uint16 // set by UnmarshalBinary (as received) and by MarshalBinary (as sent)
}

var (
	_ encoding.BinaryMarshaler   = (*Advert)(nil)
	_ encoding.BinaryAppender    = (*Advert)(nil)
	_ encoding.BinaryUnmarshaler = (*Advert)(nil)
)

// MarshalBinary validates the fields and returns the VRRP message (the IP
// payload) with its checksum, which it also stores in a.Checksum.
func (a *Advert) MarshalBinary() ([]byte, error) {
	return a.AppendBinary(make([]byte, 0, a.wireLen()))
}

// AppendBinary is MarshalBinary appending to b (encoding.BinaryAppender). On
// error b is returned unchanged.
func (a *Advert) AppendBinary(b []byte) ([]byte, error) {
	v6, err := a.check()
	if err != nil {
		return b, err
	}
	start := len(b)
	var hdr [headerLen]byte
	hdr[0] = a.Version<<4 | typeAdvert
	hdr[1] = a.VRID
	hdr[2] = a.Priority
	hdr[3] = uint8(len(a.Addrs))
	if a.Version == 2 {
		hdr[4] = a.AuthType
		hdr[5] = uint8(a.Interval / time.Second)
	} else {
		binary.BigEndian.PutUint16(hdr[4:], uint16(a.Interval/v3IntervalMu))
	}
	b = append(b, hdr[:]...)
	for _, ip := range a.Addrs {
		if v6 {
			s := ip.As16()
			b = append(b, s[:]...)
		} else {
			s := ip.Unmap().As4()
			b = append(b, s[:]...)
		}
	}
	if a.Version == 2 {
		b = append(b, a.AuthData[:]...)
	}
	msg := b[start:]
	sum := a.checksum(msg, v6)
	binary.BigEndian.PutUint16(msg[6:], sum)
	a.Checksum = sum
	return b, nil
}

// UnmarshalBinary parses b, the IP payload of a VRRP packet, and verifies its
// checksum with a.Src, a.Dst and a.Mode. It fills every other field. For
// version 3 the family of a.Src says whether the addresses are IPv4 or IPv6;
// version 2 is IPv4 only. On error a is left unchanged.
func (a *Advert) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d bytes, a header is %d", ErrTruncated, len(b), headerLen)
	}
	n := Advert{
		Version:  b[0] >> 4,
		VRID:     b[1],
		Priority: b[2],
		Src:      a.Src,
		Dst:      a.Dst,
		Mode:     a.Mode,
		Checksum: binary.BigEndian.Uint16(b[6:]),
	}
	if n.Version != 2 && n.Version != 3 {
		return fmt.Errorf("%w: %d", ErrVersion, n.Version)
	}
	if t := b[0] & 0x0f; t != typeAdvert {
		return fmt.Errorf("%w: %d", ErrType, t)
	}
	if n.Mode > ChecksumRFC9568 {
		return fmt.Errorf("%w: checksum mode %d", ErrInvalid, n.Mode)
	}
	v6 := false
	if n.Version == 3 {
		if !n.Src.IsValid() {
			return fmt.Errorf("%w: version 3 needs the source address to tell IPv4 from IPv6", ErrInvalid)
		}
		v6 = n.Src.Unmap().Is6()
	}
	if err := n.checkContext(v6); err != nil {
		return err
	}
	count := int(b[3])
	if count == 0 {
		return fmt.Errorf("%w: 0", ErrAddrCount)
	}
	alen := 4
	if v6 {
		alen = 16
	}
	want := headerLen + count*alen
	if n.Version == 2 {
		want += authDataLen
	}
	if len(b) < want {
		return fmt.Errorf("%w: %d bytes, %d addresses need %d", ErrTruncated, len(b), count, want)
	}
	if len(b) > want {
		return fmt.Errorf("%w: %d addresses need %d bytes, packet has %d", ErrAddrCount, count, want, len(b))
	}
	// A damaged packet is reported as such before its fields are judged.
	if n.checksum(b, v6) != 0 {
		return n.checksumError(b, v6)
	}
	if n.VRID == 0 {
		return fmt.Errorf("%w: VRID 0", ErrInvalid)
	}
	if n.Version == 2 {
		n.AuthType = b[4]
		n.Interval = time.Duration(b[5]) * time.Second
		copy(n.AuthData[:], b[want-authDataLen:])
		if n.Interval == 0 {
			return fmt.Errorf("%w: advertisement interval 0", ErrInvalid)
		}
	} else {
		f := binary.BigEndian.Uint16(b[4:])
		if f>>12 != 0 {
			// RFC 5798 5.2.6 says to ignore them; refusing keeps every
			// accepted packet identical to what MarshalBinary makes of it.
			return fmt.Errorf("%w: reserved bits 0x%x set", ErrInvalid, f>>12)
		}
		if f == 0 {
			return fmt.Errorf("%w: max advertisement interval 0", ErrInvalid)
		}
		n.Interval = time.Duration(f) * v3IntervalMu
	}
	n.Addrs = make([]netip.Addr, count)
	for i := range n.Addrs {
		p := b[headerLen+i*alen:]
		if v6 {
			n.Addrs[i] = netip.AddrFrom16([16]byte(p[:16]))
		} else {
			n.Addrs[i] = netip.AddrFrom4([4]byte(p[:4]))
		}
	}
	*a = n
	return nil
}

// wireLen is the message length a's fields ask for, or 0 if they make no sense.
func (a *Advert) wireLen() int {
	if len(a.Addrs) == 0 {
		return 0
	}
	l := headerLen + 4*len(a.Addrs)
	if a.Version == 2 {
		l += authDataLen
	} else if a.Addrs[0].Unmap().Is6() {
		l += 12 * len(a.Addrs)
	}
	return l
}

// check validates a for sending and returns whether it is an IPv6 advert.
func (a *Advert) check() (v6 bool, err error) {
	switch a.Version {
	case 2:
		if a.Interval < time.Second || a.Interval > 255*time.Second || a.Interval%time.Second != 0 {
			return false, fmt.Errorf("%w: interval %v: version 2 needs whole seconds in 1s..255s", ErrInvalid, a.Interval)
		}
	case 3:
		if a.Interval < v3IntervalMu || a.Interval > maxV3Centis*v3IntervalMu || a.Interval%v3IntervalMu != 0 {
			return false, fmt.Errorf("%w: interval %v: version 3 needs a multiple of 10ms in 10ms..40.95s", ErrInvalid, a.Interval)
		}
		if a.AuthType != 0 || a.AuthData != [8]byte{} {
			return false, fmt.Errorf("%w: authentication set on a version 3 advert", ErrInvalid)
		}
	default:
		return false, fmt.Errorf("%w: %d", ErrVersion, a.Version)
	}
	if a.VRID == 0 {
		return false, fmt.Errorf("%w: VRID 0", ErrInvalid)
	}
	if a.Mode > ChecksumRFC9568 {
		return false, fmt.Errorf("%w: checksum mode %d", ErrInvalid, a.Mode)
	}
	if len(a.Addrs) == 0 || len(a.Addrs) > 255 {
		return false, fmt.Errorf("%w: %d, need 1..255", ErrAddrCount, len(a.Addrs))
	}
	v6 = a.Addrs[0].Unmap().Is6()
	for i, ip := range a.Addrs {
		if !ip.IsValid() {
			return false, fmt.Errorf("%w: address %d is not set", ErrInvalid, i)
		}
		if ip.Unmap().Is6() != v6 {
			return false, fmt.Errorf("%w: address %d (%v) mixes IPv4 and IPv6", ErrInvalid, i, ip)
		}
	}
	if v6 && a.Version == 2 {
		return false, fmt.Errorf("%w: version 2 carries IPv4 addresses only", ErrInvalid)
	}
	if err := a.checkContext(v6); err != nil {
		return false, err
	}
	return v6, nil
}

// checkContext checks Src and Dst for an advert of the family v6: each must
// be of that family if set, and both must be set when the checksum covers a
// pseudo-header (version 3 over IPv6, or over IPv4 in ChecksumPseudoHeader
// mode).
func (a *Advert) checkContext(v6 bool) error {
	need := a.Version == 3 && (v6 || a.Mode == ChecksumPseudoHeader)
	for _, e := range [...]struct {
		what string
		ip   netip.Addr
	}{{"source", a.Src}, {"destination", a.Dst}} {
		ip := e.ip.Unmap()
		switch {
		case !ip.IsValid():
			if need {
				return fmt.Errorf("%w: the checksum's pseudo-header needs the %s address", ErrInvalid, e.what)
			}
		case ip.Is6() != v6:
			return fmt.Errorf("%w: %s address %v is not %s", ErrInvalid, e.what, e.ip, family(v6))
		}
	}
	return nil
}

func family(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// checksum returns the checksum of msg in a's context. On a message whose
// checksum field is filled in it returns 0 if the checksum verifies.
func (a *Advert) checksum(msg []byte, v6 bool) uint16 {
	return a.checksumMode(msg, v6, a.Mode)
}

func (a *Advert) checksumMode(msg []byte, v6 bool, mode ChecksumMode) uint16 {
	var s uint64
	if a.Version == 3 && (v6 || mode == ChecksumPseudoHeader) {
		s = pseudoHeaderSum(a.Src, a.Dst, ProtocolNumber, len(msg))
	}
	return finish(onesSum(s, msg))
}

func (a *Advert) checksumError(msg []byte, v6 bool) error {
	got := binary.BigEndian.Uint16(msg[6:])
	c := make([]byte, len(msg))
	copy(c, msg)
	c[6], c[7] = 0, 0
	want := a.checksum(c, v6)
	if a.Version == 3 && !v6 {
		other := ChecksumRFC9568
		if a.Mode == ChecksumRFC9568 {
			other = ChecksumPseudoHeader
		}
		if a.Dst.IsValid() && a.checksumMode(msg, v6, other) == 0 {
			return fmt.Errorf("%w: 0x%04x, want 0x%04x with mode %v; the sender uses mode %v", ErrChecksum, got, want, a.Mode, other)
		}
	}
	return fmt.Errorf("%w: 0x%04x, want 0x%04x (mode %v, %v > %v)", ErrChecksum, got, want, a.Mode, a.Src, a.Dst)
}

// The Internet checksum (RFC 1071), for any protocol.

// onesSum adds b to the running sum s as big-endian 16-bit words, padding an
// odd last byte with zero. s is folded only by finish, so a uint64 holds
// the sum of any slice.
func onesSum(s uint64, b []byte) uint64 {
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint16(b)) + uint64(binary.BigEndian.Uint16(b[2:])) +
			uint64(binary.BigEndian.Uint16(b[4:])) + uint64(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// finish folds s to 16 bits and complements it: the value for the checksum
// field, or 0 when s covered a correct checksum.
func finish(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// pseudoHeaderSum is the sum of the TCP/UDP-style pseudo-header: for IPv4
// src, dst, zero, proto and a 16-bit length (RFC 768); for IPv6 src, dst, a
// 32-bit length, three zeros and the next header (RFC 2460 8.1). The family
// is src's; IPv4-mapped addresses count as IPv4. An address that is unset or
// of the other family sums as zeros: callers check them first.
func pseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint64 {
	src, dst = src.Unmap(), dst.Unmap()
	var s uint64
	if src.Is4() {
		s4 := src.As4()
		s = onesSum(s, s4[:])
		if dst.Is4() {
			d4 := dst.As4()
			s = onesSum(s, d4[:])
		}
	} else {
		s16 := src.As16()
		s = onesSum(s, s16[:])
		if dst.Is6() {
			d16 := dst.As16()
			s = onesSum(s, d16[:])
		}
		s += uint64(uint32(length) >> 16)
	}
	return s + uint64(proto) + uint64(uint16(length))
}
