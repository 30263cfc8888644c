package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
	"github.com/batonhq/baton/internal/worker"
)

// retryLater fails every attempt, and its flow retries it after an hour.
var retryLater = baton.Flow("worker-test.retry-later", func(baton.Context, int) (int, error) {
	return 0, errors.New("not yet")
}, baton.FlowRetries(3, time.Hour))

// TestShutdownReleasesRunAwaitingRetry: a worker that shuts down while its
// run waits out the flow's retry delay gives the run back when it
// deregisters: SCHEDULED for the next attempt, held by nobody, instead of
// AWAITING_RETRY forever.
func TestShutdownReleasesRunAwaitingRetry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, LeaseTimeout: 30 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	cl, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	flows, tasks := baton.Definitions(retryLater)
	wk, err := worker.New(worker.Config{Client: cl, Name: t.Name(), Queues: []string{api.DefaultQueue},
		Flows: flows, Tasks: tasks, ShutdownGrace: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- wk.Run(wctx) }()

	run, _, err := cl.CreateRun(ctx, api.CreateRun{Flow: "worker-test.retry-later"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r, err := st.RunGet(ctx, run.ID)
		if err == nil && r.State == store.RunAwaitingRetry {
			if r.WorkerID == "" {
				t.Fatalf("AWAITING_RETRY run on a worker has no worker: %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run is %s (%v), want AWAITING_RETRY", r.State, err)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	r, err := st.RunGet(ctx, run.ID)
	if err != nil || r.State != store.RunScheduled || r.Attempt != 2 || r.WorkerID != "" || !r.LeaseUntil.IsZero() {
		t.Fatalf("run after its worker shut down = %s attempt %d worker %q lease %v (%v); want SCHEDULED at attempt 2, held by nobody",
			r.State, r.Attempt, r.WorkerID, r.LeaseUntil, err)
	}
}
