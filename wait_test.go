package baton_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// waitForState polls a run until it is in state (bounded: the run is in
// another goroutine of this process).
func waitForState(t *testing.T, st store.Store, runID string, state store.RunState) store.Run {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := st.RunGet(context.Background(), runID)
		if err == nil && r.State == state {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s (%v), want %s", runID, r.State, err, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// latestRun returns the newest run of a flow.
func latestRun(t *testing.T, st store.Store, flow string) store.Run {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs, err := st.RunList(context.Background(), store.RunListParams{Flow: flow, Limit: 1})
		if err == nil && len(rs) == 1 {
			return rs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run of %s (%v)", flow, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type decision struct {
	Action    string `json:"action" jsonschema:"enum=continue,enum=stop"`
	BatchSize int    `json:"batch_size" jsonschema:"minimum=1,maximum=16"`
}

// TestWaitForInputLocal: a local run waits PAUSED for typed input; input
// that fails the schema is refused and nothing recorded; valid input
// resumes the waiting process, and a retry of the run reuses the input.
func TestWaitForInputLocal(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var broken = true
		finish := baton.Task(name(t, "finish"), func(_ context.Context, d decision) (string, error) {
			if broken {
				return "", baton.Permanent(errors.New("finish is broken"))
			}
			return d.Action, nil
		})
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, _ int) (string, error) {
			d, err := baton.WaitForInput[decision](ctx, "decision", baton.Prompt("go on?"))
			if err != nil {
				return "", err
			}
			return finish.Run(ctx, d)
		})
		type result struct {
			out string
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, _, err := flow.Execute(context.Background(), rt, 0)
			done <- result{out, err}
		}()
		run := latestRun(t, st, flow.Name())
		waitForState(t, st, run.ID, store.RunPaused)
		ctx := context.Background()
		_, err := st.InputSend(ctx, store.InputSendParams{RunID: run.ID, Key: "decision",
			Value: json.RawMessage(`{"action":"jump","batch_size":0}`), Validate: params.ValidateJSON})
		var ve *params.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), "/action") || !strings.Contains(err.Error(), "/batch_size") {
			t.Fatalf("invalid input: %v, want a validation error naming /action and /batch_size", err)
		}
		if _, err := st.InputSend(ctx, store.InputSendParams{RunID: run.ID, Key: "decision",
			Value: json.RawMessage(`{"action":"stop","batch_size":4}`), Actor: store.Actor{Name: "alice"},
			Validate: params.ValidateJSON}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err == nil {
			t.Fatal("the run completed; want finish to fail it")
		}
		broken = false
		out, _, err := flow.Retry(ctx, rt, run.ID)
		if err != nil || out != "stop" {
			t.Fatalf("retry: %q, %v; want the recorded input's action", out, err)
		}
		if trs := taskRunsOf(t, st, run.ID, "input:decision"); len(trs) != 1 || trs[0].State != store.TaskCompleted {
			t.Errorf("wait steps recorded: %+v, want one COMPLETED", trs)
		}
	})
}

// TestSleepAndEvents: sleeps of 0 and until the past return at once,
// a negative one is an error, and an event sent before the wait reaches it.
func TestSleepAndEvents(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		type plate struct {
			Plate int    `json:"plate"`
			Color string `json:"color"`
		}
		evName := name(t, "plate")
		if _, err := st.EventSend(context.Background(), store.EventSendParams{Name: evName,
			Payload: json.RawMessage(`{"plate":1,"color":"red"}`)}); err != nil {
			t.Fatal(err)
		}
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, _ int) (string, error) {
			if err := baton.Sleep(ctx, 0); err != nil {
				return "", err
			}
			if err := baton.SleepUntil(ctx, time.Now().Add(-time.Hour)); err != nil {
				return "", err
			}
			if err := baton.Sleep(ctx, -time.Second); err == nil {
				return "", errors.New("a negative sleep returned no error")
			}
			p, err := baton.WaitForEvent[plate](ctx, evName, baton.Match(map[string]any{"plate": 1}))
			if err != nil {
				return "", err
			}
			return p.Color, nil
		})
		out, _, err := flow.Execute(context.Background(), rt, 0)
		if err != nil || out != "red" {
			t.Fatalf("flow: %q, %v", out, err)
		}
	})
}
