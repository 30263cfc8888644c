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
	tests := []struct{ value, err string }{
		{"fetch", ""},
		{"ünïcødé/1", ""},
		{"a\x00b", `step key "a\x00b" contains a NUL byte`},
		{"a\xffb", `step key "a\xffb" is not valid UTF-8`},
	}
	for _, tc := range tests {
		err := CheckIdentifier("step key", tc.value)
		if (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("CheckIdentifier(%q) = %v, want %q", tc.value, err, tc.err)
		}
	}
}
