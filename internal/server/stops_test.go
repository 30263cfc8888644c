package server

import (
	"context"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// stopListStore answers RunStopList with list, after a signal on gate
// when gate is set.
type stopListStore struct {
	store.Store
	list    []store.RunStop
	reading chan struct{}
	gate    chan struct{}
}

func (s *stopListStore) RunStopList(context.Context) ([]store.RunStop, error) {
	if s.gate != nil {
		s.reading <- struct{}{}
		<-s.gate
	}
	return s.list, nil
}

// TestStopListChanges: a cancel that the API adds while a re-read of the
// store is in flight (a read that may miss it) stays in the list; the
// generation (which answers held heartbeats) changes only when the list
// does.
func TestStopListChanges(t *testing.T) {
	t.Parallel()
	st := &stopListStore{}
	s := &Server{st: st, stops: map[string]int{}, added: map[string]int64{}}
	s.stopSig.init()
	gen := func() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.stopGen }

	st.list = []store.RunStop{{RunID: "a", Attempt: 1}}
	if err := s.refreshStops(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := gen()
	s.addStops(store.RunStop{RunID: "a", Attempt: 1}) // already known
	if gen() != g {
		t.Errorf("adding a run already in the list changed the generation")
	}
	if err := s.refreshStops(context.Background()); err != nil || gen() != g {
		t.Errorf("a re-read finding the same list changed the generation (%v)", err)
	}

	// A read in flight misses run b, added meanwhile.
	st.reading, st.gate = make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.refreshStops(context.Background()) }()
	<-st.reading
	s.addStops(store.RunStop{RunID: "b", Attempt: 3})
	close(st.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	got := s.stops["b"]
	s.mu.Unlock()
	if got != 3 {
		t.Fatalf("run b added during a read: attempt %d in the list, want 3 (kept)", got)
	}
	// A read begun after the add drops b when the store no longer lists it.
	st.gate = nil
	if err := s.refreshStops(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_, still := s.stops["b"]
	s.mu.Unlock()
	if still {
		t.Error("run b stays in the list after a read that began after its add and does not list it")
	}
}
