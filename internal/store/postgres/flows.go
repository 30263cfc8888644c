package postgres

import (
	"context"

	"github.com/batonhq/baton/internal/store"
)

// FlowUpsert records the flows a worker registered in one statement; see
// store.FlowUpsertParams.
func (s *Store) FlowUpsert(ctx context.Context, p store.FlowUpsertParams) error {
	if len(p.Flows) == 0 {
		return nil
	}
	// One row per name (the last one wins): a statement may not update a
	// row twice.
	last := map[string]int{}
	for i, f := range p.Flows {
		last[f.Name] = i
	}
	var (
		names            []string
		parameters, defs []*string
		registered       []int64
	)
	for i, f := range p.Flows {
		if last[f.Name] != i {
			continue
		}
		names = append(names, f.Name)
		parameters = append(parameters, encJSON(f.Parameters))
		defs = append(defs, encJSON(f.Defaults))
		registered = append(registered, encTime(nowIfZero(f.RegisteredAt)))
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO flows (name, parameters, defaults, registered_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
		ON CONFLICT (name) DO UPDATE SET parameters = excluded.parameters, defaults = excluded.defaults,
		registered_at = excluded.registered_at`, names, parameters, defs, registered)
	return translate(err, "register flows")
}

// FlowGet returns the latest registration of a flow, or store.ErrNotFound.
func (s *Store) FlowGet(ctx context.Context, name string) (store.Flow, error) {
	var (
		parameters, defaults *string
		at                   int64
	)
	err := s.pool.QueryRow(ctx, "SELECT parameters, defaults, registered_at FROM flows WHERE name = $1", name).
		Scan(&parameters, &defaults, &at)
	if err != nil { // pgx.ErrNoRows becomes store.ErrNotFound
		return store.Flow{}, translate(err, "get flow %q", name)
	}
	return store.Flow{Name: name, Parameters: decJSON(parameters), Defaults: decJSON(defaults), RegisteredAt: decTime(at)}, nil
}
