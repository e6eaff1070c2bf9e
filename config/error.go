package config

import (
	"errors"
	"strings"

	"github.com/spf13/viper"
)

// Problem is one invalid value.
type Problem struct {
	// Path is the key path of the value, e.g. "backends[1].address"; empty
	// for problems about the whole document, such as YAML syntax errors.
	Path string
	// Msg says what is wrong, e.g. "missing port".
	Msg string
}

// String returns "<path>: <msg>", or just the message when Path is empty.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Error lists every problem found in one configuration. [Load] and [Parse]
// return it as *Error, so errors.As works.
type Error struct {
	// Name is the file name (or the name given to [Parse]).
	Name string
	// Problems holds every problem found, at least one.
	Problems []Problem
}

// Error returns one line per problem, "<name>: <path>: <msg>", joined with
// "\n".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Name)
		b.WriteString(": ")
		b.WriteString(p.String())
	}
	return b.String()
}

// yamlProblems turns a viper read error into problems, one line each.
// yaml reports syntax errors as one line ("yaml: line 3: ...") and type
// errors as a header followed by one indented line per error.
func yamlProblems(err error) []Problem {
	var pe viper.ConfigParseError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		err = pe.Unwrap() // drop viper's "While parsing config: "
	}
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	if len(lines) == 1 {
		return []Problem{{Msg: lines[0]}}
	}
	var ps []Problem
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		l = rewordTopLevel(l)
		ps = append(ps, Problem{Msg: "yaml: " + l})
	}
	if len(ps) == 0 {
		return []Problem{{Msg: strings.Join(strings.Fields(err.Error()), " ")}}
	}
	return ps
}

// rewordTopLevel rewrites yaml's complaint when the document is not a
// mapping, "line 1: cannot unmarshal !!seq into map[string]interface {}",
// into words; other lines are returned unchanged.
func rewordTopLevel(l string) string {
	const into = " into map[string]interface {}"
	at, rest, ok := strings.Cut(l, ": cannot unmarshal !!")
	if !ok || !strings.HasSuffix(rest, into) {
		return l
	}
	tag, _, _ := strings.Cut(rest, " ")
	return at + ": the document must be a mapping of keys, not " + yamlKind(tag)
}

// yamlKind names a YAML tag for humans.
func yamlKind(tag string) string {
	switch tag {
	case "seq":
		return "a list"
	case "str":
		return "a string"
	case "int", "float":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return "!!" + tag
}
