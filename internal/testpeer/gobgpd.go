package testpeer

// gobgpd (GoBGP 3.10 from Debian) as a route reflector-free "router" for
// the bgp integration tests: it learns the nodes' routes and keeps them in
// its RIB only (no zebra: nothing goes to the kernel), which the tests
// read with the gobgp CLI over the gRPC API on 127.0.0.1 inside the
// namespace.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// GoBGPDOptions describe a gobgpd router.
type GoBGPDOptions struct {
	NetNS    *NetNS // required
	AS       uint32
	RouterID netip.Addr
	// Neighbors are the dnslb nodes: address and AS each.
	Neighbors []BGPPeer
	// HoldTime is every session's hold time; 0: 9s.
	HoldTime time.Duration
}

// BGPPeer is one neighbour of a test router.
type BGPPeer struct {
	Address netip.Addr
	AS      uint32
}

// GoBGPD is a running gobgpd.
type GoBGPD struct {
	Dir, ConfPath, LogPath string
	ns                     *NetNS
	p                      *proc
}

// StartGoBGPD writes gobgpd.toml, runs gobgpd in o.NetNS (own process
// group, killed by PID on cleanup) and waits at most 5s until its API
// answers. Skips loudly without root, gobgpd or gobgp.
func StartGoBGPD(t testing.TB, o GoBGPDOptions) *GoBGPD {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "gobgpd")
	RequireTool(t, "gobgp")
	hold := int(o.HoldTime / time.Second)
	if hold == 0 {
		hold = 9
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[global.config]\n  as = %d\n  router-id = %q\n  port = 179\n  local-address-list = [%q]\n\n", o.AS, o.RouterID, o.RouterID)
	for _, n := range o.Neighbors {
		afi := "ipv4-unicast"
		if n.Address.Is6() {
			afi = "ipv6-unicast"
		}
		fmt.Fprintf(&b, "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = %d\n"+
			"  [neighbors.timers.config]\n    hold-time = %d\n    keepalive-interval = %d\n    connect-retry = 2\n"+
			"  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n\n",
			n.Address, n.AS, hold, max(1, hold/3), afi)
	}
	dir := t.TempDir()
	g := &GoBGPD{Dir: dir, ConfPath: filepath.Join(dir, "gobgpd.toml"), LogPath: filepath.Join(dir, "gobgpd.log"), ns: o.NetNS}
	if err := os.WriteFile(g.ConfPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(g.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", o.NetNS.name, "gobgpd", "-f", g.ConfPath, "-t", "toml", "-p", "-l", "info",
		"--api-hosts", "127.0.0.1:50051", "--pprof-disable")
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startProc(cmd, false)
	if err != nil {
		t.Fatalf("testpeer: start gobgpd: %v", err)
	}
	g.p = p
	o.NetNS.track(p)
	t.Cleanup(func() {
		if err := p.stop(termGrace); err != nil {
			t.Errorf("testpeer: gobgpd: %v", err)
		}
		if t.Failed() {
			t.Logf("testpeer: gobgpd log:\n%s", tail(g.LogPath, 30))
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := g.cli("global"); err == nil {
			return g
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("testpeer: gobgpd not answering on its API:\n%s", tail(g.LogPath, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *GoBGPD) cli(args ...string) (string, error) {
	return runBounded(append([]string{"ip", "netns", "exec", g.ns.name, "gobgp", "-u", "127.0.0.1", "-p", "50051"}, args...)...)
}

// Path is one path of a prefix in a router's RIB.
type Path struct {
	Neighbor    netip.Addr // who sent it
	NextHop     netip.Addr
	MED         uint32
	Communities []string // "asn:value"
	Best        bool
}

// RIB returns the router's paths by prefix ("10.53.0.53/32").
func (g *GoBGPD) RIB(t testing.TB) map[string][]Path {
	t.Helper()
	out := map[string][]Path{}
	for _, fam := range []string{"ipv4", "ipv6"} {
		text, err := g.cli("global", "rib", "-a", fam, "-j")
		if err != nil {
			t.Fatalf("testpeer: gobgp global rib: %v\n%s", err, text)
		}
		var rib map[string][]struct {
			Best       bool             `json:"best"`
			NeighborIP string           `json:"neighbor-ip"`
			Attrs      []map[string]any `json:"attrs"`
		}
		if strings.TrimSpace(text) == "" || strings.TrimSpace(text) == "null" {
			continue
		}
		if err := json.Unmarshal([]byte(text), &rib); err != nil {
			t.Fatalf("testpeer: gobgp global rib: %v\n%s", err, text)
		}
		for pfx, paths := range rib {
			for _, p := range paths {
				var path Path
				path.Best = p.Best
				path.Neighbor, _ = netip.ParseAddr(p.NeighborIP)
				for _, a := range p.Attrs {
					switch a["type"] {
					case 3.0: // NEXT_HOP
						path.NextHop, _ = netip.ParseAddr(fmt.Sprint(a["nexthop"]))
					case 4.0: // MULTI_EXIT_DISC
						if v, ok := a["metric"].(float64); ok {
							path.MED = uint32(v)
						}
					case 8.0: // COMMUNITIES
						if cs, ok := a["communities"].([]any); ok {
							for _, c := range cs {
								v := uint32(c.(float64))
								path.Communities = append(path.Communities, fmt.Sprintf("%d:%d", v>>16, v&0xffff))
							}
						}
					case 14.0: // MP_REACH_NLRI
						path.NextHop, _ = netip.ParseAddr(fmt.Sprint(a["nexthop"]))
					}
				}
				out[pfx] = append(out[pfx], path)
			}
		}
	}
	return out
}

// NeighborState returns the session state of the neighbour at addr as
// gobgp prints it ("established", "active", ...).
func (g *GoBGPD) NeighborState(t testing.TB, addr netip.Addr) string {
	t.Helper()
	text, err := g.cli("neighbor", addr.String(), "-j")
	if err != nil {
		return "unknown"
	}
	var n struct {
		State struct {
			SessionState any `json:"session_state"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(text), &n); err != nil {
		return "unknown"
	}
	switch s := n.State.SessionState.(type) {
	case float64:
		return map[int]string{1: "idle", 2: "connect", 3: "active", 4: "opensent", 5: "openconfirm", 6: "established"}[int(s)]
	case string:
		return strings.ToLower(strings.TrimPrefix(strings.ToUpper(s), "SESSION_STATE_"))
	}
	return "unknown"
}

// Log returns gobgpd's log.
func (g *GoBGPD) Log() string {
	b, _ := os.ReadFile(g.LogPath)
	return string(b)
}
