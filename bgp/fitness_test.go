package bgp

import "testing"

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Input
		want Verdict
	}{
		{"healthy, no vrrp", Input{Healthy: 2, MinHealthy: 1}, Verdict{true, "2 of at least 1 backends up"}},
		{"no tracking", Input{Healthy: 0}, Verdict{true, "0 backends up"}},
		{"too few", Input{Healthy: 1, MinHealthy: 2}, Verdict{false, "only 1 of at least 2 backends up"}},
		{"stopping wins", Input{Healthy: 3, MinHealthy: 1, VRRP: true, Instance: "v4", State: "master", Stopping: true}, Verdict{false, "shutting down"}},
		{"master", Input{Healthy: 3, MinHealthy: 1, VRRP: true, Instance: "v4", State: "master"}, Verdict{true, "master of vrrp instance v4, 3 of at least 1 backends up"}},
		{"backup", Input{Healthy: 3, MinHealthy: 1, VRRP: true, Instance: "v4", State: "backup"}, Verdict{false, "vrrp instance v4 is backup"}},
		{"no instance", Input{Healthy: 3, MinHealthy: 1, VRRP: true}, Verdict{false, "no vrrp instance holds this address"}},
		{"health before vrrp", Input{Healthy: 0, MinHealthy: 1, VRRP: true, Instance: "v4", State: "fault"}, Verdict{false, "only 0 of at least 1 backends up"}},
	} {
		if got := Judge(tc.in); got != tc.want {
			t.Errorf("%s: Judge(%+v) = %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}

// FuzzJudge checks the rules hold for every input: fit only when not
// stopping, with enough backends and, under VRRP, as master of an
// instance; always with a reason.
func FuzzJudge(f *testing.F) {
	f.Add(2, 1, true, "v4", "master", false)
	f.Add(0, 0, false, "", "", true)
	f.Fuzz(func(t *testing.T, healthy, min int, vrrp bool, instance, state string, stopping bool) {
		in := Input{Healthy: healthy, MinHealthy: min, VRRP: vrrp, Instance: instance, State: state, Stopping: stopping}
		v := Judge(in)
		want := !stopping && healthy >= min && (!vrrp || instance != "" && state == "master")
		if v.Fit != want || v.Reason == "" {
			t.Errorf("Judge(%+v) = %+v, want fit %v", in, v, want)
		}
	})
}
