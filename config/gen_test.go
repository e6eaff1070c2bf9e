package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var generate = flag.Bool("gen", false, "rewrite the defaults table of doc.go and schema.json (go generate)")

// fieldDocs returns the doc comment of every field of the struct types of
// this package, by "Type.Field", as one line each.
func fieldDocs(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	links := regexp.MustCompile(`\[([\w.*]+)\]`)
	docs := make(map[string]string)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if st, ok := ts.Type.(*ast.StructType); ok {
				for _, field := range st.Fields.List {
					text := links.ReplaceAllString(strings.Join(strings.Fields(field.Doc.Text()), " "), "$1")
					for _, id := range field.Names {
						docs[ts.Name.Name+"."+id.Name] = text
					}
				}
			}
			return false
		})
	}
	return docs
}

// generated returns what go generate writes: doc.go with its defaults
// table, and schema.json.
func generated(t *testing.T) map[string][]byte {
	t.Helper()
	docs := fieldDocs(t)
	schema, err := jsonSchema(func(typ reflect.Type, f reflect.StructField) string {
		return docs[typ.Name()+"."+f.Name]
	})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	// The table is the indented block that starts with its header line.
	lines := strings.Split(string(doc), "\n")
	start := -1
	for i, l := range lines {
		if l == "//\tkey" || strings.HasPrefix(l, "//\tkey ") {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatal("doc.go: no defaults table (a line starting with //<tab>key)")
	}
	end := start
	for end < len(lines) && strings.HasPrefix(lines[end], "//\t") {
		end++
	}
	var table []string
	for l := range strings.Lines(defaultsTable()) {
		table = append(table, "//\t"+strings.TrimRight(l, " \n"))
	}
	lines = append(lines[:start], append(table, lines[end:]...)...)
	return map[string][]byte{"doc.go": []byte(strings.Join(lines, "\n")), "schema.json": schema}
}

// TestGenerated checks that the defaults table of doc.go and schema.json
// are what the code generates; go generate (go test -run TestGenerated
// -gen) rewrites them.
func TestGenerated(t *testing.T) {
	for name, want := range generated(t) {
		if *generate {
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the code generates: run go generate ./config", name)
		}
	}
}

// compileSchema compiles schema.json.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	return sch
}

// asJSON returns the YAML document doc as JSON values, as an editor's
// YAML support would check it against the schema.
func asJSON(t *testing.T, doc []byte) any {
	t.Helper()
	v, file, err := readYAML(doc)
	if err != nil || v == nil {
		t.Fatalf("reading YAML: %v", err)
	}
	b, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestSchemaAcceptsExamples checks that the repository's example
// configuration and the valid test configuration match schema.json.
func TestSchemaAcceptsExamples(t *testing.T) {
	sch := compileSchema(t)
	for _, path := range []string{filepath.Join("..", "config.yaml"), filepath.Join("testdata", "valid.yaml")} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(asJSON(t, data)); err != nil {
			t.Errorf("%s does not match schema.json:\n%v", path, err)
		}
	}
}

// TestSchemaRejects checks that schema.json flags what an editor should.
func TestSchemaRejects(t *testing.T) {
	sch := compileSchema(t)
	for _, doc := range []string{
		"timeoutz: {udp: 1s}\n",
		"backends: [{name: a, address: '10.0.0.1:53', wieght: 2}]\n",
		"backends: [{name: a}]\n",
		"backends: []\n",
		minimal + "vrrp: {track: {wieght: 1}}\n",
		"backends: [{name: a, address: '10.0.0.1:53', health_check: {all_down: refuse}}]\n",
		minimal + "log: {level: loud}\n",
		minimal + "limits: {tcp_connections: 0}\n",
		minimal + "timeouts: {udp: 5}\n",
		minimal + "tuning: {socket_buffer: 4MB}\n",
		minimal + "health_check: {transport: quic}\n",
		minimal + "vrrp: {interface: 'eth0:1'}\n",
		minimal + "notify: {tsig_keys: [{name: k}]}\n",
	} {
		if err := sch.Validate(asJSON(t, []byte(doc))); err == nil {
			t.Errorf("schema.json accepts %q", doc)
		}
	}
	if err := sch.Validate(asJSON(t, []byte(minimal))); err != nil {
		t.Errorf("schema.json rejects %q: %v", minimal, err)
	}
}

// TestSchemaTags checks the struct tags that decoding and generation rely
// on: every key has a doc comment, and every range, kind and required tag
// is one that decoding understands. (TestDefaults checks that every
// default is valid.)
func TestSchemaTags(t *testing.T) {
	docs := fieldDocs(t)
	for _, k := range keys() {
		f := k.field
		if p := strings.LastIndex(k.path, "."); docs[typeOf(k.path[:max(p, 0)])+"."+f.Name] == "" {
			t.Errorf("%s (%s): no doc comment", k.path, f.Name)
		}
		if kind := f.Tag.Get("kind"); kind != "" && kindText(kind) == "" {
			t.Errorf("%s: unknown kind %q", k.path, kind)
		}
		if r := f.Tag.Get("required"); r != "" && r != "true" && r != "enabled" {
			t.Errorf("%s: required:%q, want true or enabled", k.path, r)
		}
		rng := f.Tag.Get("range")
		switch {
		case rng == "":
		case f.Type == reflect.TypeFor[time.Duration]():
			if !regexp.MustCompile(`^[[(]\S+, \S+[])]( \(\S+ disables\))?$`).MatchString(rng) {
				t.Errorf("%s: range %q is not an interval", k.path, rng)
			}
		case f.Tag.Get("kind") == "size":
			lo, hi, _ := strings.Cut(rng, "-")
			if _, ok := parseSize(lo); !ok {
				t.Errorf("%s: range %q", k.path, rng)
			}
			if _, ok := parseSize(hi); !ok {
				t.Errorf("%s: range %q", k.path, rng)
			}
		default:
			if !regexp.MustCompile(`^[0-9]+-[0-9]+$`).MatchString(rng) {
				t.Errorf("%s: range %q is not lo-hi", k.path, rng)
			}
		}
	}
}

// typeOf returns the name of the section type at key path p ("" is
// Config).
func typeOf(p string) string {
	t := reflect.TypeFor[Config]()
	for _, s := range splitPath(strings.ReplaceAll(p, "[]", "")) {
		f, _ := fieldByKey(t, s.key)
		t = f.Type
		if t.Kind() == reflect.Slice {
			t = t.Elem()
		}
	}
	return t.Name()
}
