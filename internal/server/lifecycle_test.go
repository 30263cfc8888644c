package server_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/startstop"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// TestServerLifecycle: Stop before Start does nothing (the server still
// starts afterwards); Start twice starts once; concurrent Stops both return
// once the background work has ended (goleak checks it at the end); a
// stopped server does not start again.
func TestServerLifecycle(t *testing.T) {
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
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler), Retention: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for range 2 {
		if err := srv.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); srv.Stop() }()
	}
	wg.Wait()
	if err := srv.Start(ctx); !errors.Is(err, startstop.ErrStopped) {
		t.Fatalf("Start after Stop = %v, want startstop.ErrStopped", err)
	}
}
