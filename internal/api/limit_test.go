package api

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseLimit: the N of `baton limits set TAG N` is accepted exactly
// when it is a decimal integer of 0 or more, and a refusal names the field.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"4", "0", "-1", "x", "", "1e3", "99999999999999999999", " 3", "+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseLimit(s)
		want, werr := strconv.Atoi(s)
		switch {
		case werr == nil && want >= 0:
			if err != nil || n != want {
				t.Fatalf("ParseLimit(%q) = %d, %v; want %d", s, n, err, want)
			}
		default:
			if err == nil {
				t.Fatalf("ParseLimit(%q) = %d, want an error", s, n)
			}
			if !strings.HasPrefix(err.Error(), "limit: ") {
				t.Fatalf("ParseLimit(%q): %v does not name the field", s, err)
			}
		}
	})
}
