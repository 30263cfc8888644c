package blob

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// aged makes the blob of ref look written long ago.
func aged(t *testing.T, s *Store, ref string) {
	t.Helper()
	h, err := hash(ref)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * Grace)
	if err := os.Chtimes(s.path(h), old, old); err != nil {
		t.Fatal(err)
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		old         bool // written long ago
		putAgain    bool // Put again (after aging)
		wantRemoved bool
	}{
		{"old and unused", true, false, true},
		{"written lately", false, false, false},
		{"old but Put again lately", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ref, err := s.Put([]byte("content"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.old {
				aged(t, s, ref)
			}
			if tt.putAgain {
				if _, err := s.Put([]byte("content")); err != nil {
					t.Fatal(err)
				}
			}
			removed, err := s.Remove(ref, Grace)
			if err != nil || removed != tt.wantRemoved {
				t.Fatalf("Remove = %v, %v; want %v", removed, err, tt.wantRemoved)
			}
			_, err = s.Get(ref)
			if gone := err != nil; gone != tt.wantRemoved {
				t.Errorf("after Remove, Get: %v", err)
			}
			if removed, err := s.Remove(ref, 0); tt.wantRemoved && (removed || err != nil) {
				t.Errorf("Remove of a missing blob = %v, %v; want false, nil", removed, err)
			}
			if left, _ := os.ReadDir(filepath.Join(s.Dir(), removingDir)); len(left) != 0 {
				t.Errorf("removing/ holds %d files", len(left))
			}
		})
	}
}

// TestRemoveRacesPut: a Put of content that exists, at any point of a
// Remove of it, leaves the blob stored (a writer that Put it may record
// its reference), and so does a read meanwhile.
func TestRemoveRacesPut(t *testing.T) {
	t.Parallel()
	data := []byte("shared content")
	for _, when := range []string{"before", "while removing"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ref, err := s.Put(data)
			if err != nil {
				t.Fatal(err)
			}
			aged(t, s, ref)
			put := func() {
				if r, err := s.Put(data); err != nil || r != ref {
					t.Errorf("Put = %q, %v", r, err)
				}
			}
			if when == "before" {
				put()
			} else {
				s.testHookRemoving = func() {
					if got, err := s.Get(ref); err != nil || !bytes.Equal(got, data) {
						t.Errorf("Get while removing = %q, %v", got, err)
					}
					put()
				}
			}
			if _, err := s.Remove(ref, Grace); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ref); err != nil || !bytes.Equal(got, data) {
				t.Errorf("after the race, Get = %q, %v; want the content", got, err)
			}
		})
	}
}

// TestOpenRestoresRemoving: a blob that a Remove interrupted by a crash
// left aside is put back when the store is opened.
func TestOpenRestoresRemoving(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.Put([]byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	aged(t, s, ref)
	crash := errors.New("crash")
	s.testHookRemoving = func() { panic(crash) }
	func() {
		defer func() {
			if r := recover(); r != crash {
				t.Fatalf("recovered %v", r)
			}
		}()
		s.Remove(ref, Grace)
	}()
	if _, err := os.Stat(filepath.Join(dir, "sha256")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	h, _ := hash(ref)
	if _, err := os.Stat(s.path(h)); err != nil {
		t.Errorf("blob not put back: %v", err)
	}
}
