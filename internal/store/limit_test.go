package store

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeTags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{nil, nil, ""},
		{[]string{"robot"}, []string{"robot"}, ""},
		{[]string{"b", "a", "b"}, []string{"a", "b"}, ""},
		{[]string{""}, nil, "tag: must not be empty"},
		{[]string{"a\tb"}, nil, "control character"},
		{[]string{strings.Repeat("x", MaxTagBytes+1)}, nil, "longer than"},
	}
	for _, tt := range tests {
		got, err := NormalizeTags(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NormalizeTags(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("NormalizeTags(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestCheckLimit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		tag  string
		max  int
		want string
	}{
		{"robot", 4, ""}, {"robot", 0, ""}, {"robot", -1, "limit: must be 0 or more, got -1"},
		{"", 1, "tag: must not be empty"}, {"a\x00b", 1, "tag"},
	} {
		err := CheckLimit(tt.tag, tt.max)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckLimit(%q, %d) = %v, want %q", tt.tag, tt.max, err, tt.want)
		}
	}
}

// FuzzTags: tags that NormalizeTags accepts survive the column encoding,
// and DecTags never panics on what a column holds.
func FuzzTags(f *testing.F) {
	f.Add("robot", "gpu", `["a","b"]`)
	f.Add("", "\x00", `[1]`)
	f.Add("ü", strings.Repeat("y", 300), `{`)
	f.Fuzz(func(t *testing.T, a, b, col string) {
		tags, err := NormalizeTags([]string{a, b})
		if err == nil {
			got, err := DecTags(EncTags(tags))
			if err != nil || !slices.Equal(got, tags) {
				t.Fatalf("tags %q came back as %q, %v", tags, got, err)
			}
			for _, tag := range tags {
				if CheckTag("tag", tag) != nil {
					t.Fatalf("a normalized tag %q does not pass CheckTag", tag)
				}
			}
		}
		_, _ = DecTags(col)
	})
}
