package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// serve runs a server on a fresh SQLite store, with no worker: runs stay
// SCHEDULED until cancelled.
func serve(t *testing.T) *client.Client {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Stop(); st.Close() })
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateCancelWait(t *testing.T) {
	t.Parallel()
	c := serve(t)
	ctx := context.Background()
	req := apitype.CreateRunRequest{Flow: "nobody-serves-me", Parameters: []byte(`{"n":1}`), IdempotencyKey: "k"}
	run, created, err := c.CreateRun(ctx, req)
	if err != nil || !created || run.State != apitype.RunScheduled || run.Queue != apitype.DefaultQueue {
		t.Fatalf("CreateRun = %+v, %v, %v; want a new SCHEDULED run on the default queue", run, created, err)
	}
	again, created, err := c.CreateRun(ctx, req)
	if err != nil || created || again.ID != run.ID {
		t.Errorf("CreateRun with the same key = %s, created %v, %v; want %s again", again.ID, created, err, run.ID)
	}

	// It waits: WaitRun returns with the context's error, and the run as
	// last read (if a read finished before the deadline).
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if r, err := c.WaitRun(short, run.ID); !errors.Is(err, context.DeadlineExceeded) || (r.ID != "" && r.State != apitype.RunScheduled) {
		t.Errorf("WaitRun of a waiting run = %q %s, %v; want SCHEDULED and the deadline", r.ID, r.State, err)
	}

	if r, err := c.CancelRun(ctx, run.ID); err != nil || r.State != apitype.RunCancelled {
		t.Fatalf("CancelRun = %s, %v", r.State, err)
	}
	r, err := c.WaitRun(ctx, run.ID)
	if err != nil || r.State != apitype.RunCancelled || !apitype.Ended(r.State) || r.EndedAt == nil {
		t.Errorf("WaitRun of a cancelled run = %+v, %v", r, err)
	}
	if _, err := c.CancelRun(ctx, run.ID); !client.IsConflict(err) {
		t.Errorf("cancelling again: %v; want a 409", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	c := serve(t)
	ctx := context.Background()
	_, err := c.GetRun(ctx, "no-such-run")
	var ce *client.Error
	if !client.IsNotFound(err) || !errors.As(err, &ce) || ce.Code != apitype.CodeNotFound || client.IsTransient(err) {
		t.Errorf("GetRun of an unknown run: %v; want a 404 *client.Error with code %s", err, apitype.CodeNotFound)
	}
	if _, _, err := c.CreateRun(ctx, apitype.CreateRunRequest{}); !errors.As(err, &ce) || ce.Status != 400 {
		t.Errorf("CreateRun without a flow: %v; want a 400", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	down, err := client.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.ListRuns(ctx, client.ListRunsParams{}); !errors.Is(err, client.ErrUnreachable) || !client.IsTransient(err) {
		t.Errorf("a server that is down: %v; want ErrUnreachable", err)
	}
	for _, bad := range []string{"", "127.0.0.1:8420", "ftp://h"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}
