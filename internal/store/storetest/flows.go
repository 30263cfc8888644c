package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// testFlows: FlowUpsert records what workers registered about flows, the
// latest registration of a name replacing the earlier one (also within one
// call), and FlowGet reads it back byte for byte, nil for what was not sent;
// FlowList lists the latest registrations by name.
func testFlows(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.FlowGet(ctx, "etl"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FlowGet of an unregistered flow: %v, want ErrNotFound", err)
	}
	if fs, err := s.FlowList(ctx); err != nil || len(fs) != 0 {
		t.Fatalf("FlowList of no flow: %v, %v; want none", show(fs), err)
	}
	if err := s.FlowUpsert(ctx, store.FlowUpsertParams{}); err != nil {
		t.Fatalf("FlowUpsert of nothing: %v", err)
	}
	schema := raw(`{"type":"object","properties":{"n":{"type":"integer","format":"int64"},"s":{"type":"string","default":"\u0000é"}}}`)
	etl := store.Flow{Name: "etl", Parameters: schema, Defaults: raw(`{"n":3}`), RegisteredAt: at(1)}
	bare := store.Flow{Name: "bare", RegisteredAt: at(1)}
	if err := s.FlowUpsert(ctx, store.FlowUpsertParams{Flows: []store.Flow{etl, bare}}); err != nil {
		t.Fatalf("FlowUpsert: %v", err)
	}
	check := func(what string, want store.Flow) {
		t.Helper()
		got, err := s.FlowGet(ctx, want.Name)
		if err != nil {
			t.Fatalf("FlowGet %s: %v", want.Name, err)
		}
		if got.Name != want.Name || string(got.Parameters) != string(want.Parameters) ||
			string(got.Defaults) != string(want.Defaults) || (got.Parameters == nil) != (want.Parameters == nil) ||
			(got.Defaults == nil) != (want.Defaults == nil) || !got.RegisteredAt.Equal(want.RegisteredAt) {
			t.Errorf("%s: FlowGet = %s, want %s", what, show(got), show(want))
		}
	}
	check("registered flow", etl)
	check("flow without schema or defaults", bare)

	// A later registration replaces the schema; within one call the last
	// one of a name wins.
	etl2 := store.Flow{Name: "etl", Parameters: raw(`{"type":"object"}`), RegisteredAt: at(5)}
	etl3 := store.Flow{Name: "etl", Parameters: raw(`{"type":"object","required":["n"]}`), Defaults: raw(`{}`), RegisteredAt: at(6)}
	if err := s.FlowUpsert(ctx, store.FlowUpsertParams{Flows: []store.Flow{etl2, etl3}}); err != nil {
		t.Fatalf("FlowUpsert again: %v", err)
	}
	check("re-registered flow", etl3)
	check("flow not registered again", bare)

	fs, err := s.FlowList(ctx)
	if err != nil {
		t.Fatalf("FlowList: %v", err)
	}
	if len(fs) != 2 {
		t.Fatalf("FlowList = %s, want bare and etl", show(fs))
	}
	for i, want := range []store.Flow{bare, etl3} {
		got := fs[i]
		if got.Name != want.Name || string(got.Parameters) != string(want.Parameters) || string(got.Defaults) != string(want.Defaults) ||
			(got.Parameters == nil) != (want.Parameters == nil) || !got.RegisteredAt.Equal(want.RegisteredAt) {
			t.Errorf("FlowList[%d] = %s, want %s", i, show(got), show(want))
		}
	}
}
