package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"sync"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
)

// The SQLite dialect of the SQL core (internal/store/sqlcore): reads on the
// read pool, write transactions on the single write connection, and the
// syntax of lists (JSON text read with json_each, which needs no variable
// per element).

// syntax is SQLite's SQL for what the dialects write differently. A write
// transaction holds the database's write lock from its start (BEGIN
// IMMEDIATE), so rows need no locks; BINARY, the default collation, is byte
// order.
var syntax = sqlcore.Syntax{
	RunTieBreak: "rowid",                                  // runs_created_at holds it: no sort
	FoldLike:    func(expr string) string { return expr }, // LIKE ignores ASCII case
	// The FTS5 table runs_search (trigram, folding case) finds the rowids
	// of the runs whose columns hold term: a phrase, quoted.
	SearchCandidates: func(a *sqlcore.Args, term, _ string) string {
		return "rowid IN (SELECT rowid FROM runs_search WHERE runs_search MATCH " +
			a.Add(`"`+strings.ReplaceAll(term, `"`, `""`)+`"`) + ")"
	},
	ActiveRunsFrom: "runs INDEXED BY runs_active",
	ASCIILower:     func(expr string) string { return "LOWER(" + expr + ")" }, // ASCII only: no ICU
	In:             func(param string) string { return "IN (SELECT value FROM json_each(" + param + "))" },
	List:           sqlcore.JSONStrings,
	JSONStrings:    func(expr string) string { return "json_each(" + expr + ")" },
	RefsIn: func(a *sqlcore.Args, refs []store.TaskRunRef) string {
		triples := make([][3]string, len(refs))
		for i, r := range refs {
			triples[i] = [3]string{r.RunID, r.Key, r.ID}
		}
		b, _ := json.Marshal(triples) // strings always marshal
		return "(run_id, key, id) IN (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(" +
			a.Add(string(b)) + "))"
	},
}

// dialect is the sqlcore.Dialect of a Store: reads on its read pool,
// writes on its write connection.
type dialect struct {
	sqlcore.SQLDB
	s *Store
}

func (d dialect) Translate(err error, format string, args ...any) error {
	return translate(err, format, args...)
}

// WriteTx runs fn in a write transaction (BEGIN IMMEDIATE) and publishes
// its notifications to the subscribers after the commit.
func (d dialect) WriteTx(ctx context.Context, op string, fn func(sqlcore.Tx) error) error {
	s := d.s
	t := &tx{s: s}
	t.Prepare = t.stmt
	err := s.inTx(ctx, op, func(stx *sql.Tx) error {
		t.Tx = stx
		return fn(t)
	})
	s.cache.prepareLater(ctx, s.write, t.unprepared)
	if err != nil {
		return err
	}
	s.notify.Publish(t.notes.List)
	return nil
}

// tx is a write transaction of the core. Its statements are prepared once
// on the write connection (stmtCache) and bound to the transaction.
type tx struct {
	sqlcore.SQLTx
	s          *Store
	notes      notes
	unprepared []string // statements this transaction had to prepare for itself
}

var _ sqlcore.Tx = (*tx)(nil)

// stmt returns q prepared, bound to the transaction.
func (t *tx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := t.s.cache.get(q); st != nil {
		return t.Tx.StmtContext(ctx, st), nil
	}
	// The transaction holds the write connection: the statement is
	// prepared on it for the transaction now, and for the others after.
	t.unprepared = append(t.unprepared, q)
	return t.Tx.PrepareContext(ctx, q)
}

func (t *tx) Notes() *sqlcore.Notes { return &t.notes }

// WriteBatch writes b with the prepared multi-row statements (writeBatch);
// it notes what b announces only while somebody listens.
func (t *tx) WriteBatch(ctx context.Context, b *store.Batch) error {
	if err := t.s.writeBatch(ctx, t.Tx, b); err != nil {
		return err
	}
	if t.s.notify.Active() {
		for i := range b.Runs {
			t.notes.AddRun(&b.Runs[i])
		}
		for i := range b.TaskRuns {
			if tr := &b.TaskRuns[i]; tr.Queue != "" && tr.State.Waiting() {
				t.notes.Add("tasks", tr.Queue)
			}
		}
	}
	return nil
}

// AwaitClaims does nothing: claims are write transactions, which exclude
// each other.
func (t *tx) AwaitClaims(context.Context, string) error { return nil }

// maxCachedStmts bounds the statements of stmtCache: the core's write
// statements are a few dozen fixed texts.
const maxCachedStmts = 256

// stmtCache holds the statements of the core's write transactions,
// prepared on the write connection by text. A transaction (which holds
// that one connection) cannot prepare on it for the others: it prepares a
// missing statement for itself, and the statement is prepared for the
// cache once the transaction ended.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (c *stmtCache) get(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[q]
}

// prepareLater prepares qs on db for the cache (errors are left to the
// next transaction that needs them).
func (c *stmtCache) prepareLater(ctx context.Context, db *sql.DB, qs []string) {
	for _, q := range qs {
		c.mu.Lock()
		_, ok := c.m[q]
		full := len(c.m) >= maxCachedStmts
		c.mu.Unlock()
		if ok || full {
			continue
		}
		st, err := db.PrepareContext(context.WithoutCancel(ctx), q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, ok := c.m[q]; ok {
			st.Close() // prepared meanwhile by another transaction's end
		} else {
			if c.m == nil {
				c.m = map[string]*sql.Stmt{}
			}
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}
