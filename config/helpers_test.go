package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// defaultVRRP is the vrrp section of a file without one.
func defaultVRRP() VRRP { return Default().VRRP }

// defaultNotify is the notify section of a file without one.
func defaultNotify() Notify { return Default().Notify }

// setEnv sets every variable of env for the duration of the test.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// checkProblems parses doc with only the DNSLB_ variables of env set and
// checks that it fails with exactly the problems want, in order; a nil
// want means doc must be valid.
func checkProblems(t *testing.T, doc string, env map[string]string, want []string) {
	t.Helper()
	isolateEnv(t)
	setEnv(t, env)
	_, err := Parse("test.yaml", []byte(doc))
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if got := problemLines(t, err); !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

// checkResult parses doc, which must be valid, with only the DNSLB_
// variables of env set, and checks with check the part of the result that
// part selects.
func checkResult[T any](t *testing.T, doc string, env map[string]string, part func(*Config) T, check func(T) bool) {
	t.Helper()
	isolateEnv(t)
	setEnv(t, env)
	got := part(mustParse(t, doc))
	if !check(got) {
		t.Errorf("unexpected result: %+v", got)
	}
}

// checkSame reports got, named what, when it is not deeply equal to want.
func checkSame(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// checkEqualSeesFields checks that equal tells a from itself changed in any
// one field, so that a field added later cannot be forgotten. clone
// returns a copy of a sharing no memory with it; a struct field is changed
// in its last field, which must be an integer.
func checkEqualSeesFields[T any](t *testing.T, a T, clone func(T) T, equal func(a, b T) bool) {
	t.Helper()
	if !equal(a, a) {
		t.Fatalf("a %T differs from itself", a)
	}
	if !equal(a, clone(a)) {
		t.Error("a copy differs")
	}
	typ := reflect.TypeFor[T]()
	for i := range typ.NumField() {
		b := clone(a)
		f := reflect.ValueOf(&b).Elem().Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Slice:
			f.Set(reflect.Append(f, f.Index(0)))
		case reflect.Struct:
			f.Field(f.NumField() - 1).SetInt(f.Field(f.NumField()-1).Int() + 1)
		default:
			t.Fatalf("field %s: kind %s not handled by the test", typ.Field(i).Name, f.Kind())
		}
		if equal(a, b) || equal(b, a) {
			t.Errorf("%s: change not seen by Equal", typ.Field(i).Name)
		}
	}
}

// checkSectionHidden checks that the variable named after section (e.g.
// DNSLB_VRRP) hides every one of the keys keys of the section in doc
// rather than letting them fall back to their defaults.
func checkSectionHidden(t *testing.T, section, doc string, keys int) {
	t.Helper()
	isolateEnv(t)
	variable := envName(section)
	t.Setenv(variable, "on")
	_, err := Parse("test.yaml", []byte(withDefaults(doc)))
	if err == nil {
		t.Fatal("no error")
	}
	got := problemLines(t, err)
	if len(got) != keys {
		t.Errorf("%d problems, want %d: %q", len(got), keys, got)
	}
	for _, line := range got {
		if !strings.HasPrefix(line, section+".") || !strings.HasSuffix(line, ": hidden by the environment variable "+variable+" (unset it)") {
			t.Errorf("unexpected problem %q", line)
		}
	}
}

// exampleSection returns the repository's config.yaml; it skips the test
// when there is no such file or it has no disabled example of section.
func exampleSection(t *testing.T, section string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "config.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("config.yaml not written yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	disabled := "\n" + section + ":\n  enabled: false"
	doc := string(data)
	if !strings.Contains(doc, disabled) {
		t.Skip("config.yaml has no disabled " + section + " example")
	}
	return doc
}
