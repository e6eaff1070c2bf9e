package testpeer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

const (
	// captureReadyTimeout bounds the wait for tcpdump's "listening on".
	captureReadyTimeout = 5 * time.Second
	// captureStopGrace is how long tcpdump gets after SIGINT to flush and
	// exit before it is killed.
	captureStopGrace = 3 * time.Second
)

// Capture is a tcpdump writing a pcap file inside a namespace, started by
// NetNS.Capture.
type Capture struct {
	Path    string // the pcap file (in t.TempDir())
	LogPath string // tcpdump's stdout and stderr

	ns    *NetNS
	iface string
	p     *proc

	once    sync.Once
	stopErr error
}

// Capture starts `tcpdump -i IFACE -U --immediate-mode -w FILE FILTER`
// inside the namespace (FILTER may be "", meaning everything), in its own
// process group, and waits at most 5s until tcpdump reports it is
// listening; it fails the test with tcpdump's output otherwise (e.g. a bad
// filter). tcpdump runs with -Z root: it must not drop privileges, as it
// then could not write into the test's 0700 temp dir.
//
// Stop stops it and returns the pcap's path; t's cleanup (and the
// namespace's) stops it too. Skips loudly if tcpdump is missing.
func (ns *NetNS) Capture(t testing.TB, iface, filter string) *Capture {
	t.Helper()
	RequireTool(t, "tcpdump")
	dir := t.TempDir()
	base := "capture-" + sanitizeName(iface)
	c := &Capture{
		Path:    filepath.Join(dir, base+".pcap"),
		LogPath: filepath.Join(dir, base+".log"),
		ns:      ns,
		iface:   iface,
	}
	args := []string{"ip", "netns", "exec", ns.name, "tcpdump", "-Z", "root", "-i", iface,
		"-U", "--immediate-mode", "-n", "-w", c.Path}
	if filter != "" {
		args = append(args, filter)
	}
	logf, err := os.Create(c.LogPath)
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startProc(cmd, false)
	if err != nil {
		t.Fatalf("testpeer: netns %s: start %s: %v", ns.name, strings.Join(args, " "), err)
	}
	c.p = p
	ns.track(p)
	t.Cleanup(func() {
		c.stop()
		if c.stopErr != nil {
			t.Errorf("testpeer: netns %s: capture on %s: %v", ns.name, iface, c.stopErr)
		}
	})

	deadline := time.Now().Add(captureReadyTimeout)
	for {
		b, _ := os.ReadFile(c.LogPath)
		if strings.Contains(string(b), "listening on") {
			return c
		}
		if p.exited() {
			t.Fatalf("testpeer: netns %s: tcpdump on %s (filter %q) exited before listening: %v\n%s",
				ns.name, iface, filter, p.err, tail(c.LogPath, 20))
		}
		if time.Now().After(deadline) {
			c.stop()
			t.Fatalf("testpeer: netns %s: tcpdump on %s not listening after %v:\n%s",
				ns.name, iface, captureReadyTimeout, tail(c.LogPath, 20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop stops tcpdump with SIGINT, so it flushes the pcap and exits (its
// process group gets SIGKILL if it has not after 3s), and returns the
// pcap's path. It is idempotent.
func (c *Capture) Stop(t testing.TB) string {
	t.Helper()
	c.stop()
	if c.stopErr != nil {
		t.Fatalf("testpeer: netns %s: stop capture on %s: %v\n%s", c.ns.name, c.iface, c.stopErr, tail(c.LogPath, 20))
	}
	if _, err := os.Stat(c.Path); err != nil {
		t.Fatalf("testpeer: netns %s: capture on %s wrote no pcap: %v\n%s", c.ns.name, c.iface, err, tail(c.LogPath, 20))
	}
	return c.Path
}

func (c *Capture) stop() {
	c.once.Do(func() {
		if !c.p.exited() {
			_ = syscall.Kill(c.p.pid, syscall.SIGINT)
			select {
			case <-c.p.done:
			case <-time.After(captureStopGrace):
			}
		}
		// Exited: a no-op. Otherwise SIGTERM, then SIGKILL to the group.
		c.stopErr = c.p.stop(termGrace)
		if err := waitGroupGone(c.p.pid, killWait); c.stopErr == nil {
			c.stopErr = err
		}
	})
}

// ReadPackets decodes every packet of a pcap file (as written by tcpdump
// -w) with gopacket's pure-Go pcapgo reader, each with its capture
// metadata (timestamp, lengths). A truncated last record (tcpdump killed
// mid-write) is logged and dropped; any other read error fails the test.
func ReadPackets(t testing.TB, path string) []gopacket.Packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("testpeer: ReadPackets: %v", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("testpeer: ReadPackets %s: %v", path, err)
	}
	var pkts []gopacket.Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("testpeer: ReadPackets %s: truncated record after %d packets dropped", path, len(pkts))
			break
		}
		if err != nil {
			t.Fatalf("testpeer: ReadPackets %s: packet %d: %v", path, len(pkts)+1, err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.DecodeOptions{NoCopy: true})
		md := p.Metadata()
		md.CaptureInfo = ci
		pkts = append(pkts, p)
	}
	return pkts
}

// IPProtoVRRP is VRRP's IP protocol (IPv4) and next header (IPv6) number.
const IPProtoVRRP = 112

// VRRP checksum kinds, as VRRPAdvert.Checksum reports them.
const (
	// ChecksumPseudoHeader: the checksum covers an IP pseudo-header and
	// the VRRP message. Always so for IPv6; for VRRPv3 over IPv4 it is the
	// RFC 5798 reading that keepalived (by default) and Wireshark use.
	ChecksumPseudoHeader = "pseudo-header"
	// ChecksumPlain: the checksum covers the VRRP message only, as VRRPv2
	// (RFC 3768) always does, and VRRPv3 over IPv4 per RFC 9568 (and
	// keepalived >= 2.2.8 with v3_checksum_as_v2, Cisco).
	ChecksumPlain = "plain"
	// ChecksumBad: neither verifies.
	ChecksumBad = "bad"
)

// VRRPAdvert is a VRRP packet found in a capture, decoded by hand (gopacket
// has a decoder for VRRPv2 only).
type VRRPAdvert struct {
	Time     time.Time
	Src, Dst netip.Addr
	TTL      uint8 // IPv4 TTL or IPv6 hop limit; RFC: must be 255

	Version  uint8 // 2 or 3
	Type     uint8 // 1: advertisement
	VRID     uint8
	Priority uint8
	// AdverInt is the advertisement interval: seconds in version 2, the
	// 12-bit Max Adver Int in centiseconds in version 3.
	AdverInt uint16
	AuthType uint8 // version 2 only
	Addrs    []netip.Addr

	// Checksum says which checksum the packet's checksum field verifies
	// as: ChecksumPseudoHeader, ChecksumPlain or ChecksumBad. (A VRRPv3
	// IPv4 packet whose sum verifies both ways is reported as
	// ChecksumPseudoHeader; that needs a pseudo-header summing to 0.)
	Checksum string
	// Raw is the VRRP message (the IP payload).
	Raw []byte
}

// String is a one-line summary, like tcpdump's.
func (a VRRPAdvert) String() string {
	return fmt.Sprintf("%s > %s ttl %d VRRPv%d type %d vrid %d prio %d int %d addrs %v checksum %s",
		a.Src, a.Dst, a.TTL, a.Version, a.Type, a.VRID, a.Priority, a.AdverInt, a.Addrs, a.Checksum)
}

// ParseVRRP decodes p if it is an IPv4 or IPv6 packet carrying VRRP (IP
// protocol / next header 112, no IPv6 extension headers) of version 2 or
// 3 and long enough for its address count; ok is false otherwise.
func ParseVRRP(p gopacket.Packet) (a VRRPAdvert, ok bool) {
	var pseudo []byte
	switch {
	case p.Layer(layers.LayerTypeIPv4) != nil:
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip.Protocol != IPProtoVRRP {
			return a, false
		}
		a.Src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		a.Dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		a.TTL = ip.TTL
		a.Raw = ip.Payload
		if n := int(ip.Length) - int(ip.IHL)*4; n >= 0 && n < len(a.Raw) {
			a.Raw = a.Raw[:n] // Ethernet padding
		}
		pseudo = append(pseudo, a.Src.AsSlice()...)
		pseudo = append(pseudo, a.Dst.AsSlice()...)
		pseudo = append(pseudo, 0, IPProtoVRRP)
		pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(a.Raw)))
	case p.Layer(layers.LayerTypeIPv6) != nil:
		ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip.NextHeader != IPProtoVRRP {
			return a, false
		}
		a.Src, _ = netip.AddrFromSlice(ip.SrcIP.To16())
		a.Dst, _ = netip.AddrFromSlice(ip.DstIP.To16())
		a.TTL = ip.HopLimit
		a.Raw = ip.Payload
		if n := int(ip.Length); n < len(a.Raw) {
			a.Raw = a.Raw[:n]
		}
		pseudo = append(pseudo, a.Src.AsSlice()...)
		pseudo = append(pseudo, a.Dst.AsSlice()...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(a.Raw)))
		pseudo = append(pseudo, 0, 0, 0, IPProtoVRRP)
	default:
		return a, false
	}
	a.Time = p.Metadata().Timestamp
	b := a.Raw
	if len(b) < 8 {
		return a, false
	}
	a.Version, a.Type = b[0]>>4, b[0]&0x0f
	a.VRID, a.Priority = b[1], b[2]
	count := int(b[3])
	switch a.Version {
	case 2:
		a.AuthType = b[4]
		a.AdverInt = uint16(b[5])
	case 3:
		a.AdverInt = binary.BigEndian.Uint16(b[4:6]) & 0x0fff
	default:
		return a, false
	}
	alen := 4
	if a.Src.Is6() {
		alen = 16
	}
	if len(b) < 8+count*alen {
		return a, false
	}
	for i := range count {
		ip, _ := netip.AddrFromSlice(b[8+i*alen : 8+(i+1)*alen])
		a.Addrs = append(a.Addrs, ip)
	}
	switch {
	case (a.Src.Is6() || a.Version == 3) && onesSum(pseudo, b) == 0xffff:
		a.Checksum = ChecksumPseudoHeader
	case a.Src.Is4() && onesSum(nil, b) == 0xffff:
		a.Checksum = ChecksumPlain
	default:
		a.Checksum = ChecksumBad
	}
	return a, true
}

// VRRPAdverts returns the VRRP packets among pkts, decoded by ParseVRRP.
func VRRPAdverts(pkts []gopacket.Packet) []VRRPAdvert {
	var out []VRRPAdvert
	for _, p := range pkts {
		if a, ok := ParseVRRP(p); ok {
			out = append(out, a)
		}
	}
	return out
}

// onesSum is the 16-bit one's complement sum of a then b (each padded to
// even length); a packet whose checksum is right sums to 0xffff.
func onesSum(a, b []byte) uint16 {
	var s uint32
	add := func(d []byte) {
		for len(d) >= 2 {
			s += uint32(d[0])<<8 | uint32(d[1])
			d = d[2:]
		}
		if len(d) == 1 {
			s += uint32(d[0]) << 8
		}
	}
	add(a)
	add(b)
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
