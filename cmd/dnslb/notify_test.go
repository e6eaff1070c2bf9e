package main

import (
	"testing"

	"github.com/dnslb/dnslb/config"
	"github.com/dnslb/dnslb/notifydup"
)

// TestNotifyDefaultsAgree: notifydup's defaults (for a zero Policy field)
// and config's (the only defaults a user sees) are written in two places;
// this keeps them the same.
func TestNotifyDefaultsAgree(t *testing.T) {
	cfg := config.Default()
	p := notifyPolicy(&cfg)
	if p.CopyQPS != notifydup.DefaultCopyQPS || p.TrackQPS != notifydup.DefaultTrackQPS || p.MaxTracked != notifydup.DefaultMaxTracked {
		t.Errorf("config defaults copy_qps %d, track_qps %d, max_tracked %d; notifydup's %d, %d, %d",
			p.CopyQPS, p.TrackQPS, p.MaxTracked, notifydup.DefaultCopyQPS, notifydup.DefaultTrackQPS, notifydup.DefaultMaxTracked)
	}
}
