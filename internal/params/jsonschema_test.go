package params

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type tagged struct {
	Batch int      `json:"batch" jsonschema:"minimum=1,maximum=10,description=experiments per iteration"`
	Mode  string   `json:"mode,omitempty" jsonschema:"enum=explore,enum=exploit"`
	Name  string   `json:"name" jsonschema:"required,minLength=2" doc:"who decides"`
	Ratio float64  `json:"ratio" jsonschema:"exclusiveMinimum=0,maximum=1"`
	Tags  []string `json:"tags" jsonschema:"maxItems=2"`
	Plain int      `json:"plain"`
}

// TestSchemaForTags: invopop/jsonschema's tag syntax gives the schema its
// bounds, enums and descriptions; doc and baton:"required" still count.
func TestSchemaForTags(t *testing.T) {
	t.Parallel()
	s := SchemaFor(reflect.TypeFor[tagged]())
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	b := m.Properties["batch"]
	if b["minimum"] != 1.0 || b["maximum"] != 10.0 || b["description"] != "experiments per iteration" || b["type"] != "integer" {
		t.Errorf("batch = %v; want integer, minimum 1, maximum 10 and the description", b)
	}
	if got := m.Properties["mode"]["enum"]; !reflect.DeepEqual(got, []any{"explore", "exploit"}) {
		t.Errorf("mode enum = %v", got)
	}
	if n := m.Properties["name"]; n["description"] != "who decides" || n["minLength"] != 2.0 {
		t.Errorf("name = %v; want the doc tag's description and minLength 2", n)
	}
	if !reflect.DeepEqual(m.Required, []string{"name"}) {
		t.Errorf("required = %v, want [name] (jsonschema:\"required\")", m.Required)
	}
	if p := m.Properties["plain"]; len(p) != 2 || p["type"] != "integer" || p["format"] != "int" {
		t.Errorf("plain = %v; untagged fields keep their schema", p)
	}
}

// TestValidateValue: every violation is listed with its JSON pointer, by
// the flow-parameter path (Build, the API's Resolve) and by ValidateValue.
func TestValidateValue(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[tagged]()
	bad := `{"batch":0,"mode":"wander","name":"x","ratio":0,"tags":["a","b","c"]}`
	err := ValidateValue(SchemaFor(typ), json.RawMessage(bad))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ValidateValue = %v, want a *ValidationError", err)
	}
	var ptrs []string
	for _, v := range ve.Violations {
		ptrs = append(ptrs, v.Pointer)
		if v.Message == "" {
			t.Errorf("violation at %s without a message", v.Pointer)
		}
	}
	want := []string{"/batch", "/mode", "/name", "/ratio", "/tags"}
	if !reflect.DeepEqual(sortedCopy(ptrs), want) {
		t.Errorf("violations at %v, want %v (%v)", ptrs, want, err)
	}
	if err := ValidateValue(SchemaFor(typ), json.RawMessage(`{"batch":10,"name":"ok","ratio":1}`)); err != nil {
		t.Errorf("valid value: %v", err)
	}
	if err := ValidateValue(SchemaFor(typ), json.RawMessage(`{"batch":`)); err == nil {
		t.Error("ValidateValue of broken JSON: no error")
	}

	// Flow parameters: the same violations, named as parameters, on the
	// command line and through the API (which registers the schema as JSON).
	_, berr := Build(typ, nil, bad, nil)
	_, rerr := registered(t, typ).Resolve("f", nil, json.RawMessage(bad))
	for what, err := range map[string]error{"Build": berr, "Resolve": rerr} {
		var pe *Error
		if !errors.As(err, &pe) || pe.Param != "batch" {
			t.Fatalf("%s = %v; want an *Error about batch", what, err)
		}
		for _, p := range want {
			if !strings.Contains(pe.Msg, "("+p+")") {
				t.Errorf("%s message %q does not name %s", what, pe.Msg, p)
			}
		}
	}
	if berr.Error() != rerr.Error() {
		t.Errorf("Build and Resolve differ:\n%v\n%v", berr, rerr)
	}
	t.Logf("message: %v", berr)
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
