package bgp

import "fmt"

// Input is what decides whether the node may announce one VIP.
type Input struct {
	// Healthy is the number of backends that are up and active;
	// MinHealthy how many the node needs (0: any number).
	Healthy, MinHealthy int
	// VRRP is set when VRRP decides who serves the VIP (mode vrrp, or
	// kernel with VRRP on): the node must then be master of Instance,
	// the VRRP instance that holds the VIP ("" when none does).
	VRRP     bool
	Instance string
	// State is the instance's state (master, backup, fault, init).
	State string
	// Stopping is set once the node shuts down: it withdraws everything.
	Stopping bool
}

// Verdict is the decision for one VIP: announce it (Fit) or not, and why.
type Verdict struct {
	Fit    bool
	Reason string
}

// Judge decides whether the node is fit to serve a VIP: not stopping, at
// least MinHealthy backends up and, with VRRP, master of the VIP's
// instance. The reason names the first rule that failed, or what made
// the node fit.
func Judge(in Input) Verdict {
	backends := fmt.Sprintf("%d backends up", in.Healthy)
	if in.MinHealthy > 0 {
		backends = fmt.Sprintf("%d of at least %d backends up", in.Healthy, in.MinHealthy)
	}
	switch {
	case in.Stopping:
		return Verdict{Reason: "shutting down"}
	case in.Healthy < in.MinHealthy:
		return Verdict{Reason: "only " + backends}
	case in.VRRP && in.Instance == "":
		return Verdict{Reason: "no vrrp instance holds this address"}
	case in.VRRP && in.State != "master":
		return Verdict{Reason: fmt.Sprintf("vrrp instance %s is %s", in.Instance, in.State)}
	case in.VRRP:
		return Verdict{Fit: true, Reason: fmt.Sprintf("master of vrrp instance %s, %s", in.Instance, backends)}
	}
	return Verdict{Fit: true, Reason: backends}
}
