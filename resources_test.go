package baton

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

func TestResourcesOption(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, int) (int, error) { return 0, nil }
	other := Task("resources-test.other", func(context.Context, int) (int, error) { return 1, nil })
	wrongOut := Task("resources-test.wrong-out", func(context.Context, int) (string, error) { return "", nil })
	tests := []struct {
		name  string
		opts  []TaskOption
		want  store.Resources
		panic string // a part of the panic; empty: none
	}{
		{"whole", []TaskOption{Queue("gpu"), Resources{CPU: 2, Memory: "4GiB", GPU: 1}},
			store.Resources{CPUMilli: 2000, Memory: 4 << 30, GPU: 1}, ""},
		{"fraction of a CPU", []TaskOption{Resources{CPU: 0.5}}, store.Resources{CPUMilli: 500}, ""},
		{"decimal memory", []TaskOption{Resources{Memory: "2 GB"}}, store.Resources{Memory: 2e9}, ""},
		{"beside function options", []TaskOption{Retries(2), Resources{GPU: 2}, Timeout(time.Second)},
			store.Resources{GPU: 2}, ""},
		{"unknown unit", []TaskOption{Resources{Memory: "4G"}}, store.Resources{}, "Resources.Memory: \"4G\": unknown unit"},
		{"negative memory", []TaskOption{Resources{Memory: "-1GiB"}}, store.Resources{}, "Resources.Memory: must not be negative"},
		{"negative CPU", []TaskOption{Resources{CPU: -1}}, store.Resources{}, "Resources.CPU: must not be negative"},
		{"too fine CPU", []TaskOption{Resources{CPU: 0.0001}}, store.Resources{}, "Resources.CPU"},
		{"negative GPU", []TaskOption{Resources{GPU: -1}}, store.Resources{}, "Resources.GPU: must not be negative"},
		{"fallback of other types", []TaskOption{Fallback(wrongOut, time.Minute)}, store.Resources{},
			"Fallback: task resources-test.wrong-out takes int and returns string"},
		{"negative fallback wait", []TaskOption{Fallback(other, -time.Second)}, store.Resources{}, "the wait must not be negative"},
		{"nil fallback", []TaskOption{Fallback[int, int](nil, time.Second)}, store.Resources{}, "a fallback task is required"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("resources-test.%d", i)
			defer func() {
				r := recover()
				switch {
				case tc.panic == "" && r != nil:
					t.Fatalf("Task panicked: %v", r)
				case tc.panic != "" && (r == nil || !strings.Contains(fmt.Sprint(r), tc.panic)):
					t.Fatalf("Task panicked with %v, want a panic with %q", r, tc.panic)
				}
			}()
			td := Task(name, noop, tc.opts...)
			if got := td.def.Policy.Resources; got != tc.want {
				t.Errorf("resources %v, want %v", got, tc.want)
			}
		})
	}
	// A fallback of the same types is recorded with its wait.
	td := Task("resources-test.with-fallback", noop, Queue("gpu"), Fallback(other, 5*time.Minute))
	if p := td.def.Policy; p.Fallback == nil || p.Fallback.Name != "resources-test.other" || p.FallbackAfter != 5*time.Minute {
		t.Errorf("policy fallback %v after %v", p.Fallback, p.FallbackAfter)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "its own fallback") {
				t.Errorf("a task that is its own fallback: %v", r)
			}
		}()
		self := Task("resources-test.self", noop)
		Forget("resources-test.self")
		Task("resources-test.self", noop, Fallback(self, 0))
	}()
}

// TestFallbackStepReplays: a step recorded under an explicit key whose
// task run ran the task's fallback (its record names the fallback) is
// reused by a retry that calls the task under that key, not a
// non-determinism error.
func TestFallbackStepReplays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "baton.db")
	rt, err := Open(ctx, Config{DB: db, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var gpuCalls atomic.Int32
	cpu := Task("fallback-replay.cpu", func(_ context.Context, n int) (int, error) { return -n, nil }, Queue("cpu"))
	gpu := Task("fallback-replay.gpu", func(_ context.Context, n int) (int, error) { gpuCalls.Add(1); return n, nil },
		Queue("gpu"), Resources{GPU: 1}, Fallback(cpu, 0))
	var fail atomic.Bool
	fail.Store(true)
	flow := Flow("fallback-replay.flow", func(ctx Context, n int) (int, error) {
		v, err := gpu.Run(ctx, n, Key("train"))
		if err != nil || fail.Load() {
			return 0, errors.Join(err, errors.New("fail"))
		}
		return v, nil
	})
	_, info, _ := flow.Execute(ctx, rt, 2)
	// The step ran as its fallback (what a worker's TaskRunFallback leaves).
	sqlDB, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlDB.Exec(`UPDATE task_runs SET task = 'fallback-replay.cpu', result = '-2' WHERE run_id = ? AND key = 'train'`,
		info.ID); err != nil {
		t.Fatal(err)
	}
	sqlDB.Close()
	fail.Store(false)
	got, _, err := flow.Retry(ctx, rt, info.ID)
	if err != nil || got != -2 {
		t.Fatalf("retry = %d, %v; want the fallback's recorded -2", got, err)
	}
	if n := gpuCalls.Load(); n != 1 {
		t.Errorf("the GPU implementation ran %d times, want once (the first attempt)", n)
	}
}
