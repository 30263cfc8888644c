package server_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// silentStore hides the backend's notifications (store.Notifier), as when
// they come back late through PostgreSQL.
type silentStore struct{ store.Store }

// TestOwnWritesWakeWaitingClaims: a run created through a server, and the
// distributed task runs an engine's batch queues through it, wake that
// server's waiting claims at once, without waiting for the store's
// notification (none comes here) or a poll interval: the server's clock is
// a fake one that never moves, so no timer can answer a claim.
func TestOwnWritesWakeWaitingClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	sq, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC))
	srv, err := server.New(server.Config{Store: silentStore{sq}, Blobs: blobs, LeaseTimeout: time.Minute, PollInterval: time.Minute,
		Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer func() { ts.Close(); srv.Stop(); sq.Close() }()
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	w, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := w.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"default"}, Tasks: []string{"t"},
		Flows: []api.FlowInfo{{Name: "f"}}, Capacity: 1, Slots: map[string]int{"q": 1}})
	if err != nil {
		t.Fatal(err)
	}
	// A claim waits up to 30 s; the test writes once it waits (on the
	// clock, beside the server's maintenance ticker).
	claim := func(req api.Claim) <-chan api.Claimed {
		out := make(chan api.Claimed, 1)
		go func() {
			got, err := w.Claim(ctx, reg.ID, req)
			if err != nil {
				t.Error(err)
			}
			out <- got
		}()
		return out
	}
	wait := func(what string, ch <-chan api.Claimed) api.Claimed {
		t.Helper()
		select {
		case got := <-ch:
			return got
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the waiting claim did not answer within 10 s", what)
			return api.Claimed{}
		}
	}

	waiting := func(what string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := clk.BlockUntilContext(wctx, 2); err != nil {
			t.Fatalf("%s: the claim is not waiting: %v", what, err)
		}
	}
	runs := claim(api.Claim{Runs: 1, WaitMS: 30000})
	waiting("runs")
	run, _, err := c.CreateRun(ctx, apitype.CreateRunRequest{Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if got := wait("run created", runs); len(got.Runs) != 1 || got.Runs[0].ID != run.ID {
		t.Fatalf("claimed runs %v, want %s", got.Runs, run.ID)
	}

	if _, err := w.EngineStore().RunTransition(ctx, store.RunTransitionParams{ID: run.ID, From: []store.RunState{store.RunPending},
		To: store.RunRunning, Attempt: 1, Owner: &store.Owner{WorkerID: reg.ID, LeaseUntil: time.Now().Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	tasks := claim(api.Claim{Tasks: map[string]int{"q": 1}, WaitMS: 30000})
	waiting("tasks")
	if err := w.EngineStore().BatchWrite(ctx, store.Batch{TaskRuns: []store.TaskRun{{ID: "tr", RunID: run.ID, Key: "t/0", Task: "t",
		Queue: "q", State: store.TaskPending, FlowAttempt: 1, Input: json.RawMessage(`1`), CreatedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if got := wait("task run queued", tasks); len(got.TaskRuns) != 1 || got.TaskRuns[0].ID != "tr" {
		t.Fatalf("claimed task runs %v, want tr", got.TaskRuns)
	}
}
