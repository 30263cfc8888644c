package params

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// goTypeKeyword is the schema annotation naming a Go type whose JSON needs
// explaining in messages (time.Duration: an integer of nanoseconds).
const goTypeKeyword = "x-go-type"

// quotedKeyword is the schema annotation of a `json:",string"` field: the
// schema of the JSON value inside the string.
const quotedKeyword = "x-json-string"

// SchemaDialect is the JSON Schema dialect Schema declares in "$schema".
const SchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// Schema returns a JSON Schema (draft 2020-12) describing the JSON that
// encoding/json produces for, and accepts into, a value of type t.
//
// The mapping follows encoding/json: struct fields use their `json` tag names
// (`json:"-"` fields are left out, embedded structs are flattened, `,string`
// fields are strings), pointers are nullable, as are slices and maps (a nil
// slice or map encodes as null), []byte is a base64 string, time.Time is a
// date-time string, time.Duration is an integer count of nanoseconds, other
// encoding.TextMarshaler types are strings, and interfaces and custom
// json.Marshaler types accept any value.
//
// Integer and floating-point schemas carry the Go kind as "format" ("int8",
// "uint", "float32"...), so that Validate can check ranges exactly as
// encoding/json will; a time.Duration also has "x-go-type".
//
// Struct fields tagged `baton:"required"` are listed in "required"; a
// `doc:"..."` tag becomes the property's "description". Every struct schema,
// including the top-level one, has "additionalProperties": false, matching
// Build's rejection of unknown fields. A type that refers to itself is
// expanded once and its recursive occurrences point at an entry in "$defs".
func Schema(t reflect.Type) map[string]any {
	g := &schemaGen{
		stack: map[reflect.Type]bool{},
		names: map[reflect.Type]string{},
		used:  map[string]bool{},
	}
	s := g.schema(t, false)
	defs := map[string]any{}
	for len(g.pending) > 0 {
		dt := g.pending[0]
		g.pending = g.pending[1:]
		defs[g.names[dt]] = g.schema(dt, false)
	}
	if len(defs) > 0 {
		s["$defs"] = defs
	}
	out := map[string]any{"$schema": SchemaDialect}
	for k, v := range s {
		out[k] = v
	}
	return out
}

type schemaGen struct {
	stack   map[reflect.Type]bool   // struct types being expanded
	names   map[reflect.Type]string // $defs names handed out
	used    map[string]bool
	pending []reflect.Type // recursive types whose $defs entry is still to be built
}

var nonDefChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name, ok := g.names[t]
	if !ok {
		base := nonDefChars.ReplaceAllString(t.Name(), "_")
		if base == "" {
			base = "type"
		}
		name = base
		for i := 2; g.used[name]; i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		g.used[name] = true
		g.names[t] = name
		g.pending = append(g.pending, t)
	}
	return map[string]any{"$ref": "#/$defs/" + name}
}

// schema returns the schema of t; nullable adds null to the allowed types.
func (g *schemaGen) schema(t reflect.Type, nullable bool) map[string]any {
	if t.Kind() == reflect.Pointer {
		return g.schema(t.Elem(), true)
	}
	var s map[string]any
	switch {
	case t == timeType:
		s = map[string]any{"type": "string", "format": "date-time"}
	case t == durationType:
		s = map[string]any{"type": "integer", "format": "int64", goTypeKeyword: "time.Duration",
			"description": "duration in nanoseconds"}
	case t == numberType:
		s = map[string]any{"type": "number"}
	case implements(t, marshalerType):
		return map[string]any{}
	case implements(t, textMarshalerType):
		s = map[string]any{"type": "string"}
	default:
		switch t.Kind() {
		case reflect.Bool:
			s = map[string]any{"type": "boolean"}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			s = map[string]any{"type": "integer", "format": t.Kind().String()}
			if k := t.Kind(); k >= reflect.Uint && k <= reflect.Uintptr {
				s["minimum"] = 0
			}
		case reflect.Float32, reflect.Float64:
			s = map[string]any{"type": "number", "format": t.Kind().String()}
		case reflect.String:
			s = map[string]any{"type": "string"}
		case reflect.Slice:
			nullable = true // a nil slice encodes as null
			if isByteSlice(t) {
				s = map[string]any{"type": "string", "contentEncoding": "base64"}
			} else {
				s = map[string]any{"type": "array", "items": g.schema(t.Elem(), false)}
			}
		case reflect.Array:
			s = map[string]any{
				"type":     "array",
				"items":    g.schema(t.Elem(), false),
				"minItems": t.Len(),
				"maxItems": t.Len(),
			}
		case reflect.Map:
			if !validMapKey(t.Key()) {
				return map[string]any{}
			}
			nullable = true // a nil map encodes as null
			s = map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), false)}
			switch t.Key().Kind() {
			case reflect.String:
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
				if !t.Key().Implements(textMarshalerType) {
					s["propertyNames"] = map[string]any{"pattern": `^[0-9]+$`}
				}
			default:
				if !t.Key().Implements(textMarshalerType) {
					s["propertyNames"] = map[string]any{"pattern": `^-?[0-9]+$`}
				}
			}
		case reflect.Struct:
			if g.stack[t] {
				r := g.ref(t)
				if nullable {
					return map[string]any{"anyOf": []any{r, map[string]any{"type": "null"}}}
				}
				return r
			}
			g.stack[t] = true
			s = g.structSchema(t)
			delete(g.stack, t)
		default:
			// Interfaces accept anything; channels, functions and complex
			// numbers cannot be encoded at all, so nothing more precise
			// can be said.
			return map[string]any{}
		}
	}
	if nullable {
		s["type"] = []string{s["type"].(string), "null"}
	}
	return s
}

// baseType is the JSON type a schema describes besides null ("" for any).
func baseType(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []string:
		for _, e := range t {
			if e != "null" {
				return e
			}
		}
	}
	return ""
}

func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range structFields(t) {
		var ps map[string]any
		if f.quoted {
			ps = map[string]any{"type": "string", quotedKeyword: g.schema(deref(f.typ), false)}
			if f.typ.Kind() == reflect.Pointer {
				ps["type"] = []string{"string", "null"}
			}
		} else {
			ps = g.schema(f.typ, false)
		}
		if d := strings.TrimSpace(f.doc); d != "" {
			ps["description"] = d
		}
		kw, tagRequired := tagKeywords(f.tag, baseType(ps))
		for k, v := range kw {
			if _, doc := ps["description"]; k == "description" && doc {
				continue // the doc tag wins
			}
			ps[k] = v
		}
		props[f.name] = ps
		if f.required || tagRequired {
			required = append(required, f.name)
		}
	}
	s := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}
