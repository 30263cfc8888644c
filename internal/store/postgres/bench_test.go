package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/google/uuid"
)

// BenchmarkBatchWriteTaskRuns is the PostgreSQL twin of the SQLite
// benchmark of the same name: each iteration inserts 1000 new task runs
// (PENDING) in one BatchWrite, then updates the same 1000 rows (COMPLETED
// with a result) in a second one. The rows/s metric counts task-run row
// writes (2000 per iteration).
func BenchmarkBatchWriteTaskRuns(b *testing.B) {
	for _, ids := range []struct {
		name string
		gen  func() string
	}{
		{"uuidv7", func() string { return uuid.Must(uuid.NewV7()).String() }},
		{"uuidv4", uuid.NewString},
	} {
		b.Run(ids.name, func(b *testing.B) { benchBatchWriteTaskRuns(b, ids.gen) })
	}
}

func benchBatchWriteTaskRuns(b *testing.B, newID func() string) {
	ctx := context.Background()
	s := openStore(b)
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

// BenchmarkBatchWriteStep measures the latency of a small commit: one task
// run, one event and one log line (a step of a flow).
func BenchmarkBatchWriteStep(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
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
