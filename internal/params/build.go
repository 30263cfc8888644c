package params

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Build assembles the JSON parameters of a flow whose parameter type is t.
//
// Sources are applied from lowest to highest precedence:
//
//  1. defaults, the JSON encoding of the flow's default value (nil means the
//     zero value);
//  2. paramsJSON, a JSON document given with --params ("" means none). When
//     t is a struct or map it must be an object, merged key by key (nested
//     objects deeply) over the defaults; otherwise it replaces the value;
//  3. kv, --param items of the form key=value, applied in order. A dotted
//     key (db.port=5432) sets a nested field, a map entry or, with a numeric
//     segment, an array element. For string-typed targets the text after
//     '=' is the string itself (a JSON-quoted string is unquoted); for
//     others it is parsed as JSON (n=5, ok=true, xs=[1,2]); a
//     time.Duration also accepts Go duration syntax (timeout=90s). A
//     pointer field can be reset with key=null. Only struct parameter types
//     accept key=value items.
//
// The merged document is then validated against t: unknown fields, values
// of the wrong JSON type, non-integral or out-of-range numbers, and missing
// or null fields tagged `baton:"required"` (at the top level and inside
// present nested objects) are rejected. A required field whose only value is
// a zero value from defaults counts as missing, since Go cannot tell a
// deliberate zero default from no default at all.
//
// Build returns the decoded value re-encoded with json.Marshal, so the result
// is exactly how encoding/json encodes a P. Every error is an *Error.
func Build(t reflect.Type, defaults json.RawMessage, paramsJSON string, kv []string) (json.RawMessage, error) {
	return build(t, defaults, true, paramsJSON, kv)
}

// Edit assembles the parameters of a retry that edits a run's, as Build
// does with the run's recorded parameters in place of the defaults: all
// their values count (a required parameter recorded with its zero value
// stays set); --params and --param override them, and the result is
// validated as Build validates.
func Edit(t reflect.Type, recorded json.RawMessage, paramsJSON string, kv []string) (json.RawMessage, error) {
	return build(t, recorded, false, paramsJSON, kv)
}

// build is Build over base: the flow's defaults when defaults is set, else
// a run's recorded parameters.
func build(t reflect.Type, base json.RawMessage, defaults bool, paramsJSON string, kv []string) (json.RawMessage, error) {
	if t == nil {
		return nil, errorf("", nil, "parameters: no parameter type")
	}
	objectType := isObjectType(t)

	// 1. Defaults (or the recorded parameters).
	var tree any
	if len(bytes.TrimSpace(base)) > 0 {
		src := "flow defaults"
		if !defaults {
			src = "recorded parameters"
		}
		d, err := parseJSON(base, src)
		if err != nil {
			return nil, err
		}
		if defaults {
			d = pruneZeroRequired(t, d)
		}
		tree = merge(t, nil, d)
	} else if objectType && t.Kind() != reflect.Pointer {
		tree = map[string]any{} // same as the zero value, minus required fields
	}

	// 2. --params.
	if strings.TrimSpace(paramsJSON) != "" {
		p, err := parseJSON([]byte(paramsJSON), "--params")
		if err != nil {
			return nil, err
		}
		if objectType {
			_, isObj := p.(map[string]any)
			if !isObj && !(p == nil && t.Kind() == reflect.Pointer) {
				return nil, errorf("", nil, fmt.Sprintf("--params: expected a JSON object with the parameters of %s, got %s", t, gotJSON(p)))
			}
		}
		tree = merge(t, tree, p)
	}

	// 3. --param key=value.
	if len(kv) > 0 && !isStructType(t) {
		return nil, errorf("", nil, fmt.Sprintf(
			"--param %q: this flow takes a single value of type %s (%s), not named parameters; pass it as JSON with --params",
			kv[0], t, describe(t, false)))
	}
	for _, item := range kv {
		path, value, err := parseKV(item)
		if err != nil {
			return nil, err
		}
		s := &kvSetter{key: strings.Join(path, "."), value: value}
		tree, err = s.set(tree, t, false, path, "")
		if err != nil {
			return nil, err
		}
	}

	// Validate: first against the schema, the path every surface shares
	// (the API server checks runs created over HTTP the same way), then
	// against the Go type for what a schema cannot say (`,string` fields,
	// types that decode themselves).
	if err := validatorFor(t).checkAll(tree); err != nil {
		return nil, err
	}
	if err := check(tree, t, false, ""); err != nil {
		return nil, err
	}
	merged, err := json.Marshal(tree)
	if err != nil {
		return nil, errorf("", err, "parameters: "+err.Error())
	}
	v := reflect.New(t)
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		return nil, decodeError(t, err)
	}
	out, err := json.Marshal(v.Elem().Interface())
	if err != nil {
		return nil, errorf("", err, "parameters cannot be encoded: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return out, nil
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isObjectType reports whether t's parameters are a JSON object (a struct or
// a map) that --params is merged into.
func isObjectType(t reflect.Type) bool {
	return jsonKind(t, false) == "object"
}

// isStructType reports whether t is a struct with named parameters.
func isStructType(t reflect.Type) bool {
	return isObjectType(t) && deref(t).Kind() == reflect.Struct
}

// parseJSON decodes one JSON document into a tree of nil, bool, json.Number,
// string, []any and map[string]any. Syntax errors say where they are.
func parseJSON(data []byte, source string) (any, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset, se.Error() == "unexpected end of JSON input")
			return nil, errorf("", err, fmt.Sprintf("%s: invalid JSON at line %d, column %d: %s", source, line, col, se.Error()))
		}
		return nil, errorf("", err, fmt.Sprintf("%s: invalid JSON: %v", source, err))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errorf("", err, fmt.Sprintf("%s: invalid JSON: %v", source, err))
	}
	return v, nil
}

// position converts a json.SyntaxError offset (the number of bytes read when
// the error was found, so the offending byte is the last one read) into a
// 1-based line and column, counting columns in characters. For an
// unexpected end of input it points just past the last character.
func position(data []byte, offset int64, atEOF bool) (line, col int) {
	end := int(offset) - 1 // index of the offending byte
	if atEOF || end < 0 {
		end = int(offset)
	}
	end = min(max(end, 0), len(data))
	prefix := data[:end]
	line = 1 + bytes.Count(prefix, []byte("\n"))
	lineStart := bytes.LastIndexByte(prefix, '\n') + 1
	return line, utf8.RuneCount(prefix[lineStart:]) + 1
}

// merge overlays over onto base. Objects are merged key by key, recursively;
// anything else in over replaces base. Keys of objects that decode into a
// struct are renamed to the field's JSON name when they only match it the
// way encoding/json does (case-insensitively), so that a user's "Region"
// overrides a default "region" rather than racing with it.
func merge(t reflect.Type, base, over any) any {
	ov, ok := over.(map[string]any)
	if !ok {
		return over
	}
	if t != nil {
		t = deref(t)
		if customDecode(t) || (t.Kind() != reflect.Interface && jsonKind(t, false) != "object") {
			return over
		}
	}
	out := map[string]any{}
	if bv, ok := base.(map[string]any); ok {
		out = maps.Clone(bv)
	}
	var fields []field
	isStruct := t != nil && t.Kind() == reflect.Struct
	if isStruct {
		fields = structFields(t)
	}
	// Exact-name keys last, so they win over case-insensitive matches, as
	// with encoding/json.
	keys := slices.Sorted(maps.Keys(ov))
	slices.SortStableFunc(keys, func(a, b string) int {
		return boolCmp(exactField(fields, a), exactField(fields, b))
	})
	for _, k := range keys {
		var et reflect.Type
		switch {
		case isStruct:
			if f, ok := lookupField(fields, k); ok {
				k2 := f.name
				if f.quoted {
					out[k2] = ov[k]
					continue
				}
				out[k2] = merge(f.typ, out[k2], ov[k])
				continue
			}
			// Unknown: kept for validation to report.
		case t != nil && t.Kind() == reflect.Map:
			et = t.Elem()
		}
		out[k] = merge(et, out[k], ov[k])
	}
	return out
}

func exactField(fields []field, key string) bool {
	for _, f := range fields {
		if f.name == key {
			return true
		}
	}
	return false
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// pruneZeroRequired removes from a defaults tree the required struct fields
// whose default is their type's zero value, so that they still count as
// missing unless the user sets them.
func pruneZeroRequired(t reflect.Type, node any) any {
	obj, ok := node.(map[string]any)
	if !ok {
		return node
	}
	t = deref(t)
	if t.Kind() != reflect.Struct || customDecode(t) {
		return node
	}
	for _, f := range structFields(t) {
		k, v, found := findKey(obj, f.name)
		if !found {
			continue
		}
		if f.required && isZeroJSON(f.typ, v) {
			delete(obj, k)
			continue
		}
		if !f.quoted {
			obj[k] = pruneZeroRequired(f.typ, v)
		}
	}
	return obj
}

// findKey finds the key of obj that decodes into the field called name.
func findKey(obj map[string]any, name string) (string, any, bool) {
	if v, ok := obj[name]; ok {
		return name, v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", nil, false
}

func isZeroJSON(t reflect.Type, v any) bool {
	if v == nil {
		return true
	}
	data, err := json.Marshal(v)
	if err != nil {
		return false
	}
	p := reflect.New(t)
	if json.Unmarshal(data, p.Interface()) != nil {
		return false
	}
	return p.Elem().IsZero()
}

// check validates a merged tree against t, reporting the first problem with
// its path. It covers what encoding/json would reject, with better messages;
// types with their own decoding are judged by encoding/json itself.
func check(node any, t reflect.Type, quoted bool, path string) *Error {
	if node == nil {
		return nil // null leaves the Go value untouched
	}
	t = deref(t)
	if quoted || customDecode(t) || t == numberType {
		return checkByDecoding(node, t, quoted, path)
	}
	mismatch := func() *Error {
		return errorf(path, nil, fmt.Sprintf("%s: expected %s, got %s", paramName(path), describe(t, false), gotJSON(node)))
	}
	switch t.Kind() {
	case reflect.Bool:
		if _, ok := node.(bool); !ok {
			return mismatch()
		}
	case reflect.String:
		if _, ok := node.(string); !ok {
			return mismatch()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		n, ok := node.(json.Number)
		if !ok {
			return mismatch()
		}
		if msg := numberProblem(string(n), t); msg != "" {
			return errorf(path, nil, fmt.Sprintf("%s: %s", paramName(path), msg))
		}
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && isByteSlice(t) {
			s, ok := node.(string)
			if !ok {
				return mismatch()
			}
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				return errorf(path, err, fmt.Sprintf("%s: expected %s, got %s (%v)", paramName(path), describe(t, false), gotJSON(node), err))
			}
			return nil
		}
		arr, ok := node.([]any)
		if !ok {
			return mismatch()
		}
		if t.Kind() == reflect.Array {
			arr = arr[:min(len(arr), t.Len())] // encoding/json ignores the rest
		}
		for i, e := range arr {
			if err := check(e, t.Elem(), false, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := node.(map[string]any)
		if !ok {
			return mismatch()
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			kp := joinPath(path, k)
			if msg := mapKeyProblem(k, t.Key()); msg != "" {
				return errorf(kp, nil, fmt.Sprintf("%s: %s", paramName(kp), msg))
			}
			if err := check(obj[k], t.Elem(), false, kp); err != nil {
				return err
			}
		}
	case reflect.Struct:
		obj, ok := node.(map[string]any)
		if !ok {
			return mismatch()
		}
		fields := structFields(t)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if _, ok := lookupField(fields, k); !ok {
				kp := joinPath(path, k)
				return errorf(kp, nil, fmt.Sprintf("unknown parameter %q; known parameters: %s", kp, quoteList(fieldNames(fields, path))))
			}
		}
		for _, f := range fields {
			fp := joinPath(path, f.name)
			_, v, found := findKey(obj, f.name)
			if f.required && v == nil {
				return errorf(fp, nil, fmt.Sprintf("missing required parameter %q (%s)", fp, describe(f.typ, f.quoted)))
			}
			if !found {
				continue
			}
			if err := check(v, f.typ, f.quoted, fp); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkByDecoding lets encoding/json judge a value of a type that decodes
// itself (time.Time, json.Number, `,string` fields, custom unmarshalers).
func checkByDecoding(node any, t reflect.Type, quoted bool, path string) *Error {
	data, err := json.Marshal(node)
	if err != nil {
		return nil
	}
	var ute *json.UnmarshalTypeError
	if quoted {
		// Decode through a one-field struct so the option applies.
		st := reflect.StructOf([]reflect.StructField{{Name: "V", Type: t, Tag: `json:"v,string"`}})
		data = append(append([]byte(`{"v":`), data...), '}')
		err = json.Unmarshal(data, reflect.New(st).Interface())
	} else {
		err = json.Unmarshal(data, reflect.New(t).Interface())
	}
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ute) && ute.Field == "" || quoted || t == timeType || !sameKind(node, jsonKind(t, false)):
		return errorf(path, err, fmt.Sprintf("%s: expected %s, got %s", paramName(path), describe(t, quoted), gotJSON(node)))
	}
	return errorf(path, err, fmt.Sprintf("%s: invalid value %s: %s", paramName(path), gotJSON(node), strings.TrimPrefix(err.Error(), "json: ")))
}

// sameKind reports whether tree value v has JSON type kind; "" matches
// anything.
func sameKind(v any, kind string) bool {
	switch v.(type) {
	case string:
		return kind == "" || kind == "string"
	case json.Number:
		return kind == "" || kind == "number" || kind == "integer"
	case bool:
		return kind == "" || kind == "boolean"
	case []any:
		return kind == "" || kind == "array"
	case map[string]any:
		return kind == "" || kind == "object"
	}
	return true
}

// numberProblem explains why JSON number s cannot be decoded into numeric
// type t, or returns "".
func numberProblem(s string, t reflect.Type) string {
	bits := t.Bits()
	var err error
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		_, err = strconv.ParseFloat(s, bits)
		if err != nil {
			return fmt.Sprintf("%s is out of range for %s", s, t)
		}
		return ""
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(s, 10, bits)
	default:
		_, err = strconv.ParseUint(s, 10, bits)
	}
	if err == nil {
		return ""
	}
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Sprintf("%s is out of range for %s (%s)", s, t, intRange(t))
	}
	if strings.HasPrefix(s, "-") && t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr {
		if _, ferr := strconv.ParseInt(s, 10, 64); ferr == nil {
			return fmt.Sprintf("%s is out of range for %s (%s)", s, t, intRange(t))
		}
	}
	return fmt.Sprintf("expected integer, got number %s (integers cannot have a fraction or exponent)", s)
}

func intRange(t reflect.Type) string {
	bits := t.Bits()
	if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr {
		return fmt.Sprintf("0 to %d", uint64(1)<<bits-1)
	}
	return fmt.Sprintf("%d to %d", -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1)
}

func mapKeyProblem(k string, kt reflect.Type) string {
	if reflect.PointerTo(kt).Implements(textUnmarshalerType) {
		// encoding/json prefers UnmarshalText for keys, even of string kind.
		err := reflect.New(kt).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(k))
		if err != nil {
			return fmt.Sprintf("map key %q is not a valid %s: %v", k, kt, err)
		}
		return ""
	}
	if kt.Kind() == reflect.String {
		return ""
	}
	var err error
	switch kt.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(k, 10, kt.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		_, err = strconv.ParseUint(k, 10, kt.Bits())
	}
	if err != nil {
		return fmt.Sprintf("map key %q is not a valid %s", k, kt)
	}
	return ""
}

// paramName introduces a parameter in a message.
func paramName(path string) string {
	if path == "" {
		return "parameters"
	}
	return fmt.Sprintf("parameter %q", path)
}

// gotJSON describes a decoded JSON value for "got ..." in messages.
func gotJSON(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case json.Number:
		return "number " + truncate(string(v))
	case string:
		return "string " + strconv.Quote(truncate(v))
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func truncate(s string) string {
	const max = 60
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "…"
}

// decodeError turns a failure of the final decode into an *Error. check
// catches nearly everything first; this is the safety net.
func decodeError(t reflect.Type, err error) *Error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		got := ute.Value
		if got == "bool" {
			got = "boolean"
		}
		return errorf(ute.Field, err, fmt.Sprintf("%s: expected %s, got %s", paramName(ute.Field), describe(ute.Type, false), got))
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if n, uerr := strconv.Unquote(name); uerr == nil {
			name = n
		}
		known := ""
		if isStructType(t) {
			known = "; known parameters: " + quoteList(fieldNames(structFields(deref(t)), ""))
		}
		return errorf(name, err, fmt.Sprintf("unknown parameter %q%s", name, known))
	}
	return errorf("", err, "invalid parameters: "+msg)
}
