// Package storebench holds the benchmarks that every store.Store backend
// runs on a store it opens, so that the backends' figures compare:
//
//	func BenchmarkStore(b *testing.B) {
//		storebench.Run(b, func(b *testing.B) store.Store { ... })
//	}
//
// BatchWriteTaskRuns measures the fan-out hot path: each iteration inserts
// 1000 new task runs (PENDING) in one BatchWrite, then updates the same 1000
// rows (COMPLETED with a result) in a second one; its rows/s metric counts
// task-run row writes (2000 per iteration). Its sub-benchmarks differ in the
// task-run IDs: time-ordered UUIDv7 IDs append to the primary-key index,
// random UUIDv4 IDs scatter over it, so every transaction dirties (and, on
// SQLite, writes to the WAL) many more index pages. BatchWriteStep measures
// the latency of a small commit: one task run, one event and one log line
// (a step of a flow). RunTransition measures a run's conditional state
// change (a run's start or end), and JournalList the read of a run's
// journal of 100 steps that replay does.
package storebench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/google/uuid"
)

// Run runs the benchmarks as sub-benchmarks of b. open returns a new, empty
// store; Run closes it.
func Run(b *testing.B, open func(b *testing.B) store.Store) {
	for _, bm := range []struct {
		name string
		fn   func(b *testing.B, s store.Store)
	}{
		{"BatchWriteTaskRuns/uuidv7", func(b *testing.B, s store.Store) {
			batchWriteTaskRuns(b, s, func() string { return uuid.Must(uuid.NewV7()).String() })
		}},
		{"BatchWriteTaskRuns/uuidv4", func(b *testing.B, s store.Store) { batchWriteTaskRuns(b, s, uuid.NewString) }},
		{"BatchWriteStep", batchWriteStep},
		{"RunTransition", runTransition},
		{"RunCreate", runCreate},
		{"JournalList", journalList},
	} {
		b.Run(bm.name, func(b *testing.B) {
			s := open(b)
			defer s.Close()
			bm.fn(b, s)
		})
	}
}

func batchWriteTaskRuns(b *testing.B, s store.Store, newID func() string) {
	ctx := context.Background()
	const batch = 1000
	trs := make([]store.TaskRun, batch)
	base := time.Now()
	input := json.RawMessage(`{"item":12345,"name":"some input value"}`)
	result := json.RawMessage(`{"ok":true,"value":"some result value of moderate size"}`)
	n := 0
	for b.Loop() {
		for i := range trs {
			n++
			trs[i] = store.TaskRun{
				ID: newID(), RunID: "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e", Key: fmt.Sprintf("fanout/%d", n),
				Task: "process", State: store.TaskPending, FlowAttempt: 1,
				InputHash: "sha256:0123456789abcdef0123456789abcdef", Input: input,
				CreatedAt: base.Add(time.Duration(n)),
			}
		}
		if err := s.BatchWrite(ctx, store.Batch{TaskRuns: trs}); err != nil {
			b.Fatal(err)
		}
		for i := range trs {
			trs[i].State = store.TaskCompleted
			trs[i].Attempts = 1
			trs[i].Result = result
			trs[i].StartedAt = base
			trs[i].EndedAt = base.Add(time.Millisecond)
		}
		if err := s.BatchWrite(ctx, store.Batch{TaskRuns: trs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2*batch*b.N)/b.Elapsed().Seconds(), "rows/s")
}

func batchWriteStep(b *testing.B, s store.Store) {
	ctx := context.Background()
	n := 0
	for b.Loop() {
		n++
		id := uuid.Must(uuid.NewV7()).String()
		if err := s.BatchWrite(ctx, store.Batch{
			TaskRuns: []store.TaskRun{{ID: id, RunID: "r", Key: fmt.Sprintf("k/%d", n), State: store.TaskCompleted,
				Result: json.RawMessage(`1`), CreatedAt: time.Now()}},
			Events: []store.Event{{RunID: "r", TaskRunID: id, From: "RUNNING", To: "COMPLETED", At: time.Now()}},
			Logs:   []store.LogRecord{{RunID: "r", TaskRunID: id, Message: "done", At: time.Now()}},
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// runTransition moves one run back and forth between RUNNING and
// AWAITING_RETRY, a conditional update with its event per iteration.
func runTransition(b *testing.B, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: "r", Flow: "f",
		State: store.RunRunning, Attempt: 1}}); err != nil {
		b.Fatal(err)
	}
	from, to := store.RunRunning, store.RunAwaitingRetry
	for b.Loop() {
		if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "r", From: []store.RunState{from},
			To: to, Cause: "engine"}); err != nil {
			b.Fatal(err)
		}
		from, to = to, from
	}
}

// runCreate creates one run per iteration, as POST /api/v1/runs does,
// with parameters the runs list's search indexes (migration 0014).
func runCreate(b *testing.B, s store.Store) {
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		params := json.RawMessage(fmt.Sprintf(`{"city":"Lyon","batch":"batch-%05d","n":%d}`, i/100, i))
		if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: uuid.Must(uuid.NewV7()).String(),
			Flow: "etl.daily", State: store.RunScheduled, Queue: "default", Parameters: params}}); err != nil {
			b.Fatal(err)
		}
	}
}

func journalList(b *testing.B, s store.Store) {
	ctx := context.Background()
	trs := make([]store.TaskRun, 100)
	for i := range trs {
		trs[i] = store.TaskRun{ID: uuid.Must(uuid.NewV7()).String(), RunID: "r", Key: fmt.Sprintf("step/%d", i),
			Task: "t", State: store.TaskCompleted, Attempts: 1, FlowAttempt: 1, InputHash: "h",
			Result: json.RawMessage(`{"value":42}`), CreatedAt: time.Now()}
	}
	if err := s.BatchWrite(ctx, store.Batch{TaskRuns: trs}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if js, err := s.JournalList(ctx, "r"); err != nil || len(js) != len(trs) {
			b.Fatalf("JournalList: %d entries, %v", len(js), err)
		}
	}
}
