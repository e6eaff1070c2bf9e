// Package admin serves dnslb's operator HTTP endpoints and is the client
// behind `dnslb status`.
//
//	/metrics  Prometheus metrics (text exposition)
//	/healthz  200 "ok" while serving, 503 while starting or shutting down
//	/status   JSON Status: every backend's state, weight and counters
//
// It does not compute anything itself: the caller (cmd/dnslb) passes a
// Gatherer and a function that builds the Status. The endpoints are
// unauthenticated and the default listen address is loopback.
package admin
