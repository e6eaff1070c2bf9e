package admin

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestTableBGP checks the status table's bgp lines: the sessions, then
// each prefix announced or withdrawn with its reason.
func TestTableBGP(t *testing.T) {
	now := time.Now()
	st := &Status{Version: "test", StartedAt: now, ConfigHash: "0123456789abcdef", Listen: []string{"192.0.2.53:53"},
		BGP: &BGP{Mode: "active", LocalAS: 65053, RouterID: "10.0.0.11",
			Sessions: []BGPSession{{Neighbor: "10.0.0.1", PeerAS: 65000, State: "established", Since: now.Add(-time.Minute)}},
			Prefixes: []BGPPrefix{
				{Prefix: "192.0.2.53/32", Announced: true, Reason: "2 of at least 1 backends up", Since: now.Add(-time.Minute)},
				{Prefix: "2001:db8::53/128", Reason: "only 0 of at least 1 backends up", Since: now, Error: "no route"},
			}}}
	for _, wide := range []bool{false, true} {
		var b bytes.Buffer
		if err := WriteTable(&b, st, TableOptions{Wide: wide}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{
			"bgp active as 65053 id 10.0.0.11: 10.0.0.1 (as 65000) ESTABLISHED 1m0s",
			"bgp 192.0.2.53/32 ANNOUNCED for 1m0s: 2 of at least 1 backends up",
			"bgp 2001:db8::53/128 withdrawn for 0s: only 0 of at least 1 backends up; error: no route",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("wide=%v: no line %q in\n%s", wide, want, out)
			}
		}
	}
}
