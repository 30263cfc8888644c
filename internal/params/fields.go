package params

import (
	"cmp"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// field is one JSON-visible field of a struct type, resolved with the same
// rules encoding/json uses (embedded structs flattened, tags honoured,
// ambiguous names dropped).
type field struct {
	name     string       // JSON object key
	tagged   bool         // name came from a json tag
	index    []int        // reflect index path, through embedded structs
	typ      reflect.Type // field type
	quoted   bool         // `json:",string"` applies
	required bool         // `baton:"required"`
	doc      string       // `doc:"..."`
	tag      reflect.StructTag
}

var fieldCache sync.Map // reflect.Type -> []field

// structFields returns the JSON fields of struct type t in declaration
// order. It is a port of encoding/json's typeFields.
func structFields(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	f, _ := fieldCache.LoadOrStore(t, typeFields(t))
	return f.([]field)
}

func typeFields(t reflect.Type) []field {
	var current []field
	next := []field{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	var fields []field

	for len(next) > 0 {
		current, next = next, current[:0]
		count, nextCount = nextCount, map[reflect.Type]int{}

		for _, f := range current {
			if visited[f.typ] {
				continue
			}
			visited[f.typ] = true
			for i := range f.typ.NumField() {
				sf := f.typ.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !isValidTag(name) {
					name = ""
				}
				index := append(slices.Clone(f.index), i)

				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				quoted := false
				if hasOption(opts, "string") {
					switch ft.Kind() {
					case reflect.Bool,
						reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64,
						reflect.String:
						quoted = true
					}
				}

				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					tagged := name != ""
					if name == "" {
						name = sf.Name
					}
					fields = append(fields, field{
						name:     name,
						tagged:   tagged,
						index:    index,
						typ:      sf.Type,
						quoted:   quoted,
						required: hasOption(sf.Tag.Get("baton"), "required"),
						doc:      sf.Tag.Get("doc"),
						tag:      sf.Tag,
					})
					if count[f.typ] > 1 {
						// Several embedded copies at this depth: add a
						// duplicate so the annihilation below drops it.
						fields = append(fields, fields[len(fields)-1])
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, field{name: ft.Name(), index: index, typ: ft})
				}
			}
		}
	}

	slices.SortFunc(fields, func(a, b field) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.index), len(b.index)); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})

	out := fields[:0]
	for advance, i := 0, 0; i < len(fields); i += advance {
		fi := fields[i]
		for advance = 1; i+advance < len(fields); advance++ {
			if fields[i+advance].name != fi.name {
				break
			}
		}
		if advance == 1 {
			out = append(out, fi)
			continue
		}
		group := fields[i : i+advance]
		if len(group[0].index) == len(group[1].index) && group[0].tagged == group[1].tagged {
			continue // ambiguous: encoding/json ignores the name entirely
		}
		out = append(out, group[0])
	}
	fields = out
	slices.SortFunc(fields, func(a, b field) int { return slices.Compare(a.index, b.index) })
	return fields
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if strings.TrimSpace(o) == want {
			return true
		}
	}
	return false
}

func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// lookupField finds the field a JSON object key decodes into, the way
// encoding/json does: exact name first, then case-insensitively.
func lookupField(fields []field, key string) (field, bool) {
	for _, f := range fields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return field{}, false
}

func fieldNames(fields []field, prefix string) []string {
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		names = append(names, joinPath(prefix, f.name))
	}
	slices.Sort(names)
	return names
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	durationType        = reflect.TypeFor[time.Duration]()
	numberType          = reflect.TypeFor[json.Number]()
	marshalerType       = reflect.TypeFor[json.Marshaler]()
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(iface))
}

// custom reports whether t controls its own JSON decoding, in which case
// only encoding/json itself can judge a value.
func customDecode(t reflect.Type) bool {
	return implements(t, unmarshalerType) || implements(t, textUnmarshalerType)
}

// jsonKind classifies t (after removing pointers) by the JSON type
// encoding/json produces for it: "string", "integer", "number", "boolean",
// "array", "object" or "" for anything (interfaces, custom marshalers,
// unsupported kinds).
func jsonKind(t reflect.Type, quoted bool) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if quoted {
		return "string"
	}
	switch {
	case t == timeType:
		return "string"
	case t == numberType:
		return "number"
	case implements(t, marshalerType):
		return ""
	case implements(t, textMarshalerType):
		return "string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice:
		if isByteSlice(t) {
			return "string"
		}
		return "array"
	case reflect.Array:
		return "array"
	case reflect.Map:
		if validMapKey(t.Key()) {
			return "object"
		}
		return ""
	case reflect.Struct:
		return "object"
	}
	return ""
}

// isByteSlice reports whether encoding/json encodes slice type t as a base64
// string.
func isByteSlice(t reflect.Type) bool {
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(t.Elem())
	return !p.Implements(marshalerType) && !p.Implements(textMarshalerType)
}

func validMapKey(k reflect.Type) bool {
	switch k.Kind() {
	case reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return k.Implements(textMarshalerType)
}

// describe names t for error messages: "integer", "string (date-time)",
// "array of integer", ...
func describe(t reflect.Type, quoted bool) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k := jsonKind(t, quoted)
	switch {
	case quoted:
		return "string containing " + describe(t, false)
	case t == timeType:
		return "string (RFC 3339 date-time)"
	case t == durationType:
		return "integer (nanoseconds)"
	case k == "string" && isByteSlice(t):
		return "string (base64)"
	case k == "array" && jsonKind(t.Elem(), false) != "":
		return "array of " + describe(t.Elem(), false)
	case k == "":
		return "JSON value"
	}
	return k
}
