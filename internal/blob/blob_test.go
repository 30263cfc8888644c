package blob

import (
	"bytes"
	"strings"
	"testing"
)

func TestPutGet(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("baton"), 100000)
	ref, err := s.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, "sha256:") {
		t.Fatalf("ref %q lacks prefix", ref)
	}
	ref2, err := s.Put(data)
	if err != nil || ref2 != ref {
		t.Fatalf("second put: %q, %v; want %q", ref2, err, ref)
	}
	got, err := s.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

func TestGetBadRefs(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"", "md5:abc", "sha256:zz", "sha256:" + strings.Repeat("0", 64)} {
		if _, err := s.Get(ref); err == nil {
			t.Errorf("Get(%q) succeeded, want error", ref)
		}
	}
}
