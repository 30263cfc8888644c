package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/google/uuid"
)

// BenchmarkBatchWriteTaskRuns measures the fan-out hot path: each iteration
// inserts 1000 new task runs (PENDING) in one BatchWrite, then updates the
// same 1000 rows (COMPLETED with a result) in a second one. The rows/s
// metric counts task-run row writes (2000 per iteration).
//
// The sub-benchmarks differ in the task-run IDs: time-ordered UUIDv7 IDs
// append to the primary-key index, random UUIDv4 IDs scatter over it, so
// every transaction dirties (and writes to the WAL) many more index pages.
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
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
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
