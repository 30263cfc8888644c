package params

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// parseKV splits a --param item into its dotted key path and its value. The
// key is everything before the first '=' with surrounding spaces removed;
// the value is everything after it, verbatim.
func parseKV(item string) (path []string, value string, err error) {
	k, value, ok := strings.Cut(item, "=")
	key := strings.TrimSpace(k)
	if !ok || key == "" {
		return nil, "", errorf("", nil, fmt.Sprintf("--param %q: expected key=value", item))
	}
	path = strings.Split(key, ".")
	for _, seg := range path {
		if strings.TrimSpace(seg) == "" {
			return nil, "", errorf("", nil, fmt.Sprintf("--param %q: invalid key %q: empty name between dots", item, key))
		}
	}
	return path, value, nil
}

// kvSetter applies one --param item to the merged tree.
type kvSetter struct {
	key   string // the dotted key as typed
	value string // the text after '='
}

func (s *kvSetter) fail(param string, err error, format string, args ...any) *Error {
	return errorf(param, err, fmt.Sprintf("--param %s: ", s.key)+fmt.Sprintf(format, args...))
}

// set stores the value at segs below node, which decodes into t, and returns
// the updated node. path is the canonical path of node, for messages.
func (s *kvSetter) set(node any, t reflect.Type, quoted bool, segs []string, path string) (any, error) {
	if len(segs) == 0 {
		return s.parse(t, quoted, path)
	}
	t = deref(t)
	if quoted || customDecode(t) || (t.Kind() != reflect.Interface && !navigable(t)) {
		return nil, s.fail(path, nil, "parameter %q is a(n) %s and has no field %q", path, describe(t, quoted), segs[0])
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := structFields(t)
		// A JSON name may itself contain dots: prefer the longest match.
		for n := len(segs); n >= 1; n-- {
			f, ok := lookupField(fields, strings.Join(segs[:n], "."))
			if !ok {
				continue
			}
			obj := asObject(node)
			k, old, _ := findKey(obj, f.name)
			if k != "" && k != f.name {
				delete(obj, k)
			}
			v, err := s.set(old, f.typ, f.quoted, segs[n:], joinPath(path, f.name))
			if err != nil {
				return nil, err
			}
			obj[f.name] = v
			return obj, nil
		}
		return nil, s.fail(joinPath(path, segs[0]), nil, "unknown parameter; known parameters: %s", quoteList(fieldNames(fields, path)))
	case reflect.Map:
		key, rest := segs[0], segs[1:]
		if et := deref(t.Elem()); et.Kind() != reflect.Interface && !navigable(et) {
			key, rest = strings.Join(segs, "."), nil // a.b=1 on map[string]int sets key "a.b"
		}
		obj := asObject(node)
		v, err := s.set(obj[key], t.Elem(), false, rest, joinPath(path, key))
		if err != nil {
			return nil, err
		}
		obj[key] = v
		return obj, nil
	case reflect.Slice, reflect.Array:
		arr, _ := node.([]any)
		i, err := strconv.Atoi(segs[0])
		if err != nil || i < 0 || strings.HasPrefix(segs[0], "+") {
			return nil, s.fail(path, nil, "%q is not a valid index into array parameter %q", segs[0], path)
		}
		if i > len(arr) || (t.Kind() == reflect.Array && i >= t.Len()) {
			return nil, s.fail(path, nil, "index %d is out of range for parameter %q (it has %d elements; use index %d to append)", i, path, len(arr), len(arr))
		}
		ep := fmt.Sprintf("%s[%d]", path, i)
		if i == len(arr) {
			v, err := s.set(nil, t.Elem(), false, segs[1:], ep)
			if err != nil {
				return nil, err
			}
			return append(arr, v), nil
		}
		v, err := s.set(arr[i], t.Elem(), false, segs[1:], ep)
		if err != nil {
			return nil, err
		}
		arr[i] = v
		return arr, nil
	default: // interface: build plain objects
		obj := asObject(node)
		v, err := s.set(obj[segs[0]], t, false, segs[1:], joinPath(path, segs[0]))
		if err != nil {
			return nil, err
		}
		obj[segs[0]] = v
		return obj, nil
	}
}

// navigable reports whether a dotted key can descend into t (t without
// pointers and without custom decoding).
func navigable(t reflect.Type) bool {
	switch jsonKind(t, false) {
	case "object":
		return true
	case "array":
		return true
	}
	return false
}

func asObject(node any) map[string]any {
	if obj, ok := node.(map[string]any); ok {
		return obj
	}
	return map[string]any{}
}

// parse interprets the value text for a target of type t.
func (s *kvSetter) parse(t reflect.Type, quoted bool, path string) (any, error) {
	raw := s.value
	nullable := t.Kind() == reflect.Pointer
	t = deref(t)
	if nullable && raw == "null" {
		return nil, nil
	}
	kind := jsonKind(t, quoted)
	switch {
	case kind == "string":
		str := raw
		if strings.HasPrefix(raw, `"`) {
			var u string
			if json.Unmarshal([]byte(raw), &u) == nil {
				str = u
			}
		}
		if quoted && t.Kind() == reflect.String {
			// `json:",string"` on a string field: the JSON text of the
			// string is itself wrapped in a string.
			b, _ := json.Marshal(str)
			str = string(b)
		}
		if err := s.validate(str, t, quoted); err != nil {
			return nil, s.fail(path, err, "%q is not a valid %s", raw, describe(t, quoted))
		}
		return str, nil
	case kind == "" && t.Kind() == reflect.Interface:
		if v, err := parseValue(raw); err == nil {
			return v, nil
		}
		return raw, nil
	case kind == "":
		// Custom json.Marshaler: JSON if it parses, else a string.
		v, err := parseValue(raw)
		if err != nil {
			v = raw
		}
		if err := s.validate(v, t, false); err != nil {
			return nil, s.fail(path, err, "%q is not a valid %s", raw, t)
		}
		return v, nil
	}

	v, err := parseValue(raw)
	if err != nil && t == durationType {
		if d, derr := time.ParseDuration(strings.TrimSpace(raw)); derr == nil {
			return json.Number(strconv.FormatInt(int64(d), 10)), nil
		}
		return nil, s.fail(path, err, "%q is not a valid duration (such as 1m30s, or an integer of nanoseconds)", raw)
	}
	if err != nil {
		return nil, s.fail(path, err, "%q is not a valid %s", raw, describe(t, false))
	}
	switch kind {
	case "array", "object":
		// Only the JSON type is checked here; the final validation
		// reports problems inside with their full path.
		_, isArr := v.([]any)
		_, isObj := v.(map[string]any)
		if v != nil && !(kind == "array" && isArr) && !(kind == "object" && isObj) {
			return nil, s.fail(path, nil, "%q is not a valid %s", raw, describe(t, false))
		}
		return v, nil
	}
	if n, ok := v.(json.Number); ok && (kind == "integer" || kind == "number") {
		if msg := numberProblem(string(n), t); msg != "" {
			if strings.Contains(msg, "out of range") {
				return nil, s.fail(path, nil, "%q is out of range for %s", raw, t)
			}
			if t == durationType {
				return nil, s.fail(path, nil, "%q is not a valid duration (such as 1m30s, or an integer of nanoseconds)", raw)
			}
			return nil, s.fail(path, nil, "%q is not a valid integer", raw)
		}
		return v, nil
	}
	if v == nil {
		return nil, nil // explicit null: leaves the zero value
	}
	if err := s.validate(v, t, false); err != nil && t == durationType {
		return nil, s.fail(path, err, "%q is not a valid duration (such as 1m30s, or an integer of nanoseconds)", raw)
	} else if err != nil {
		return nil, s.fail(path, err, "%q is not a valid %s", raw, describe(t, false))
	}
	return v, nil
}

// validate checks that v decodes into t.
func (s *kvSetter) validate(v any, t reflect.Type, quoted bool) error {
	if e := check(v, t, quoted, ""); e != nil {
		return e
	}
	return nil
}

// parseValue parses text as exactly one JSON value, keeping numbers exact.
func parseValue(text string) (any, error) {
	if !json.Valid([]byte(text)) {
		return nil, errors.New("invalid JSON")
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// KVObject builds, without a Go type, the change that `baton runs update`
// sends: the JSON object paramsJSON (empty: none) with each --param
// key=value of kv set over it. A value is taken as JSON when it is valid
// JSON (8, true, "8", {"a":1}) and as a string otherwise; dotted keys set
// nested fields. The server validates the result against the flow's
// schema. Every error is an *Error.
func KVObject(paramsJSON string, kv []string) (json.RawMessage, error) {
	obj := map[string]any{}
	if strings.TrimSpace(paramsJSON) != "" {
		v, err := parseJSON([]byte(paramsJSON), "--params")
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errorf("", nil, "--params: expected a JSON object, got "+gotJSON(v))
		}
		obj = m
	}
	for _, item := range kv {
		path, text, err := parseKV(item)
		if err != nil {
			return nil, err
		}
		val, jerr := parseValue(text)
		if jerr != nil {
			val = text
		}
		node := obj
		for i, seg := range path {
			seg = strings.TrimSpace(seg)
			if i == len(path)-1 {
				node[seg] = val
				break
			}
			next, ok := node[seg].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[seg] = next
			}
			node = next
		}
	}
	if len(obj) == 0 {
		return nil, errorf("", nil, "give the parameters to change with --param key=value or --params JSON")
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, errorf("", err, fmt.Sprintf("encode the parameters: %v", err))
	}
	return b, nil
}
