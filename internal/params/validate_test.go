package params

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// registered returns the Validator a server builds from a worker's
// registration: Schema(t) sent as JSON and decoded again.
func registered(t testing.TB, typ reflect.Type) *Validator {
	t.Helper()
	raw, err := json.Marshal(Schema(typ))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(m)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type resolveParams struct {
	Count  int               `json:"count" baton:"required"`
	Name   string            `json:"name"`
	Small  int8              `json:"small"`
	Big    uint64            `json:"big"`
	F      float32           `json:"f"`
	Inner  *buildInner       `json:"inner"`
	Items  []buildInner      `json:"items"`
	Labels map[string]int    `json:"labels"`
	Wait   time.Duration     `json:"wait"`
	When   time.Time         `json:"when"`
	Q      int               `json:"q,string"`
	S      string            `json:"s,string"`
	Next   *recNode          `json:"next"`
	Grid   [2]uint8          `json:"grid"`
	Any    any               `json:"any"`
	Keys   map[int16]bool    `json:"keys"`
	Data   []byte            `json:"data"`
	Ptrs   map[string]*int32 `json:"ptrs"`
}

// TestResolve is the server's path: the defects of issue 6 items 6 and 7
// get a 400 naming the parameter.
func TestResolve(t *testing.T) {
	t.Parallel()
	rp := reflect.TypeFor[resolveParams]()
	tests := []struct {
		name            string
		typ             reflect.Type
		defaults, given string
		want, wantErr   string
	}{
		{name: "string for an int", typ: rp, given: `{"count":"abc"}`, wantErr: `parameter "count": expected integer, got string "abc"`},
		{name: "out of range", typ: rp, given: `{"count":1,"small":300}`, wantErr: `parameter "small": 300 is out of range for int8 (-128 to 127)`},
		{name: "int out of int64 range", typ: rp, given: `{"count":9223372036854775808}`, wantErr: `parameter "count": 9223372036854775808 is out of range for int (-9223372036854775808 to 9223372036854775807)`},
		{name: "uint64 max fits", typ: rp, given: `{"count":1,"big":18446744073709551615}`, want: `{"big":18446744073709551615,"count":1}`},
		{name: "negative uint", typ: rp, given: `{"count":1,"big":-1}`, wantErr: `parameter "big": -1 is out of range for uint64 (0 to 18446744073709551615)`},
		{name: "float32 out of range", typ: rp, given: `{"count":1,"f":1e39}`, wantErr: `parameter "f": 1e39 is out of range for float32`},
		{name: "fraction", typ: rp, given: `{"count":1.5}`, wantErr: `parameter "count": expected integer, got number 1.5 (integers cannot have a fraction or exponent)`},
		{name: "unknown top-level", typ: rp, given: `{"count":1,"bogus":1}`, wantErr: `unknown parameter "bogus"; known parameters: any, big, count, data, f, grid, inner, items, keys, labels, name, next, ptrs, q, s, small, wait, when`},
		{name: "unknown nested", typ: rp, given: `{"count":1,"inner":{"host":"h","bogus":1}}`, wantErr: `unknown parameter "inner.bogus"; known parameters: inner.host, inner.port`},
		{name: "unknown in array element", typ: rp, given: `{"count":1,"items":[{"host":"h"},{"host":"h","x":1}]}`, wantErr: `unknown parameter "items[1].x"; known parameters: items[1].host, items[1].port`},
		{name: "unknown in recursive type", typ: rp, given: `{"count":1,"next":{"next":{"zz":1}}}`, wantErr: `unknown parameter "next.next.zz"; known parameters: next.next.kids, next.next.next, next.next.v`},
		{name: "recursive wrong type", typ: rp, given: `{"count":1,"next":{"kids":[{"v":"x"}]}}`, wantErr: `parameter "next.kids[0].v": expected integer, got string "x"`},
		{name: "map value", typ: rp, given: `{"count":1,"labels":{"a":"x"}}`, wantErr: `parameter "labels.a": expected integer, got string "x"`},
		{name: "map pointer value", typ: rp, given: `{"count":1,"ptrs":{"a":null,"b":3000000000}}`, wantErr: `parameter "ptrs.b": 3000000000 is out of range for int32 (-2147483648 to 2147483647)`},
		{name: "map key", typ: rp, given: `{"count":1,"keys":{"x":true}}`, wantErr: `parameter "keys.x": map key "x" is not a valid integer`},
		{name: "duration", typ: rp, given: `{"count":1,"wait":"1s"}`, wantErr: `parameter "wait": expected integer (nanoseconds), got string "1s"`},
		{name: "time", typ: rp, given: `{"count":1,"when":"yesterday"}`, wantErr: `parameter "when": expected string (RFC 3339 date-time), got string "yesterday"`},
		{name: "base64", typ: rp, given: `{"count":1,"data":"!!"}`, wantErr: `parameter "data": expected string (base64), got string "!!" (illegal base64 data at input byte 0)`},
		{name: "quoted int", typ: rp, given: `{"count":1,"q":"x"}`, wantErr: `parameter "q": expected string containing integer, got string "x"`},
		{name: "quoted int as number", typ: rp, given: `{"count":1,"q":7}`, wantErr: `parameter "q": expected string containing integer, got number 7`},
		{name: "quoted int ok", typ: rp, given: `{"count":1,"q":"7"}`, want: `{"count":1,"q":"7"}`},
		{name: "quoted string needs quotes", typ: rp, given: `{"count":1,"s":"x"}`, wantErr: `parameter "s": expected string containing string, got string "x"`},
		{name: "quoted string ok", typ: rp, given: `{"count":1,"s":"\"x\""}`, want: `{"count":1,"s":"\"x\""}`},
		{name: "fixed array ignores extra", typ: rp, given: `{"count":1,"grid":[1,2,"x"]}`, want: `{"count":1,"grid":[1,2,"x"]}`},
		{name: "fixed array element", typ: rp, given: `{"count":1,"grid":[1,256]}`, wantErr: `parameter "grid[1]": 256 is out of range for uint8 (0 to 255)`},
		{name: "any value", typ: rp, given: `{"count":1,"any":{"x":[1]}}`, want: `{"any":{"x":[1]},"count":1}`},
		{name: "null optional", typ: rp, given: `{"count":1,"name":null}`, want: `{"count":1,"name":null}`},
		{name: "case-insensitive key", typ: rp, given: `{"COUNT":2}`, want: `{"count":2}`},
		{name: "not an object", typ: rp, given: `[1]`, wantErr: `parameters: expected a JSON object with the parameters of flow f, got array`},

		// Item 7: required parameters.
		{name: "required missing", typ: rp, given: `{}`, wantErr: `missing required parameter "count" (integer)`},
		{name: "required null", typ: rp, given: `{"count":null}`, wantErr: `missing required parameter "count" (integer)`},
		{name: "required zero default counts as missing", typ: rp, defaults: `{"count":0,"name":"d"}`, given: `{}`, wantErr: `missing required parameter "count" (integer)`},
		{name: "required zero default, no parameters", typ: rp, defaults: `{"count":0,"name":"d"}`, wantErr: `missing required parameter "count" (integer)`},
		{name: "required non-zero default", typ: rp, defaults: `{"count":3,"name":"d"}`, given: `{"name":"x"}`, want: `{"count":3,"name":"x"}`},
		{name: "nested required", typ: rp, given: `{"count":1,"inner":{"port":1}}`, wantErr: `missing required parameter "inner.host" (string)`},
		{name: "nested required zero default", typ: rp, defaults: `{"count":1,"inner":{"host":"","port":1}}`, wantErr: `missing required parameter "inner.host" (string)`},
		{name: "deep merge over defaults", typ: rp, defaults: `{"count":1,"inner":{"host":"h","port":1}}`, given: `{"inner":{"port":2}}`, want: `{"count":1,"inner":{"host":"h","port":2}}`},

		// A flow that takes a single value.
		{name: "string for an int flow", typ: reflect.TypeFor[int](), given: `"abc"`, wantErr: `parameters: expected integer, got string "abc"`},
		{name: "int flow", typ: reflect.TypeFor[int](), defaults: `3`, given: `4`, want: `4`},
		{name: "int flow default", typ: reflect.TypeFor[int](), defaults: `3`, want: `3`},
		{name: "slice flow", typ: reflect.TypeFor[[]uint8](), given: `"aGk="`, want: `"aGk="`},
		{name: "pointer flow null", typ: reflect.TypeFor[*buildInner](), given: `null`, want: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := registered(t, tt.typ)
			got, err := v.Resolve("f", json.RawMessage(tt.defaults), json.RawMessage(tt.given))
			if tt.wantErr != "" {
				var perr *Error
				if !errors.As(err, &perr) || err.Error() != tt.wantErr {
					t.Fatalf("Resolve = %s, %v (%T)\nwant error %s", got, err, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Resolve = %s, %v; want %s", got, err, tt.want)
			}
			// What Resolve accepts, encoding/json decodes.
			dec := json.NewDecoder(bytes.NewReader(got))
			dec.DisallowUnknownFields()
			if err := dec.Decode(reflect.New(tt.typ).Interface()); err != nil {
				t.Fatalf("accepted %s does not decode into %v: %v", got, tt.typ, err)
			}
		})
	}
}

// TestResolveMatchesBuild: the API server (Resolve with a registered
// schema) and the command line (Build with the Go type) say the same thing
// about the same parameters.
func TestResolveMatchesBuild(t *testing.T) {
	t.Parallel()
	docs := []string{
		`{"name":"x","n":"abc"}`, `{"name":5}`, `{"name":"x","ok":"true"}`, `{"name":"x","tags":{}}`,
		`{"name":"x","tags":["a",1]}`, `{"name":"x","labels":{"a":true}}`, `{"name":"x","db":{"host":"h","port":"80"}}`,
		`{"name":"x","n":1.5}`, `{"name":"x","small":-129}`, `{"name":"x","count":-1}`, `{"name":"x","when":"yesterday"}`,
		`{"name":"x","data":"!!"}`, `{"name":"x","q":7}`, `{"name":"x","q":"x"}`, `{"n":1}`, `{"name":null}`,
		`{"name":"x","db":{"port":1}}`, `{"name":"x","bogus":1}`, `{"name":"x","db":{"host":"h","bogus":1}}`,
		`{"name":"x","wait":"1s"}`, `{"name":"x","grid":[1,"a"]}`, `{"NAME":"p"}`, `{"name":"x","extra":[1,{}]}`,
		`{"name":"x","region":"eu","REGION":"us"}`, `{"name":"x","big":9223372036854775808}`, `{}`,
	}
	defaults := []string{"", `{"name":"","n":0}`, `{"name":"d","db":{"host":"","port":5}}`, `{"name":"d","n":3}`}
	typ := reflect.TypeFor[buildParams]()
	v := registered(t, typ)
	for _, d := range defaults {
		for _, doc := range docs {
			built, berr := Build(typ, json.RawMessage(d), doc, nil)
			resolved, rerr := v.Resolve("f", json.RawMessage(d), json.RawMessage(doc))
			if (berr == nil) != (rerr == nil) || (berr != nil && berr.Error() != rerr.Error()) {
				t.Errorf("defaults %s, parameters %s:\n Build:   %s %v\n Resolve: %s %v", d, doc, built, berr, resolved, rerr)
				continue
			}
			if berr != nil {
				continue
			}
			// Same value once decoded.
			a, b := reflect.New(typ), reflect.New(typ)
			if err := json.Unmarshal(built, a.Interface()); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(resolved, b.Interface()); err != nil {
				t.Fatalf("resolved %s does not decode: %v", resolved, err)
			}
			if !reflect.DeepEqual(a.Interface(), b.Interface()) {
				t.Errorf("defaults %s, parameters %s: Build %s, Resolve %s", d, doc, built, resolved)
			}
		}
	}
}

func TestValidatorHostileSchema(t *testing.T) {
	t.Parallel()
	// A schema that refers to itself without descending, and references
	// that lead nowhere, accept rather than loop or panic.
	for _, s := range []string{
		`{"$ref":"#"}`, `{"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/a"}}}`, `{"$ref":"#/nope/x"}`, `{"$ref":"http://x"}`,
		`{"anyOf":[{"$ref":"#"}]}`, `{"type":7,"properties":[],"required":{},"items":1}`, `{"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]}`,
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		v, err := NewValidator(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range []string{`{"a":{"a":{}}}`, `1`, `[]`} {
			_, _ = v.Resolve("f", nil, json.RawMessage(doc))
			_ = v.Validate(json.RawMessage(doc))
		}
	}
}

// FuzzResolve: whatever the server accepts decodes into the flow's type,
// and it agrees with the command line.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{`{"count":1}`, `{"count":"1"}`, `{"count":1,"inner":{"host":"h","ports":[65536]}}`,
		`{"count":1,"q":"12"}`, `{"count":1,"small":128}`, `{"COUNT":2,"Count":3}`, `{"count":1,"items":[{}]}`, `[1]`, `"x"`,
		`{"count":1,"labels":{"a":1}}`, `{"count":1,"extra":{"a":null}}`, `{"count":1,"f32":1e39}`, `{"count":1,"data":"aGk"}`} {
		f.Add(s)
	}
	typ := reflect.TypeFor[fuzzParams]()
	v := registered(f, typ)
	defaults := json.RawMessage(`{"name":"default","count":0,"ratio":0.5}`)
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return // the API body decoder rejects it first
		}
		got, err := v.Resolve("f", defaults, json.RawMessage(doc))
		built, berr := Build(typ, defaults, doc, nil)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || perr.Error() == "" {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			if berr == nil {
				t.Fatalf("Resolve rejects %s (%v), Build accepts it: %s", doc, err, built)
			}
			if !strings.HasPrefix(berr.Error(), "--params:") && berr.Error() != err.Error() {
				t.Fatalf("%s: Resolve says %q, Build says %q", doc, err, berr)
			}
			return
		}
		if berr != nil {
			t.Fatalf("Resolve accepts %s as %s, Build rejects it: %v", doc, got, berr)
		}
		dec := json.NewDecoder(bytes.NewReader(got))
		dec.DisallowUnknownFields()
		var p fuzzParams
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("Resolve output %s does not decode: %v", got, err)
		}
	})
}

// TestEditMatchesBuild: a retry's edit of recorded parameters gets the same
// value, or the same error, from the command line (Edit) and from the
// server (Validator.Edit); recorded values all count, unlike defaults.
func TestEditMatchesBuild(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[buildParams]()
	v := registered(t, typ)
	tests := []struct {
		name, recorded, given string
		want                  string // a field of the result, "" when an error is wanted
		wantErr               string
	}{
		{"nothing given keeps the recorded", `{"name":"a","n":2}`, ``, `"n":2`, ""},
		{"given overrides", `{"name":"a","n":2}`, `{"n":5}`, `"n":5`, ""},
		{"recorded zero of a required field stays set", `{"name":"","n":2}`, `{"n":3}`, `"name":""`, ""},
		{"nested objects merge", `{"name":"a","db":{"host":"h","port":1}}`, `{"db":{"port":2}}`, `"host":"h"`, ""},
		{"a wrong type is refused", `{"name":"a"}`, `{"n":"x"}`, "", `parameter "n"`},
		{"an unknown field is refused", `{"name":"a"}`, `{"bogus":1}`, "", "bogus"},
		{"a null required field is refused", `{"name":"a"}`, `{"name":null}`, "", "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			built, berr := Edit(typ, json.RawMessage(tt.recorded), tt.given, nil)
			edited, verr := v.Edit("f", json.RawMessage(tt.recorded), json.RawMessage(tt.given))
			if (berr == nil) != (verr == nil) || (berr != nil && berr.Error() != verr.Error()) {
				t.Fatalf("Edit: %s %v; Validator.Edit: %s %v", built, berr, edited, verr)
			}
			if tt.wantErr != "" {
				if berr == nil || !strings.Contains(berr.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", berr, tt.wantErr)
				}
				return
			}
			if berr != nil {
				t.Fatal(berr)
			}
			if !strings.Contains(string(built), tt.want) || !strings.Contains(string(edited), tt.want) {
				t.Errorf("Edit %s, Validator.Edit %s; want both to hold %s", built, edited, tt.want)
			}
		})
	}
}
