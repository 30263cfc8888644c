package ui

import (
	"bytes"
	"encoding/json"
	"html/template"
	"strings"
	"testing"

	"github.com/batonhq/baton/apitype"
)

func TestWaitFormFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, schema string
		whole        bool
		want         []field
	}{
		{"object of simple properties", `{"type":"object","required":["batch","who"],"properties":{
			"approve":{"type":"boolean","default":true},
			"batch":{"type":"integer","minimum":1,"maximum":50,"description":"plates"},
			"ratio":{"type":["number","null"],"exclusiveMinimum":0},
			"who":{"type":"string","minLength":2,"maxLength":20,"pattern":"^[a-z]+$","title":"Who"},
			"color":{"type":"string","enum":["red","blue"],"default":"blue"},
			"tags":{"type":"array","items":{"type":"string"}}}}`, false,
			[]field{
				{Name: "approve", Label: "approve", Type: "boolean", Checked: true},
				{Name: "batch", Label: "batch", Type: "integer", Required: true, Min: "1", Max: "50", Description: "plates"},
				{Name: "color", Label: "color", Type: "enum", Options: []string{"red", "blue"}, Default: "blue"},
				{Name: "ratio", Label: "ratio", Type: "number"},
				{Name: "tags", Label: "tags", Type: "json"},
				{Name: "who", Label: "Who", Type: "string", Required: true, MinLength: "2", MaxLength: "20", Pattern: "^[a-z]+$"},
			}},
		{"exclusive integer bounds", `{"type":"object","properties":{"n":{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10}}}`, false,
			[]field{{Name: "n", Label: "n", Type: "integer", Min: "1", Max: "9"}}},
		{"a $ref to $defs", `{"$ref":"#/$defs/A","$defs":{"A":{"type":"object","properties":{"ok":{"type":"boolean"}}}}}`, false,
			[]field{{Name: "ok", Label: "ok", Type: "boolean"}}},
		{"a number", `{"type":"integer","minimum":3}`, true, []field{{Label: "Value", Type: "integer", Required: true, Min: "3"}}},
		{"no schema", ``, true, []field{{Label: "Value (JSON)", Type: "json", Required: true}}},
		{"an object without properties", `{"type":"object"}`, true, []field{{Label: "Value (JSON)", Type: "json", Required: true}}},
		{"not JSON", `{`, true, []field{{Label: "Value (JSON)", Type: "json", Required: true}}},
		{"enum of numbers", `{"type":"object","properties":{"k":{"enum":[1,2]}}}`, false, []field{{Name: "k", Label: "k", Type: "json"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newWaitForm(apitype.InboxItem{Run: apitype.Run{ID: "r1"}, Step: "input:x", Kind: "input", Key: "x",
				Schema: json.RawMessage(tc.schema)})
			if f.Whole != tc.whole {
				t.Errorf("Whole = %v, want %v", f.Whole, tc.whole)
			}
			if len(f.Fields) != len(tc.want) {
				t.Fatalf("fields %+v, want %+v", f.Fields, tc.want)
			}
			for i, got := range f.Fields {
				want := tc.want[i]
				got.ID = ""
				if !fieldEqual(got, want) {
					t.Errorf("field %d:\n got  %+v\n want %+v", i, got, want)
				}
			}
		})
	}
}

func fieldEqual(a, b field) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestPauseFormHasNoFields(t *testing.T) {
	t.Parallel()
	f := newWaitForm(apitype.InboxItem{Run: apitype.Run{ID: "r1"}, Step: "pause", Kind: "pause"})
	if len(f.Fields) != 0 {
		t.Errorf("a pause has fields: %+v", f.Fields)
	}
}

func TestServes(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]bool{
		"/": true, "/runs": true, "/runs/": true, "/runs/abc": true, "/inbox": true, "/ui/static/app.js": true,
		"/runs/abc/logs": false, "/nope": false, "/api/v1/runs": false, "/inboxes": false,
	} {
		if got := Serves(path); got != want {
			t.Errorf("Serves(%q) = %v, want %v", path, got, want)
		}
	}
}

// FuzzWaitForm: any recorded schema makes a form that renders, with field
// IDs safe in HTML.
func FuzzWaitForm(f *testing.F) {
	f.Add(`{"type":"object","properties":{"a":{"type":"integer","minimum":1}}}`, "run-1", "input:a")
	f.Add(`{"$ref":"#/definitions/x","definitions":{"x":{"type":"string","enum":["a"]}}}`, "r", "k")
	f.Add(`[1,2]`, "r\"<x>", "k k")
	f.Add(`{"type":["null"],"properties":{"":{"default":{"a":[1]}}}}`, "", "")
	tmpl := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html",
		"templates/parts.html", "templates/inbox.html"))
	f.Fuzz(func(t *testing.T, schema, runID, step string) {
		form := newWaitForm(apitype.InboxItem{Run: apitype.Run{ID: runID}, Step: step, Kind: "input", Key: "k",
			Schema: json.RawMessage(schema)})
		if len(form.Fields) == 0 {
			t.Fatalf("input form without fields for %q", schema)
		}
		for _, fl := range append([]field{{ID: form.ID}}, form.Fields...) {
			if strings.ContainsAny(fl.ID, " \"'<>&") {
				t.Fatalf("unsafe element ID %q", fl.ID)
			}
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, view{Data: inboxData{Items: []waitForm{form}}}); err != nil {
			t.Fatalf("render: %v", err)
		}
	})
}
