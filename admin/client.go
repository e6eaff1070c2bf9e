package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
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

// WriteTable prints a Status for people: one line per backend, then the
// frontend counters that are not zero.
func WriteTable(w io.Writer, st *Status) error {
	fmt.Fprintf(w, "dnslb %s  up %s  config %s (%s)  listen %s  tcp connections %d\n",
		st.Version, time.Since(st.StartedAt).Round(time.Second), st.ConfigFile, shortHash(st.ConfigHash),
		strings.Join(st.Listen, ","), st.TCPConnections)
	if v := st.VRRP; v != nil {
		fmt.Fprintf(w, "vrrp vrid %d: %s (priority %d, effective %d) for %s: %s; master %s; vips %s\n",
			v.VRID, strings.ToUpper(v.State), v.Priority, v.EffectivePriority, time.Since(v.Since).Round(time.Second),
			v.Reason, orDash(v.Master), strings.Join(v.VIPs, ","))
	}
	if n := st.Notify; n != nil {
		fmt.Fprintf(w, "notify: received %s; copies %s; copy errors %s\n", orDash(counts(n.Received)), orDash(counts(n.Copies)), orDash(counts(n.Errors)))
	}
	if st.LastReloadError != "" {
		fmt.Fprintf(w, "LAST RELOAD FAILED: %s\n", st.LastReloadError)
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
		fmt.Fprintf(w, "dropped: %s\n", d)
	}
	return nil
}

// reason is the health column's explanation: the last state change's
// reason with its age, or "-".
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
