package baton_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// TestInvalidStepKeyFailsRun: a step key with a NUL byte or invalid UTF-8
// is refused at the call with an error naming the key, and the run FAILS
// with it (not retried), even when the flow ignores the call's error.
func TestInvalidStepKeyFailsRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ran int
	task := baton.Task(name(t, "t"), func(_ context.Context, n int) (int, error) { ran++; return n, nil })
	tests := []struct {
		name, key, want string
		call            func(ctx baton.Context, key string) error
	}{
		{"nul in Run", "bad\x00key", `step key must not contain a NUL byte: "bad\x00key"`, func(ctx baton.Context, key string) error {
			_, err := task.Run(ctx, 1, baton.Key(key))
			return err
		}},
		{"invalid UTF-8 in Submit", "bad\xffkey", `step key is not valid UTF-8: "bad\xffkey"`, func(ctx baton.Context, key string) error {
			_, err := task.Submit(ctx, 1, baton.Key(key)).Wait(ctx)
			return err
		}},
		{"nul in Map", "items\x00", `step key must not contain a NUL byte: "items\x00"`, func(ctx baton.Context, key string) error {
			_, err := baton.WaitAll(ctx, task.Map(ctx, []int{1, 2}, baton.Key(key)))
			return err
		}},
		{"error ignored by the flow", "quiet\x00", `step key must not contain a NUL byte: "quiet\x00"`, func(ctx baton.Context, key string) error {
			_, _ = task.Run(ctx, 1, baton.Key(key))
			return nil
		}},
	}
	for i, tc := range tests {
		flow := baton.Flow(name(t, "f"+string(rune('a'+i))), func(ctx baton.Context, _ int) (int, error) {
			return 0, tc.call(ctx, tc.key)
		}, baton.FlowRetries(2, time.Millisecond))
		_, info, err := flow.Execute(context.Background(), b.rt, 0)
		if info.State != "FAILED" || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: state %s, err %v; want FAILED with %q", tc.name, info.State, err, tc.want)
		}
		if info.Attempt != 1 {
			t.Errorf("%s: attempt %d; an invalid key fails the run without automatic retries", tc.name, info.Attempt)
		}
	}
	if ran != 0 {
		t.Errorf("the task ran %d times with an invalid key", ran)
	}
}

// TestInvalidNamesPanic: task and flow names and queues are identifiers
// too, refused where they are defined.
func TestInvalidNamesPanic(t *testing.T) {
	t.Parallel()
	fn := func(_ context.Context, n int) (int, error) { return n, nil }
	for what, def := range map[string]func(){
		`task name must not contain a NUL byte`: func() { baton.Task("t\x00", fn) },
		`flow name is not valid UTF-8`:          func() { baton.Flow("f\xff", func(baton.Context, int) (int, error) { return 0, nil }) },
		`queue must not contain a NUL byte`:     func() { baton.Task(name(t, "q"), fn, baton.Queue("q\x00")) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), what) {
					t.Errorf("%s: panic %v, want one naming it", what, r)
				}
			}()
			def()
		}()
	}
}

// TestFreeTextLogsAndErrors: log lines and errors with NUL bytes and
// invalid UTF-8 do not fail the run and read back byte for byte.
func TestFreeTextLogsAndErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const msg = "nul \x00 and \xff\xfe bytes"
	task := baton.Task(name(t, "t"), func(ctx context.Context, n int) (int, error) {
		baton.Logger(ctx).Info(msg)
		return n, nil
	})
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
		return task.Run(ctx, 7)
	})
	if _, info, err := flow.Execute(context.Background(), b.rt, 0); err != nil || info.State != "COMPLETED" {
		t.Fatalf("state %s, err %v", info.State, err)
	}
	b.rt.Close()
	st, err := sqlite.Open(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.RunList(context.Background(), store.RunListParams{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	logs, err := st.LogList(context.Background(), store.LogListParams{RunID: runs[0].ID})
	if err != nil || len(logs) != 1 || logs[0].Message != msg {
		t.Fatalf("logs %+v, %v; want one with %q", logs, err, msg)
	}
}
