package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// staleStore answers the first RunGet of a run with a copy read before
// a concurrent retry changed it.
type staleStore struct {
	store.Store
	mu    sync.Mutex
	stale map[string]store.Run
}

func (s *staleStore) RunGet(ctx context.Context, id string) (store.Run, error) {
	s.mu.Lock()
	r, ok := s.stale[id]
	delete(s.stale, id)
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	return s.Store.RunGet(ctx, id)
}

// TestConcurrentRetryLoserToldTheTruth: of two retries of a CANCELLED run,
// the one that loses is told another retry won and what the run is now,
// not that it is CANCELLED.
func TestConcurrentRetryLoserToldTheTruth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cancelled := store.Run{ID: "r1", Flow: "f", State: store.RunCancelled, Attempt: 1, Queue: "default",
		Parameters: json.RawMessage(`null`), CreatedAt: now, UpdatedAt: now, StartedAt: now, EndedAt: now}
	if err := st.BatchWrite(ctx, store.Batch{Runs: []store.Run{cancelled}}); err != nil {
		t.Fatal(err)
	}
	// The winner's retry.
	if _, err := st.RunTransition(ctx, store.RunTransitionParams{ID: "r1", From: []store.RunState{store.RunCancelled},
		To: store.RunScheduled, NextAttempt: true, Cause: "user"}); err != nil {
		t.Fatal(err)
	}
	b := setupWith(t, &staleStore{Store: st, stale: map[string]store.Run{"r1": cancelled}})
	_, err = b.c.RetryRun(ctx, "r1")
	ce, ok := err.(*client.Error)
	if !ok || ce.Status != http.StatusConflict {
		t.Fatalf("losing retry: %v, want a 409", err)
	}
	if !strings.Contains(ce.Message, "retried by someone else first: it is SCHEDULED now (attempt 2)") ||
		strings.Contains(ce.Message, "CANCELLED") {
		t.Errorf("losing retry told %q", ce.Message)
	}
}

// TestRetryWithParameters: POST /runs/{id}/retry with parameters merges
// them over the run's, validates them as for a new run (a 400 naming the
// parameter, and nothing changes), and records the edit with who asked.
func TestRetryWithParameters(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, b *bundle) {
		register(t, b)
		ctx := context.Background()
		now := time.Now()
		failed := func(id, flow, params string) {
			r := store.Run{ID: id, Flow: flow, State: store.RunFailed, Attempt: 1, Queue: "default",
				Parameters: json.RawMessage(params), CreatedAt: now, UpdatedAt: now, StartedAt: now, EndedAt: now}
			if err := b.st.BatchWrite(ctx, store.Batch{Runs: []store.Run{r}}); err != nil {
				t.Fatal(err)
			}
		}
		failed("bad", "count", `{"count":1,"name":"a"}`)
		for _, tt := range []struct{ name, body, want string }{
			{"string for an int", `{"parameters":{"count":"abc"}}`, `parameter "count": expected integer, got string "abc"`},
			{"unknown", `{"parameters":{"bogus":true}}`, `unknown parameter "bogus"; known parameters: count, db, name, small, tags`},
			{"null required", `{"parameters":{"count":null}}`, `count`},
			{"not an object", `{"parameters":[1]}`, `expected a JSON object`},
			{"unknown field", `{"params":{}}`, `unknown field "params"`},
			{"NUL in by", `{"by":"a\u0000b"}`, `NUL`},
		} {
			code, body := b.call(t, "POST", "/api/v1/runs/bad/retry", tt.body)
			e, _ := body["error"].(map[string]any)
			if msg, _ := e["message"].(string); code != 400 || !strings.Contains(msg, tt.want) {
				t.Errorf("%s: %d %v; want 400 with %q", tt.name, code, body, tt.want)
			}
		}
		if r, err := b.st.RunGet(ctx, "bad"); err != nil || r.State != store.RunFailed || r.Attempt != 1 ||
			string(r.Parameters) != `{"count":1,"name":"a"}` {
			t.Errorf("after refused retries: %+v, %v; want it unchanged", r, err)
		}

		failed("good", "count", `{"count":1,"name":"a"}`)
		code, body := b.call(t, "POST", "/api/v1/runs/good/retry", `{"parameters":{"count":2},"by":"alice@laptop"}`)
		if code != 200 || body["state"] != "SCHEDULED" || body["attempt"] != 2.0 {
			t.Fatalf("retry with parameters: %d %v", code, body)
		}
		r, err := b.st.RunGet(ctx, "good")
		if err != nil {
			t.Fatal(err)
		}
		a := r.AttemptRecord(2)
		if !params.SameJSON(r.Parameters, json.RawMessage(`{"count":2,"name":"a"}`)) || a == nil || a.Edit == nil ||
			!params.SameJSON(a.Edit.From, json.RawMessage(`{"count":1,"name":"a"}`)) ||
			a.Edit.By != "alice@laptop through the API from 127.0.0.1" {
			t.Errorf("after the edit: parameters %s, attempt 2 %+v", r.Parameters, a)
		}
		evs, err := b.st.EventList(ctx, "good")
		if err != nil || len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Message, "by alice@laptop through the API from 127.0.0.1 with edited parameters") {
			t.Errorf("events %+v, %v; want the edit recorded", evs, err)
		}

		// The same values are no edit; a flow no worker registered merges
		// an object over the run's; no body retries as before.
		failed("same", "count", `{"count":1,"name":"a"}`)
		if code, body := b.call(t, "POST", "/api/v1/runs/same/retry", `{"parameters":{"count":1}}`); code != 200 {
			t.Fatalf("retry with the same parameters: %d %v", code, body)
		}
		if r, _ := b.st.RunGet(ctx, "same"); r.AttemptRecord(2) != nil {
			t.Errorf("the same parameters recorded an edit: %+v", r.Attempts)
		}
		failed("free", "unregistered", `{"a":1,"b":2}`)
		if code, body := b.call(t, "POST", "/api/v1/runs/free/retry", `{"parameters":{"b":3}}`); code != 200 {
			t.Fatalf("retry of an unregistered flow with parameters: %d %v", code, body)
		}
		if r, _ := b.st.RunGet(ctx, "free"); !params.SameJSON(r.Parameters, json.RawMessage(`{"a":1,"b":3}`)) {
			t.Errorf("unregistered flow: parameters %s, want b replaced", r.Parameters)
		}
		failed("plain", "count", `{"count":1}`)
		if _, err := b.c.RetryRun(ctx, "plain"); err != nil {
			t.Errorf("retry without a body: %v", err)
		}
	})
}
