package baton_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// openStore opens a second connection to b's store.
func (b *bundle) openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// concurrencyMeter records how many calls run at once.
type concurrencyMeter struct {
	mu        sync.Mutex
	now, most int
	starts    []time.Time
}

func (m *concurrencyMeter) run(d time.Duration) {
	m.mu.Lock()
	m.now++
	m.most = max(m.most, m.now)
	m.starts = append(m.starts, time.Now())
	m.mu.Unlock()
	time.Sleep(d)
	m.mu.Lock()
	m.now--
	m.mu.Unlock()
}

// TestLocalRunTagLimit: the task runs of a local run that carry a limited
// tag take its slots: never more than the limit run at once, the others
// wait AWAITING_SLOT (their histories say so), and none is left holding a
// slot.
func TestLocalRunTagLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.openStore(t)
	ctx := context.Background()
	tag := strings.NewReplacer("/", "-").Replace(name(t, "robot"))
	if _, err := st.LimitSet(ctx, store.LimitSetParams{Tag: tag, Max: 2}); err != nil {
		t.Fatal(err)
	}
	var m concurrencyMeter
	arm := baton.Task(name(t, "arm"), func(_ context.Context, i int) (int, error) {
		m.run(30 * time.Millisecond)
		return i, nil
	}, baton.Tags(tag))
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, n int) (int, error) {
		vs, err := baton.WaitAll(ctx, arm.Map(ctx, make([]int, n)))
		return len(vs), err
	})
	got, info, err := flow.Execute(ctx, b.rt, 6)
	if err != nil || got != 6 {
		t.Fatalf("Execute = %d, %v", got, err)
	}
	if m.most > 2 {
		t.Errorf("%d task runs with tag %s ran at once, limit 2", m.most, tag)
	}
	if m.most < 2 {
		t.Errorf("at most %d ran at once: the limit of 2 was never used", m.most)
	}
	waited := 0
	for _, tr := range b.taskRuns(t, info.ID) {
		if tr.State != store.TaskCompleted || !strings.HasPrefix(tr.WorkerID, store.LocalHolderPrefix) {
			t.Errorf("task run %s: %s held by %q", tr.Key, tr.State, tr.WorkerID)
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
	ls, err := st.LimitList(ctx, []string{tag})
	if err != nil || len(ls) != 1 || len(ls[0].Holders) != 0 || ls[0].Waiting != 0 {
		t.Errorf("LimitList after the run = %+v, %v; want no slot held", ls, err)
	}
}

// TestLocalRunSlotOfDeadProcess: a slot held by a process that died (its
// task run stays RUNNING, nothing ends it) is free once its lease expires:
// the local run's task waits until then, and not for ever.
func TestLocalRunSlotOfDeadProcess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.openStore(t)
	ctx := context.Background()
	tag := strings.NewReplacer("/", "-").Replace(name(t, "robot"))
	if _, err := st.LimitSet(ctx, store.LimitSetParams{Tag: tag, Max: 1}); err != nil {
		t.Fatal(err)
	}
	if err := st.BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "dead", Flow: "f", State: store.RunRunning, Attempt: 1,
		CreatedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(400 * time.Millisecond)
	ok, err := st.SlotAcquire(ctx, store.SlotAcquireParams{TaskRun: store.TaskRun{ID: "t", RunID: "dead", Key: "arm/0", Task: "arm",
		State: store.TaskRunning, FlowAttempt: 1, CreatedAt: time.Now(), Tags: []string{tag},
		WorkerID: store.LocalHolderPrefix + "gone:1", LeaseUntil: expires}})
	if err != nil || !ok {
		t.Fatalf("SlotAcquire = %v, %v", ok, err)
	}
	var m concurrencyMeter
	arm := baton.Task(name(t, "arm"), func(_ context.Context, i int) (int, error) {
		m.run(time.Millisecond)
		return i, nil
	}, baton.Tags(tag))
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, n int) (int, error) {
		return arm.Run(ctx, n)
	})
	if _, _, err := flow.Execute(ctx, b.rt, 1); err != nil {
		t.Fatal(err)
	}
	if len(m.starts) != 1 || m.starts[0].Before(expires) {
		t.Errorf("the task started at %v, before the dead holder's lease expired at %v", m.starts, expires)
	}
}
