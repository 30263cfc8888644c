package params

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

type buildInner struct {
	Host string `json:"host" baton:"required"`
	Port int    `json:"port,omitempty"`
}

type BuildBase struct {
	Region string `json:"region,omitempty"`
}

type buildParams struct {
	BuildBase
	Name   string            `json:"name" baton:"required"`
	N      int               `json:"n,omitempty"`
	Big    int64             `json:"big,omitempty"`
	Ratio  float64           `json:"ratio,omitempty"`
	OK     bool              `json:"ok,omitempty"`
	Tags   []string          `json:"tags,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	DB     *buildInner       `json:"db,omitempty"`
	Nick   *string           `json:"nick,omitempty"`
	Wait   time.Duration     `json:"wait,omitempty"`
	When   time.Time         `json:"when,omitzero"`
	Small  int8              `json:"small,omitempty"`
	Count  uint              `json:"count,omitempty"`
	Data   []byte            `json:"data,omitempty"`
	Extra  any               `json:"extra,omitempty"`
	Hidden string            `json:"-"`
	Q      int               `json:"q,omitempty,string"`
	Dotted string            `json:"a.b,omitempty"`
	Grid   [2]int            `json:"grid,omitzero"`
}

const buildKnown = "a.b, big, count, data, db, extra, grid, labels, n, name, nick, ok, q, ratio, region, small, tags, wait, when"

type plainParams struct {
	A int    `json:"a"`
	B string `json:"b"`
}

func TestBuild(t *testing.T) {
	t.Parallel()
	bp := reflect.TypeFor[buildParams]()
	tests := []struct {
		name     string
		typ      reflect.Type
		defaults string
		params   string
		kv       []string
		want     string // normalized JSON, compared byte for byte
		wantErr  string // exact message
	}{
		// Sources and precedence.
		{name: "zero value when nothing is given", typ: reflect.TypeFor[plainParams](), want: `{"a":0,"b":""}`},
		{name: "defaults only", typ: bp, defaults: `{"name":"d","n":1}`, want: `{"name":"d","n":1}`},
		{name: "params over nil defaults", typ: bp, params: `{"name":"p"}`, want: `{"name":"p"}`},
		{name: "params merge key by key over defaults", typ: bp, defaults: `{"name":"d","n":1,"ok":true}`, params: `{"n":2}`, want: `{"name":"d","n":2,"ok":true}`},
		{name: "params deep merge nested objects", typ: bp, defaults: `{"name":"d","db":{"host":"h","port":1}}`, params: `{"db":{"port":2}}`, want: `{"name":"d","db":{"host":"h","port":2}}`},
		{name: "params deep merge maps", typ: bp, defaults: `{"name":"d","labels":{"a":"1","b":"2"}}`, params: `{"labels":{"b":"3","c":"4"}}`, want: `{"name":"d","labels":{"a":"1","b":"3","c":"4"}}`},
		{name: "params replace arrays", typ: bp, defaults: `{"name":"d","tags":["x","y"]}`, params: `{"tags":["z"]}`, want: `{"name":"d","tags":["z"]}`},
		{name: "params null resets a pointer", typ: bp, defaults: `{"name":"d","db":{"host":"h"}}`, params: `{"db":null}`, want: `{"name":"d"}`},
		{name: "params key matched case-insensitively overrides default", typ: bp, defaults: `{"name":"d"}`, params: `{"NAME":"p"}`, want: `{"name":"p"}`},
		{name: "exact key beats folded key", typ: bp, params: `{"NAME":"folded","name":"exact"}`, want: `{"name":"exact"}`},
		{name: "kv over params over defaults", typ: bp, defaults: `{"name":"d","n":1}`, params: `{"n":2}`, kv: []string{"n=3"}, want: `{"name":"d","n":3}`},
		{name: "later kv wins", typ: bp, kv: []string{"name=a", "name=b"}, want: `{"name":"b"}`},
		{name: "empty params string means none", typ: bp, defaults: `{"name":"d"}`, params: "  \n", want: `{"name":"d"}`},
		{name: "output is normalized", typ: bp, params: "{ \"ok\": true,\n \"name\" : \"<x>\", \"ratio\": 1.50 }", want: `{"name":"\u003cx\u003e","ratio":1.5,"ok":true}`},
		{name: "large integers keep precision", typ: bp, params: `{"name":"x","big":9007199254740993}`, kv: []string{"big=9223372036854775807"}, want: `{"name":"x","big":9223372036854775807}`},
		{name: "ignored json:- field is not settable", typ: bp, params: `{"name":"x"}`, kv: []string{"Hidden=1"}, wantErr: `--param Hidden: unknown parameter; known parameters: ` + buildKnown},

		// kv value interpretation.
		{name: "kv string unquoted", typ: bp, kv: []string{"name=foo bar"}, want: `{"name":"foo bar"}`},
		{name: "kv string JSON-quoted", typ: bp, kv: []string{`name="foo"`}, want: `{"name":"foo"}`},
		{name: "kv string with escapes", typ: bp, kv: []string{`name="a\"b"`}, want: `{"name":"a\"b"}`},
		{name: "kv string that looks like a number", typ: bp, kv: []string{"name=5"}, want: `{"name":"5"}`},
		{name: "kv string that looks like JSON", typ: bp, kv: []string{"name={\"a\":1}"}, want: `{"name":"{\"a\":1}"}`},
		{name: "kv empty string", typ: bp, kv: []string{"name="}, want: `{"name":""}`},
		{name: "kv value containing =", typ: bp, kv: []string{"name=a=b"}, want: `{"name":"a=b"}`},
		{name: "kv key spaces trimmed", typ: bp, kv: []string{" name =x"}, want: `{"name":"x"}`},
		{name: "kv int bool float", typ: bp, kv: []string{"name=x", "n=5", "ok=true", "ratio=2.5", "count=7"}, want: `{"name":"x","n":5,"ratio":2.5,"ok":true,"count":7}`},
		{name: "kv array", typ: bp, kv: []string{"name=x", `tags=["a","b"]`}, want: `{"name":"x","tags":["a","b"]}`},
		{name: "kv array element", typ: bp, params: `{"name":"x","tags":["a","b"]}`, kv: []string{"tags.1=c"}, want: `{"name":"x","tags":["a","c"]}`},
		{name: "kv array append", typ: bp, params: `{"name":"x","tags":["a"]}`, kv: []string{"tags.1=b", "tags.2=c"}, want: `{"name":"x","tags":["a","b","c"]}`},
		{name: "kv fixed array element", typ: bp, kv: []string{"name=x", "grid.0=1", "grid.1=2"}, want: `{"name":"x","grid":[1,2]}`},
		{name: "kv nested field creates object", typ: bp, kv: []string{"name=x", "db.host=h", "db.port=5432"}, want: `{"name":"x","db":{"host":"h","port":5432}}`},
		{name: "kv nested field merges with defaults", typ: bp, defaults: `{"name":"x","db":{"host":"h","port":1}}`, kv: []string{"db.port=2"}, want: `{"name":"x","db":{"host":"h","port":2}}`},
		{name: "kv whole object", typ: bp, kv: []string{"name=x", `db={"host":"h"}`}, want: `{"name":"x","db":{"host":"h"}}`},
		{name: "kv map entry", typ: bp, kv: []string{"name=x", "labels.env=prod"}, want: `{"name":"x","labels":{"env":"prod"}}`},
		{name: "kv map key with dots", typ: bp, kv: []string{"name=x", "labels.app.kubernetes.io/name=web"}, want: `{"name":"x","labels":{"app.kubernetes.io/name":"web"}}`},
		{name: "kv field name with dot", typ: bp, kv: []string{"name=x", "a.b=y"}, want: `{"name":"x","a.b":"y"}`},
		{name: "kv embedded field", typ: bp, kv: []string{"name=x", "region=eu"}, want: `{"region":"eu","name":"x"}`},
		{name: "kv key case-insensitive", typ: bp, defaults: `{"name":"d"}`, kv: []string{"Name=x", "REGION=eu"}, want: `{"region":"eu","name":"x"}`},
		{name: "kv pointer", typ: bp, kv: []string{"name=x", "nick=bob"}, want: `{"name":"x","nick":"bob"}`},
		{name: "kv pointer null", typ: bp, params: `{"name":"x","nick":"bob"}`, kv: []string{"nick=null"}, want: `{"name":"x"}`},
		{name: "kv quoted null string for pointer", typ: bp, kv: []string{"name=x", `nick="null"`}, want: `{"name":"x","nick":"null"}`},
		{name: "kv null is a string for non-pointer strings", typ: bp, kv: []string{"name=null"}, want: `{"name":"null"}`},
		{name: "kv duration syntax", typ: bp, kv: []string{"name=x", "wait=1m30s"}, want: `{"name":"x","wait":90000000000}`},
		{name: "kv duration nanoseconds", typ: bp, kv: []string{"name=x", "wait=1000"}, want: `{"name":"x","wait":1000}`},
		{name: "kv time", typ: bp, kv: []string{"name=x", "when=2024-01-02T03:04:05Z"}, want: `{"name":"x","when":"2024-01-02T03:04:05Z"}`},
		{name: "kv bytes", typ: bp, kv: []string{"name=x", "data=aGk="}, want: `{"name":"x","data":"aGk="}`},
		{name: "kv any JSON", typ: bp, kv: []string{"name=x", `extra={"a":[1,true]}`}, want: `{"name":"x","extra":{"a":[1,true]}}`},
		{name: "kv any text", typ: bp, kv: []string{"name=x", "extra=hello world"}, want: `{"name":"x","extra":"hello world"}`},
		{name: "kv any nested", typ: bp, kv: []string{"name=x", "extra.a.b=1"}, want: `{"name":"x","extra":{"a":{"b":1}}}`},
		{name: "kv string option", typ: bp, kv: []string{"name=x", "q=7"}, want: `{"name":"x","q":"7"}`},
		{name: "params string option", typ: bp, params: `{"name":"x","q":"8"}`, want: `{"name":"x","q":"8"}`},

		// --params syntax and shape errors.
		{name: "invalid JSON position", typ: bp, params: `{"nn": [1, }`, wantErr: `--params: invalid JSON at line 1, column 12: invalid character '}' looking for beginning of value`},
		{name: "invalid JSON second line", typ: bp, params: "{\"name\": \"x\",\n  \"n\": tru }", wantErr: `--params: invalid JSON at line 2, column 11: invalid character ' ' in literal true (expecting 'e')`},
		{name: "invalid JSON columns count characters", typ: bp, params: `{"name": "é", x}`, wantErr: `--params: invalid JSON at line 1, column 15: invalid character 'x' looking for beginning of object key string`},
		{name: "invalid JSON truncated", typ: bp, params: `{"name": "x"`, wantErr: `--params: invalid JSON at line 1, column 13: unexpected end of JSON input`},
		{name: "invalid JSON trailing data", typ: bp, params: `{} {}`, wantErr: `--params: invalid JSON at line 1, column 4: invalid character '{' after top-level value`},
		{name: "params not an object", typ: bp, params: `[1]`, wantErr: `--params: expected a JSON object with the parameters of params.buildParams, got array`},
		{name: "params null for struct", typ: bp, params: `null`, wantErr: `--params: expected a JSON object with the parameters of params.buildParams, got null`},
		{name: "invalid defaults", typ: bp, defaults: `{"name":`, wantErr: `flow defaults: invalid JSON at line 1, column 9: unexpected end of JSON input`},

		// kv syntax errors.
		{name: "kv missing =", typ: bp, kv: []string{"foo"}, wantErr: `--param "foo": expected key=value`},
		{name: "kv empty key", typ: bp, kv: []string{"=5"}, wantErr: `--param "=5": expected key=value`},
		{name: "kv blank key", typ: bp, kv: []string{"  =5"}, wantErr: `--param "  =5": expected key=value`},
		{name: "kv empty segment", typ: bp, kv: []string{"db..host=x"}, wantErr: `--param "db..host=x": invalid key "db..host": empty name between dots`},
		{name: "kv unknown key", typ: bp, kv: []string{"bogus=1"}, wantErr: `--param bogus: unknown parameter; known parameters: ` + buildKnown},
		{name: "kv unknown nested key", typ: bp, kv: []string{"db.bogus=1"}, wantErr: `--param db.bogus: unknown parameter; known parameters: db.host, db.port`},
		{name: "kv not an integer", typ: bp, kv: []string{"n=abc"}, wantErr: `--param n: "abc" is not a valid integer`},
		{name: "kv fractional integer", typ: bp, kv: []string{"n=1.5"}, wantErr: `--param n: "1.5" is not a valid integer`},
		{name: "kv empty integer", typ: bp, kv: []string{"n="}, wantErr: `--param n: "" is not a valid integer`},
		{name: "kv integer of wrong JSON type", typ: bp, kv: []string{"n=true"}, wantErr: `--param n: "true" is not a valid integer`},
		{name: "kv integer out of range", typ: bp, kv: []string{"small=300"}, wantErr: `--param small: "300" is out of range for int8`},
		{name: "kv negative unsigned", typ: bp, kv: []string{"count=-1"}, wantErr: `--param count: "-1" is out of range for uint`},
		{name: "kv not a boolean", typ: bp, kv: []string{"ok=yes"}, wantErr: `--param ok: "yes" is not a valid boolean`},
		{name: "kv not a number", typ: bp, kv: []string{"ratio=x"}, wantErr: `--param ratio: "x" is not a valid number`},
		{name: "kv not an array", typ: bp, kv: []string{"tags=a,b"}, wantErr: `--param tags: "a,b" is not a valid array of string`},
		{name: "kv JSON of wrong type for array", typ: bp, kv: []string{`tags={"a":1}`}, wantErr: `--param tags: "{\"a\":1}" is not a valid array of string`},
		{name: "kv not an object", typ: bp, kv: []string{"db=5"}, wantErr: `--param db: "5" is not a valid object`},
		{name: "kv bad duration", typ: bp, kv: []string{"wait=forever"}, wantErr: `--param wait: "forever" is not a valid duration (such as 1m30s, or an integer of nanoseconds)`},
		{name: "kv bad duration banana", typ: bp, kv: []string{"wait=banana"}, wantErr: `--param wait: "banana" is not a valid duration (such as 1m30s, or an integer of nanoseconds)`},
		{name: "kv duration of wrong JSON type", typ: bp, kv: []string{"wait=true"}, wantErr: `--param wait: "true" is not a valid duration (such as 1m30s, or an integer of nanoseconds)`},
		{name: "kv fractional duration", typ: bp, kv: []string{"wait=1.5"}, wantErr: `--param wait: "1.5" is not a valid duration (such as 1m30s, or an integer of nanoseconds)`},
		{name: "kv bad time", typ: bp, kv: []string{"when=yesterday"}, wantErr: `--param when: "yesterday" is not a valid string (RFC 3339 date-time)`},
		{name: "kv bad base64", typ: bp, kv: []string{"data=!!"}, wantErr: `--param data: "!!" is not a valid string (base64)`},
		{name: "kv bad string option", typ: bp, kv: []string{"q=x"}, wantErr: `--param q: "x" is not a valid string containing integer`},
		{name: "kv through a scalar", typ: bp, kv: []string{"name.x=1"}, wantErr: `--param name.x: parameter "name" is a(n) string and has no field "x"`},
		{name: "kv bad index", typ: bp, kv: []string{"tags.x=1"}, wantErr: `--param tags.x: "x" is not a valid index into array parameter "tags"`},
		{name: "kv index out of range", typ: bp, params: `{"tags":["a"]}`, kv: []string{"tags.5=x"}, wantErr: `--param tags.5: index 5 is out of range for parameter "tags" (it has 1 elements; use index 1 to append)`},
		{name: "kv fixed array index out of range", typ: bp, kv: []string{"grid.2=1"}, wantErr: `--param grid.2: index 2 is out of range for parameter "grid" (it has 0 elements; use index 0 to append)`},

		// Validation of the merged document.
		{name: "unknown parameter", typ: bp, params: `{"name":"x","bogus":1}`, wantErr: `unknown parameter "bogus"; known parameters: ` + buildKnown},
		{name: "unknown parameter from defaults", typ: reflect.TypeFor[plainParams](), defaults: `{"a":1,"zz":2}`, wantErr: `unknown parameter "zz"; known parameters: a, b`},
		{name: "unknown nested parameter", typ: bp, params: `{"name":"x","db":{"host":"h","bogus":1}}`, wantErr: `unknown parameter "db.bogus"; known parameters: db.host, db.port`},
		{name: "wrong type string for int", typ: bp, params: `{"name":"x","n":"abc"}`, wantErr: `parameter "n": expected integer, got string "abc"`},
		{name: "wrong type number for string", typ: bp, params: `{"name":5}`, wantErr: `parameter "name": expected string, got number 5`},
		{name: "wrong type bool", typ: bp, params: `{"name":"x","ok":"true"}`, wantErr: `parameter "ok": expected boolean, got string "true"`},
		{name: "wrong type object for array", typ: bp, params: `{"name":"x","tags":{}}`, wantErr: `parameter "tags": expected array of string, got object`},
		{name: "wrong type array element", typ: bp, params: `{"name":"x","tags":["a",1]}`, wantErr: `parameter "tags[1]": expected string, got number 1`},
		{name: "wrong type map value", typ: bp, params: `{"name":"x","labels":{"a":true}}`, wantErr: `parameter "labels.a": expected string, got boolean true`},
		{name: "wrong type nested", typ: bp, params: `{"name":"x","db":{"host":"h","port":"80"}}`, wantErr: `parameter "db.port": expected integer, got string "80"`},
		{name: "fraction for int", typ: bp, params: `{"name":"x","n":1.5}`, wantErr: `parameter "n": expected integer, got number 1.5 (integers cannot have a fraction or exponent)`},
		{name: "exponent for int", typ: bp, params: `{"name":"x","n":1e3}`, wantErr: `parameter "n": expected integer, got number 1e3 (integers cannot have a fraction or exponent)`},
		{name: "int out of range", typ: bp, params: `{"name":"x","small":-129}`, wantErr: `parameter "small": -129 is out of range for int8 (-128 to 127)`},
		{name: "uint negative", typ: bp, params: `{"name":"x","count":-1}`, wantErr: `parameter "count": -1 is out of range for uint (0 to 18446744073709551615)`},
		{name: "float out of range", typ: reflect.TypeFor[struct{ F float32 }](), params: `{"F":1e39}`, wantErr: `parameter "F": 1e39 is out of range for float32`},
		{name: "bad time", typ: bp, params: `{"name":"x","when":"yesterday"}`, wantErr: `parameter "when": expected string (RFC 3339 date-time), got string "yesterday"`},
		{name: "bad base64", typ: bp, params: `{"name":"x","data":"!!"}`, wantErr: `parameter "data": expected string (base64), got string "!!" (illegal base64 data at input byte 0)`},
		{name: "bad string option", typ: bp, params: `{"name":"x","q":7}`, wantErr: `parameter "q": expected string containing integer, got number 7`},
		{name: "long strings are truncated", typ: bp, params: `{"name":"x","n":"0123456789012345678901234567890123456789012345678901234567890123456789"}`, wantErr: `parameter "n": expected integer, got string "012345678901234567890123456789012345678901234567890123456789…"`},
		{name: "missing required", typ: bp, params: `{"n":1}`, wantErr: `missing required parameter "name" (string)`},
		{name: "null required", typ: bp, params: `{"name":null}`, wantErr: `missing required parameter "name" (string)`},
		{name: "kv null required", typ: reflect.TypeFor[struct {
			N int `json:"n" baton:"required"`
		}](), kv: []string{"n=null"}, wantErr: `missing required parameter "n" (integer)`},
		{name: "missing nested required", typ: bp, params: `{"name":"x","db":{"port":1}}`, wantErr: `missing required parameter "db.host" (string)`},
		{name: "absent optional object skips nested required", typ: bp, params: `{"name":"x"}`, want: `{"name":"x"}`},
		{name: "required satisfied by non-zero default", typ: bp, defaults: `{"name":"d"}`, want: `{"name":"d"}`},
		{name: "required zero default counts as missing", typ: bp, defaults: `{"name":"","n":0}`, wantErr: `missing required parameter "name" (string)`},
		{name: "required zero default then set", typ: bp, defaults: `{"name":"","n":0}`, kv: []string{"name=x"}, want: `{"name":"x"}`},
		{name: "nested required zero default counts as missing", typ: bp, defaults: `{"name":"x","db":{"host":"","port":5}}`, wantErr: `missing required parameter "db.host" (string)`},
		{name: "required in array elements", typ: reflect.TypeFor[struct {
			DBs []buildInner `json:"dbs"`
		}](), params: `{"dbs":[{"host":"a"},{}]}`, wantErr: `missing required parameter "dbs[1].host" (string)`},

		// Non-struct parameter types.
		{name: "scalar params", typ: reflect.TypeFor[int](), params: `5`, want: `5`},
		{name: "scalar defaults", typ: reflect.TypeFor[int](), defaults: `3`, want: `3`},
		{name: "scalar params replace defaults", typ: reflect.TypeFor[int](), defaults: `3`, params: `4`, want: `4`},
		{name: "scalar zero", typ: reflect.TypeFor[string](), want: `""`},
		{name: "scalar wrong type", typ: reflect.TypeFor[int](), params: `"x"`, wantErr: `parameters: expected integer, got string "x"`},
		{name: "scalar kv", typ: reflect.TypeFor[int](), kv: []string{"n=1"}, wantErr: `--param "n=1": this flow takes a single value of type int (integer), not named parameters; pass it as JSON with --params`},
		{name: "slice params", typ: reflect.TypeFor[[]int](), defaults: `[1]`, params: `[2,3]`, want: `[2,3]`},
		{name: "slice wrong element", typ: reflect.TypeFor[[]int](), params: `[1,"x"]`, wantErr: `parameter "[1]": expected integer, got string "x"`},
		{name: "slice kv", typ: reflect.TypeFor[[]int](), kv: []string{"0=1"}, wantErr: `--param "0=1": this flow takes a single value of type []int (array of integer), not named parameters; pass it as JSON with --params`},
		{name: "map params merge", typ: reflect.TypeFor[map[string]int](), defaults: `{"a":1,"b":2}`, params: `{"b":3,"c":4}`, want: `{"a":1,"b":3,"c":4}`},
		{name: "map zero", typ: reflect.TypeFor[map[string]int](), want: `{}`},
		{name: "map params not object", typ: reflect.TypeFor[map[string]int](), params: `[1]`, wantErr: `--params: expected a JSON object with the parameters of map[string]int, got array`},
		{name: "map bad key", typ: reflect.TypeFor[map[int]int](), params: `{"x":1}`, wantErr: `parameter "x": map key "x" is not a valid integer`},
		{name: "map kv", typ: reflect.TypeFor[map[string]int](), kv: []string{"a=1"}, wantErr: `--param "a=1": this flow takes a single value of type map[string]int (object), not named parameters; pass it as JSON with --params`},
		{name: "any params", typ: reflect.TypeFor[any](), params: `{"a":[1,"b"]}`, want: `{"a":[1,"b"]}`},
		{name: "time params", typ: reflect.TypeFor[time.Time](), params: `"2024-01-02T03:04:05Z"`, want: `"2024-01-02T03:04:05Z"`},
		{name: "time params object", typ: reflect.TypeFor[time.Time](), params: `{}`, wantErr: `parameters: expected string (RFC 3339 date-time), got object`},
		{name: "pointer to struct zero", typ: reflect.TypeFor[*buildInner](), want: `null`},
		{name: "pointer to struct null", typ: reflect.TypeFor[*buildInner](), params: `null`, want: `null`},
		{name: "pointer to struct params", typ: reflect.TypeFor[*buildInner](), params: `{"host":"h"}`, kv: []string{"port=1"}, want: `{"host":"h","port":1}`},
		{name: "pointer to struct required", typ: reflect.TypeFor[*buildInner](), kv: []string{"port=1"}, wantErr: `missing required parameter "host" (string)`},

		// Recursive types.
		{name: "recursive kv", typ: reflect.TypeFor[recNode](), kv: []string{"next.next.v=3", "kids.0.v=1"}, want: `{"v":0,"kids":[{"v":1,"kids":null,"next":null}],"next":{"v":0,"kids":null,"next":{"v":3,"kids":null,"next":null}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var defaults json.RawMessage
			if tt.defaults != "" {
				defaults = json.RawMessage(tt.defaults)
			}
			got, err := Build(tt.typ, defaults, tt.params, tt.kv)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Build = %s, want error %q", got, tt.wantErr)
				}
				var perr *Error
				if !errors.As(err, &perr) {
					t.Fatalf("error %v is a %T, want *Error", err, err)
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("error:\n got %s\nwant %s", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("Build returned %s along with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: unexpected error: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("Build:\n got %s\nwant %s", got, tt.want)
			}
			// The result must decode into the type and be a fixed point.
			again, err := Build(tt.typ, nil, string(got), nil)
			if err != nil && tt.typ.Kind() != reflect.Pointer {
				t.Fatalf("result %s does not build again: %v", got, err)
			}
			if err == nil && string(again) != string(got) {
				t.Fatalf("rebuild not stable: %s then %s", got, again)
			}
		})
	}
}

func TestBuildErrorFields(t *testing.T) {
	t.Parallel()
	_, err := Build(reflect.TypeFor[buildParams](), nil, `{"name":"x","db":{"host":"h","port":"80"}}`, nil)
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("got %v (%T), want *Error", err, err)
	}
	if perr.Param != "db.port" {
		t.Errorf("Param = %q, want db.port", perr.Param)
	}

	_, err = Build(reflect.TypeFor[buildParams](), nil, `{`, nil)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("syntax error does not unwrap to *json.SyntaxError: %v", err)
	}

	if _, err := Build(nil, nil, "", nil); !errors.As(err, &perr) {
		t.Errorf("nil type: got %v, want *Error", err)
	}
}

// TestBuildDoesNotModifyDefaults checks that the caller's defaults survive.
func TestBuildDoesNotModifyDefaults(t *testing.T) {
	t.Parallel()
	defaults := json.RawMessage(`{"name":"d","db":{"host":"h"}}`)
	before := string(defaults)
	if _, err := Build(reflect.TypeFor[buildParams](), defaults, `{"db":{"port":1}}`, []string{"db.host=x"}); err != nil {
		t.Fatal(err)
	}
	if string(defaults) != before {
		t.Fatalf("defaults modified: %s", defaults)
	}
}

func TestPosition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data      string
		offset    int64
		eof       bool
		line, col int
	}{
		{"x", 1, false, 1, 1},
		{"ab\ncd", 4, false, 2, 1},
		{"ab\ncd", 5, false, 2, 2},
		{"ab\n", 3, true, 2, 1},
		{"", 0, true, 1, 1},
		{"é}", 3, false, 1, 2},
		{"abc", 99, false, 1, 4}, // out-of-range offsets are clamped
	}
	for _, tt := range tests {
		line, col := position([]byte(tt.data), tt.offset, tt.eof)
		if line != tt.line || col != tt.col {
			t.Errorf("position(%q, %d, %t) = %d:%d, want %d:%d", tt.data, tt.offset, tt.eof, line, col, tt.line, tt.col)
		}
	}
}

func TestParseKV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		path    []string
		value   string
		wantErr string
	}{
		{in: "a=1", path: []string{"a"}, value: "1"},
		{in: "a.b.c=x=y", path: []string{"a", "b", "c"}, value: "x=y"},
		{in: " a =  v ", path: []string{"a"}, value: "  v "},
		{in: "a=", path: []string{"a"}, value: ""},
		{in: "a", wantErr: `--param "a": expected key=value`},
		{in: "", wantErr: `--param "": expected key=value`},
		{in: "=1", wantErr: `--param "=1": expected key=value`},
		{in: ".a=1", wantErr: `--param ".a=1": invalid key ".a": empty name between dots`},
		{in: "a.=1", wantErr: `--param "a.=1": invalid key "a.": empty name between dots`},
		{in: "a. .b=1", wantErr: `--param "a. .b=1": invalid key "a. .b": empty name between dots`},
	}
	for _, tt := range tests {
		path, value, err := parseKV(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("parseKV(%q) error = %v, want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(path, tt.path) || value != tt.value {
			t.Errorf("parseKV(%q) = %q, %q, %v; want %q, %q", tt.in, path, value, err, tt.path, tt.value)
		}
	}
}

// level decodes itself and only accepts "low" or "high".
type level int

func (l *level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return errors.New("level must be low or high")
	}
	return nil
}

func (l level) MarshalText() ([]byte, error) {
	if l == 2 {
		return []byte("high"), nil
	}
	return []byte("low"), nil
}

type customParams struct {
	Level  level         `json:"level"`
	Levels map[level]int `json:"levels,omitempty"`
}

func TestBuildCustomTypes(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[customParams]()
	tests := []struct {
		params  string
		kv      []string
		want    string
		wantErr string
	}{
		{kv: []string{"level=high"}, want: `{"level":"high"}`},
		{kv: []string{`level="high"`}, want: `{"level":"high"}`},
		{params: `{"level":"high"}`, kv: []string{"levels.low=3"}, want: `{"level":"high","levels":{"low":3}}`},
		{kv: []string{"level=medium"}, wantErr: `--param level: "medium" is not a valid string`},
		{params: `{"level":"medium"}`, wantErr: `parameter "level": invalid value string "medium": level must be low or high`},
		{params: `{"level":3}`, wantErr: `parameter "level": expected string, got number 3`},
		{params: `{"levels":{"medium":1}}`, wantErr: `parameter "levels.medium": map key "medium" is not a valid params.level: level must be low or high`},
	}
	for _, tt := range tests {
		got, err := Build(typ, nil, tt.params, tt.kv)
		if tt.wantErr != "" {
			var perr *Error
			if !errors.As(err, &perr) || err.Error() != tt.wantErr {
				t.Errorf("Build(%s, %q) error = %v, want %s", tt.params, tt.kv, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("Build(%s, %q) = %s, %v; want %s", tt.params, tt.kv, got, err, tt.want)
		}
	}
}

func TestDecodeError(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[plainParams]()
	tests := []struct {
		err  error
		want string
	}{
		{&json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[int](), Field: "a"}, `parameter "a": expected integer, got string`},
		{&json.UnmarshalTypeError{Value: "bool", Type: reflect.TypeFor[[]int]()}, `parameters: expected array of integer, got boolean`},
		{errors.New(`json: unknown field "zz"`), `unknown parameter "zz"; known parameters: a, b`},
		{errors.New("json: something else"), `invalid parameters: something else`},
	}
	for _, tt := range tests {
		if got := decodeError(typ, tt.err); got.Error() != tt.want || !errors.Is(got, tt.err) {
			t.Errorf("decodeError(%v) = %v, want %s", tt.err, got, tt.want)
		}
	}
}
