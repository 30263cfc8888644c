// Package blob stores large results in a content-addressed directory: each
// blob lives in a file named by the SHA-256 of its content, so writing the
// same content twice is free and a reference never dangles after a crash.
package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const refPrefix = "sha256:"

// Store is a directory of blobs. The zero value is not usable; use Open.
// A Store is safe for concurrent use by goroutines and processes.
type Store struct {
	dir string
}

// Open returns a blob store rooted at dir, creating it if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blob: create %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// At returns the store in dir without creating the directory, for readers:
// a blob that is not there is an error when it is read.
func At(dir string) *Store { return &Store{dir: dir} }

// Dir returns the root directory of the store.
func (s *Store) Dir() string { return s.dir }

// Put stores data durably (written, synced and renamed into place) and
// returns its reference, "sha256:<hex>".
func (s *Store) Put(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	path := s.path(h)
	if _, err := os.Stat(path); err == nil {
		return refPrefix + h, nil
	}
	return s.PutReader(bytes.NewReader(data)) // hashes again: cheap beside the write and sync
}

// PutReader stores the content read from r until EOF, like Put, without
// holding it in memory: it is hashed while it is written to a temporary
// file, which is synced and renamed into place. An error reading r stores
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
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		tmp.Close()
		return "", fmt.Errorf("blob: put: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("blob: put: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	path := s.path(sum)
	if _, err := os.Stat(path); err == nil {
		return refPrefix + sum, nil
	}
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
	h, err := s.hash(ref)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.path(h))
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

// hash returns the hex digest of a valid reference.
func (s *Store) hash(ref string) (string, error) {
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
	h, ok := strings.CutPrefix(ref, refPrefix)
	if !ok || len(h) != 64 {
		return nil, fmt.Errorf("blob: invalid reference %q", ref)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return nil, fmt.Errorf("blob: invalid reference %q", ref)
	}
	data, err := os.ReadFile(s.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob: %s is missing from %s", ref, s.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: get: %w", err)
	}
	return data, nil
}

func (s *Store) path(h string) string {
	return filepath.Join(s.dir, "sha256", h[:2], h[2:])
}

// Delete removes a blob. Deleting a missing blob is not an error.
func (s *Store) Delete(ref string) error {
	h, ok := strings.CutPrefix(ref, refPrefix)
	if !ok || len(h) != 64 {
		return fmt.Errorf("blob: invalid reference %q", ref)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return fmt.Errorf("blob: invalid reference %q", ref)
	}
	if err := os.Remove(s.path(h)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("blob: delete: %w", err)
	}
	return nil
}
