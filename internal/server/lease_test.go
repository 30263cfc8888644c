package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// extendFailStore fails the first LeasesExtend calls (as a deadlock would)
// and records every call.
type extendFailStore struct {
	store.Store
	clk   *clock.Fake
	mu    sync.Mutex
	fail  int // calls left to fail
	calls []extendCall
	call  chan struct{} // a value per call
}

type extendCall struct {
	at      time.Time
	workers []string
	err     error
}

func (s *extendFailStore) LeasesExtend(ctx context.Context, p store.LeasesExtendParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.fail > 0 {
		s.fail--
		err = errors.New("extend leases: ERROR: deadlock detected (SQLSTATE 40P01): " + store.ErrConflict.Error())
	} else {
		err = s.Store.LeasesExtend(ctx, p)
	}
	s.calls = append(s.calls, extendCall{at: s.clk.Now(), workers: slices.Clone(p.WorkerIDs), err: err})
	s.call <- struct{}{}
	return err
}

func (s *extendFailStore) snapshot() []extendCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// TestLeaseExtensionRetriedSoon: when the server's lease extension fails,
// it is tried again within a fraction of the flush period, for the same
// workers (although they sent no heartbeat since), not a whole period later
// for none: two failures in a row would otherwise let the leases of live
// workers expire.
func TestLeaseExtensionRetriedSoon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC))
	fs := &extendFailStore{Store: st, fail: 2, clk: clk, call: make(chan struct{}, 8)}
	const leaseTimeout = 3 * time.Second // flushes every second
	srv, err := server.New(server.Config{Store: fs, Blobs: blobs, LeaseTimeout: leaseTimeout, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"default"}, Capacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	// One heartbeat, then none: the flushes must keep the worker.
	if _, err := c.Heartbeat(ctx, reg.ID, api.HeartbeatRequest{}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nextCall := func(what string) {
		t.Helper()
		select {
		case <-fs.call:
		case <-wctx.Done():
			t.Fatalf("no %s", what)
		}
	}
	// The flush ticker waits; its tick extends the leases and fails.
	if err := clk.BlockUntilContext(wctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(leaseTimeout / 3)
	nextCall("flush after a flush period")
	// Each retry waits its backoff beside the ticker: moving the clock by
	// the backoff (well within the period) retries, without a tick.
	for i, backoff := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		if err := clk.BlockUntilContext(wctx, 2); err != nil {
			t.Fatalf("retry %d is not waiting beside the ticker: %v", i+1, err)
		}
		clk.Advance(backoff)
		nextCall(fmt.Sprintf("retry %d after %v", i+1, backoff))
	}
	calls := fs.snapshot()
	if len(calls) < 3 {
		t.Fatalf("%d lease extensions, want 3 (two failed, one that succeeds): %+v", len(calls), calls)
	}
	for i, call := range calls[:3] {
		if !slices.Equal(call.workers, []string{reg.ID}) {
			t.Errorf("extension %d for workers %v, want [%s]", i, call.workers, reg.ID)
		}
		if (call.err == nil) != (i == 2) {
			t.Errorf("extension %d: err %v", i, call.err)
		}
	}
	if gap := calls[2].at.Sub(calls[0].at); gap >= leaseTimeout/3 {
		t.Errorf("the extension succeeded %v after the first failure, want within one flush period (%v)", gap, leaseTimeout/3)
	}
}
