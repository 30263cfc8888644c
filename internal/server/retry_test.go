package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// staleStore answers the first RunGet of a run with a copy read before
// a concurrent retry changed it.
type staleStore struct {
	store.Store
	mu    sync.Mutex
	stale map[string]store.Run
}

func (s *staleStore) RunGet(ctx context.Context, id string) (store.Run, error) {
	s.mu.Lock()
	r, ok := s.stale[id]
	delete(s.stale, id)
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	return s.Store.RunGet(ctx, id)
}

// TestConcurrentRetryLoserToldTheTruth: of two retries of a CANCELLED run,
// the one that loses is told another retry won and what the run is now,
// not that it is CANCELLED.
func TestConcurrentRetryLoserToldTheTruth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cancelled := store.Run{ID: "r1", Flow: "f", State: store.RunCancelled, Attempt: 1, Queue: "default",
		Parameters: json.RawMessage(`null`), CreatedAt: now, UpdatedAt: now, StartedAt: now, EndedAt: now}
	if err := st.BatchWrite(ctx, store.Batch{Runs: []store.Run{cancelled}}); err != nil {
		t.Fatal(err)
	}
	// The winner's retry.
	if _, err := st.RunTransition(ctx, store.RunTransitionParams{ID: "r1", From: []store.RunState{store.RunCancelled},
		To: store.RunScheduled, NextAttempt: true, Cause: "user"}); err != nil {
		t.Fatal(err)
	}
	b := setupWith(t, &staleStore{Store: st, stale: map[string]store.Run{"r1": cancelled}})
	_, err = b.c.RetryRun(ctx, "r1")
	ce, ok := err.(*client.Error)
	if !ok || ce.Status != http.StatusConflict {
		t.Fatalf("losing retry: %v, want a 409", err)
	}
	if !strings.Contains(ce.Message, "retried by someone else first: it is SCHEDULED now (attempt 2)") ||
		strings.Contains(ce.Message, "CANCELLED") {
		t.Errorf("losing retry told %q", ce.Message)
	}
}
