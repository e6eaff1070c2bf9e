// Package vrrp moves the VIPs between two dnslb nodes with VRRP: version 3
// (RFC 5798 / RFC 9568) for IPv4 and IPv6, version 2 (RFC 3768) for IPv4,
// interoperable with keepalived.
//
// An Instance runs the RFC state machine (Initialize, Backup, Master, plus
// Fault for tracking): the master sends adverts every advert interval and
// owns the VIPs; a backup takes over when no advert arrives within
// Master_Down_Interval (3 x interval + skew) or when the master sends
// priority 0 (clean shutdown). Equal priorities are broken by the higher
// primary IP address; v3 backups learn the master's interval; priority 255
// (address owner) becomes master at once. Preemption and preempt delay,
// and tracking (lower priority, or go to fault, when too few backends are
// healthy) decide who should be master.
//
// The state machine talks to the network only through the Conn and
// Announcer interfaces, so it is tested without root; socket_linux.go
// (raw IP protocol 112 sockets, TTL 255, DSCP CS6), vip_linux.go (netlink
// address add/remove) and announce_linux.go (gratuitous ARP, unsolicited
// neighbour advertisements) are the thin real implementations. The codec
// (packet.go) is our own: gopacket's VRRPv2 layer decodes only v2 and
// checks no checksum.
//
// What it does not do: VRRP authentication beyond v2 simple text, more
// than one virtual router per Instance, or IPv4 and IPv6 VIPs in one
// instance (VRRPv3 runs one instance per family).
package vrrp
