package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
)

// waitForm is the form of a run's wait: fields generated from the input's
// JSON Schema (an object's properties, one field each), or one JSON field
// when the schema is not an object of simple properties; none for a pause.
type waitForm struct {
	apitype.InboxItem
	ID     string // prefix of the form's element IDs
	Fields []field
	// Whole is set when the value is typed as one JSON document.
	Whole bool
}

// field is one form field of a schema property.
type field struct {
	Name        string // the property
	ID          string // the element ID
	Label       string
	Description string
	// Type is "boolean" (a checkbox), "integer", "number", "string", "enum"
	// (a select) or "json" (a text area holding JSON).
	Type      string
	Required  bool
	Min, Max  string // bounds of numbers (inclusive), "" for none
	MinLength string
	MaxLength string
	Pattern   string
	Options   []string
	Default   string
	Checked   bool
}

// newWaitForm builds the form of a wait.
func newWaitForm(it apitype.InboxItem) waitForm {
	f := waitForm{InboxItem: it, ID: "w-" + safeID(it.Run.ID+"-"+it.Step)}
	if it.Kind != "input" {
		return f
	}
	f.Fields, f.Whole = schemaFields(f.ID, it.Schema, nil)
	return f
}

// schemaFields builds the fields of a value of the JSON Schema raw (IDs
// prefixed with id): an object's properties, one field each, or one field
// for the whole value (whole true), a JSON text area when the schema is
// none or not simple. current, when set, is the value the fields start
// with (the schema's defaults otherwise).
func schemaFields(id string, raw, current json.RawMessage) (fields []field, whole bool) {
	var schema map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &schema) != nil || schema == nil {
		fl := field{Name: "", ID: id + "-value", Label: "Value (JSON)", Type: "json", Required: true}
		setCurrent(&fl, current)
		return []field{fl}, true
	}
	schema = resolve(schema, schema)
	props, _ := schema["properties"].(map[string]any)
	if typeOf(schema) != "object" || len(props) == 0 {
		fl := fieldOf("", id+"-value", schema, true)
		fl.Label = "Value"
		if fl.Type == "json" {
			fl.Label = "Value (JSON)"
		}
		setCurrent(&fl, current)
		return []field{fl}, true
	}
	var required []string
	if rs, ok := schema["required"].([]any); ok {
		for _, r := range rs {
			if s, ok := r.(string); ok {
				required = append(required, s)
			}
		}
	}
	var values map[string]json.RawMessage
	_ = json.Unmarshal(current, &values) // not an object: the defaults
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		p, _ := props[name].(map[string]any)
		p = resolve(schema, p)
		fl := fieldOf(name, fmt.Sprintf("%s-f%d", id, i), p, slices.Contains(required, name))
		if v, ok := values[name]; ok {
			setCurrent(&fl, v)
		}
		fields = append(fields, fl)
	}
	return fields, false
}

// setCurrent makes the JSON value v the field's starting value.
func setCurrent(f *field, v json.RawMessage) {
	v = json.RawMessage(strings.TrimSpace(string(v)))
	if len(v) == 0 || string(v) == "null" {
		return
	}
	var x any
	if json.Unmarshal(v, &x) != nil {
		return
	}
	switch x := x.(type) {
	case bool:
		if f.Type == "boolean" {
			f.Checked = x
			return
		}
	case string:
		if f.Type != "json" {
			f.Default = x
			return
		}
	case float64:
		if f.Type != "json" {
			f.Default = string(v)
			return
		}
	}
	f.Default = pretty(v)
}

// resolve follows a local $ref ("#/$defs/X" or "#/definitions/X") of s
// within root, once.
func resolve(root, s map[string]any) map[string]any {
	ref, _ := s["$ref"].(string)
	for _, prefix := range []string{"#/$defs/", "#/definitions/"} {
		if name, ok := strings.CutPrefix(ref, prefix); ok {
			defs, _ := root[strings.Trim(prefix[1:], "/")].(map[string]any)
			if d, ok := defs[name].(map[string]any); ok {
				return d
			}
		}
	}
	return s
}

func typeOf(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any: // ["integer", "null"]: the first non-null type
		for _, x := range t {
			if x, ok := x.(string); ok && x != "null" {
				return x
			}
		}
	}
	return ""
}

func fieldOf(name, id string, p map[string]any, required bool) field {
	f := field{Name: name, ID: id, Label: name, Required: required}
	if t, ok := p["title"].(string); ok && t != "" {
		f.Label = t
	}
	f.Description, _ = p["description"].(string)
	if enum, ok := p["enum"].([]any); ok && len(enum) > 0 {
		f.Type = "enum"
		for _, e := range enum {
			if s, ok := e.(string); ok {
				f.Options = append(f.Options, s)
			} else {
				f.Type = "json"
				f.Options = nil
				break
			}
		}
	} else {
		switch t := typeOf(p); t {
		case "boolean", "integer", "number", "string":
			f.Type = t
		default:
			f.Type = "json"
		}
	}
	num := func(key string) string {
		if v, ok := p[key].(float64); ok {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ""
	}
	f.Min, f.Max = num("minimum"), num("maximum")
	if v, ok := p["exclusiveMinimum"].(float64); ok && f.Type == "integer" {
		f.Min = strconv.FormatFloat(math.Floor(v)+1, 'f', -1, 64)
	}
	if v, ok := p["exclusiveMaximum"].(float64); ok && f.Type == "integer" {
		f.Max = strconv.FormatFloat(math.Ceil(v)-1, 'f', -1, 64)
	}
	f.MinLength, f.MaxLength = num("minLength"), num("maxLength")
	f.Pattern, _ = p["pattern"].(string)
	if d, ok := p["default"]; ok {
		switch d := d.(type) {
		case bool:
			f.Checked = d
		case string:
			f.Default = d
		default:
			b, _ := json.Marshal(d)
			f.Default = string(b)
		}
	}
	return f
}

// safeID keeps the characters of s that are safe in an element ID.
func safeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// stateIcons are the shapes that show a state besides its colour and name.
var stateIcons = map[string]string{
	"SCHEDULED": "◷", "PENDING": "…", "RUNNING": "▶", "PAUSED": "⏸", "AWAITING_RETRY": "↻", "CANCELLING": "⊘",
	"COMPLETED": "✓", "FAILED": "✗", "CANCELLED": "⊘", "CRASHED": "⚠", "WAITING": "⏸", "TIMED_OUT": "⌛", "CACHED": "✓",
}

// reasonLabels name the reasons of an attempt comparison for people
// (apitype.StepNew, ...).
var reasonLabels = map[string]string{
	apitype.StepNew: "new step", apitype.StepFailedBefore: "failed before", apitype.StepUnfinished: "unfinished before",
	apitype.StepInputChanged: "input changed", apitype.StepVersionChanged: "new code version",
	apitype.StepTaskChanged: "another task here", apitype.StepRanAgain: "ran again", apitype.StepReused: "reused",
}

var funcs = template.FuncMap{
	"icon": func(state string) string {
		if i, ok := stateIcons[state]; ok {
			return i
		}
		return "•"
	},
	"stateClass": func(state string) string { return "s-" + strings.ToLower(state) },
	"time": func(t any) string {
		switch t := t.(type) {
		case time.Time:
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if t == nil || t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		}
		return ""
	},
	"iso": func(t any) string {
		switch t := t.(type) {
		case time.Time:
			return t.UTC().Format(time.RFC3339)
		case *time.Time:
			if t != nil {
				return t.UTC().Format(time.RFC3339)
			}
		}
		return ""
	},
	"duration": func(ms *int64) string {
		if ms == nil {
			return ""
		}
		return (time.Duration(*ms) * time.Millisecond).String()
	},
	"pretty":    pretty,
	"short":     shortID,
	"ended":     apitype.Ended,
	"taskEnded": taskEnded,
	"runPath":   func(id string) string { return "/runs/" + url.PathEscape(id) },
	"stateQuery": func(state string) string {
		return "/runs?state=" + state
	},
	"add": func(a, b int) int { return a + b },
	"taskPath": func(runID, taskRunID string) string {
		return "/runs/" + url.PathEscape(runID) + "/tasks/" + url.PathEscape(taskRunID)
	},
	"reason": func(r string) string {
		if l, ok := reasonLabels[r]; ok {
			return l
		}
		return r
	},
	"deref": func(n *int) int {
		if n == nil {
			return 0
		}
		return *n
	},
	"sum": func(qs []apitype.Queue) int {
		n := 0
		for _, q := range qs {
			n += q.RunsScheduled + q.TasksPending
		}
		return n
	},
}
