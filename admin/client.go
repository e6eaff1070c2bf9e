package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Fetch reads /status from the admin server at addr (host:port); token,
// if not empty, is sent as a bearer token (admin.token).
func Fetch(ctx context.Context, addr, token string) (*Status, error) {
	var st Status
	if err := call(ctx, http.MethodGet, addr, "/status", token, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// SetState asks the admin server at addr to drain, enable or disable a
// backend (action) and returns the backend's new admin state.
func SetState(ctx context.Context, addr, token, backend, action string) (string, error) {
	var sc StateChange
	if err := call(ctx, http.MethodPost, addr, "/backends/"+url.PathEscape(backend)+"/"+action, token, &sc); err != nil {
		return "", err
	}
	return sc.State, nil
}

// call makes one admin API request and decodes the JSON answer into out.
func call(ctx context.Context, method, addr, path, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s: %w (is dnslb running with admin.listen %s?)", addr, err, addr)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("admin %s: %s: %s", addr, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("admin %s: bad %s answer: %w", addr, path, err)
	}
	return nil
}

// DefaultTableWidth is the line length, in columns, that WriteTable keeps
// to unless TableOptions.Wide is set.
const DefaultTableWidth = 100

// TableOptions configure WriteTable.
type TableOptions struct {
	// Wide prints every column (weight, TCP connections, P50, queries,
	// retried, unmatched, latency, rcodes) with nothing shortened, however
	// long the lines get: `dnslb status -wide`.
	Wide bool
	// Width is the line length the default table fits in, in columns;
	// 0 means DefaultTableWidth. Wide ignores it.
	Width int
}

// WriteTable prints a Status for people: header lines (version, VRRP,
// NOTIFY, a failed reload), one line per backend, then the frontend
// counters that are not zero. By default every line fits in o.Width
// columns: the table has the columns an operator needs first (BACKEND
// ADDRESS STATE HEALTH QPS P99 OUT TIMEOUTS REASON), ADDRESS leaves out
// port 53, HEALTH carries the age of the last health change ("down 5m"),
// long names, addresses and reasons are cut with "…", and header lines
// wrap. o.Wide prints every column and each header on one line.
func WriteTable(w io.Writer, st *Status, o TableOptions) error {
	if o.Wide {
		return writeWide(w, st)
	}
	width := o.Width
	if width <= 0 {
		width = DefaultTableWidth
	}
	return writeNarrow(w, st, width)
}

// writeWide is the table with every column, each header on one line.
func writeWide(w io.Writer, st *Status) error {
	for _, l := range headerLines(st, ",") {
		fmt.Fprintln(w, l)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tADDRESS\tSTATE\tHEALTH\tWEIGHT\tOUTSTANDING\tTCP\tQPS\tP50\tP99\tQUERIES\tTIMEOUTS\tRETRIED\tUNMATCHED\tLATENCY\tRCODES\tREASON")
	for _, b := range st.Backends {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.0f\t%.2fms\t%.2fms\t%d\t%d\t%d\t%d\t%.2fms\t%s\t%s\n",
			b.Name, b.Address, b.State, b.Health, b.Weight, b.Outstanding, b.TCPConnections, b.QPS, b.P50MS, b.P99MS,
			b.Queries, b.Timeouts, b.Retried, b.Unmatched, b.LatencyMS, counts(b.Responses), reason(b))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if d := counts(st.Dropped); d != "-" {
		if _, err := fmt.Fprintf(w, "dropped: %s\n", d); err != nil {
			return err
		}
	}
	if a := counts(st.Answered); a != "-" {
		_, err := fmt.Fprintf(w, "answered by dnslb: %s\n", a)
		return err
	}
	return nil
}

// headerLines are the lines above the table; listSep joins the listen
// addresses and VIPs.
func headerLines(st *Status, listSep string) []string {
	lines := []string{fmt.Sprintf("dnslb %s  up %s  config %s (%s)  listen %s  tcp connections %d",
		st.Version, time.Since(st.StartedAt).Round(time.Second), st.ConfigFile, shortHash(st.ConfigHash),
		strings.Join(st.Listen, listSep), st.TCPConnections)}
	for _, v := range st.VRRP {
		sync := ""
		if v.Sync {
			sync = ", sync"
		}
		lines = append(lines, fmt.Sprintf("vrrp %s (vrid %d %s%s): %s (priority %d, effective %d) for %s: %s; master %s; vips %s",
			v.Instance, v.VRID, v.Family, sync, strings.ToUpper(v.State), v.Priority, v.EffectivePriority, time.Since(v.Since).Round(time.Second),
			v.Reason, orDash(v.Master), strings.Join(v.VIPs, listSep)))
	}
	if n := st.Notify; n != nil {
		lines = append(lines, fmt.Sprintf("notify: received %s; copies %s; copy errors %s; pending %s", orDash(counts(n.Received)), orDash(counts(n.Copies)), orDash(counts(n.Errors)), orDash(pending(n))))
		if n.MaxTracked > 0 {
			lines = append(lines, notifyTracking(n))
		}
	}
	lines = append(lines, bgpLines(st.BGP, listSep)...)
	if st.LastReloadError != "" {
		lines = append(lines, "LAST RELOAD FAILED: "+st.LastReloadError)
	}
	return lines
}

// Columns of the narrow table.
const (
	colBackend = iota
	colAddress
	colState
	colHealth
	colQPS
	colP99
	colOut
	colTimeouts
	colReason
	numCols
)

var narrowTitles = [numCols]string{"BACKEND", "ADDRESS", "STATE", "HEALTH", "QPS", "P99", "OUT", "TIMEOUTS", "REASON"}

// gap is the space after column c: one between the right-aligned numbers,
// whose titles already keep them apart, two elsewhere.
func gap(c int) string {
	if c >= colQPS && c < colTimeouts {
		return " "
	}
	return "  "
}

// writeNarrow is the default table: the main columns, every line at most
// width runes.
func writeNarrow(w io.Writer, st *Status, width int) error {
	var b strings.Builder
	for _, l := range headerLines(st, ", ") {
		// A failed reload lists one problem a line: the first stays
		// after the title, the others are indented.
		for i, part := range strings.Split(l, "\n") {
			indent := ""
			if i > 0 {
				indent = "  "
			}
			for _, wl := range wrap(part, width-len(indent)) {
				b.WriteString(indent + wl + "\n")
			}
		}
	}
	rows := [][numCols]string{narrowTitles}
	for _, be := range st.Backends {
		rows = append(rows, [numCols]string{
			oneLine(be.Name), shortAddr(be.Address), oneLine(be.State), oneLine(shortHealth(be)), fmt.Sprintf("%.0f", be.QPS),
			shortMS(be.P99MS), fmt.Sprint(be.Outstanding), fmt.Sprint(be.Timeouts), oneLine(shortReason(be)),
		})
	}
	widths := fitColumns(rows, width)
	for _, r := range rows {
		var line strings.Builder
		for c, cell := range r {
			n := widths[c]
			switch c {
			case colAddress:
				cell = cutMiddle(cell, n) // keeps the port
			default:
				cell = cutEnd(cell, n)
			}
			pad := strings.Repeat(" ", n-runeLen(cell))
			switch {
			case c == colQPS || c == colP99 || c == colOut || c == colTimeouts:
				line.WriteString(pad + cell)
			default:
				line.WriteString(cell + pad)
			}
			if c < numCols-1 {
				line.WriteString(gap(c))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	if d := counts(st.Dropped); d != "-" {
		for _, wl := range wrap("dropped: "+d, width) {
			b.WriteString(wl + "\n")
		}
	}
	if a := counts(st.Answered); a != "-" {
		for _, wl := range wrap("answered by dnslb: "+a, width) {
			b.WriteString(wl + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fitColumns returns the narrow table's column widths: each column's
// widest cell, then, if the line would exceed width, ADDRESS and BACKEND
// cut down so that REASON keeps a readable width, and REASON cut to what
// is left.
func fitColumns(rows [][numCols]string, width int) [numCols]int {
	var widths [numCols]int
	for _, r := range rows {
		for c, cell := range r {
			widths[c] = max(widths[c], runeLen(cell))
		}
	}
	others := 0
	for c := range colReason {
		others += widths[c] + len(gap(c))
	}
	// shrink cuts ADDRESS and BACKEND, in turn and not below their
	// floors, until REASON gets want columns.
	shrink := func(want, addrFloor, nameFloor int) {
		for _, s := range []struct{ col, floor int }{{colAddress, addrFloor}, {colBackend, nameFloor}} {
			over := others + want - width
			if over <= 0 {
				return
			}
			if d := min(over, widths[s.col]-s.floor); d > 0 {
				widths[s.col] -= d
				others -= d
			}
		}
	}
	shrink(min(widths[colReason], 30), 21, 12)
	shrink(min(widths[colReason], 24), 17, 10)
	widths[colReason] = min(widths[colReason], max(width-others, len("REASON")))
	return widths
}

// shortAddr is the narrow ADDRESS cell: the address without port 53, the
// DNS port, e.g. "2001:db8::53" for "[2001:db8::53]:53"; other ports stay.
func shortAddr(a string) string {
	if ap, err := netip.ParseAddrPort(a); err == nil && ap.Port() == 53 {
		return ap.Addr().String()
	}
	return a
}

// shortHealth is the narrow HEALTH cell: the health and how long it has
// been so, e.g. "down 5m".
func shortHealth(b Backend) string {
	if b.HealthSince.IsZero() {
		return b.Health
	}
	return b.Health + " " + shortAge(time.Since(b.HealthSince))
}

// shortReason is the narrow REASON cell: the last health change's reason,
// e.g. "udp: connection refused", or "-".
func shortReason(b Backend) string {
	r := b.HealthReason
	if r == "" {
		return "-"
	}
	// A dnslb before the short phrases reported socket errors whole:
	// "udp: read udp 127.0.0.1:45678->127.0.0.1:5301: recvfrom: connection
	// refused". Keep the transport and the last part.
	for _, tr := range []string{"udp: ", "tcp: "} {
		if rest, ok := strings.CutPrefix(r, tr); ok {
			if i := strings.LastIndex(rest, ": "); i >= 0 {
				r = tr + rest[i+2:]
			}
		}
	}
	return r
}

// shortAge renders d in its largest whole unit: 45s, 12m, 5h, 3d.
func shortAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// shortMS renders milliseconds in at most six columns: 0.25ms, 12.5ms,
// 153ms, 1.2s, 12s.
func shortMS(ms float64) string {
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	case ms < 999.5:
		return fmt.Sprintf("%.0fms", ms)
	case ms < 9950:
		return fmt.Sprintf("%.1fs", ms/1000)
	}
	return fmt.Sprintf("%.0fs", ms/1000)
}

// oneLine replaces the line breaks and tabs in a cell with spaces.
func oneLine(s string) string { return cellSpace.Replace(s) }

var cellSpace = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ")

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// cutEnd shortens s to n runes, ending in "…" when cut.
func cutEnd(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

// cutMiddle shortens s to n runes with "…" in the middle, keeping its end
// (an address's port).
func cutMiddle(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	tail := (n - 1) / 2
	return string(r[:n-1-tail]) + "…" + string(r[len(r)-tail:])
}

// wrap breaks s into lines of at most width runes, continuation lines
// indented by two spaces. It breaks at a boundary between parts ("  ",
// "; ", ", ") when there is one in the second half of the line, else at
// the last space, else inside a word.
func wrap(s string, width int) []string {
	const indent = "  "
	var lines []string
	prefix := ""
	r := []rune(s)
	for {
		limit := max(width-len(prefix), 1)
		if len(r) <= limit {
			return append(lines, prefix+string(r))
		}
		cut, part := -1, -1
		for i := 1; i <= limit; i++ {
			if r[i] != ' ' {
				continue
			}
			cut = i
			if (i+1 < len(r) && r[i+1] == ' ') || r[i-1] == ' ' || r[i-1] == ';' || r[i-1] == ',' {
				part = i
			}
		}
		switch {
		case part >= limit/2:
			cut = part
		case cut < 0:
			cut = limit
		}
		lines = append(lines, prefix+strings.TrimRight(string(r[:cut]), " "))
		r = []rune(strings.TrimLeft(string(r[cut:]), " "))
		if len(r) == 0 {
			return lines
		}
		prefix = indent
	}
}

// reason is the wide REASON column: the last health change's reason with
// its age, or "-".
func reason(b Backend) string {
	if b.HealthReason == "" {
		return "-"
	}
	if b.HealthSince.IsZero() {
		return b.HealthReason
	}
	return fmt.Sprintf("%s (%s ago)", b.HealthReason, time.Since(b.HealthSince).Round(time.Second))
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// counts renders the non-zero entries of m as "k=v k=v", sorted.
func counts(m map[string]uint64) string {
	var parts []string
	for k, v := range m {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// pending renders the zones each backend has yet to converge on, with
// the oldest one's age: "s1=3 (oldest 2.1s)".
func pending(n *Notify) string {
	var parts []string
	for name, c := range n.Pending {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d (oldest %.1fs)", name, c, n.Oldest[name]))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// bgpLines are the header lines of the route announcer: the sessions,
// then each VIP announced or not with its reason.
func bgpLines(b *BGP, listSep string) []string {
	if b == nil {
		return nil
	}
	var sessions []string
	for _, s := range b.Sessions {
		sessions = append(sessions, fmt.Sprintf("%s (as %d) %s %s", s.Neighbor, s.PeerAS, strings.ToUpper(s.State), time.Since(s.Since).Round(time.Second)))
	}
	head := "bgp " + b.Mode
	if b.LocalAS != 0 {
		head += fmt.Sprintf(" as %d id %s", b.LocalAS, b.RouterID)
	}
	if len(sessions) > 0 {
		head += ": " + strings.Join(sessions, listSep)
	}
	lines := []string{head}
	for _, p := range b.Prefixes {
		state := "withdrawn"
		if p.Announced {
			state = "ANNOUNCED"
		}
		l := fmt.Sprintf("bgp %s %s for %s: %s", p.Prefix, state, time.Since(p.Since).Round(time.Second), p.Reason)
		if p.Error != "" {
			l += "; error: " + p.Error
		}
		lines = append(lines, l)
	}
	return lines
}

// notifyTracking is the second notify line: the tracking table's use, the
// re-sends and give-ups, the tracking queries, and the convergence
// quantiles, e.g. "notify tracking: 1200/1000000 pairs, untracked 0;
// re-sends s2=3; given up -; soa queries s1=4000 s2=4100; converged 3000:
// p50 <=1s p99 <=10s".
func notifyTracking(n *Notify) string {
	conv := "converged 0"
	if h := n.Convergence; h != nil && h.Count > 0 {
		q := func(p float64) string {
			if le, ok := h.Quantile(p); ok {
				return fmt.Sprintf("<=%gs", le)
			}
			if len(h.Buckets) > 0 {
				return fmt.Sprintf(">%gs", h.Buckets[len(h.Buckets)-1].LE)
			}
			return "-"
		}
		conv = fmt.Sprintf("converged %d: p50 %s p99 %s max %s", h.Count, q(0.5), q(0.99), q(1))
	}
	return fmt.Sprintf("notify tracking: %d/%d pairs, untracked %d; re-sends %s; given up %s; soa queries %s; %s",
		n.Tracked, n.MaxTracked, n.Untracked, orDash(counts(n.Resends)), orDash(counts(n.GivenUp)), orDash(counts(n.SOAQueries)), conv)
}
