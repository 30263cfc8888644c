package params

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// This file is the schema path that flow parameters and typed inputs
// share: SchemaFor describes a Go type (with the keywords of
// github.com/invopop/jsonschema's struct tags) and ValidateValue checks a
// JSON value against such a schema with github.com/santhosh-tekuri/jsonschema,
// listing every violation with its JSON pointer.

// SchemaFor returns the JSON Schema of the values of type t, as Schema
// does. It is the one schema generator of Baton: flow parameters and the
// inputs a flow waits for use it.
func SchemaFor(t reflect.Type) map[string]any { return Schema(t) }

// ValidateValue validates the JSON document doc against schema (as
// SchemaFor returns it, or decoded from JSON) with a JSON Schema 2020-12
// validator. It returns nil, a *ValidationError listing every violation,
// or an *Error when doc is not JSON or schema does not compile.
func ValidateValue(schema map[string]any, doc json.RawMessage) error {
	c, err := NewChecker(schema)
	if err != nil {
		return err
	}
	tree, perr := parseJSON(doc, "value")
	if perr != nil {
		return perr
	}
	if verr := c.Check(tree); verr != nil {
		return verr
	}
	return nil
}

// Violation is one way a value breaks its schema: where (a JSON pointer
// into the value, "" for the whole value) and what.
type Violation struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

// ValidationError lists every violation of a value's schema, ordered by
// pointer.
type ValidationError struct {
	Violations []Violation
}

// Error lists the violations: "/count: must be >= 1; /name: ...".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		p := v.Pointer
		if p == "" {
			p = "(the value)"
		}
		parts[i] = p + ": " + v.Message
	}
	return strings.Join(parts, "; ")
}

// Checker is a compiled schema. It is safe for concurrent use.
type Checker struct {
	s *jsonschema.Schema
}

var printer = message.NewPrinter(language.English)

// NewChecker compiles schema (draft 2020-12 unless it says otherwise).
// Formats are annotations, as the draft says: Baton's schemas name Go
// kinds in "format", which the Validator checks.
func NewChecker(schema map[string]any) (*Checker, error) {
	raw, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	const url = "baton:///schema.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return &Checker{s: s}, nil
}

// Check validates a parsed JSON value (numbers as json.Number, objects as
// map[string]any, arrays as []any) and returns every violation, or nil.
func (c *Checker) Check(value any) *ValidationError {
	err := c.s.Validate(value)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &ValidationError{Violations: []Violation{{Message: err.Error()}}}
	}
	out := &ValidationError{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out.Violations = append(out.Violations, Violation{Pointer: pointer(e.InstanceLocation),
				Message: e.ErrorKind.LocalizedString(printer)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	// The validator visits an object's members in map order: sort.
	slices.SortStableFunc(out.Violations, func(a, b Violation) int { return strings.Compare(a.Pointer, b.Pointer) })
	return out
}

// pointer is the JSON pointer (RFC 6901) of a path of object keys and
// array indexes.
func pointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// paramOfPointer names the parameter at a JSON pointer in Build's dotted
// form ("db.port", "hosts[2]").
func paramOfPointer(ptr string) string {
	if ptr == "" {
		return ""
	}
	path := ""
	for _, seg := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(seg); err == nil && path != "" {
			path += "[" + seg + "]"
			continue
		}
		path = joinPath(path, seg)
	}
	return path
}

// schemaError turns the violations of flow parameters into an *Error
// naming the first violation's parameter, whose message lists them all.
func schemaError(ve *ValidationError) *Error {
	parts := make([]string, len(ve.Violations))
	for i, v := range ve.Violations {
		if name := paramOfPointer(v.Pointer); name != "" {
			parts[i] = fmt.Sprintf("%s (%s): %s", paramName(name), v.Pointer, v.Message)
		} else {
			parts[i] = "parameters: " + v.Message
		}
	}
	param := ""
	if len(ve.Violations) > 0 {
		param = paramOfPointer(ve.Violations[0].Pointer)
	}
	return errorf(param, ve, strings.Join(parts, "; "))
}

// tagKeywords returns the schema keywords that the invopop/jsonschema tags
// of a struct field (`jsonschema:"minimum=1,maximum=10,description=..."`,
// `jsonschema_description`, `jsonschema_extras`) give a property whose
// JSON type is typ, and whether they make it required. invopop itself
// reads the tags, from a one-field struct of a stand-in type of that JSON
// type, so the syntax is exactly the library's.
func tagKeywords(tag reflect.StructTag, typ string) (map[string]any, bool) {
	var parts []string
	for _, key := range []string{"jsonschema", "jsonschema_description", "jsonschema_extras"} {
		if v, ok := tag.Lookup(key); ok {
			parts = append(parts, key+":"+strconv.Quote(v))
		}
	}
	if len(parts) == 0 {
		return nil, false
	}
	stand := map[string]reflect.Type{
		"integer": reflect.TypeFor[int64](), "number": reflect.TypeFor[float64](), "string": reflect.TypeFor[string](),
		"boolean": reflect.TypeFor[bool](), "array": reflect.TypeFor[[]any](), "object": reflect.TypeFor[map[string]any](),
	}[typ]
	if stand == nil {
		stand = reflect.TypeFor[any]()
	}
	st := reflect.StructOf([]reflect.StructField{{Name: "X", Type: stand,
		Tag: reflect.StructTag(`json:"x" ` + strings.Join(parts, " "))}})
	r := &invopop.Reflector{RequiredFromJSONSchemaTags: true, AllowAdditionalProperties: true, DoNotReference: true,
		Anonymous: true}
	s := r.ReflectFromType(st)
	prop, ok := s.Properties.Get("x")
	if !ok || prop == nil {
		return nil, false
	}
	raw, err := json.Marshal(prop)
	if err != nil {
		return nil, false
	}
	var kw map[string]any
	if json.Unmarshal(raw, &kw) != nil {
		return nil, false
	}
	if kw["type"] == typ || typ == "" {
		delete(kw, "type") // the stand-in's: the field's own type says more
	}
	required := false
	for _, name := range s.Required {
		required = required || name == "x"
	}
	return kw, required
}
