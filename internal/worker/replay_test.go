package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
)

// The flow of TestReplayDistributedAsCompleted: it maps evaluate over n
// items on the queue q and summarizes each result, on q too, in the order
// the items complete; report fails while reportBroken is set. In the first
// attempt item i finishes only once the flow has seen item i+1 (evaluate
// waits for seen[i+1]), so the items complete in reverse order; on the
// retry they come from the journal, in order.
const replayItems = 5

var (
	replaySeen     [replayItems]chan struct{}
	replayEval     atomic.Int32
	replaySum      atomic.Int32
	replayBroken   atomic.Bool
	replayOrders   [][]int
	replayEvaluate = baton.Task("worker-test.evaluate", func(ctx context.Context, i int) (int, error) {
		replayEval.Add(1)
		if i+1 < replayItems {
			select {
			case <-replaySeen[i+1]:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		return 10 * i, nil
	}, baton.Queue("q"))
	replaySummarize = baton.Task("worker-test.summarize", func(_ context.Context, score int) (string, error) {
		replaySum.Add(1)
		return fmt.Sprint("score ", score), nil
	}, baton.Queue("q"))
	replayFlow = baton.Flow("worker-test.replay", func(ctx baton.Context, n int) (int, error) {
		items := make([]int, n)
		for i := range items {
			items[i] = i
		}
		var order []int
		for i, f := range baton.AsCompleted(ctx, replayEvaluate.Map(ctx, items)) {
			score, err := f.Wait(ctx)
			if err != nil {
				return 0, err
			}
			order = append(order, i)
			if ctx.Attempt() == 1 {
				close(replaySeen[i])
			}
			if _, err := replaySummarize.Run(ctx, score); err != nil {
				return 0, err
			}
		}
		replayOrders = append(replayOrders, order)
		if replayBroken.Load() {
			return 0, errors.New("report is broken")
		}
		return len(order), nil
	})
)

// TestReplayDistributedAsCompleted: on a worker, with distributed steps,
// a retry reuses every completed summarize step although the flow calls
// them in another order.
func TestReplayDistributedAsCompleted(t *testing.T) {
	t.Parallel()
	for i := range replaySeen {
		replaySeen[i] = make(chan struct{})
	}
	replayBroken.Store(true)
	cl := startWith(t, &counter{}, 2*replayItems, replayFlow)
	ctx := context.Background()
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: replayFlow.Name(), Parameters: []byte(fmt.Sprint(replayItems))})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, cl, run.ID, "FAILED")
	replayBroken.Store(false)
	if _, err := cl.RetryRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	d := waitState(t, cl, run.ID, "COMPLETED")
	if len(replayOrders) != 2 || slices.Equal(replayOrders[0], replayOrders[1]) {
		t.Fatalf("completion orders %v: want two attempts that saw the items in different orders", replayOrders)
	}
	if replayEval.Load() != replayItems || replaySum.Load() != replayItems {
		t.Errorf("evaluate ran %d times, summarize %d; want %d each", replayEval.Load(), replaySum.Load(), replayItems)
	}
	if len(d.TaskRuns) != 2*replayItems {
		t.Errorf("%d task runs recorded, want %d", len(d.TaskRuns), 2*replayItems)
	}
}

// waitState polls a run until it is in state, and returns its detail.
func waitState(t *testing.T, cl *client.Client, id, state string) apitype.RunDetail {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := cl.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if d.State == state {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s after 30 s, want %s", id, d.State, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
