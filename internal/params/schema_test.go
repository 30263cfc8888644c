package params

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type textID int

func (i textID) MarshalText() ([]byte, error) { return []byte("id"), nil }

type schemaInner struct {
	Host string `json:"host" baton:"required"`
	Port int    `json:"port,omitempty" doc:"TCP port"`
}

type schemaEmbedded struct {
	Region string `json:"region"`
	Zone   string `json:"zone"`
}

type schemaTagged struct {
	Name     string `json:"name,omitempty" baton:"required" doc:"  who to greet "`
	Count    int    `json:"count" baton:"other,required"`
	Secret   string `json:"-"`
	Dash     string `json:"-,"` //lint:ignore SA5008 encoding/json names this field "-": the schema must too
	Untagged bool
	Quoted   int64         `json:"quoted,string"`
	QuotedP  *float64      `json:"quoted_p,string"`
	Inner    schemaInner   `json:"inner"`
	InnerP   *schemaInner  `json:"inner_p" doc:"optional inner"`
	Wait     time.Duration `json:"wait" doc:"how long"`
	private  int           //lint:ignore U1000 the schema must leave unexported fields out
}

type schemaOuter struct {
	schemaEmbedded
	*schemaInner
	Zone string `json:"zone"` // shadows schemaEmbedded.Zone (shallower)
	Own  int    `json:"own"`
}

type conflictA struct{ X int }
type conflictB struct{ X int }
type conflictTaggedB struct {
	X int `json:"X"`
}

type schemaConflict struct {
	conflictA
	conflictB // X is ambiguous at equal depth: dropped, like encoding/json
	Y         int
}

type schemaTagWins struct {
	conflictA
	conflictTaggedB // tagged X wins over untagged at equal depth
}

type schemaNamedEmbed struct {
	schemaEmbedded `json:"emb"`
}

type recNode struct {
	V    int       `json:"v"`
	Kids []recNode `json:"kids"`
	Next *recNode  `json:"next"`
}

type mutualA struct {
	B *mutualB `json:"b"`
}

type mutualB struct {
	A []mutualA `json:"a"`
}

func TestSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  reflect.Type
		want string // JSON, without "$schema"
	}{
		{"bool", reflect.TypeFor[bool](), `{"type":"boolean"}`},
		{"int", reflect.TypeFor[int](), `{"type":"integer","format":"int"}`},
		{"int8", reflect.TypeFor[int8](), `{"type":"integer","format":"int8"}`},
		{"uint", reflect.TypeFor[uint32](), `{"type":"integer","format":"uint32","minimum":0}`},
		{"float", reflect.TypeFor[float32](), `{"type":"number","format":"float32"}`},
		{"string", reflect.TypeFor[string](), `{"type":"string"}`},
		{"pointer", reflect.TypeFor[*int](), `{"type":["integer","null"],"format":"int"}`},
		{"pointer to pointer", reflect.TypeFor[**string](), `{"type":["string","null"]}`},
		{"slice", reflect.TypeFor[[]string](), `{"type":["array","null"],"items":{"type":"string"}}`},
		{"slice of pointers", reflect.TypeFor[[]*int](), `{"type":["array","null"],"items":{"type":["integer","null"],"format":"int"}}`},
		{"bytes", reflect.TypeFor[[]byte](), `{"type":["string","null"],"contentEncoding":"base64"}`},
		{"byte array", reflect.TypeFor[[2]byte](), `{"type":"array","items":{"type":"integer","format":"uint8","minimum":0},"minItems":2,"maxItems":2}`},
		{"array", reflect.TypeFor[[3]bool](), `{"type":"array","items":{"type":"boolean"},"minItems":3,"maxItems":3}`},
		{"map", reflect.TypeFor[map[string]int](), `{"type":["object","null"],"additionalProperties":{"type":"integer","format":"int"}}`},
		{"map int keys", reflect.TypeFor[map[int]bool](), `{"type":["object","null"],"additionalProperties":{"type":"boolean"},"propertyNames":{"pattern":"^-?[0-9]+$"}}`},
		{"map uint keys", reflect.TypeFor[map[uint8]bool](), `{"type":["object","null"],"additionalProperties":{"type":"boolean"},"propertyNames":{"pattern":"^[0-9]+$"}}`},
		{"map text keys", reflect.TypeFor[map[textID]bool](), `{"type":["object","null"],"additionalProperties":{"type":"boolean"}}`},
		{"map unsupported keys", reflect.TypeFor[map[bool]int](), `{}`},
		{"time", reflect.TypeFor[time.Time](), `{"type":"string","format":"date-time"}`},
		{"time pointer", reflect.TypeFor[*time.Time](), `{"type":["string","null"],"format":"date-time"}`},
		{"duration", reflect.TypeFor[time.Duration](), `{"type":"integer","format":"int64","x-go-type":"time.Duration","description":"duration in nanoseconds"}`},
		{"json.Number", reflect.TypeFor[json.Number](), `{"type":"number"}`},
		{"json.RawMessage", reflect.TypeFor[json.RawMessage](), `{}`},
		{"text marshaler", reflect.TypeFor[textID](), `{"type":"string"}`},
		{"interface", reflect.TypeFor[any](), `{}`},
		{"error interface", reflect.TypeFor[error](), `{}`},
		{"slice of any", reflect.TypeFor[[]any](), `{"type":["array","null"],"items":{}}`},
		{"func", reflect.TypeFor[func()](), `{}`},
		{"empty struct", reflect.TypeFor[struct{}](), `{"type":"object","properties":{},"additionalProperties":false}`},
		{"tags", reflect.TypeFor[schemaTagged](), `{
			"type":"object","additionalProperties":false,
			"required":["name","count"],
			"properties":{
				"name":{"type":"string","description":"who to greet"},
				"count":{"type":"integer","format":"int"},
				"-":{"type":"string"},
				"Untagged":{"type":"boolean"},
				"quoted":{"type":"string","x-json-string":{"type":"integer","format":"int64"}},
				"quoted_p":{"type":["string","null"],"x-json-string":{"type":"number","format":"float64"}},
				"inner":{"type":"object","additionalProperties":false,"required":["host"],"properties":{
					"host":{"type":"string"},"port":{"type":"integer","format":"int","description":"TCP port"}}},
				"inner_p":{"type":["object","null"],"additionalProperties":false,"required":["host"],"description":"optional inner","properties":{
					"host":{"type":"string"},"port":{"type":"integer","format":"int","description":"TCP port"}}},
				"wait":{"type":"integer","format":"int64","x-go-type":"time.Duration","description":"how long"}
			}}`},
		{"pointer to struct", reflect.TypeFor[*schemaInner](), `{"type":["object","null"],"additionalProperties":false,"required":["host"],"properties":{
			"host":{"type":"string"},"port":{"type":"integer","format":"int","description":"TCP port"}}}`},
		{"embedded", reflect.TypeFor[schemaOuter](), `{
			"type":"object","additionalProperties":false,"required":["host"],
			"properties":{
				"region":{"type":"string"},
				"host":{"type":"string"},
				"port":{"type":"integer","format":"int","description":"TCP port"},
				"zone":{"type":"string"},
				"own":{"type":"integer","format":"int"}
			}}`},
		{"embedded conflict", reflect.TypeFor[schemaConflict](), `{"type":"object","additionalProperties":false,"properties":{"Y":{"type":"integer","format":"int"}}}`},
		{"embedded tagged wins", reflect.TypeFor[schemaTagWins](), `{"type":"object","additionalProperties":false,"properties":{"X":{"type":"integer","format":"int"}}}`},
		{"embedded with tag", reflect.TypeFor[schemaNamedEmbed](), `{"type":"object","additionalProperties":false,"properties":{
			"emb":{"type":"object","additionalProperties":false,"properties":{"region":{"type":"string"},"zone":{"type":"string"}}}}}`},
		{"recursive", reflect.TypeFor[recNode](), `{
			"type":"object","additionalProperties":false,
			"properties":{
				"v":{"type":"integer","format":"int"},
				"kids":{"type":["array","null"],"items":{"$ref":"#/$defs/recNode"}},
				"next":{"anyOf":[{"$ref":"#/$defs/recNode"},{"type":"null"}]}
			},
			"$defs":{"recNode":{
				"type":"object","additionalProperties":false,
				"properties":{
					"v":{"type":"integer","format":"int"},
					"kids":{"type":["array","null"],"items":{"$ref":"#/$defs/recNode"}},
					"next":{"anyOf":[{"$ref":"#/$defs/recNode"},{"type":"null"}]}
				}}}}`},
		{"mutually recursive", reflect.TypeFor[mutualA](), `{
			"type":"object","additionalProperties":false,
			"properties":{"b":{"type":["object","null"],"additionalProperties":false,"properties":{
				"a":{"type":["array","null"],"items":{"$ref":"#/$defs/mutualA"}}}}},
			"$defs":{"mutualA":{
				"type":"object","additionalProperties":false,
				"properties":{"b":{"type":["object","null"],"additionalProperties":false,"properties":{
					"a":{"type":["array","null"],"items":{"$ref":"#/$defs/mutualA"}}}}}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Schema(tt.typ)
			if got["$schema"] != SchemaDialect {
				t.Errorf("$schema = %v, want %s", got["$schema"], SchemaDialect)
			}
			delete(got, "$schema")
			gotJSON, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("schema does not encode: %v", err)
			}
			if !jsonEqual(t, gotJSON, []byte(tt.want)) {
				t.Errorf("Schema(%v) =\n%s\nwant\n%s", tt.typ, gotJSON, compact(tt.want))
			}
		})
	}
}

// TestSchemaFreshMaps checks that callers may modify the returned schema.
func TestSchemaFreshMaps(t *testing.T) {
	t.Parallel()
	a := Schema(reflect.TypeFor[schemaTagged]())
	a["properties"].(map[string]any)["name"].(map[string]any)["type"] = "mutated"
	b := Schema(reflect.TypeFor[schemaTagged]())
	if got := b["properties"].(map[string]any)["name"].(map[string]any)["type"]; got != "string" {
		t.Fatalf("second Schema call saw a mutation of the first: type = %v", got)
	}
}

// jsonEqual compares two JSON documents semantically.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("invalid JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func compact(s string) string {
	var b strings.Builder
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	out, _ := json.Marshal(v)
	b.Write(out)
	return b.String()
}
