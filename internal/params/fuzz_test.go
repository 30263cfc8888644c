package params

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type fuzzInner struct {
	Host  string   `json:"host" baton:"required"`
	Port  int      `json:"port,omitempty"`
	Ports []uint16 `json:"ports"`
}

type fuzzParams struct {
	Name   string            `json:"name"`
	Count  int               `json:"count" baton:"required"`
	Small  int8              `json:"small"`
	Ratio  float64           `json:"ratio"`
	F32    float32           `json:"f32"`
	On     bool              `json:"on"`
	Tags   []string          `json:"tags"`
	Nick   *string           `json:"nick"`
	Max    *int              `json:"max"`
	Inner  fuzzInner         `json:"inner"`
	InnerP *fuzzInner        `json:"inner_p"`
	Items  []fuzzInner       `json:"items"`
	Labels map[string]string `json:"labels"`
	Extra  any               `json:"extra"`
	Data   []byte            `json:"data"`
	Q      int               `json:"q,string"`
}

func FuzzBuild(f *testing.F) {
	f.Add(`{"count":1}`, "name=x")
	f.Add(`{"count":1,"inner":{"host":"h"}}`, "inner.port=80")
	f.Add(`{"count":1,"items":[{"host":"a"}]}`, "items.1.host=b")
	f.Add(``, "count=5")
	f.Add(`{"count":1.5}`, "")
	f.Add(`{"count":"1"}`, "nick=null")
	f.Add(`{"count":1,"tags":["a",1]}`, "tags.0=z")
	f.Add(`{"count":1,"inner_p":null}`, "inner_p.host=h")
	f.Add(`{"count":1,"labels":{"a":"b"}}`, "labels.x.y=z")
	f.Add(`{"count":1,"extra":{"a":[1,2,{"b":null}]}}`, "extra.a.b=1")
	f.Add(`{"count":1,"small":128}`, "small=-128")
	f.Add(`{"count":1,"f32":1e39}`, "ratio=1e308")
	f.Add(`{"count":1,"data":"aGk="}`, "data=!!")
	f.Add(`{"count":1,"q":"12"}`, "q=13")
	f.Add(`{"COUNT":2,"Count":3}`, "Name=\"q\\u0000\"")
	f.Add("{\n\"count\": tru}", "=")
	f.Add(`[1,2]`, "bogus=1")
	f.Add(`{"count":1,"inner":{"ports":[65536]}}`, "inner.ports.0=-1")
	f.Add(`{"count":1,"max":9223372036854775808}`, "max=1e2")
	f.Add(`{"count":1}`, "items.0.ports.0=1")
	f.Add(`{"count":1}`, "a.b..c=1")
	t := reflect.TypeFor[fuzzParams]()
	f.Fuzz(func(tt *testing.T, paramsJSON, kv string) {
		var kvs []string
		if kv != "" {
			kvs = []string{kv}
		}
		out, err := Build(t, json.RawMessage(`{"name":"default","count":0,"ratio":0.5}`), paramsJSON, kvs)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				tt.Fatalf("error %v is a %T, want *Error", err, err)
			}
			if perr.Error() == "" {
				tt.Fatal("empty error message")
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.DisallowUnknownFields()
		var p fuzzParams
		if err := dec.Decode(&p); err != nil {
			tt.Fatalf("Build output %s does not decode: %v", out, err)
		}
		again, err := json.Marshal(p)
		if err != nil {
			tt.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(again, out) {
			tt.Fatalf("output is not normalized:\n%s\n%s", out, again)
		}
		// Building from the output must give the output back.
		rebuilt, err := Build(t, nil, string(out), nil)
		if err != nil {
			tt.Fatalf("output %s does not build again: %v", out, err)
		}
		if !bytes.Equal(rebuilt, out) {
			tt.Fatalf("rebuild differs:\n%s\n%s", out, rebuilt)
		}
	})
}

func FuzzParseKV(f *testing.F) {
	for _, s := range []string{"a=1", "a.b.c=x", "=", "a", "", " a = b ", "a..b=1", ".=", "a=b=c", "é.ü=\x00", "a.\t.b=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		path, value, err := parseKV(s)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || !strings.HasPrefix(perr.Error(), "--param ") {
				t.Fatalf("bad error %v (%T)", err, err)
			}
			return
		}
		before, after, ok := strings.Cut(s, "=")
		if !ok {
			t.Fatalf("parseKV(%q) accepted an item without '='", s)
		}
		if value != after {
			t.Fatalf("parseKV(%q) value = %q, want %q", s, value, after)
		}
		if strings.Join(path, ".") != strings.TrimSpace(before) {
			t.Fatalf("parseKV(%q) path = %q, want key %q", s, path, strings.TrimSpace(before))
		}
		for _, seg := range path {
			if strings.TrimSpace(seg) == "" {
				t.Fatalf("parseKV(%q) returned an empty segment: %q", s, path)
			}
		}
	})
}
