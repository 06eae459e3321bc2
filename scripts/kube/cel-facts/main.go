// cel-facts records kube-apiserver's own answers for test/cel/kube-facts.ts:
// each row's expression is compiled with k8s.io/apiserver's authentication CEL
// compiler (NewDefaultCompiler, as kube-apiserver builds it), evaluated over
// the row's claims or user, and the row's answer is rewritten with kube's.
//
// Usage (from this folder): go run . ../../../test/cel/kube-facts.ts
//
// Rows are the lines of the file that are a JSON array ending in "],":
// [variable, expression, input, answer]. Write a new row with any answer ({})
// and run this; every other line is kept as it is. With -check, nothing is
// written and each row whose recorded answer differs from kube's is printed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"

	celgo "github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	authenticationcel "k8s.io/apiserver/pkg/authentication/cel"
	"k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/lazy"
)

// expression is a mapping expression: kube's AnyType return, as claimMappings and extra.
type expression string

func (e expression) GetExpression() string      { return string(e) }
func (e expression) ReturnTypes() []*celgo.Type { return []*celgo.Type{celgo.AnyType} }

var compiler = authenticationcel.NewDefaultCompiler()

// answer is kube's answer for one row, in the form test/cel/kube-facts.ts's KubeAnswer takes.
func answer(variable, expr string, input map[string]any) (json.RawMessage, error) {
	var compiled authenticationcel.CompilationResult
	var err error
	if variable == "user" {
		compiled, err = compiler.CompileUserExpression(expression(expr))
	} else {
		compiled, err = compiler.CompileClaimsExpression(expression(expr))
	}
	if err != nil {
		return json.RawMessage(`{"compile": true}`), nil
	}
	if variable == "user" {
		// The user kube hands to userValidationRules: every field present.
		user := map[string]any{"username": "", "uid": "", "groups": []string{}, "extra": map[string][]string{}}
		for k, v := range input {
			user[k] = v
		}
		input = user
	}
	typeName := "kubernetes.claims"
	if variable == "user" {
		typeName = "kubernetes.UserInfo"
	}
	value, _, err := compiled.Program.ContextEval(context.Background(), map[string]any{variable: inputValue(input, typeName)})
	if err != nil {
		return json.RawMessage(`{"error": true}`), nil
	}
	plain, err := toJSON(value)
	if err != nil {
		return nil, fmt.Errorf("%q: %w (a fact must yield a JSON value: wrap an opaque one, e.g. string(...))", expr, err)
	}
	_, native := value.Value().([]string)
	if native {
		return json.RawMessage(fmt.Sprintf(`{"value": %s, "native": true}`, plain)), nil
	}
	return json.RawMessage(fmt.Sprintf(`{"value": %s}`, plain)), nil
}

// inputValue is the input as kube-apiserver's JWT authenticator hands it to CEL (newClaimsValue,
// newUserInfoValue and unescapeWrapper in k8s.io/apiserver/plugin/pkg/authenticator/token/oidc/oidc.go,
// unexported there, so copied): a lazy map whose lists and maps, at any depth, come wrapped. The
// wrapper has no IsZeroValue, so optional.ofNonZeroValue keeps an empty list or map of the input;
// plain NativeToValue (this program before) said it was zero, and the real apiserver disagreed.
func inputValue(input map[string]any, typeName string) ref.Val {
	lazyMap := lazy.NewMapValue(types.NewObjectType(typeName))
	for name, value := range input {
		lazyMap.Append(name, func(*lazy.MapValue) ref.Val { return unescapeWrapper(types.DefaultTypeAdapter.NativeToValue(value)) })
	}
	return lazyMap
}

type unescapeMapper struct{ traits.Mapper }

func (m *unescapeMapper) Find(key ref.Val) (ref.Val, bool) {
	if name, ok := unescapedName(key); ok {
		key = name
	}
	value, ok := m.Mapper.Find(key)
	return unescapeWrapper(value), ok
}

type unescapeLister struct{ traits.Lister }

func (l *unescapeLister) Get(index ref.Val) ref.Val { return unescapeWrapper(l.Lister.Get(index)) }

func unescapeWrapper(value ref.Val) ref.Val {
	switch v := value.(type) {
	case traits.Mapper:
		return &unescapeMapper{Mapper: v}
	case traits.Lister:
		return &unescapeLister{Lister: v}
	default:
		return value
	}
}

func unescapedName(key ref.Val) (types.String, bool) {
	n, ok := key.(types.String)
	if !ok {
		return "", false
	}
	name, ok := cel.Unescape(string(n))
	if !ok || name == string(n) {
		return "", false
	}
	return types.String(name), true
}

func toJSON(value ref.Val) ([]byte, error) {
	native, err := value.ConvertToNative(reflect.TypeOf(&structpb.Value{}))
	if err != nil {
		return nil, err
	}
	compact, err := protojson.Marshal(native.(*structpb.Value))
	if err != nil {
		return nil, err
	}
	// protojson's spacing is unstable by design; make it Go's json.
	var out bytes.Buffer
	if err := json.Compact(&out, compact); err != nil {
		return nil, err
	}
	return spaced(out.Bytes()), nil
}

// spaced writes JSON as the facts file does: ", " and ": " between items.
func spaced(compact []byte) []byte {
	var v any
	decoder := json.NewDecoder(bytes.NewReader(compact))
	decoder.UseNumber()
	if err := decoder.Decode(&v); err != nil {
		return compact
	}
	return []byte(render(v))
}

func render(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(x))
		for _, k := range sortedKeys(x) {
			key, _ := json.Marshal(k)
			parts = append(parts, string(key)+": "+render(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		var b bytes.Buffer
		encoder := json.NewEncoder(&b)
		encoder.SetEscapeHTML(false)
		_ = encoder.Encode(x)
		return strings.TrimSpace(b.String())
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func main() {
	check := flag.Bool("check", false, "print rows whose recorded answer differs from kube's; write nothing")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: go run . [-check] path/to/kube-facts.ts")
		os.Exit(2)
	}
	path := flag.Arg(0)
	text, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lines := strings.Split(string(text), "\n")
	rows, differ := 0, 0
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, "[") || !strings.HasSuffix(trimmed, "],") {
			continue
		}
		var row []json.RawMessage
		if err := json.Unmarshal([]byte(strings.TrimSuffix(trimmed, ",")), &row); err != nil || len(row) != 4 {
			continue
		}
		var variable, expr string
		var input map[string]any
		if json.Unmarshal(row[0], &variable) != nil || json.Unmarshal(row[1], &expr) != nil || json.Unmarshal(row[2], &input) != nil {
			fmt.Fprintf(os.Stderr, "line %d: not [variable, expression, input, answer]\n", i+1)
			os.Exit(1)
		}
		kube, err := answer(variable, expr, input)
		if err != nil {
			fmt.Fprintf(os.Stderr, "line %d: %v\n", i+1, err)
			os.Exit(1)
		}
		rows++
		if !sameJSON(row[3], kube) {
			differ++
			if *check {
				fmt.Printf("line %d: %s: recorded %s, kube %s\n", i+1, expr, row[3], kube)
			}
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		lines[i] = fmt.Sprintf("%s[%s, %s, %s, %s],", indent, row[0], row[1], row[2], kube)
	}
	fmt.Fprintf(os.Stderr, "%d rows, %d answers differ from the file\n", rows, differ)
	if *check {
		if differ > 0 {
			os.Exit(1)
		}
		return
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}
