// Package health names what health checking says about a backend: the
// healthcheck package decides it, the balancer acts on it, and a graceful
// restart hands it over. One enum, one numbering, for all of them.
package health

// State is a backend's health.
type State uint8

const (
	// Pending: new and not yet proven by checks (rise probes). Pending
	// backends get traffic only when none is up and all_down is fail_open.
	Pending State = iota
	// Up: healthy; the only state that gets traffic normally. A backend
	// whose checks are off is always Up.
	Up
	// Down: fall probes failed, or passive detection fired.
	Down
)

// String returns "pending", "up" or "down".
func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}
