package server_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// extendFailStore fails the first LeasesExtend calls (as a deadlock would)
// and records every call.
type extendFailStore struct {
	store.Store
	mu    sync.Mutex
	fail  int // calls left to fail
	calls []extendCall
}

type extendCall struct {
	at      time.Time
	workers []string
	err     error
}

func (s *extendFailStore) LeasesExtend(ctx context.Context, workerIDs []string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.fail > 0 {
		s.fail--
		err = errors.New("extend leases: ERROR: deadlock detected (SQLSTATE 40P01): " + store.ErrConflict.Error())
	} else {
		err = s.Store.LeasesExtend(ctx, workerIDs, until)
	}
	s.calls = append(s.calls, extendCall{at: time.Now(), workers: slices.Clone(workerIDs), err: err})
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
	fs := &extendFailStore{Store: st, fail: 2}
	const leaseTimeout = 3 * time.Second // flushes every second
	srv, err := server.New(server.Config{Store: fs, Blobs: blobs, LeaseTimeout: leaseTimeout})
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
	deadline := time.Now().Add(10 * time.Second)
	var calls []extendCall
	for {
		calls = fs.snapshot()
		if len(calls) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(calls) < 3 {
		t.Fatalf("%d lease extensions in 10 s, want 3 (two failed, one that succeeds): %+v", len(calls), calls)
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
