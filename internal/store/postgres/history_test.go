package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// TestHistoryTriggers: the database itself refuses to rewrite a run's
// history, whatever SQL a writer sends: no UPDATE of any column (also
// through an upsert), no TRUNCATE, no DELETE while the run exists.
func TestHistoryTriggers(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := context.Background()
	r := store.Run{ID: "R", Flow: "f", State: store.RunScheduled, Attempt: 1, Queue: "q"}
	if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: r, Message: "created"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"UPDATE run_history SET actor = 'mallory'",
		"UPDATE run_history SET payload = NULL WHERE run_id = 'R'",
		"DELETE FROM run_history",
		"DELETE FROM run_history WHERE run_id = 'R'",
		"TRUNCATE run_history",
		`INSERT INTO run_history (seq, run_id, at, actor, action) OVERRIDING SYSTEM VALUE
			SELECT seq, run_id, at, 'mallory', action FROM run_history
			ON CONFLICT (seq) DO UPDATE SET actor = excluded.actor`,
	} {
		_, err := s.pool.Exec(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the trigger's refusal", q, err)
		}
	}
	h, err := s.HistoryList(ctx, store.HistoryListParams{RunID: "R"})
	if err != nil || len(h) != 1 || h[0].Actor != store.SystemActor || h[0].Action != store.ActionCreated {
		t.Fatalf("history after refused rewrites = %+v, %v; want the creation entry unchanged", h, err)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM runs WHERE id = 'R'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM run_history WHERE run_id = 'R'"); err != nil {
		t.Errorf("deleting the history of a deleted run: %v", err)
	}
}
