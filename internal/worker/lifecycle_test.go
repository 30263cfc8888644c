package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/startstop"
	"github.com/batonhq/baton/internal/worker"
)

// TestWorkerLifecycle: Stop before Start does nothing; Start registers the
// worker and is safe to call twice; concurrent Stops return once the
// worker has deregistered; a stopped worker does not start again.
func TestWorkerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, srv := serveSQLite(t)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Stop(); st.Close() })
	rc, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := progcmd.ProgramOf("", twoMaps)
	w, err := worker.New(worker.Config{Client: rc, Name: "lifecycle", Flows: p.Flows, Tasks: p.Tasks,
		Logger: slog.New(slog.DiscardHandler), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	registered := func() int {
		t.Helper()
		ws, err := st.WorkerList(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return len(ws)
	}
	w.Stop() // before Start: nothing
	if n := registered(); n != 0 {
		t.Fatalf("%d workers registered before Start", n)
	}
	for range 2 {
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := registered(); n != 1 || w.ID() == "" {
		t.Fatalf("%d workers registered after two Starts (ID %q), want one", n, w.ID())
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); w.Stop() }()
	}
	wg.Wait()
	if n := registered(); n != 0 {
		t.Fatalf("%d workers registered once Stop returned, want it deregistered", n)
	}
	w.Stop()
	if err := w.Start(ctx); !errors.Is(err, startstop.ErrStopped) {
		t.Fatalf("Start after Stop = %v, want startstop.ErrStopped", err)
	}
}
