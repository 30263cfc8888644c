package store

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEncodeText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, stored string }{
		{"", ""},
		{"plain text", "plain text"},
		{"ünïcødé ✓", "ünïcødé ✓"},
		{"a\x00b", "a\x1000b"},
		{"\xff", "\x10ff"},
		{"x\xe2\x82", "x\x10e2\x1082"},
		{"dle \x10", "dle \x1010"},
		{"\x10" + "00", "\x1010" + "00"},
	}
	for _, tc := range tests {
		if got := EncodeText(tc.in); got != tc.stored {
			t.Errorf("EncodeText(%q) = %q, want %q", tc.in, got, tc.stored)
		}
		if got := DecodeText(tc.stored); got != tc.in {
			t.Errorf("DecodeText(%q) = %q, want %q", tc.stored, got, tc.in)
		}
	}
	// Text written before the encoding existed reads back unchanged unless
	// it holds an escape.
	for _, old := range []string{"a\x10", "a\x10z", "\x10g1", "\x10F0"} {
		if got := DecodeText(old); got != old {
			t.Errorf("DecodeText(%q) = %q, want it unchanged", old, got)
		}
	}
}

func FuzzEncodeText(f *testing.F) {
	for _, s := range []string{"", "a\x00b", "\xff\xfe", "\x10", "\x1000", "ünï\xc3", strings.Repeat("\x10", 3)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeText(s)
		if !utf8.ValidString(enc) || strings.IndexByte(enc, 0) >= 0 {
			t.Fatalf("EncodeText(%q) = %q: not valid UTF-8 without NUL", s, enc)
		}
		if dec := DecodeText(enc); dec != s {
			t.Fatalf("DecodeText(EncodeText(%q)) = %q", s, dec)
		}
		_ = DecodeText(s) // any stored text decodes without panicking
	})
}

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
