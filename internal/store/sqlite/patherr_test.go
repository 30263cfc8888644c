package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sqlite3 "modernc.org/sqlite/lib"
)

// TestPathProblems: the driver codes of a store path that cannot be used
// become messages naming the path (issue 6 item 10). The read-only cases
// run for real, as an unprivileged user, in internal/cli/batoncmd.
func TestPathProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "s.db")
	tests := []struct {
		path string
		code int
		want string
	}{
		{file, sqlite3.SQLITE_READONLY, "the file is read-only"},
		{file, sqlite3.SQLITE_READONLY_DIRECTORY, "the directory " + dir + " is not writable"},
		{dir, sqlite3.SQLITE_CANTOPEN_ISDIR, "it is a directory, not a database file; name a file, e.g. " + filepath.Join(dir, "baton.db")},
		{dir, sqlite3.SQLITE_CANTOPEN, "it is a directory"},
		{file, sqlite3.SQLITE_CANTOPEN, "SQLite cannot open the file or create its -wal and -shm files in " + dir},
		{file, sqlite3.SQLITE_BUSY, ""},
	}
	for _, tt := range tests {
		if got := pathProblem(tt.path, tt.code); !strings.Contains(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("pathProblem(%s, %d) = %q, want %q", tt.path, tt.code, got, tt.want)
		}
	}
}

func TestOpenDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Open(context.Background(), dir)
	if !errors.Is(err, ErrUnusablePath) || err.Error() != "store "+dir+": it is a directory, not a database file; name a file, e.g. "+filepath.Join(dir, "baton.db") {
		t.Fatalf("Open(dir) = %v", err)
	}
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), filepath.Join(f, "x.db")); !errors.Is(err, ErrUnusablePath) || !strings.Contains(err.Error(), "cannot create its directory") {
		t.Fatalf("Open(file/x.db) = %v", err)
	}
	if _, err := Open(context.Background(), os.DevNull); !errors.Is(err, ErrUnusablePath) || !strings.Contains(err.Error(), "it is not a regular file") {
		t.Fatalf("Open(%s) = %v", os.DevNull, err)
	}
	s, err := Open(context.Background(), filepath.Join(dir, "ok.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckWritable(context.Background()); err != nil {
		t.Fatalf("CheckWritable: %v", err)
	}
}
