package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// armMeter counts the executions of arm at once.
var armMeter struct {
	mu        sync.Mutex
	now, most int
}

// arm is a task without a queue (a flow run on a worker executes it
// in-process) that carries the tag worker-test-arm.
var arm = baton.Task("worker-test.arm", func(_ context.Context, n int) (int, error) {
	armMeter.mu.Lock()
	armMeter.now++
	armMeter.most = max(armMeter.most, armMeter.now)
	armMeter.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	armMeter.mu.Lock()
	armMeter.now--
	armMeter.mu.Unlock()
	return n, nil
}, baton.Tags("worker-test-arm"))

var arms = baton.Flow("worker-test.arms", func(ctx baton.Context, n int) (int, error) {
	vs, err := baton.WaitAll(ctx, arm.Map(ctx, make([]int, n)))
	return len(vs), err
})

// TestInProcessTaskTakesSlots: a task without a queue that a flow run on a
// worker executes in-process takes its tag's slots through the server
// (/engine/slots): under a limit of 2, never more than 2 run at once, the
// others wait AWAITING_SLOT, and no slot is left held.
func TestInProcessTaskTakesSlots(t *testing.T) {
	ctx := context.Background()
	cl, st := startStore(t, &counter{}, 0, arms)
	if _, err := cl.SetLimit(ctx, "worker-test-arm", 2); err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(6)
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: "worker-test.arms", Parameters: params})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := cl.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "COMPLETED" {
			break
		}
		if got.State == "FAILED" || got.State == "CRASHED" || time.Now().After(deadline) {
			t.Fatalf("run %s: %s", run.ID, got.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	armMeter.mu.Lock()
	most := armMeter.most
	armMeter.mu.Unlock()
	if most != 2 {
		t.Errorf("%d arm task runs ran at once under a limit of 2", most)
	}
	trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID})
	if err != nil {
		t.Fatal(err)
	}
	waited := 0
	for _, tr := range trs {
		if !strings.HasPrefix(tr.WorkerID, store.LocalHolderPrefix) {
			t.Errorf("task run %s held by %q", tr.Key, tr.WorkerID)
		}
		for _, h := range tr.History {
			if h.To == string(store.TaskAwaitingSlot) {
				waited++
				break
			}
		}
	}
	if waited == 0 {
		t.Errorf("no task run waited AWAITING_SLOT")
	}
	if ls, err := st.LimitList(ctx, []string{"worker-test-arm"}); err != nil || len(ls) != 1 || len(ls[0].Holders) != 0 {
		t.Errorf("LimitList after the run = %+v, %v; want no slot held", ls, err)
	}
}
