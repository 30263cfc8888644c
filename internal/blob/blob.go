// Package blob stores large values in a content-addressed directory: each
// blob lives in a file named by the SHA-256 of its content, so writing the
// same content twice stores it once and a reference never dangles after a
// crash.
//
// # Deleting blobs that nothing uses
//
// A blob is shared by every record that holds its reference, so it may be
// deleted only when none does (retention asks the store), and a writer
// about to reference content that already exists must not lose it to a
// deletion decided a moment before. The protocol:
//
//   - Put (and PutReader) is how a writer declares that it is about to
//     reference content: it writes the blob, or refreshes the modification
//     time of the existing file. A writer commits the record holding the
//     reference soon after (well within Grace).
//   - Remove(ref, grace) deletes a blob only if its modification time is
//     older than grace, so a blob that a writer has just Put survives a
//     retention pass that checked the references before the writer's record
//     was committed. Remove first renames the file away (into removing/),
//     then reads the time, then deletes it or renames it back: a Put that
//     refreshes the time before the rename is seen, and one after it finds
//     no file and writes it again. Both steps of the file system are atomic,
//     so no interleaving loses content a writer was told is stored.
//   - Readers that find no file look in removing/, so a blob being checked
//     stays readable.
package blob

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const refPrefix = "sha256:"

// Grace is how long after its last Put a blob is kept even when no record
// references it: the longest a writer may take from Put to the commit of
// the record that holds the reference (milliseconds normally; seconds when
// a worker's report waits out a short server outage). Retention deletes
// with it.
const Grace = time.Hour

// removingDir is the subdirectory where Remove moves a blob while it
// decides.
const removingDir = "removing"

// Store is a directory of blobs. The zero value is not usable; use Open.
// A Store is safe for concurrent use by goroutines and processes.
type Store struct {
	dir string
	// testHookRemoving, when set, runs in Remove after the blob was moved
	// away and before its time is read.
	testHookRemoving func()
}

// Open returns a blob store rooted at dir, creating it if needed. Blobs
// that a Remove interrupted by a crash left in removing/ are put back.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blob: create %s: %w", dir, err)
	}
	s := &Store{dir: dir}
	if err := s.restoreRemoving(); err != nil {
		return nil, err
	}
	return s, nil
}

// At returns the store in dir without creating the directory, for readers:
// a blob that is not there is an error when it is read.
func At(dir string) *Store { return &Store{dir: dir} }

// Dir returns the root directory of the store.
func (s *Store) Dir() string { return s.dir }

// Put stores data durably (written, synced and renamed into place) and
// returns its reference, "sha256:<hex>". Content already stored is not
// written again; its file's modification time is refreshed, which keeps it
// from Remove for Grace.
func (s *Store) Put(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	if ok, err := s.touch(h); err != nil || ok {
		return refPrefix + h, err
	}
	return s.PutReader(bytes.NewReader(data)) // hashes again: cheap beside the write and sync
}

// touch refreshes the modification time of the blob h and reports whether
// it exists. Touching is the existence test: it is atomic with Remove's
// rename, so a blob that it finds is one that Remove sees as fresh.
func (s *Store) touch(h string) (bool, error) {
	now := time.Now()
	err := os.Chtimes(s.path(h), now, now)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("blob: put: %w", err)
	}
}

// PutReader stores the content read from r until EOF, like Put, without
// holding it in memory: it is hashed while it is written to a temporary
// file, which is synced and renamed into place unless the content is
// stored already (then it is dropped and the blob's time refreshed). An error reading r stores
// nothing and is returned as is (wrapped), so callers can test it.
func (s *Store) PutReader(r io.Reader) (string, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if ok, err := s.touch(sum); err != nil || ok {
		return refPrefix + sum, err // stored already: no sync needed
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	path := s.path(sum)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	return refPrefix + sum, nil
}

// Open returns a reader of the content of a reference returned by Put, and
// its size. The caller closes it.
func (s *Store) Open(ref string) (io.ReadCloser, int64, error) {
	h, err := hash(ref)
	if err != nil {
		return nil, 0, err
	}
	f, err := s.open(h)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("blob: %s is missing from %s", ref, s.dir)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blob: get: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blob: get: %w", err)
	}
	return f, fi.Size(), nil
}

// open opens the file of blob h, or the one a Remove in progress moved
// away (which it may put back).
func (s *Store) open(h string) (*os.File, error) {
	f, err := os.Open(s.path(h))
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	moved, _ := filepath.Glob(filepath.Join(s.dir, removingDir, h+".*"))
	for _, m := range moved {
		if f, merr := os.Open(m); merr == nil {
			return f, nil
		}
	}
	// Put back in the meantime?
	return os.Open(s.path(h))
}

// hash returns the hex digest of a valid reference.
func hash(ref string) (string, error) {
	h, ok := strings.CutPrefix(ref, refPrefix)
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("blob: invalid reference %q", ref)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("blob: invalid reference %q", ref)
	}
	return h, nil
}

// Get returns the content of a reference returned by Put.
func (s *Store) Get(ref string) ([]byte, error) {
	f, _, err := s.Open(ref)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("blob: get: %w", err)
	}
	return data, nil
}

func (s *Store) path(h string) string {
	return filepath.Join(s.dir, "sha256", h[:2], h[2:])
}

// Remove deletes the blob of ref unless it was Put less than grace ago,
// and reports whether it deleted it. Only call it for a reference that no
// record holds any more: a writer about to record it again has Put it
// (see the package documentation), which keeps it. A missing blob is not an
// error (and not removed).
func (s *Store) Remove(ref string, grace time.Duration) (bool, error) {
	h, err := hash(ref)
	if err != nil {
		return false, err
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	moved := filepath.Join(s.dir, removingDir, h+"."+hex.EncodeToString(nonce[:]))
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		return false, fmt.Errorf("blob: remove: %w", err)
	}
	if err := os.Rename(s.path(h), moved); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("blob: remove: %w", err)
	}
	if s.testHookRemoving != nil {
		s.testHookRemoving()
	}
	fi, err := os.Stat(moved)
	if err != nil {
		// Put back already (by Open, after a crash it took this for)?
		return false, ignoreMissing(err)
	}
	if time.Since(fi.ModTime()) < grace {
		// Put lately: keep it. Renaming over a copy that a Put wrote in the
		// meantime is harmless (same content).
		return false, ignoreMissing(os.Rename(moved, s.path(h)))
	}
	if err := os.Remove(moved); err != nil {
		return false, ignoreMissing(err)
	}
	return true, nil
}

// ignoreMissing is err wrapped for Remove, or nil when the file it could
// not find was put back by another process.
func ignoreMissing(err error) error {
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("blob: remove: %w", err)
}

// restoreRemoving puts back the blobs that a Remove left in removing/ when
// its process died before it decided: their references may be recorded.
func (s *Store) restoreRemoving() error {
	entries, err := os.ReadDir(filepath.Join(s.dir, removingDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: open %s: %w", s.dir, err)
	}
	for _, e := range entries {
		h, _, ok := strings.Cut(e.Name(), ".")
		if !ok || len(h) != 64 {
			continue
		}
		path := s.path(h)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("blob: open %s: %w", s.dir, err)
		}
		if err := os.Rename(filepath.Join(s.dir, removingDir, e.Name()), path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("blob: open %s: restore %s: %w", s.dir, e.Name(), err)
		}
	}
	return nil
}
