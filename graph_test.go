package baton_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// store opens a second connection to the bundle's store, closed with t.
func (b *bundle) store(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// graphOf returns each step key of a run (its test prefix cut) with its
// recorded deps and map, from its latest task run.
func graphOf(t *testing.T, b *bundle, runID string) map[string]store.TaskRun {
	t.Helper()
	out := map[string]store.TaskRun{}
	pre := name(t, "")
	for _, tr := range b.taskRuns(t, runID) {
		tr.Key, tr.Map = strings.TrimPrefix(tr.Key, pre), strings.TrimPrefix(tr.Map, pre)
		for i, d := range tr.Deps {
			tr.Deps[i] = strings.TrimPrefix(d, pre)
		}
		out[tr.Key] = tr
	}
	return out
}

// TestGraphDataEdges: a call made after the flow received a step's result
// depends on that step, reduced to the latest results (b.Run(ctx,
// a.Run(...)) draws a → b, and c after b depends on b only).
func TestGraphDataEdges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inc := baton.Task(name(t, "inc"), func(_ context.Context, n int) (int, error) { return n + 1, nil })
	dbl := baton.Task(name(t, "dbl"), func(_ context.Context, n int) (int, error) { return 2 * n, nil })
	flow := baton.Flow(name(t, "chain"), func(ctx baton.Context, n int) (int, error) {
		x, err := dbl.Run(ctx, must(inc.Run(ctx, n))) // inc/0 → dbl/1
		if err != nil {
			return 0, err
		}
		side := inc.Submit(ctx, 100) // inc/2: after dbl/1 was received
		y, err := inc.Run(ctx, x)    // inc/3: after dbl/1 too
		if err != nil {
			return 0, err
		}
		s, err := side.Wait(ctx)
		if err != nil {
			return 0, err
		}
		return dbl.Run(ctx, y+s) // dbl/4: after inc/2 and inc/3 (dbl/1 is behind both)
	})
	_, info, err := flow.Execute(context.Background(), b.rt, 1)
	if err != nil {
		t.Fatal(err)
	}
	g := graphOf(t, b, info.ID)
	for key, want := range map[string][]string{
		"inc/0": nil,
		"dbl/1": {"inc/0"},
		"inc/2": {"dbl/1"},
		"inc/3": {"dbl/1"},
		"dbl/4": {"inc/2", "inc/3"},
	} {
		tr, ok := g[key]
		if !ok {
			t.Errorf("no step %s in %v", key, g)
			continue
		}
		if !slices.Equal(tr.Deps, want) || tr.Map != "" {
			t.Errorf("step %s: deps %v map %q, want %v and no map", key, tr.Deps, tr.Map, want)
		}
	}
}

func must(n int, err error) int {
	if err != nil {
		panic(err)
	}
	return n
}

// TestGraphWaitForAndMap: WaitFor edges are recorded before any result is
// received, a map's items name their map and depend on what the map call
// did, and a step after a map's results depends on the map as one node.
func TestGraphWaitForAndMap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sq := baton.Task(name(t, "sq"), func(_ context.Context, n int) (int, error) { return n * n, nil })
	sum := baton.Task(name(t, "sum"), func(_ context.Context, ns []int) (int, error) {
		s := 0
		for _, n := range ns {
			s += n
		}
		return s, nil
	})
	flow := baton.Flow(name(t, "mapped"), func(ctx baton.Context, n int) (int, error) {
		first := sq.Submit(ctx, n)                                    // sq/0
		later := sq.Submit(ctx, n+1, baton.WaitFor(first))            // sq/1 waits for sq/0
		items := sq.Map(ctx, []int{1, 2, 3, 4}, baton.WaitFor(later)) // sq/2.0..3 wait for sq/1
		vs, err := baton.WaitAll(ctx, items)
		if err != nil {
			return 0, err
		}
		return sum.Run(ctx, vs) // sum/3 after the map
	})
	_, info, err := flow.Execute(context.Background(), b.rt, 1)
	if err != nil {
		t.Fatal(err)
	}
	g := graphOf(t, b, info.ID)
	if d := g["sq/0"].Deps; len(d) != 0 {
		t.Errorf("sq/0 deps %v, want none", d)
	}
	if d := g["sq/1"].Deps; !slices.Equal(d, []string{"sq/0"}) {
		t.Errorf("sq/1 deps %v, want [sq/0] (WaitFor)", d)
	}
	for _, k := range []string{"sq/2.0", "sq/2.1", "sq/2.2", "sq/2.3"} {
		if tr := g[k]; tr.Map != "sq/2" || !slices.Equal(tr.Deps, []string{"sq/1"}) {
			t.Errorf("item %s: map %q deps %v, want map sq/2 after [sq/1]", k, tr.Map, tr.Deps)
		}
	}
	if d := g["sum/3"].Deps; !slices.Equal(d, []string{"sq/2"}) {
		t.Errorf("sum/3 deps %v, want [sq/2] (the map as one node)", d)
	}

	// The store aggregates the map into one node with its counts.
	st := b.store(t)
	graph, err := st.GraphGet(context.Background(), store.GraphGetParams{RunID: info.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(graph.Maps) != 1 || graph.Maps[0].Total != 4 || graph.StepsTotal != 3 ||
		!slices.Equal(graph.Maps[0].Counts, []store.StateCount{{State: store.TaskCompleted, N: 4}}) {
		t.Errorf("graph: %d steps, maps %+v; want 3 steps and one map of 4 COMPLETED", graph.StepsTotal, graph.Maps)
	}
}

// TestGraphReplayKeepsEdges: a retried attempt receives reused results
// as the first did, so the steps it runs again record the same edges.
func TestGraphReplayKeepsEdges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var fail atomic.Bool
	fail.Store(true)
	inc := baton.Task(name(t, "inc"), func(_ context.Context, n int) (int, error) { return n + 1, nil })
	flaky := baton.Task(name(t, "flaky"), func(_ context.Context, n int) (int, error) {
		if fail.Load() {
			return 0, baton.Permanent(errors.New("not yet"))
		}
		return n, nil
	})
	flow := baton.Flow(name(t, "replay"), func(ctx baton.Context, n int) (int, error) {
		x, err := inc.Run(ctx, n)
		if err != nil {
			return 0, err
		}
		return flaky.Run(ctx, x)
	})
	_, info, err := flow.Execute(context.Background(), b.rt, 1)
	if err == nil {
		t.Fatal("want the first attempt to fail")
	}
	fail.Store(false)
	if _, _, err := flow.Retry(context.Background(), b.rt, info.ID); err != nil {
		t.Fatal(err)
	}
	var flakies int
	for _, tr := range b.taskRuns(t, info.ID) {
		if strings.HasPrefix(tr.Key, name(t, "flaky")) {
			flakies++
			if want := []string{name(t, "inc/0")}; !slices.Equal(tr.Deps, want) {
				t.Errorf("flaky attempt %d: deps %v, want %v", tr.FlowAttempt, tr.Deps, want)
			}
		}
	}
	if flakies != 2 {
		t.Errorf("%d task runs of flaky, want 2", flakies)
	}
}
