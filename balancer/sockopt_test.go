package balancer

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBindErrorKeepsCause: an explained bind failure reads as one line
// that says what to do, and still is the system error (errors.Is), so
// that a caller can tell a port in use from other failures.
func TestBindErrorKeepsCause(t *testing.T) {
	addr := netip.MustParseAddrPort("127.0.0.1:53")
	for _, tc := range []struct {
		cause error
		msg   string
	}{
		{unix.EADDRINUSE, "listen udp 127.0.0.1:53: address already in use (another DNS server or dnslb is running?)"},
		{unix.EACCES, "listen udp 127.0.0.1:53: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"},
	} {
		err := explainBindError("udp", addr, fmt.Errorf("bind: %w", tc.cause))
		if err.Error() != tc.msg {
			t.Errorf("message %q, want %q", err, tc.msg)
		}
		if !errors.Is(err, tc.cause) {
			t.Errorf("%q: errors.Is(%v) = false", err, tc.cause)
		}
	}
}
