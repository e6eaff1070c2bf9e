package config

import (
	"fmt"
	"slices"
	"strings"
)

// check collects the problems of one configuration, and what decoding saw
// of the settings, which validation consults.
type check struct {
	problems []Problem
	// given holds the key paths the settings had a value for (a mapping
	// only when it is not empty).
	given map[string]bool
	// texts holds the text of every scalar the settings had, by key path
	// (list items too), for messages that quote what was written.
	texts map[string]string
	// unread holds the key paths whose value is not the mapping or list
	// the schema wants (reported), so that nothing below them was read.
	unread map[string]bool
}

// newCheck returns an empty check.
func newCheck() *check {
	return &check{given: make(map[string]bool), texts: make(map[string]string), unread: make(map[string]bool)}
}

// add records a problem at path, once: the instances of vrrp.instances
// may find the same problem in a value they inherit.
func (c *check) add(path, format string, args ...any) {
	p := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if !slices.Contains(c.problems, p) {
		c.problems = append(c.problems, p)
	}
}

// ok reports whether no problem was recorded at path or below it.
func (c *check) ok(path string) bool {
	return !slices.ContainsFunc(c.problems, func(p Problem) bool {
		rest, below := strings.CutPrefix(p.Path, path)
		return below && (rest == "" || rest[0] == '.' || rest[0] == '[')
	})
}

// set reports whether the settings gave path a value without problem: a
// value other keys may be checked against.
func (c *check) set(path string) bool {
	return c.given[path] && c.ok(path)
}

// text returns the text the settings had at path.
func (c *check) text(path string) string {
	return c.texts[path]
}

// sorted returns the problems in schema order (see [schemaOrder]);
// problems at the same key keep the order they were found in.
func (c *check) sorted() []Problem {
	type ordered struct {
		Problem
		order []position
	}
	ps := make([]ordered, len(c.problems))
	for i, p := range c.problems {
		ps[i] = ordered{p, schemaOrder(p.Path)}
	}
	slices.SortStableFunc(ps, func(a, b ordered) int { return comparePositions(a.order, b.order) })
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = p.Problem
	}
	return out
}
