package sqlite

import (
	"context"
	"testing"

	"github.com/batonhq/baton/internal/store/sqlcore"
)

// TestStatementCache checks that the statements of the core's write
// transactions are prepared once on the write connection: a transaction
// prepares what it lacks for itself, and the cache holds it for the next.
func TestStatementCache(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	const q = "SELECT count(*) FROM workers WHERE id = $1"
	d := dialect{SQLDB: sqlcore.SQLDB{DB: s.read}, s: s}
	for i := range 3 {
		var n int
		var cached bool
		err := d.WriteTx(ctx, "test", func(tx sqlcore.Tx) error {
			cached = s.cache.get(q) != nil
			return tx.QueryRow(ctx, q, "w").Scan(&n)
		})
		if err != nil || n != 0 {
			t.Fatalf("transaction %d: %d, %v", i, n, err)
		}
		if cached != (i > 0) {
			t.Errorf("transaction %d: statement cached before: %v", i, cached)
		}
	}
}
