package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

func testWorkQueues(t *testing.T, s store.Store) {
	ctx := context.Background()
	qs, err := s.QueueDeclared(ctx)
	if err != nil || len(qs) != 1 || qs[0].Name != store.DefaultQueue || qs[0].Priority != 0 || qs[0].Paused {
		t.Fatalf("QueueDeclared of a new store = %+v, %v; want default", qs, err)
	}
	five, desc := 5, "GPU boxes"
	q, err := s.QueueSet(ctx, store.QueueSetParams{Name: "gpu", Create: true, Priority: &five, Description: &desc, At: at(1)})
	if err != nil || q.Priority != 5 || q.Description != desc || !q.CreatedAt.Equal(at(1)) {
		t.Fatalf("QueueSet create = %+v, %v", q, err)
	}
	if _, err := s.QueueSet(ctx, store.QueueSetParams{Name: "gpu", Create: true}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("creating a declared queue = %v, want ErrConflict", err)
	}
	q, err = s.QueueSet(ctx, store.QueueSetParams{Name: "gpu", Pause: true, PauseNote: "driver upgrade", By: "ann", At: at(2)})
	if err != nil || !q.Paused || q.PauseNote != "driver upgrade" || q.PausedBy != "ann" || !q.PausedAt.Equal(at(2)) ||
		q.Priority != 5 || q.Description != desc {
		t.Fatalf("pause = %+v, %v", q, err)
	}
	// An implicit queue is declared by its first change.
	one := -1
	if _, err := s.QueueSet(ctx, store.QueueSetParams{Name: "cpu", Priority: &one, At: at(3)}); err != nil {
		t.Fatal(err)
	}
	bad := store.MaxQueuePriority + 1
	if _, err := s.QueueSet(ctx, store.QueueSetParams{Name: "cpu", Priority: &bad}); err == nil {
		t.Errorf("a priority out of range was accepted")
	}
	qs, err = s.QueueDeclared(ctx)
	if err != nil || len(qs) != 3 || qs[0].Name != "cpu" || qs[0].Priority != -1 || qs[2].Name != "gpu" || !qs[2].Paused {
		t.Fatalf("QueueDeclared = %+v, %v", qs, err)
	}
	q, err = s.QueueSet(ctx, store.QueueSetParams{Name: "gpu", Resume: true, At: at(4)})
	if err != nil || q.Paused || q.PauseNote != "" || q.PausedBy != "" || !q.PausedAt.IsZero() || q.Priority != 5 {
		t.Fatalf("resume = %+v, %v", q, err)
	}
	groups := store.QueuesByPriority([]string{"default", "gpu", "cpu", "other"}, map[string]store.WorkQueue{
		"gpu": {Name: "gpu", Priority: 5}, "cpu": {Name: "cpu", Priority: -1}, "other": {Name: "other", Paused: true}})
	if len(groups) != 3 || groups[0][0] != "gpu" || groups[1][0] != "default" || groups[2][0] != "cpu" {
		t.Errorf("QueuesByPriority = %v", groups)
	}
}
