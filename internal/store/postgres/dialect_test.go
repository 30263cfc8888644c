package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/batonhq/baton/internal/store/sqlcore"
)

// TestWriteTx checks the transactions of the core on PostgreSQL: their
// writes wait for the next read or the COMMIT, and whatever fails (a write
// sent later, a read, the transaction's function) leaves nothing of them.
func TestWriteTx(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := context.Background()
	insert := func(tx sqlcore.Tx, id string) error {
		return tx.Exec(ctx, "INSERT INTO workers (id, name) VALUES ($1, 'n')", id)
	}
	read := func(tx sqlcore.Tx) error {
		var one int
		return tx.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	refused := errors.New("refused")
	for _, c := range []struct {
		name    string
		fn      func(tx sqlcore.Tx) error
		applied bool
	}{
		{"writes only", func(tx sqlcore.Tx) error { return insert(tx, "w") }, true},
		{"write, read, write", func(tx sqlcore.Tx) error {
			if err := insert(tx, "w"); err != nil {
				return err
			}
			if err := read(tx); err != nil {
				return err
			}
			return tx.Exec(ctx, "UPDATE workers SET name = 'm' WHERE id = $1", "w")
		}, true},
		{"a write that fails at commit", func(tx sqlcore.Tx) error {
			if err := insert(tx, "w"); err != nil {
				return err
			}
			if err := read(tx); err != nil {
				return err
			}
			return tx.Exec(ctx, "INSERT INTO no_such_table VALUES (1)")
		}, false},
		{"a write-only batch that fails", func(tx sqlcore.Tx) error {
			if err := insert(tx, "w"); err != nil {
				return err
			}
			return tx.Exec(ctx, "INSERT INTO no_such_table VALUES (1)")
		}, false},
		{"a read that fails", func(tx sqlcore.Tx) error {
			if err := insert(tx, "w"); err != nil {
				return err
			}
			return tx.Query(ctx, func(sqlcore.Rows) error { return nil }, "SELECT * FROM no_such_table")
		}, false},
		{"the function fails", func(tx sqlcore.Tx) error {
			if err := insert(tx, "w"); err != nil {
				return err
			}
			if err := read(tx); err != nil {
				return err
			}
			return refused
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.pool.Exec(ctx, "DELETE FROM workers"); err != nil {
				t.Fatal(err)
			}
			err := dialect{s}.WriteTx(ctx, "test", c.fn)
			if c.applied != (err == nil) {
				t.Fatalf("WriteTx: %v", err)
			}
			var n int
			if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM workers").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if applied := n == 1; applied != c.applied {
				t.Errorf("%d workers after the transaction, want applied=%v", n, c.applied)
			}
			if got := s.pool.Stat().AcquiredConns(); got != 0 {
				t.Errorf("%d connections still acquired", got)
			}
		})
	}
}
