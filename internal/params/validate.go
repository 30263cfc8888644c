package params

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Validator checks parameter documents against a flow's parameter schema,
// the JSON Schema that Schema derives from the Go type. It is the one
// validation path of every surface: Build runs it on the merged parameters
// of the command line, and the API server runs it (through Resolve) on the
// parameters of a run created over HTTP with the schema a worker
// registered, so the same defect gets the same message everywhere.
//
// It follows encoding/json, which will decode the parameters in the end,
// rather than the letter of JSON Schema: null is accepted for any
// parameter that is not required (it leaves the Go value untouched),
// object keys match property names case-insensitively when no exact match
// exists, numbers must fit the Go kind named by "format", and a fixed-size
// array ignores extra elements. The keywords it understands are those
// Schema produces ("type", "properties", "required",
// "additionalProperties", "items", "maxItems", "anyOf", "$ref" into
// "$defs", "format", "contentEncoding", "propertyNames" with "pattern");
// others are ignored.
type Validator struct {
	root map[string]any
	std  *Checker // the whole schema, for the keywords check leaves to it
}

// maxRefHops bounds how many "$ref"/"anyOf" indirections are followed at one
// place of a document, so a schema that refers to itself cannot loop.
const maxRefHops = 32

// NewValidator returns a Validator for schema, either as Schema returns it
// or as decoded from JSON (a worker's registration).
func NewValidator(schema map[string]any) (*Validator, error) {
	raw, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("parameter schema: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("parameter schema: %w", err)
	}
	if root == nil {
		root = map[string]any{}
	}
	// A schema that does not compile (a worker may register anything) is
	// checked by the first pass alone, which accepts what it cannot follow.
	std, _ := NewChecker(schema)
	return &Validator{root: root, std: std}, nil
}

// checkAll validates a parsed document: first in the words Build has always
// used for what encoding/json would refuse (types, Go ranges, unknown and
// missing parameters: the first problem), then against the whole schema
// with the JSON Schema validator (ValidateValue's), which lists every
// violation of the other keywords (bounds, lengths, patterns, enums from
// jsonschema tags) with its JSON pointer. The document the second pass
// sees is the one encoding/json will decode: keys matched to their
// properties, null members (which leave the Go value untouched) and the
// elements past a fixed-size array's length left out.
func (v *Validator) checkAll(tree any) *Error {
	if perr := v.check(v.root, tree, ""); perr != nil {
		return perr
	}
	if v.std == nil || tree == nil {
		return nil // null leaves the Go value untouched
	}
	if ve := v.std.Check(v.decoded(v.root, v.merge(v.root, nil, tree), 0)); ve != nil {
		return schemaError(ve)
	}
	return nil
}

// decoded returns node as encoding/json will decode it against schema s
// (see checkAll).
func (v *Validator) decoded(s map[string]any, node any, depth int) any {
	if depth > 256 {
		return node
	}
	s = v.branch(s)
	switch n := node.(type) {
	case map[string]any:
		ps := props(s)
		ap, _ := s["additionalProperties"].(map[string]any)
		out := make(map[string]any, len(n))
		for k, e := range n {
			if e == nil {
				continue
			}
			var es map[string]any
			if ps != nil {
				if _, pschema, ok := lookupProp(ps, k); ok {
					es = pschema
				}
			}
			if es == nil {
				es = ap
			}
			out[k] = v.decoded(es, e, depth+1)
		}
		return out
	case []any:
		// A fixed-size array (minItems = maxItems, as Schema describes
		// Go arrays) ignores extra elements.
		if max, ok := s["maxItems"].(json.Number); ok && s["minItems"] == max {
			if m, err := strconv.Atoi(string(max)); err == nil && m >= 0 && m < len(n) {
				n = n[:m]
			}
		}
		items, _ := s["items"].(map[string]any)
		out := make([]any, len(n))
		for i, e := range n {
			out[i] = v.decoded(items, e, depth+1)
		}
		return out
	}
	return node
}

// Validate checks the JSON document doc against the schema. Every error is
// an *Error naming the parameter.
func (v *Validator) Validate(doc json.RawMessage) error {
	tree, err := parseJSON(doc, "parameters")
	if err != nil {
		return err
	}
	if perr := v.checkAll(tree); perr != nil {
		return perr
	}
	return nil
}

// Resolve assembles the parameters of a run created through the API: given
// (a JSON document; empty or null for none) is merged over defaults (the
// JSON encoding of the flow's default value) exactly as Build merges
// --params, required parameters whose default is a zero value count as
// missing, and the result is validated. flow names the flow in messages.
// It returns the merged document; every error is an *Error.
func (v *Validator) Resolve(flow string, defaults, given json.RawMessage) (json.RawMessage, error) {
	return v.resolve(flow, defaults, "flow defaults", given)
}

// Edit assembles the parameters of a retry that edits a run's, as Resolve
// does with the run's recorded parameters in place of the defaults: given
// is merged over recorded, whose values all count (a required parameter
// recorded with its zero value stays set), and the result is validated.
func (v *Validator) Edit(flow string, recorded, given json.RawMessage) (json.RawMessage, error) {
	return v.resolve(flow, recorded, "", given)
}

// resolve merges given over base and validates the result. base is the
// flow's defaults when baseSource names them (required parameters whose
// default is a zero value then count as missing), else a run's parameters.
func (v *Validator) resolve(flow string, base json.RawMessage, baseSource string, given json.RawMessage) (json.RawMessage, error) {
	root := v.deref(v.root)
	object := schemaIsObject(root) && !schemaAllows(root, "null")
	var tree any
	if len(bytes.TrimSpace(base)) > 0 {
		src := baseSource
		if src == "" {
			src = "recorded parameters"
		}
		d, err := parseJSON(base, src)
		if err != nil {
			return nil, err
		}
		if baseSource != "" {
			d = v.pruneZeroRequired(v.root, d)
		}
		tree = v.merge(v.root, nil, d)
	} else if object {
		tree = map[string]any{}
	}
	if g := bytes.TrimSpace(given); len(g) > 0 && !bytes.Equal(g, []byte("null")) {
		p, err := parseJSON(given, "parameters")
		if err != nil {
			return nil, err
		}
		if schemaIsObject(root) {
			if _, isObj := p.(map[string]any); !isObj {
				return nil, errorf("", nil, fmt.Sprintf("parameters: expected a JSON object with the parameters of flow %s, got %s", flow, gotJSON(p)))
			}
		}
		tree = v.merge(v.root, tree, p)
	}
	if perr := v.checkAll(tree); perr != nil {
		return nil, perr
	}
	out, err := json.Marshal(tree)
	if err != nil {
		return nil, errorf("", err, "parameters: "+err.Error())
	}
	return out, nil
}

// CheckJSON reports whether data is one JSON document, with the line and
// column of a syntax error, as Build reports --params. source introduces
// the message ("--params").
func CheckJSON(data []byte, source string) error {
	if _, err := parseJSON(data, source); err != nil {
		return err
	}
	return nil
}

// deref follows "$ref" into the root's "$defs" (or any "#/..." pointer).
// It returns an empty schema (anything goes) when the reference cannot be
// followed.
func (v *Validator) deref(s map[string]any) map[string]any {
	for range maxRefHops {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		s = v.lookup(ref)
	}
	return map[string]any{}
}

func (v *Validator) lookup(ref string) map[string]any {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return map[string]any{}
	}
	var cur any = v.root
	for _, seg := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if seg == "" {
			continue
		}
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return map[string]any{}
		}
		cur = m[seg]
	}
	m, _ := cur.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

// branch resolves s to the schema a non-null value is checked against:
// "$ref" followed, and of an "anyOf" whose other branches only allow null
// (how Schema describes a nullable recursive type), the remaining branch.
// A real choice between several branches is returned as is.
func (v *Validator) branch(s map[string]any) map[string]any {
	for range maxRefHops {
		s = v.deref(s)
		alts, ok := s["anyOf"].([]any)
		if !ok {
			return s
		}
		var keep []map[string]any
		for _, a := range alts {
			am, _ := a.(map[string]any)
			if am == nil {
				continue
			}
			if t, _ := am["type"].(string); t == "null" && len(am) == 1 {
				continue
			}
			keep = append(keep, am)
		}
		if len(keep) != 1 {
			return s
		}
		s = keep[0]
	}
	return map[string]any{}
}

// schemaTypes returns the JSON types s allows, without "null"; nil means
// any.
func schemaTypes(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		if t == "null" {
			return []string{}
		}
		return []string{t}
	case []any:
		out := []string{}
		for _, e := range t {
			if e, ok := e.(string); ok && e != "null" {
				out = append(out, e)
			}
		}
		return out
	}
	return nil
}

func schemaAllows(s map[string]any, typ string) bool {
	switch t := s["type"].(type) {
	case string:
		return t == typ
	case []any:
		for _, e := range t {
			if e == typ {
				return true
			}
		}
	}
	return false
}

func schemaIsObject(s map[string]any) bool {
	ts := schemaTypes(s)
	return len(ts) == 1 && ts[0] == "object"
}

func props(s map[string]any) map[string]any {
	p, _ := s["properties"].(map[string]any)
	return p
}

func requiredSet(s map[string]any) map[string]bool {
	out := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, n := range r {
			if n, ok := n.(string); ok {
				out[n] = true
			}
		}
	}
	return out
}

// lookupProp finds the property a JSON object key decodes into, the way
// encoding/json does: exact name first, then case-insensitively.
func lookupProp(ps map[string]any, key string) (string, map[string]any, bool) {
	if p, ok := ps[key]; ok {
		pm, _ := p.(map[string]any)
		return key, pm, true
	}
	for _, name := range slices.Sorted(maps.Keys(ps)) {
		if strings.EqualFold(name, key) {
			pm, _ := ps[name].(map[string]any)
			return name, pm, true
		}
	}
	return "", nil, false
}

// merge overlays over onto base as Build's merge does, with the schema in
// place of the Go type.
func (v *Validator) merge(s map[string]any, base, over any) any {
	ov, ok := over.(map[string]any)
	if !ok {
		return over
	}
	s = v.branch(s)
	ps := props(s)
	ap, _ := s["additionalProperties"].(map[string]any)
	if !schemaIsObject(s) || (ps == nil && ap == nil) {
		return over
	}
	out := map[string]any{}
	if bv, ok := base.(map[string]any); ok {
		out = maps.Clone(bv)
	}
	keys := slices.Sorted(maps.Keys(ov))
	exact := func(k string) bool { _, ok := ps[k]; return ok }
	slices.SortStableFunc(keys, func(a, b string) int { return boolCmp(exact(a), exact(b)) })
	for _, k := range keys {
		if ps != nil {
			if name, pschema, ok := lookupProp(ps, k); ok {
				out[name] = v.merge(pschema, out[name], ov[k])
				continue
			}
			out[k] = ov[k] // unknown: kept for validation to report
			continue
		}
		out[k] = v.merge(ap, out[k], ov[k])
	}
	return out
}

// pruneZeroRequired removes from a defaults tree the required properties
// whose default is the zero value of their type, so that they still count
// as missing unless the user sets them (Go cannot tell a deliberate zero
// default from no default at all).
func (v *Validator) pruneZeroRequired(s map[string]any, node any) any {
	obj, ok := node.(map[string]any)
	if !ok {
		return node
	}
	s = v.branch(s)
	ps := props(s)
	if ps == nil {
		return node
	}
	req := requiredSet(s)
	for _, name := range slices.Sorted(maps.Keys(ps)) {
		k, val, found := findKey(obj, name)
		if !found {
			continue
		}
		pschema, _ := ps[name].(map[string]any)
		if req[name] && v.isZero(pschema, val, 0) {
			delete(obj, k)
			continue
		}
		obj[k] = v.pruneZeroRequired(pschema, val)
	}
	return obj
}

// isZero reports whether val is the JSON encoding of the zero value of the
// Go type that s describes.
func (v *Validator) isZero(s map[string]any, val any, depth int) bool {
	if val == nil {
		return true
	}
	if depth > 64 {
		return false
	}
	if schemaAllows(s, "null") {
		return false // a non-nil pointer, slice or map
	}
	s = v.branch(s)
	if schemaAllows(s, "null") {
		return false
	}
	switch val := val.(type) {
	case bool:
		return !val
	case json.Number:
		f, err := strconv.ParseFloat(string(val), 64)
		return err == nil && f == 0
	case string:
		if inner, quoted := s[quotedKeyword].(map[string]any); quoted {
			in, err := parseJSON([]byte(val), "")
			return err == nil && v.isZero(inner, in, depth+1)
		}
		if s["format"] == "date-time" {
			var t time.Time
			return json.Unmarshal(strconv.AppendQuote(nil, val), &t) == nil && t.IsZero()
		}
		return val == "" && schemaTypes(s) != nil
	case []any:
		if s["maxItems"] == nil {
			return false
		}
		items, _ := s["items"].(map[string]any)
		for _, e := range val {
			if !v.isZero(items, e, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		ps := props(s)
		if ps == nil {
			return false
		}
		for k, e := range val {
			_, pschema, ok := lookupProp(ps, k)
			if !ok || !v.isZero(pschema, e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// kindTypes maps the "format" of number schemas to the Go kind whose range
// applies.
var kindTypes = map[string]reflect.Type{
	"int": reflect.TypeFor[int](), "int8": reflect.TypeFor[int8](), "int16": reflect.TypeFor[int16](),
	"int32": reflect.TypeFor[int32](), "int64": reflect.TypeFor[int64](),
	"uint": reflect.TypeFor[uint](), "uint8": reflect.TypeFor[uint8](), "uint16": reflect.TypeFor[uint16](),
	"uint32": reflect.TypeFor[uint32](), "uint64": reflect.TypeFor[uint64](), "uintptr": reflect.TypeFor[uintptr](),
	"float32": reflect.TypeFor[float32](), "float64": reflect.TypeFor[float64](),
}

// treeKind is the JSON type of a parsed value, as JSON Schema names it.
func treeKind(node any) string {
	switch node.(type) {
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

// check validates node against s, reporting the first problem with its
// path, in the words Build has always used.
func (v *Validator) check(s map[string]any, node any, path string) *Error {
	if node == nil {
		return nil // null leaves the Go value untouched
	}
	s = v.branch(s)
	if alts, ok := s["anyOf"].([]any); ok {
		var first *Error
		for _, a := range alts {
			am, _ := a.(map[string]any)
			if am == nil {
				continue
			}
			err := v.check(am, node, path)
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
	}
	types := schemaTypes(s)
	if types == nil {
		return nil // any JSON value
	}
	mismatch := func() *Error {
		return errorf(path, nil, fmt.Sprintf("%s: expected %s, got %s", paramName(path), v.describe(s, 0), gotJSON(node)))
	}
	kind := treeKind(node)
	if kind == "number" && !slices.Contains(types, "number") {
		kind = "integer"
	}
	if !slices.Contains(types, kind) {
		return mismatch()
	}
	switch node := node.(type) {
	case json.Number:
		t := kindTypes["float64"]
		if kind == "integer" {
			t = kindTypes["int64"]
			if m, ok := s["minimum"].(json.Number); ok && m == "0" {
				t = kindTypes["uint64"]
			}
		}
		if f, _ := s["format"].(string); kindTypes[f] != nil && (kind == "integer") == (kindTypes[f].Kind() < reflect.Float32) {
			t = kindTypes[f]
		}
		if msg := numberProblem(string(node), t); msg != "" {
			return errorf(path, nil, fmt.Sprintf("%s: %s", paramName(path), msg))
		}
	case string:
		if inner, ok := s[quotedKeyword].(map[string]any); ok {
			if !v.quotedOK(inner, node) {
				return errorf(path, nil, fmt.Sprintf("%s: expected %s, got %s", paramName(path), v.describe(s, 0), gotJSON(node)))
			}
			return nil
		}
		if s["format"] == "date-time" {
			var t time.Time
			if err := json.Unmarshal(strconv.AppendQuote(nil, node), &t); err != nil {
				return errorf(path, err, fmt.Sprintf("%s: expected %s, got %s", paramName(path), v.describe(s, 0), gotJSON(node)))
			}
		}
		if s["contentEncoding"] == "base64" {
			if _, err := base64.StdEncoding.DecodeString(node); err != nil {
				return errorf(path, err, fmt.Sprintf("%s: expected %s, got %s (%v)", paramName(path), v.describe(s, 0), gotJSON(node), err))
			}
		}
	case []any:
		items, _ := s["items"].(map[string]any)
		if items == nil {
			return nil
		}
		if n, ok := s["maxItems"].(json.Number); ok {
			if m, err := strconv.Atoi(string(n)); err == nil && m >= 0 && m < len(node) {
				node = node[:m] // encoding/json ignores the rest of a fixed-size array
			}
		}
		for i, e := range node {
			if err := v.check(items, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case map[string]any:
		return v.checkObject(s, node, path)
	}
	return nil
}

func (v *Validator) checkObject(s map[string]any, obj map[string]any, path string) *Error {
	ps := props(s)
	ap, _ := s["additionalProperties"].(map[string]any)
	closed := s["additionalProperties"] == false
	var pattern *regexp.Regexp
	if pn, ok := s["propertyNames"].(map[string]any); ok {
		if p, ok := pn["pattern"].(string); ok {
			pattern, _ = regexp.Compile(p)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		kp := joinPath(path, k)
		if ps != nil {
			if _, _, ok := lookupProp(ps, k); ok {
				continue
			}
		}
		if closed {
			names := make([]string, 0, len(ps))
			for name := range ps {
				names = append(names, joinPath(path, name))
			}
			slices.Sort(names)
			return errorf(kp, nil, fmt.Sprintf("unknown parameter %q; known parameters: %s", kp, quoteList(names)))
		}
		if pattern != nil && !pattern.MatchString(k) {
			return errorf(kp, nil, fmt.Sprintf("%s: map key %q is not a valid integer", paramName(kp), k))
		}
		if ap != nil {
			if err := v.check(ap, obj[k], kp); err != nil {
				return err
			}
		}
	}
	req := requiredSet(s)
	for _, name := range slices.Sorted(maps.Keys(ps)) {
		pschema, _ := ps[name].(map[string]any)
		fp := joinPath(path, name)
		_, val, found := findKey(obj, name)
		if req[name] && val == nil {
			return errorf(fp, nil, fmt.Sprintf("missing required parameter %q (%s)", fp, v.describe(pschema, 0)))
		}
		if !found {
			continue
		}
		if err := v.check(pschema, val, fp); err != nil {
			return err
		}
	}
	return nil
}

// describe names what s accepts, in the words of describe for Go types:
// "integer", "string (RFC 3339 date-time)", "array of integer", ...
func (v *Validator) describe(s map[string]any, depth int) string {
	if depth > 8 {
		return "JSON value"
	}
	s = v.branch(s)
	if alts, ok := s["anyOf"].([]any); ok {
		var parts []string
		for _, a := range alts {
			if am, ok := a.(map[string]any); ok {
				if t, _ := am["type"].(string); t == "null" && len(am) == 1 {
					continue
				}
				parts = append(parts, v.describe(am, depth+1))
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, " or ")
		}
	}
	types := schemaTypes(s)
	if len(types) == 0 {
		return "JSON value"
	}
	k := types[0]
	inner, quoted := s[quotedKeyword].(map[string]any)
	switch {
	case quoted:
		return "string containing " + v.describe(inner, depth+1)
	case s[goTypeKeyword] == "time.Duration":
		return "integer (nanoseconds)"
	case k == "string" && s["format"] == "date-time":
		return "string (RFC 3339 date-time)"
	case k == "string" && s["contentEncoding"] == "base64":
		return "string (base64)"
	case k == "array":
		if items, ok := s["items"].(map[string]any); ok {
			if d := v.describe(items, depth+1); d != "JSON value" {
				return "array of " + d
			}
		}
	}
	return k
}

var validatorCache sync.Map // reflect.Type -> *Validator

// validatorFor returns the Validator of Schema(t).
func validatorFor(t reflect.Type) *Validator {
	if v, ok := validatorCache.Load(t); ok {
		return v.(*Validator)
	}
	v, err := NewValidator(Schema(t))
	if err != nil {
		v = &Validator{root: map[string]any{}} // cannot happen: Schema encodes
	}
	actual, _ := validatorCache.LoadOrStore(t, v)
	return actual.(*Validator)
}

// quotedOK reports whether the string of a `json:",string"` field holds a
// value that inner accepts, as encoding/json reads it: a JSON scalar (for a
// string field, a JSON-quoted string).
func (v *Validator) quotedOK(inner map[string]any, text string) bool {
	tree, err := parseJSON([]byte(text), "")
	if err != nil {
		return false
	}
	switch tree.(type) {
	case nil:
		return true
	case map[string]any, []any:
		return false
	}
	if k := treeKind(tree); k == "string" && !schemaAllows(v.branch(inner), "string") {
		return false
	}
	return v.check(inner, tree, "") == nil
}

// Explain validates the JSON parameters raw of a flow whose parameter type
// is t, as Build does, and returns the first problem (an *Error) or nil.
// It is for saying why parameters recorded without validation do not
// decode.
func Explain(t reflect.Type, raw json.RawMessage) error {
	tree, err := parseJSON(raw, "parameters")
	if err != nil {
		return err
	}
	if perr := validatorFor(t).checkAll(tree); perr != nil {
		return perr
	}
	if perr := check(tree, t, false, ""); perr != nil {
		return perr
	}
	return nil
}

// SameJSON reports whether two JSON documents hold the same value (absent
// counts as null; numbers compare by their text).
func SameJSON(a, b json.RawMessage) bool {
	parse := func(raw json.RawMessage) (any, bool) {
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil, true
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		return v, dec.Decode(&v) == nil
	}
	va, oka := parse(a)
	vb, okb := parse(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}
