package engine

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/storeopen"
)

// waitPollEngine returns a local engine on a SQLite store that polls its
// waits only every hour (Config.WaitPoll).
func waitPollEngine(t *testing.T, activity func(int)) (*Engine, store.Store) {
	t.Helper()
	o, err := storeopen.Open(context.Background(), storeopen.Location{DB: filepath.Join(t.TempDir(), "baton.db")}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Store.Close() })
	e, err := New(Config{Store: o.Store, Blobs: o.Blobs, LogOutput: io.Discard, WaitPoll: time.Hour, Activity: activity})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, o.Store
}

func waitFlow(name string, spec store.WaitSpec) *FlowDef {
	return &FlowDef{Name: name, Body: func(fc *FlowCtx, _ json.RawMessage) (any, error) {
		return fc.Wait(spec, func(raw json.RawMessage) (any, error) { return string(raw), nil }).Wait(fc.Context())
	}}
}

// TestWaitPollerWakesAtDeadline: with an hour between polls, a sleep of
// 50ms still ends on time: the poller reads the store at the earliest
// deadline of its waits.
func TestWaitPollerWakesAtDeadline(t *testing.T) {
	t.Parallel()
	e, _ := waitPollEngine(t, nil)
	start := time.Now()
	out, err := e.Start(context.Background(), waitFlow("sleeps", store.WaitSpec{Kind: store.WaitSleep, Duration: "50ms"}), json.RawMessage(`{}`))
	if err != nil || out.Err != nil || out.Run.State != store.RunCompleted {
		t.Fatalf("run: %+v, %v", out, err)
	}
	if wall := time.Since(start); wall < 50*time.Millisecond || wall > 30*time.Second {
		t.Errorf("the run took %s, want the sleep's 50ms", wall)
	}
}

// TestPollWaits: input recorded in the store wakes the run at once when
// the program calls PollWaits, not at the next poll an hour later.
func TestPollWaits(t *testing.T) {
	t.Parallel()
	var busy atomic.Int64 // the engine's work in progress: zero once the poller has read the wait
	e, st := waitPollEngine(t, func(d int) { busy.Add(int64(d)) })
	done := make(chan Outcome, 1)
	created := make(chan string, 1)
	e.cfg.OnRunStart = func(r store.Run) { created <- r.ID } // before the first poll: no race
	go func() {
		out, err := e.Start(context.Background(), waitFlow("waits", store.WaitSpec{Kind: store.WaitInput, Key: "k"}), json.RawMessage(`{}`))
		if err != nil {
			out.Err = err
		}
		done <- out
	}()
	id := <-created
	ctx := context.Background()
	for {
		// The run's process makes the wait; the input must reach that
		// wait, not be kept for a later one.
		trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: id, States: []store.TaskState{store.TaskWaiting}})
		if err != nil {
			t.Fatal(err)
		}
		if len(trs) == 1 && busy.Load() == 0 {
			break // the first poll is done: only PollWaits reads the store again within the hour
		}
		select {
		case out := <-done:
			t.Fatalf("the run ended without waiting: %+v", out)
		case <-time.After(time.Millisecond):
		}
	}
	if _, err := st.InputSend(ctx, store.InputSendParams{RunID: id, Key: "k", Value: json.RawMessage(`"go"`)}); err != nil {
		t.Fatal(err)
	}
	e.PollWaits()
	select {
	case out := <-done:
		if out.Err != nil || out.Result != `"go"` {
			t.Fatalf("run: %+v", out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("PollWaits did not wake the run")
	}
}
