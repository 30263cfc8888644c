package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/worker"
)

// retryLater fails every attempt, and its flow retries it after an hour.
var retryLater = baton.Flow("worker-test.retry-later", func(baton.Context, int) (int, error) {
	return 0, errors.New("not yet")
}, baton.FlowRetries(3, time.Hour))

// startRetryLater serves a fresh SQLite store and runs a worker of
// retryLater that executes one flow run at a time; it returns the store, a client, and a function that stops the
// worker and returns what its Run returned.
func startRetryLater(t *testing.T) (store.Store, *client.Client, func() error) {
	t.Helper()
	ctx := context.Background()
	st, srv := serveSQLite(t)
	ts := httptest.NewServer(srv.Handler())
	cl, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := progcmd.ProgramOf("", retryLater)
	flows, tasks := p.Flows, p.Tasks
	wk, err := worker.New(worker.Config{Client: rc, Name: t.Name(), Queues: []string{apitype.DefaultQueue},
		Flows: flows, Tasks: tasks, Concurrency: 1, ShutdownGrace: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- wk.Run(wctx) }()
	var werr error
	stopped := false
	stopWorker := func() error {
		if !stopped {
			stopped = true
			stop()
			werr = <-done
		}
		return werr
	}
	t.Cleanup(func() {
		if err := stopWorker(); err != nil {
			t.Errorf("worker: %v", err)
		}
		ts.Close()
		srv.Stop()
		st.Close()
	})
	return st, cl, stopWorker
}

// awaitingRetry creates a run of retryLater and waits until its worker
// waits out the retry delay of its first attempt.
func awaitingRetry(t *testing.T, st store.Store, cl *client.Client) string {
	t.Helper()
	ctx := context.Background()
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: "worker-test.retry-later"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r, err := st.RunGet(ctx, run.ID)
		if err == nil && r.State == store.RunAwaitingRetry {
			if r.WorkerID == "" {
				t.Fatalf("AWAITING_RETRY run on a worker has no worker: %+v", r)
			}
			return run.ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("run is %s (%v), want AWAITING_RETRY", r.State, err)
		}
	}
}

// TestShutdownReleasesRunAwaitingRetry: a worker that shuts down while its
// run waits out the flow's retry delay gives the run back when it
// deregisters: SCHEDULED for the next attempt, held by nobody, instead of
// AWAITING_RETRY forever.
func TestShutdownReleasesRunAwaitingRetry(t *testing.T) {
	t.Parallel()
	st, cl, stopWorker := startRetryLater(t)
	id := awaitingRetry(t, st, cl)
	if err := stopWorker(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	r, err := st.RunGet(context.Background(), id)
	if err != nil || r.State != store.RunScheduled || r.Attempt != 2 || r.WorkerID != "" || !r.LeaseUntil.IsZero() {
		t.Fatalf("run after its worker shut down = %s attempt %d worker %q lease %v (%v); want SCHEDULED at attempt 2, held by nobody",
			r.State, r.Attempt, r.WorkerID, r.LeaseUntil, err)
	}
}

// TestCancelRunAwaitingRetryOnWorker: cancelling a run whose worker waits
// out its retry delay stops the wait: the run is CANCELLING while its
// worker holds it and the worker records CANCELLED within a second,
// instead of holding a slot until the delay ends.
func TestCancelRunAwaitingRetryOnWorker(t *testing.T) {
	t.Parallel()
	st, cl, _ := startRetryLater(t)
	id := awaitingRetry(t, st, cl)
	ctx := context.Background()
	v, err := cl.CancelRun(ctx, id)
	if err != nil || v.State != "CANCELLING" {
		t.Fatalf("cancel = %+v, %v; want CANCELLING", v, err)
	}
	start := time.Now()
	for {
		r, err := st.RunGet(ctx, id)
		if err == nil && r.State == store.RunCancelled {
			if r.Error == nil || r.Error.Kind != "cancelled" {
				t.Errorf("cancelled run's error = %+v, want kind cancelled", r.Error)
			}
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("run is %s (%v) 5 s after the cancel, want CANCELLED", r.State, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("CANCELLED %s after the cancel, want within a second", took)
	}
	// The worker's only slot is free: it takes the next run.
	awaitingRetry(t, st, cl)
}
