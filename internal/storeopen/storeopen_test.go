package storeopen

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

func TestScheme(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ loc, want string }{
		{"/home/me/.baton/baton.db", ""},
		{"baton.db", ""},
		{`C:\Users\me\baton.db`, ""},
		{"postgres://u@h/db", "postgres"},
		{"PostgreSQL://u@h/db", "postgresql"},
		{"mysql://h/db", "mysql"},
		{"dir/x://y", ""},
	} {
		if got := Scheme(tt.loc); got != tt.want {
			t.Errorf("Scheme(%q) = %q, want %q", tt.loc, got, tt.want)
		}
	}
}

// TestMissingBackend: a location whose backend this program does not link
// is refused, saying how to link it, and is the user's to fix. This test
// binary links no backend but SQLite.
func TestMissingBackend(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ db, want string }{
		{"postgres://me:secret@db/baton", `import _ "github.com/batonhq/baton/postgres"`},
		{"mysql://db/baton", "no store backend serves mysql:// URLs"},
	} {
		_, err := Open(context.Background(), Location{DB: tt.db, Getenv: func(string) string { return "" }}, true)
		if !errors.Is(err, ErrBackendMissing) || !IsUserError(err) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want ErrBackendMissing saying %q", tt.db, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the message shows the password: %v", tt.db, err)
		}
	}
}

// TestRegisteredBackend: a registered scheme opens through its backend, and
// its blobs default to $BATON_HOME/blobs.
func TestRegisteredBackend(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	var got string
	Register(Backend{Name: "Test", Schemes: []string{"batontest"}, Open: func(_ context.Context, url string) (store.Store, error) {
		got = url
		return nil, errors.New("test backend opens nothing")
	}})
	loc := Location{DB: "batontest://x", Getenv: func(k string) string { return map[string]string{"BATON_HOME": home}[k] }}
	if _, err := Open(context.Background(), loc, true); err == nil || got != "batontest://x" {
		t.Errorf("Open through the test backend: %v, it got %q", err, got)
	}
	if dir, err := loc.BlobDir("batontest://x"); err != nil || dir != filepath.Join(home, "blobs") {
		t.Errorf("BlobDir: %s %v", dir, err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a scheme twice should panic")
		}
	}()
	Register(Backend{Name: "Again", Schemes: []string{"batontest"}, Open: func(context.Context, string) (store.Store, error) { return nil, nil }})
}

func TestDBPath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		db   string
		env  map[string]string
		want string
	}{
		{"x.db", map[string]string{"BATON_DB": "y.db"}, "x.db"},
		{"", map[string]string{"BATON_DB": "y.db", "BATON_HOME": "/h"}, "y.db"},
		{"", map[string]string{"BATON_HOME": "/h"}, filepath.Join("/h", "baton.db")},
	} {
		got, err := Location{DB: tt.db, Getenv: func(k string) string { return tt.env[k] }}.DBPath()
		if err != nil || got != tt.want {
			t.Errorf("DBPath(%q, %v) = %q, %v; want %q", tt.db, tt.env, got, err, tt.want)
		}
	}
}
