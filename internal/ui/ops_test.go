package ui

import (
	"bytes"
	"encoding/json"
	"html/template"
	"reflect"
	"strings"
	"testing"

	"github.com/batonhq/baton/apitype"
)

// TestParamsForm: a flow's parameter schema becomes fields filled with a
// deployment's parameters; without a schema of an object's properties the
// parameters are one JSON field.
func TestParamsForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, schema, values string
		whole                bool
		want                 []field
	}{
		{"object filled with the values", `{"type":"object","required":["city"],"properties":{
			"city":{"type":"string"},"n":{"type":"integer","minimum":1},"dry":{"type":"boolean"},"tags":{"type":"array"}}}`,
			`{"city":"Lyon","n":3,"dry":true,"tags":["a"]}`, false, []field{
				{Name: "city", ID: "p-f0", Label: "city", Type: "string", Required: true, Default: "Lyon"},
				{Name: "dry", ID: "p-f1", Label: "dry", Type: "boolean", Checked: true},
				{Name: "n", ID: "p-f2", Label: "n", Type: "integer", Min: "1", Default: "3"},
				{Name: "tags", ID: "p-f3", Label: "tags", Type: "json", Default: `["a"]`},
			}},
		{"schema defaults when no value", `{"type":"object","properties":{"n":{"type":"integer","default":7}}}`, ``, false,
			[]field{{Name: "n", ID: "p-f0", Label: "n", Type: "integer", Default: "7"}}},
		{"no schema", ``, `{"n":1}`, true, []field{{ID: "p-value", Label: "Parameters (JSON)", Type: "json", Default: "{\n  \"n\": 1\n}"}}},
		{"a scalar schema", `{"type":"integer"}`, ``, true, []field{{ID: "p-value", Label: "Parameters (JSON)", Type: "json"}}},
	} {
		f := newParamsForm("p", json.RawMessage(tc.schema), json.RawMessage(tc.values))
		if f.Whole != tc.whole || !reflect.DeepEqual(f.Fields, tc.want) {
			t.Errorf("%s: whole %v fields %+v, want %v %+v", tc.name, f.Whole, f.Fields, tc.whole, tc.want)
		}
		if (f.Schema != "") != (tc.schema != "") {
			t.Errorf("%s: schema %q", tc.name, f.Schema)
		}
	}
}

func TestServesOpsPages(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]bool{
		"/deployments": true, "/deployments/": true, "/deployments/nightly": true, "/workers": true, "/limits": true, "/queues": true,
		"/deployments/nightly/run": false, "/workers/x": false, "/ui/static/ops.js": true,
	} {
		if got := Serves(path); got != want {
			t.Errorf("Serves(%q) = %v, want %v", path, got, want)
		}
	}
}

// FuzzParamsForm: any recorded schema and parameters make a form that
// renders on the deployment page, with field IDs safe in HTML.
func FuzzParamsForm(f *testing.F) {
	f.Add(`{"type":"object","properties":{"a":{"type":"integer","minimum":1}}}`, `{"a":2}`, "nightly")
	f.Add(`[1]`, `"x"`, "a b\"<")
	f.Add(``, `{"a":{"b":[1]}}`, "")
	tmpl := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html",
		"templates/parts.html", "templates/ops.html", "templates/deployment.html"))
	f.Fuzz(func(t *testing.T, schema, values, name string) {
		form := newParamsForm("run-"+safeID(name), json.RawMessage(schema), json.RawMessage(values))
		if len(form.Fields) == 0 {
			t.Fatalf("form without fields for %q", schema)
		}
		for _, fl := range append([]field{{ID: form.ID}}, form.Fields...) {
			if strings.ContainsAny(fl.ID, " \"'<>&") {
				t.Fatalf("unsafe element ID %q", fl.ID)
			}
		}
		var buf bytes.Buffer
		d := deploymentData{Deployment: apitype.Deployment{Name: name, ParameterSchema: json.RawMessage(schema)}, Form: form}
		if err := tmpl.Execute(&buf, view{Data: d}); err != nil {
			t.Fatalf("render: %v", err)
		}
	})
}
