package blob

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// points returns the JSON array of n points of the k-NN example's shape.
func points(n, seed int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"x":%d.125,"y":-%d.5,"label":%d}`, i*seed, i, i%3)
	}
	b.WriteByte(']')
	return b.String()
}

func TestSplit(t *testing.T) {
	t.Parallel()
	train, test := points(300, 7), points(100, 3)
	big := strings.Repeat("x", 3000)
	tests := []struct {
		name       string
		src        string
		min, max   int
		wantOK     bool
		wantInline string // empty: not checked
		wantParts  string
	}{
		{name: "dataset beside small fields", src: `{"k":3,"train":` + train + `,"test":` + test + `}`, min: 1024, max: 8192, wantOK: true,
			wantInline: `{"parts_at":[2,3],"value":{"k":3,"train":null,"test":null}}`, wantParts: "[" + train + "," + test + "]"},
		{name: "array of small items is one part", src: train, min: 1024, max: 8192, wantOK: true,
			wantInline: `{"parts_at":[0],"value":null}`, wantParts: "[" + train + "]"},
		{name: "long string", src: `"` + big + `"`, min: 1024, max: 8192, wantOK: true,
			wantInline: `{"parts_at":[0],"value":null}`, wantParts: `["` + big + `"]`},
		{name: "nested", src: `{"a":{"b":["` + big + `",1],"c":{"d":1}},"e":[1,2,"` + big + `"],"f":null}`, min: 1024, max: 8192, wantOK: true,
			wantInline: `{"parts_at":[3,10],"value":{"a":{"b":[null,1],"c":{"d":1}},"e":[1,2,null],"f":null}}`,
			wantParts:  `["` + big + `","` + big + `"]`},
		{name: "a container of medium values is one part", src: `{"a":{"b":"` + big[:600] + `","c":"` + big[:600] + `"},"f":1}`, min: 1024, max: 8192, wantOK: true,
			wantInline: `{"parts_at":[1],"value":{"a":null,"f":1}}`, wantParts: `[{"b":"` + big[:600] + `","c":"` + big[:600] + `"}]`},
		{name: "whitespace kept", src: " {\n \"k\" : 1 ,\n \"v\" : \"" + big + "\" }\n", min: 1024, max: 8192, wantOK: true,
			wantInline: "{\"parts_at\":[2],\"value\":{\n \"k\" : 1 ,\n \"v\" : null }}", wantParts: `["` + big + `"]`},
		{name: "escapes in strings", src: `{"k\"}":"a\\\"]}","v":"` + big + `\"\\"}`, min: 1024, max: 8192, wantOK: true,
			wantInline: `{"parts_at":[2],"value":{"k\"}":"a\\\"]}","v":null}}`},
		{name: "many medium values: the whole is the part", src: "[" + strings.Repeat(`"`+strings.Repeat("m", 1100)+`",`, 20) + "1]", min: 1024, max: 64,
			wantOK: true, wantInline: `{"parts_at":[0],"value":null}`},
		{name: "too small", src: `{"k":1}`, min: 1024, max: 8192},
		{name: "not JSON", src: `{"k":` + big, min: 1024, max: 8192},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inline, parts, ok := Split([]byte(tt.src), tt.min, tt.max)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if tt.wantInline != "" && string(inline) != tt.wantInline {
				t.Errorf("inline = %s\nwant     %s", inline, tt.wantInline)
			}
			if tt.wantParts != "" && string(parts) != tt.wantParts {
				t.Errorf("parts = %.200s…, want %.200s…", parts, tt.wantParts)
			}
			if !json.Valid(inline) || !json.Valid(parts) {
				t.Errorf("pieces are not JSON: %s / %.100s", inline, parts)
			}
			got, err := Join(inline, parts)
			if err != nil || string(got) != strings.Trim(tt.src, " \t\r\n") {
				t.Errorf("Join = %.200q, %v; want the source back", got, err)
			}
		})
	}
}

// TestSplitShares checks what sharing rests on: inputs that differ in small
// fields and share large ones have the same parts, which are also those of
// another value holding the same large fields.
func TestSplitShares(t *testing.T) {
	t.Parallel()
	train, test := points(300, 7), points(100, 3)
	var first []byte
	for k := 1; k <= 7; k += 2 {
		_, parts, ok := Split([]byte(fmt.Sprintf(`{"k":%d,"train":%s,"test":%s}`, k, train, test)), 1024, 8192)
		if !ok {
			t.Fatal("not split")
		}
		if first == nil {
			first = parts
		} else if !bytes.Equal(parts, first) {
			t.Fatalf("k=%d: parts differ", k)
		}
	}
	_, parts, _ := Split([]byte(`{"centres":[{"x":1}],"train":`+train+`,"test":`+test+`}`), 1024, 8192)
	if !bytes.Equal(parts, first) {
		t.Error("a dataset with the same arrays has other parts")
	}
}

func TestJoinCorrupt(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, inline, parts string }{
		{"not JSON", `{"parts_at":[0],"value":`, `[1]`},
		{"no value", `{"parts_at":[0]}`, `[1]`},
		{"parts not an array", `{"parts_at":[0],"value":null}`, `1`},
		{"parts not JSON", `{"parts_at":[0],"value":null}`, `[1`},
		{"fewer parts", `{"parts_at":[1,2],"value":[null,null]}`, `[1]`},
		{"more parts", `{"parts_at":[1],"value":[null,null]}`, `[1,2]`},
		{"position past the end", `{"parts_at":[5],"value":[null,null]}`, `[1]`},
		{"not a null there", `{"parts_at":[1],"value":[3,null]}`, `[1]`},
		{"a container there", `{"parts_at":[1],"value":[[],null]}`, `[1]`},
		{"positions out of order", `{"parts_at":[2,1],"value":[null,null]}`, `[1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := Join([]byte(tt.inline), []byte(tt.parts)); err == nil {
				t.Errorf("Join = %s, want an error", got)
			}
		})
	}
}

// FuzzSplitJoin: whatever the input, Split either declines or returns
// JSON pieces that Join puts back together byte for byte.
func FuzzSplitJoin(f *testing.F) {
	f.Add([]byte(`{"k":3,"train":`+points(40, 7)+`,"test":"`+strings.Repeat("t", 300)+`"}`), 64)
	f.Add([]byte(` [ 1 , "a\"b" , {"c" : [true,false,null] } , -1.5e3 ] `), 2)
	f.Add([]byte(`{"":{"":{"":""}}}`), 1)
	f.Fuzz(func(t *testing.T, src []byte, min int) {
		if min < 1 || min > 1<<20 {
			return
		}
		inline, parts, ok := Split(src, min, 4*min)
		if !ok {
			return
		}
		if !json.Valid(inline) || !json.Valid(parts) {
			t.Fatalf("pieces of %q are not JSON: %s / %s", src, inline, parts)
		}
		got, err := Join(inline, parts)
		if err != nil || !bytes.Equal(got, bytes.Trim(src, " \t\r\n")) {
			t.Fatalf("Join(Split(%q)) = %q, %v", src, got, err)
		}
	})
}

// FuzzJoin: stored pieces that do not fit are an error, never a panic.
func FuzzJoin(f *testing.F) {
	f.Add([]byte(`{"parts_at":[2,3],"value":{"k":3,"train":null,"test":null}}`), []byte(`[[1],[2]]`))
	f.Add([]byte(`{"parts_at":[0],"value":null}`), []byte(` [ "x" ] `))
	f.Fuzz(func(t *testing.T, inline, parts []byte) {
		if got, err := Join(inline, parts); err == nil && !json.Valid(got) {
			t.Fatalf("Join(%q, %q) = %q, not JSON", inline, parts, got)
		}
	})
}
