package api

import (
	"strings"
	"testing"
)

func TestCheckIdentifier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"hello", ""},
		{"", ""},
		{"é-ü_日本", ""},
		{"a\x00b", `field "flow" must not contain a NUL byte: "a\x00b"`},
		{"a\xffb", `field "flow" is not valid UTF-8: "a\xffb"`},
		{strings.Repeat("x", MaxIdentifierBytes), ""},
		{strings.Repeat("x", MaxIdentifierBytes+1), `field "flow" is 1025 bytes long; at most 1024 are allowed`},
	}
	for _, tt := range tests {
		err := CheckIdentifier(`field "flow"`, tt.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckIdentifier(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzCheckIdentifier(f *testing.F) {
	for _, s := range []string{"a", "", "\x00", "\xff", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckIdentifier("x", s)
		ok := !strings.ContainsRune(s, 0) && strings.ToValidUTF8(s, "") == s && len(s) <= MaxIdentifierBytes
		if (err == nil) != ok {
			t.Fatalf("CheckIdentifier(%q) = %v", s, err)
		}
	})
}
