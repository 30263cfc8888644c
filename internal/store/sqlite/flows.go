package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/batonhq/baton/internal/store"
)

// FlowUpsert records the flows a worker registered; see store.FlowUpsertParams.
func (s *Store) FlowUpsert(ctx context.Context, p store.FlowUpsertParams) error {
	if len(p.Flows) == 0 {
		return nil
	}
	return s.inTx(ctx, "register flows", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO flows (name, parameters, defaults, registered_at)
			VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET parameters = excluded.parameters,
			defaults = excluded.defaults, registered_at = excluded.registered_at`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, f := range p.Flows {
			if _, err := st.ExecContext(ctx, f.Name, encJSON(f.Parameters), encJSON(f.Defaults),
				encTime(nowIfZero(f.RegisteredAt))); err != nil {
				return err
			}
		}
		return nil
	})
}

// FlowGet returns the latest registration of a flow, or store.ErrNotFound.
func (s *Store) FlowGet(ctx context.Context, name string) (store.Flow, error) {
	var (
		f                    = store.Flow{Name: name}
		parameters, defaults []byte
		at                   int64
	)
	err := s.read.QueryRowContext(ctx, "SELECT parameters, defaults, registered_at FROM flows WHERE name = ?", name).
		Scan(&parameters, &defaults, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Flow{}, fmt.Errorf("flow %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Flow{}, translate(err, "get flow %q", name)
	}
	f.Parameters, f.Defaults, f.RegisteredAt = decJSON(parameters), decJSON(defaults), decTime(at)
	return f, nil
}
