// Package docs holds tests that keep the repository's documents true to
// its code: what the README's first screen promises exists, every fuzz
// target is fuzzed by `make fuzz`, CI runs the README's test command.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dnslb/dnslb/balancer"
)

// root is the repository root, relative to this package.
const root = "../.."

// firstScreen is how many lines of the README a newcomer sees first.
const firstScreen = 24

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// makeTargets returns the targets the Makefile defines.
func makeTargets(t *testing.T) map[string]bool {
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(read(t, "Makefile"), -1) {
		targets[m[1]] = true
	}
	return targets
}

// TestReadmeFirstScreenCommandsExist: every `make X` on the README's first
// screen is a Makefile target, and there are at least `make demo` and
// `make test`.
func TestReadmeFirstScreenCommandsExist(t *testing.T) {
	lines := strings.Split(read(t, "README.md"), "\n")
	lines = lines[:min(len(lines), firstScreen)]
	targets := makeTargets(t)
	seen := map[string]bool{}
	for i, l := range lines {
		for _, m := range regexp.MustCompile(`(?:^|\s|`+"`"+`)make ([a-z][a-z0-9-]*)`).FindAllStringSubmatch(l, -1) {
			seen[m[1]] = true
			if !targets[m[1]] {
				t.Errorf("README.md:%d: `make %s` is not a Makefile target", i+1, m[1])
			}
		}
	}
	for _, want := range []string{"demo", "test"} {
		if !seen[want] {
			t.Errorf("README.md: `make %s` is not on the first screen (first %d lines)", want, firstScreen)
		}
	}
}

// TestCIRunsTheReadmeTestCommand: .ci/run ends with `make test`, the
// command the README gives.
func TestCIRunsTheReadmeTestCommand(t *testing.T) {
	ci := strings.TrimSpace(read(t, ".ci/run"))
	if last := ci[strings.LastIndex(ci, "\n")+1:]; last != "make test" {
		t.Errorf(".ci/run: last command is %q, want the README's `make test`", last)
	}
}

// TestEveryFuzzTargetIsFuzzed: each Fuzz function in the tree is in the
// Makefile's FUZZ list with its package, and nothing else is.
func TestEveryFuzzTargetIsFuzzed(t *testing.T) {
	mk := read(t, "Makefile")
	m := regexp.MustCompile(`(?ms)^FUZZ := (.*?)\n\n`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no FUZZ := list")
	}
	listed := map[string]bool{}
	for _, f := range strings.Fields(strings.ReplaceAll(m[1], "\\", " ")) {
		listed[f] = true
	}
	found := map[string]bool{}
	re := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found["./"+filepath.ToSlash(rel)+"/:"+m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for f := range found {
		if !listed[f] {
			t.Errorf("fuzz target %s is not in the Makefile's FUZZ list", f)
		}
	}
	for f := range listed {
		if !found[f] {
			t.Errorf("Makefile FUZZ lists %s, which does not exist", f)
		}
	}
}

// TestMetricReasonsDocumented: the reason labels that README.md and
// docs/operations.md list for the frontend's dropped and answered
// counters are exactly the ones the code has.
func TestMetricReasonsDocumented(t *testing.T) {
	for _, doc := range []string{"README.md", "docs/operations.md"} {
		text := read(t, doc)
		for metric, want := range map[string][]string{
			"dnslb_frontend_dropped_total":  balancer.DropReasons(),
			"dnslb_frontend_answered_total": balancer.AnswerReasons(),
		} {
			row := regexp.MustCompile("(?m)^\\| `" + metric + `\{reason\}` + "` \\|(.*)$").FindStringSubmatch(text)
			if row == nil {
				t.Errorf("%s: no table row for %s", doc, metric)
				continue
			}
			got := map[string]bool{}
			for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(row[1], -1) {
				got[m[1]] = true
			}
			for _, r := range want {
				if !got[r] {
					t.Errorf("%s: %s row lacks reason %q", doc, metric, r)
				}
				delete(got, r)
			}
			for r := range got {
				t.Errorf("%s: %s row lists %q, which the code does not have", doc, metric, r)
			}
		}
	}
}

// TestArchitectureNamesExist: every `file.go:Name` in docs/architecture.md
// is a file of the repository that defines Name (a function, a method or
// a type), and every `file.go` named alone exists.
func TestArchitectureNamesExist(t *testing.T) {
	doc := read(t, "docs/architecture.md")
	refs := regexp.MustCompile("`([a-z0-9_/]+\\.go)(?::([A-Za-z_][A-Za-z0-9_]*))?`").FindAllStringSubmatch(doc, -1)
	if len(refs) < 30 {
		t.Fatalf("only %d file references in docs/architecture.md", len(refs))
	}
	for _, r := range refs {
		src, err := os.ReadFile(filepath.Join(root, r[1]))
		if err != nil {
			t.Errorf("docs/architecture.md names %s, which does not exist", r[1])
			continue
		}
		if r[2] == "" {
			continue
		}
		def := regexp.MustCompile(`(?m)^(func (\([^)]*\) )?` + r[2] + `[\[(]|type ` + r[2] + `\b)`)
		if !def.Match(src) {
			t.Errorf("docs/architecture.md names %s:%s, which %s does not define", r[1], r[2], r[1])
		}
	}
}

// TestEveryMetricDocumented: every dnslb_* series the code defines is
// named in the README or in docs/.
func TestEveryMetricDocumented(t *testing.T) {
	var docs strings.Builder
	docs.WriteString(read(t, "README.md"))
	mds, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, md := range mds {
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(b)
	}
	names := map[string]string{}
	name := regexp.MustCompile(`"(dnslb_[a-z0-9_]+)"`)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 40 {
		t.Fatalf("found only %d metric names: the scan is broken", len(names))
	}
	for n, file := range names {
		if !strings.Contains(docs.String(), n) {
			t.Errorf("%s (%s) is in neither README.md nor docs/", n, file)
		}
	}
}
