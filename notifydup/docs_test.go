package notifydup

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDocsQuoteTheWindow: README.md and docs/operations.md quote the copy
// window's factor and bounds in prose; they must be the figures the code
// uses (the metric's help text is built from the same constants).
func TestDocsQuoteTheWindow(t *testing.T) {
	secs := func(d time.Duration) string { return fmt.Sprintf("%g s", d.Seconds()) }
	factor := fmt.Sprintf("`copy_qps` x %g x", cycleConfirmMultiple)
	lo, hi := defaultTiming.window, defaultTiming.maxCycle()
	for file, quotes := range map[string][]string{
		"../README.md":          {factor, fmt.Sprintf("between %s and %s of copies", secs(lo), secs(hi)), fmt.Sprintf("up to %s)", secs(hi))},
		"../docs/operations.md": {factor, fmt.Sprintf("at least %s of copies", secs(lo)), fmt.Sprintf("at most %s (", secs(hi))},
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(b)), " ") // line breaks in prose are spaces
		for _, q := range quotes {
			if !strings.Contains(text, q) {
				t.Errorf("%s does not say %q: the figure in its prose no longer matches notifydup/tracker.go", file, q)
			}
		}
	}
}
