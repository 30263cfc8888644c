// Package storeopen opens the store that a command or a program names: a
// location (the --db flag, $BATON_DB, else $BATON_HOME/baton.db, else
// ~/.baton/baton.db) that is a SQLite file, or a URL whose scheme a backend
// linked into the program serves, with the store's blob directory.
//
// SQLite is built in: every program built on package baton can run flows on
// an embedded store. Other backends are procured from a registry that a
// program fills by linking them (river's DriverProcurer does the same for
// its CLI): the PostgreSQL backend registers itself when the program imports
// github.com/batonhq/baton/postgres, which cmd/baton does and a user's
// program may do. So a user's program does not link a database driver it
// does not use, and a location whose backend is missing is refused with an
// error saying how to link it (ErrBackendMissing).
package storeopen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// Backend is a kind of store that locations name with a URL scheme, such as
// PostgreSQL (postgres://, postgresql://).
type Backend struct {
	// Name names the backend in messages: "PostgreSQL".
	Name string
	// Schemes are the URL schemes of its locations, in lower case.
	Schemes []string
	// Open opens (and migrates) the store at url.
	Open func(ctx context.Context, url string) (store.Store, error)
}

var registry = struct {
	sync.RWMutex
	byScheme map[string]Backend
}{byScheme: map[string]Backend{}}

// Register makes b's schemes openable in this program. It is meant for the
// init function of the package that links the backend, and panics when a
// scheme is registered twice or b is incomplete.
func Register(b Backend) {
	if b.Name == "" || len(b.Schemes) == 0 || b.Open == nil {
		panic("storeopen.Register: a backend needs a name, schemes and an Open function")
	}
	registry.Lock()
	defer registry.Unlock()
	for _, s := range b.Schemes {
		if _, dup := registry.byScheme[s]; dup {
			panic("storeopen.Register: scheme " + s + " registered twice")
		}
		registry.byScheme[s] = b
	}
}

// Schemes returns the URL schemes of the registered backends, sorted.
func Schemes() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.byScheme))
	for s := range registry.byScheme {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// known are the backends Baton ships, by scheme: the package whose import
// links each, for the message of a location whose backend is missing.
var known = map[string]struct{ name, pkg string }{
	"postgres":   {"PostgreSQL", "github.com/batonhq/baton/postgres"},
	"postgresql": {"PostgreSQL", "github.com/batonhq/baton/postgres"},
}

// ErrBackendMissing is wrapped by the error of a location whose URL scheme
// no backend linked into this program serves.
var ErrBackendMissing = errors.New("store backend not linked")

// ErrNoStore is wrapped by the error of opening for reading a SQLite store
// that does not exist.
var ErrNoStore = errors.New("no Baton store")

// schemeRE matches the scheme of a URL location (a SQLite path has none).
var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// Scheme returns the URL scheme of a location in lower case, or "" for a
// SQLite file path.
func Scheme(location string) string {
	m := schemeRE.FindStringSubmatch(location)
	if m == nil {
		return ""
	}
	return strings.ToLower(m[1])
}

// Location says which store to open; its zero value (with Getenv) is the
// default store.
type Location struct {
	// DB is the store: a SQLite file or a URL of a linked backend. Empty
	// means $BATON_DB, else $BATON_HOME/baton.db, else ~/.baton/baton.db.
	DB string
	// Blobs is the blob directory. Empty means the "blobs" directory beside
	// a SQLite file, or $BATON_HOME/blobs (else ~/.baton/blobs) for a URL.
	Blobs string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

func (l Location) getenv(k string) string {
	if l.Getenv == nil {
		return os.Getenv(k)
	}
	return l.Getenv(k)
}

// home returns $BATON_HOME, else ~/.baton.
func (l Location) home() (string, error) {
	if home := l.getenv("BATON_HOME"); home != "" {
		return home, nil
	}
	dir, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory (set BATON_HOME or --db): %w", err)
	}
	return filepath.Join(dir, ".baton"), nil
}

// DBPath resolves the store's location (see DB).
func (l Location) DBPath() (string, error) {
	if l.DB != "" {
		return l.DB, nil
	}
	if p := l.getenv("BATON_DB"); p != "" {
		return p, nil
	}
	home, err := l.home()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "baton.db"), nil
}

// BlobDir resolves the blob directory of the store at db (see Blobs).
func (l Location) BlobDir(db string) (string, error) {
	if l.Blobs != "" {
		return l.Blobs, nil
	}
	if Scheme(db) == "" {
		return filepath.Join(filepath.Dir(db), "blobs"), nil
	}
	home, err := l.home()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "blobs"), nil
}

// Opened is an open store.
type Opened struct {
	Store store.Store
	Blobs *blob.Store
	// DB is the store's location: a SQLite file's absolute path, or the URL.
	DB string
	// Created reports that a SQLite store was created by this Open.
	Created bool
}

// Open opens the store at l and its blob directory. With create, a SQLite
// store that does not exist yet is created (Opened.Created) and checked
// writable with one small write, so that a read-only file or directory is
// reported before a run starts; without, it is an error wrapping ErrNoStore
// and nothing is created. IsUserError tells the errors that are the
// user's to fix.
func Open(ctx context.Context, l Location, create bool) (Opened, error) {
	db, err := l.DBPath()
	if err != nil {
		return Opened{}, err
	}
	o := Opened{DB: db}
	if scheme := Scheme(db); scheme != "" {
		registry.RLock()
		b, ok := registry.byScheme[scheme]
		registry.RUnlock()
		if !ok {
			return Opened{}, missing(scheme, db)
		}
		if o.Store, err = b.Open(ctx, db); err != nil {
			return Opened{}, err
		}
	} else {
		if o.DB, err = filepath.Abs(db); err != nil {
			o.DB = db
		}
		_, serr := os.Stat(o.DB)
		switch {
		case errors.Is(serr, os.ErrNotExist) && !create:
			return Opened{}, fmt.Errorf("%w at %s: the file does not exist (check --db or BATON_DB; "+
				"running a flow, baton server or baton dev creates one)", ErrNoStore, o.DB)
		case errors.Is(serr, os.ErrNotExist):
			o.Created = true
		}
		sst, err := sqlite.Open(ctx, db)
		if err != nil {
			return Opened{}, err
		}
		if create {
			if err := sst.CheckWritable(ctx); err != nil {
				sst.Close()
				return Opened{}, err
			}
		}
		o.Store = sst
	}
	dir, err := l.BlobDir(o.DB)
	if err != nil {
		o.Store.Close()
		return Opened{}, err
	}
	if _, serr := os.Stat(dir); create || serr == nil {
		o.Blobs, err = blob.Open(dir)
	} else {
		o.Blobs = blob.At(dir) // reading: no blob was ever written there
	}
	if err != nil {
		o.Store.Close()
		return Opened{}, err
	}
	return o, nil
}

// missing is the error of a location whose backend is not linked.
func missing(scheme, db string) error {
	if k, ok := known[scheme]; ok {
		return fmt.Errorf("%w: %s is a %s store, and this program does not include %s: add "+
			"import _ %q to its main package, or use the baton command (baton runs ... --db URL; "+
			"or baton server --db URL with this program's worker command)", ErrBackendMissing, Redact(db), k.name, k.name, k.pkg)
	}
	have := append([]string{"a SQLite file path"}, Schemes()...)
	for i := 1; i < len(have); i++ {
		have[i] += "://"
	}
	return fmt.Errorf("%w: no store backend serves %s:// URLs (%s); this program opens: %s",
		ErrBackendMissing, scheme, Redact(db), strings.Join(have, ", "))
}

// IsUserError reports whether err, from Open, is about what the user named
// rather than a failure of the store: a path that cannot be used, a store
// that does not exist (reading), a database that is not a Baton store or
// was migrated by a newer Baton, or a backend this program does not link.
func IsUserError(err error) bool {
	return slices.ContainsFunc([]error{store.ErrNotBatonStore, store.ErrSchemaTooNew, sqlite.ErrUnusablePath,
		ErrNoStore, ErrBackendMissing}, func(target error) bool { return errors.Is(err, target) })
}

// Redact hides the password of a URL location for messages.
func Redact(db string) string {
	u, err := url.Parse(db)
	if err != nil || u.User == nil {
		return db
	}
	return u.Redacted()
}
