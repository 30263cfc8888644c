package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
	"github.com/batonhq/baton/internal/transport"
)

// flakyStore is a store whose database can be "down" (every BatchWrite and
// RunTransition fails with store.ErrUnavailable) or can lose the answer of
// the next RunTransition after applying it.
type flakyStore struct {
	store.Store
	down      atomic.Bool
	loseReply atomic.Bool
}

func (f *flakyStore) BatchWrite(ctx context.Context, b store.Batch) error {
	if f.down.Load() {
		return fmt.Errorf("batch write: connection refused: %w", store.ErrUnavailable)
	}
	return f.Store.BatchWrite(ctx, b)
}

func (f *flakyStore) RunTransition(ctx context.Context, p store.RunTransitionParams) (store.Run, error) {
	if f.down.Load() {
		return store.Run{}, fmt.Errorf("transition: connection refused: %w", store.ErrUnavailable)
	}
	r, err := f.Store.RunTransition(ctx, p)
	if err == nil && f.loseReply.Swap(false) {
		return store.Run{}, fmt.Errorf("commit: connection reset: %w", store.ErrUnavailable)
	}
	return r, err
}

func setupFlaky(t *testing.T) (*flakyStore, *httptest.Server, *remote.Client) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{Store: st}
	srv, err := server.New(server.Config{Store: fs, Blobs: blobs, LeaseTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Stop(); st.Close() })
	c, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return fs, ts, c
}

// TestDatabaseUnavailableIs503: the server answers 503 (code unavailable,
// Retry-After) when its database cannot be reached, not 500, so that workers
// can tell a transient outage from a refused write.
func TestDatabaseUnavailableIs503(t *testing.T) {
	t.Parallel()
	fs, ts, c := setupFlaky(t)
	fs.down.Store(true)
	resp, err := http.Post(ts.URL+apitype.Prefix+"/engine/batch", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("batch with the database down: HTTP %d (Retry-After %q), want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	err = c.EngineStore().BatchWrite(context.Background(), store.Batch{})
	var e *transport.Error
	if !errors.As(err, &e) || e.Code != apitype.CodeUnavailable || !transport.IsTransient(err) {
		t.Fatalf("BatchWrite with the database down: %v; want a transient error of code %q", err, apitype.CodeUnavailable)
	}
}

// TestEngineStoreRetries: a worker's engine store resends transiently
// failed requests within RetryFor and while the lease is valid, and a
// resent transition whose first try was applied succeeds.
func TestEngineStoreRetries(t *testing.T) {
	t.Parallel()
	fs, _, c := setupFlaky(t)
	ctx := context.Background()
	run := store.Run{ID: "r1", Flow: "f", State: store.RunRunning, Attempt: 1, Queue: "q", WorkerID: "w1"}
	if _, _, err := fs.RunCreate(ctx, store.RunCreateParams{Run: run}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		retryFor  time.Duration
		leaseGone bool
		wantErr   bool
	}{
		{"retried until the database is back", 10 * time.Second, false, false},
		{"no retry", 0, false, true},
		{"lease lost", 10 * time.Second, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := c.EngineStore()
			es.RetryFor = tt.retryFor
			es.LeaseValid = func() bool { return !tt.leaseGone }
			fs.down.Store(true)
			back := time.AfterFunc(300*time.Millisecond, func() { fs.down.Store(false) })
			defer back.Stop()
			err := es.BatchWrite(ctx, store.Batch{Logs: []store.LogRecord{{RunID: "r1", Message: tt.name, At: time.Now()}}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("BatchWrite: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !transport.IsTransient(err) {
				t.Errorf("BatchWrite: %v, want a transient error", err)
			}
		})
	}

	// The end of the run is applied but its answer is lost: the resend
	// conflicts, and the store reads the run to see that it was applied.
	es := c.EngineStore()
	es.RetryFor = 10 * time.Second
	fs.down.Store(false)
	fs.loseReply.Store(true)
	ended, err := es.RunTransition(ctx, store.RunTransitionParams{ID: "r1", From: []store.RunState{store.RunRunning},
		To: store.RunCompleted, Attempt: 1, Result: []byte(`1`), Cause: "engine"})
	if err != nil || ended.State != store.RunCompleted {
		t.Fatalf("RunTransition with a lost answer = %s, %v; want COMPLETED", ended.State, err)
	}
}

// TestGiveBack: a worker gives back a run it cannot go on executing: the
// run is crashed and rescheduled at once, its subflow runs held by the
// worker crashed; giving it back again is a 409.
func TestGiveBack(t *testing.T) {
	t.Parallel()
	fs, _, c := setupFlaky(t)
	ctx := context.Background()
	lease := time.Now().Add(time.Hour)
	for _, r := range []store.Run{
		{ID: "p", Flow: "f", State: store.RunRunning, Attempt: 1, Queue: "q", WorkerID: "w1", LeaseUntil: lease},
		{ID: "c", Flow: "g", State: store.RunRunning, Attempt: 1, WorkerID: "w1", ParentRunID: "p", ParentStepKey: "g/0"},
		{ID: "gc", Flow: "h", State: store.RunRunning, Attempt: 2, WorkerID: "w1", ParentRunID: "c", ParentStepKey: "h/0"},
		{ID: "done", Flow: "g", State: store.RunCompleted, Attempt: 1, WorkerID: "w1", ParentRunID: "p", ParentStepKey: "g/1"},
		{ID: "other", Flow: "f", State: store.RunRunning, Attempt: 1, Queue: "q", WorkerID: "w2", LeaseUntil: lease},
	} {
		if _, _, err := fs.RunCreate(ctx, store.RunCreateParams{Run: r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.GiveBack(ctx, "w1", "p", 1, "record end of run p: boom"); err != nil {
		t.Fatalf("GiveBack: %v", err)
	}
	want := map[string]struct {
		state   store.RunState
		attempt int
	}{
		"p": {store.RunScheduled, 2}, "c": {store.RunCrashed, 1}, "gc": {store.RunCrashed, 2},
		"done": {store.RunCompleted, 1}, "other": {store.RunRunning, 1},
	}
	for id, w := range want {
		r, err := fs.RunGet(ctx, id)
		if err != nil || r.State != w.state || r.Attempt != w.attempt {
			t.Errorf("run %s: %s attempt %d (%v); want %s attempt %d", id, r.State, r.Attempt, err, w.state, w.attempt)
		}
	}
	if r, _ := fs.RunGet(ctx, "p"); r.Error == nil || !strings.Contains(r.Error.Message, "gave the run back: record end of run p: boom") {
		t.Errorf("run p: error %+v; want it to say the worker gave it back and why", r.Error)
	}
	for _, tt := range []struct {
		worker, run string
		attempt     int
	}{{"w1", "p", 1}, {"w1", "other", 1}, {"w2", "other", 2}} {
		if err := c.GiveBack(ctx, tt.worker, tt.run, tt.attempt, "again"); !transport.IsConflict(err) {
			t.Errorf("GiveBack(%s, %s, %d) = %v; want 409", tt.worker, tt.run, tt.attempt, err)
		}
	}
	var e *transport.Error
	if err := c.GiveBack(ctx, "w2", "other", 0, ""); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Errorf("GiveBack without an attempt = %v; want 400", err)
	}
}
