package baton_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/store"
)

// TestSideEffectsReplay: the values of SideEffect, Now and Random that the
// first attempt saw are the ones a retry sees, without calling the side
// effect again; two calls of one name record two values; a side effect
// that failed is not reused: the retry runs it again.
func TestSideEffectsReplay(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var calls atomic.Int32
		var broken atomic.Bool
		broken.Store(true)
		type seen struct {
			IDs    [2]int
			Failed string
			Now    time.Time
			Rand   [3]uint64
		}
		var attempts []seen
		finish := baton.Task(name(t, "finish"), func(context.Context, int) (int, error) {
			if broken.Load() {
				return 0, baton.Permanent(errors.New("finish is broken"))
			}
			return 1, nil
		})
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, _ int) (int, error) {
			var s seen
			for i := range s.IDs {
				id, err := baton.SideEffect(ctx, "id", func(context.Context) (int, error) {
					return int(calls.Add(1)) * 100, nil
				})
				if err != nil {
					return 0, err
				}
				s.IDs[i] = id
			}
			_, err := baton.SideEffect(ctx, "refused", func(context.Context) (int, error) {
				calls.Add(1)
				return 0, errors.New("no reading")
			})
			if err != nil {
				s.Failed = err.Error()
			}
			s.Now = baton.Now(ctx)
			r := baton.Random(ctx)
			for i := range s.Rand {
				s.Rand[i] = r.Uint64()
			}
			attempts = append(attempts, s)
			return finish.Run(ctx, 0)
		})
		_, info, err := flow.Execute(context.Background(), rt, 0)
		if err == nil {
			t.Fatal("first attempt completed; want finish to fail it")
		}
		broken.Store(false)
		if _, _, err := flow.Retry(context.Background(), rt, info.ID); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if len(attempts) != 2 {
			t.Fatalf("%d attempts ran the flow, want 2", len(attempts))
		}
		first, second := attempts[0], attempts[1]
		if first.IDs != [2]int{100, 200} || !first.Now.Equal(second.Now) || first.Rand != second.Rand ||
			first.IDs != second.IDs || first.Failed != second.Failed {
			t.Errorf("attempts saw different values:\n first  %+v\n second %+v", first, second)
		}
		if first.Failed == "" {
			t.Error("the failing side effect returned no error")
		}
		if n := calls.Load(); n != 4 {
			t.Errorf("side effects ran %d times, want 4 (the two IDs once, the failing one in each attempt)", n)
		}
		if trs := taskRunsOf(t, st, info.ID, "side-effect:id"); len(trs) != 2 {
			t.Errorf("%d side-effect:id steps recorded, want 2", len(trs))
		}
	})
}
