// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's tests call Run with a function opening a fresh, empty
// store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// Times used by the suite have microsecond precision (what PostgreSQL keeps)
// and are compared with time.Time.Equal after conversion to UTC; a backend
// may return times in any location. JSON values must round-trip byte for
// byte, and a nil json.RawMessage must come back nil while a non-nil one
// (even "null") must come back non-nil, except that a record with a
// ResultRef never keeps an inline Result (ResultBesideRef). Free text
// (messages, causes, errors, log attributes) must round-trip byte for byte
// even with NUL bytes and invalid UTF-8 (FreeText, FreeTextDistributed).
//
// The distributed-mode tests (distributed.go) include concurrent claimers
// (RunClaimConcurrent, TaskRunClaimConcurrent): every run or task run must be
// handed to exactly one of them, and each claimer must get its runs oldest
// first. With PostgreSQL they check the FOR UPDATE SKIP LOCKED (or
// equivalent) claim queries; run them with -race and -count=N to make
// interleavings likely. The Notifier test runs only when the store
// implements store.Notifier and waits up to 5 s for each notification.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; the suite closes it (via t.Cleanup) when the subtest ends.
// Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"BatchWriteEmpty", testBatchWriteEmpty},
		{"RunUpsertRoundTrip", testRunUpsertRoundTrip},
		{"RunZeroValues", testRunZeroValues},
		{"TaskRunUpsertRoundTrip", testTaskRunUpsertRoundTrip},
		{"RunGetNotFound", testRunGetNotFound},
		{"RunList", testRunList},
		{"RunListDefaultLimit", testRunListDefaultLimit},
		{"RunTransition", testRunTransition},
		{"RunTransitionConflict", testRunTransitionConflict},
		{"RunTransitionNotFound", testRunTransitionNotFound},
		{"RunTransitionConcurrent", testRunTransitionConcurrent},
		{"RunChildGet", testRunChildGet},
		{"TaskRunList", testTaskRunList},
		{"TaskRunListPagedAndCounted", testTaskRunListPagedAndCounted},
		{"JournalList", testJournalList},
		{"EventList", testEventList},
		{"LogList", testLogList},
		{"Cache", testCache},
		{"ConcurrentBatchWrite", testConcurrentBatchWrite},
		{"RunCreate", testRunCreate},
		{"RunCreateConcurrentIdempotency", testRunCreateConcurrentIdempotency},
		{"RunClaim", testRunClaim},
		{"RunClaimConcurrent", testRunClaimConcurrent},
		{"TaskRunClaim", testTaskRunClaim},
		{"TaskRunClaimConcurrent", testTaskRunClaimConcurrent},
		{"TaskRunComplete", testTaskRunComplete},
		{"Claim", testClaim},
		{"TaskRunFinished", testTaskRunFinished},
		{"Leases", testLeases},
		{"Workers", testWorkers},
		{"WorkerRelease", testWorkerRelease},
		{"LeasesRelease", testLeasesRelease},
		{"LeaseGiveBack", testLeaseGiveBack},
		{"QueueList", testQueueList},
		{"RetentionDelete", testRetentionDelete},
		{"Notifier", testNotifier},
		{"FreeText", testFreeText},
		{"FreeTextDistributed", testFreeTextDistributed},
		{"ResultBesideRef", testResultBesideRef},
		{"RunTransitionStopsTaskRuns", testRunTransitionStopsTaskRuns},
		{"LeasesExpireStopsTaskRuns", testLeasesExpireStopsTaskRuns},
		{"WorkerReleaseStopsTaskRuns", testWorkerReleaseStopsTaskRuns},
		{"TaskRunClaimActiveRunsOnly", testTaskRunClaimActiveRunsOnly},
		{"RunStopList", testRunStopList},
		{"NotifierStop", testNotifierStop},
		{"ReleaseStopsTaskRuns", testReleaseStopsTaskRuns},
		{"LeasesAwaitingRetry", testLeasesAwaitingRetry},
		{"Flows", testFlows},
		{"History", testHistory},
		{"HistoryLeases", testHistoryLeases},
		{"HistoryAppendOnly", testHistoryAppendOnly},
		{"WaitInput", testWaitInput},
		{"WaitInputKept", testWaitInputKept},
		{"WaitWakesPausedRun", testWaitWakesPausedRun},
		{"WaitEvents", testWaitEvents},
		{"TimersFire", testTimersFire},
		{"WaitManyResumed", testWaitManyResumed},
		{"WaitRunEnd", testWaitRunEnd},
		{"RunPause", testRunPause},
		{"RunUpdate", testRunUpdate},
		{"DeploymentPut", testDeploymentPut},
		{"DeploymentFireOnce", testDeploymentFireOnce},
		{"ClaimWaitsForPlannedStart", testClaimWaitsForPlannedStart},
		{"LimitsCRUD", testLimitsCRUD},
		{"TagsRoundTrip", testTagsRoundTrip},
		{"SlotClaim", testSlotClaim},
		{"SlotLimitZero", testSlotLimitZero},
		{"SlotOrder", testSlotOrder},
		{"SlotRelease", testSlotRelease},
		{"SlotClaimConcurrent", testSlotClaimConcurrent},
		{"SlotHandOff", testSlotHandOff}, // handoff.go
		{"SlotHandOffLowered", testSlotHandOffLowered},
		{"SlotHandOffInactive", testSlotHandOffInactive},
		{"SlotHandOffTags", testSlotHandOffTags},
		{"SlotHandOffConcurrent", testSlotHandOffConcurrent},
		{"WorkQueues", testWorkQueues},
		{"RunsHeldAndAhead", testRunsHeldAndAhead},
		{"QueueLimitSet", testQueueLimitSet},
		{"QueueLimitTaskRuns", testQueueLimitTaskRuns},
		{"QueueLimitRuns", testQueueLimitRuns},
		{"QueueLimitConcurrent", testQueueLimitConcurrent},
		{"SlotAcquireLocal", testSlotAcquireLocal},
		{"RunListSearch", testRunListSearch},               // ui.go
		{"RunListSearchIndexed", testRunListSearchIndexed}, // runsearch.go
		{"RunListFilters", testRunListFilters},
		{"RunStats", testRunStats},
		{"LogListAfter", testLogListAfter},
		{"GraphGet", testGraphGet},           // graph.go
		{"MapItemList", testMapItemList},     // graph.go
		{"LogListSearch", testLogListSearch}, // logsearch.go
	}
	tests = append(tests, resourceTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// base is the suite's reference time, with microsecond precision.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// at returns base plus n seconds.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func write(t *testing.T, s store.Store, b store.Batch) {
	t.Helper()
	if err := s.BatchWrite(context.Background(), b); err != nil {
		t.Fatalf("BatchWrite: %v", err)
	}
}

// Normalization makes DeepEqual compare times by instant: every time is
// converted to UTC (which also drops the monotonic reading).

func normRun(r store.Run) store.Run {
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	r.StartedAt, r.EndedAt = r.StartedAt.UTC(), r.EndedAt.UTC()
	r.LeaseUntil = r.LeaseUntil.UTC()
	if r.Attempts != nil {
		as := make([]store.AttemptInfo, len(r.Attempts))
		for i, a := range r.Attempts {
			if a.Edit != nil {
				e := *a.Edit
				e.At = e.At.UTC()
				a.Edit = &e
			}
			as[i] = a
		}
		r.Attempts = as
	}
	return r
}

func normTaskRun(tr store.TaskRun) store.TaskRun {
	tr.CreatedAt, tr.StartedAt, tr.EndedAt = tr.CreatedAt.UTC(), tr.StartedAt.UTC(), tr.EndedAt.UTC()
	tr.LeaseUntil = tr.LeaseUntil.UTC()
	if tr.History != nil {
		h := make([]store.Transition, len(tr.History))
		for i, x := range tr.History {
			x.At = x.At.UTC()
			h[i] = x
		}
		tr.History = h
	}
	return tr
}

func normEvent(e store.Event) store.Event       { e.At = e.At.UTC(); return e }
func normLog(l store.LogRecord) store.LogRecord { l.At = l.At.UTC(); return l }
func normCache(c store.CacheEntry) store.CacheEntry {
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	return c
}

// show formats a record for failure messages, JSON fields as text.
func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		return fmt.Sprintf("%+v", v)
	}
	var b strings.Builder
	b.WriteString("{")
	for i := range rv.NumField() {
		if i > 0 {
			b.WriteString(" ")
		}
		f := rv.Field(i)
		fmt.Fprintf(&b, "%s:", rv.Type().Field(i).Name)
		switch x := f.Interface().(type) {
		case json.RawMessage:
			if x == nil {
				b.WriteString("<nil>")
			} else {
				fmt.Fprintf(&b, "%q", string(x))
			}
		case *store.ErrorInfo:
			if x == nil {
				b.WriteString("<nil>")
			} else {
				fmt.Fprintf(&b, "&%+v", *x)
			}
		case time.Time:
			if x.IsZero() {
				b.WriteString("zero")
			} else {
				b.WriteString(x.UTC().Format(time.RFC3339Nano))
			}
		default:
			fmt.Fprintf(&b, "%q", fmt.Sprint(x))
		}
	}
	b.WriteString("}")
	return b.String()
}

func checkRun(t *testing.T, what string, got, want store.Run) {
	t.Helper()
	if g, w := normRun(got), normRun(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", what, show(g), show(w))
	}
}

func checkTaskRun(t *testing.T, what string, got, want store.TaskRun) {
	t.Helper()
	if g, w := normTaskRun(got), normTaskRun(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", what, show(g), show(w))
	}
}

func runIDs(rs []store.Run) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

func taskRunIDs(trs []store.TaskRun) []string {
	ids := make([]string, len(trs))
	for i, tr := range trs {
		ids[i] = tr.ID
	}
	return ids
}

func fullRun() store.Run {
	return store.Run{
		ID:            "run-full",
		Flow:          "etl",
		State:         store.RunFailed,
		Attempt:       3,
		ParentRunID:   "run-parent",
		ParentStepKey: "sub/1",
		Parameters:    raw(`{"n":1,"s":"x"}`),
		ResultRef:     "blob:sha256:abc", // a record with a ref has no inline result
		Error: &store.ErrorInfo{Message: "outer: inner", Type: "*fs.PathError", Kind: "permanent",
			Chain: []string{"outer: inner", "inner"}},
		CreatedAt:      at(1),
		UpdatedAt:      at(2),
		StartedAt:      at(3),
		EndedAt:        at(4),
		OwnerHost:      "host-a",
		OwnerPID:       4242,
		OwnerStart:     1700000000123456789,
		Queue:          "queue-a",
		IdempotencyKey: "idem-full",
		WorkerID:       "worker-a",
		LeaseUntil:     at(5),
		Attempts: []store.AttemptInfo{
			{Attempt: 1, Steps: &store.StepCounts{Ran: 5}},
			{Attempt: 2, Steps: &store.StepCounts{Reused: 3, Ran: 2},
				Edit: &store.ParamsEdit{From: raw(`{"n":0,"s":"x"}`), To: raw(`{"n":1,"s":"x"}`), By: "alice@host", At: at(2)}},
		},
	}
}

func testBatchWriteEmpty(t *testing.T, s store.Store) {
	write(t, s, store.Batch{})
}

func testRunUpsertRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := fullRun()
	write(t, s, store.Batch{Runs: []store.Run{want}})
	got, err := s.RunGet(ctx, want.ID)
	if err != nil {
		t.Fatalf("RunGet: %v", err)
	}
	checkRun(t, "after insert", got, want)

	// Update the same ID: every field is replaced, including back to zero
	// values, and a non-nil JSON "null" differs from a nil message.
	want2 := store.Run{
		ID:         want.ID,
		Flow:       "etl2",
		State:      store.RunRunning,
		Attempt:    4,
		Parameters: raw(`null`),
		CreatedAt:  at(1),
		UpdatedAt:  at(10),
	}
	write(t, s, store.Batch{Runs: []store.Run{want2}})
	got, err = s.RunGet(ctx, want.ID)
	if err != nil {
		t.Fatalf("RunGet after update: %v", err)
	}
	checkRun(t, "after update", got, want2)
	if got.Result != nil || got.Error != nil {
		t.Errorf("after update: Result %q, Error %v; want nil", got.Result, got.Error)
	}
	if got.Parameters == nil {
		t.Errorf("after update: Parameters is nil, want non-nil null")
	}

	// Several runs in one batch; the last write of an ID in the batch wins.
	// (Distinct idempotency keys are unique, empty ones are not.)
	a, b := store.Run{ID: "a", State: store.RunPending}, store.Run{ID: "b", State: store.RunPending}
	a2 := a
	a2.State = store.RunRunning
	write(t, s, store.Batch{Runs: []store.Run{a, b, a2}})
	for _, w := range []store.Run{a2, b} {
		g, err := s.RunGet(ctx, w.ID)
		if err != nil {
			t.Fatalf("RunGet %s: %v", w.ID, err)
		}
		checkRun(t, "batch of several runs", g, w)
	}
}

func testRunZeroValues(t *testing.T, s store.Store) {
	want := store.Run{ID: "zero"}
	write(t, s, store.Batch{Runs: []store.Run{want}})
	got, err := s.RunGet(context.Background(), "zero")
	if err != nil {
		t.Fatalf("RunGet: %v", err)
	}
	checkRun(t, "zero run", got, want)
	for name, tm := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt,
		"StartedAt": got.StartedAt, "EndedAt": got.EndedAt, "LeaseUntil": got.LeaseUntil} {
		if !tm.IsZero() {
			t.Errorf("%s = %v, want zero time", name, tm)
		}
	}
}

func testTaskRunUpsertRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := store.TaskRun{
		ID:            "tr-1",
		RunID:         "run-1",
		Key:           "fetch/0",
		Task:          "fetch",
		Identity:      "0123456789abcdef0123456789abcdef.2",
		ChildRunID:    "child-1",
		State:         store.TaskPending,
		Attempts:      2,
		FlowAttempt:   1,
		InputHash:     "sha256:1234",
		Input:         raw(`{"parts_at":[1],"value":{"url":null}}`),
		InputRef:      "sha256:input",
		Result:        raw(`"text"`),
		Error:         &store.ErrorInfo{Message: "timeout", Kind: "timeout", Chain: []string{"timeout"}},
		CachedFrom:    "tr-0",
		CachedFromRun: "run-0",
		CreatedAt:     at(1),
		StartedAt:     at(2),
		EndedAt:       at(3),
		Queue:         "gpu", // PENDING on a queue: still overwritable
		WorkerID:      "worker-b",
		LeaseUntil:    at(4),
		Deps:          []string{"load/0", "square/1"},
		Map:           "fetch",
		History: []store.Transition{
			{At: at(2), To: "RUNNING", Cause: "engine", Message: "attempt 1"},
			{At: at(3), From: "RUNNING", To: "FAILED", Cause: "engine", Message: "timeout"},
		},
	}
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{want}})
	list, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: "run-1"})
	if err != nil {
		t.Fatalf("TaskRunList: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("TaskRunList: %d rows, want 1", len(list))
	}
	checkTaskRun(t, "after insert", list[0], want)

	want2 := store.TaskRun{ID: "tr-1", RunID: "run-1", Key: "fetch/0", Task: "fetch",
		State: store.TaskCompleted, Attempts: 3, Input: raw(`{}`), CreatedAt: at(1)}
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{want2}})
	list, err = s.TaskRunList(ctx, store.TaskRunListParams{RunID: "run-1"})
	if err != nil {
		t.Fatalf("TaskRunList: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("TaskRunList after update: %d rows, want 1 (upsert by ID)", len(list))
	}
	checkTaskRun(t, "after update", list[0], want2)

	// A final task run is never overwritten (a resent batch cannot undo a
	// completion), nor is a distributed one a worker has claimed.
	stale := want2
	stale.State, stale.Attempts = store.TaskRunning, 1
	claimed := store.TaskRun{ID: "tr-2", RunID: "run-1", Key: "fetch/1", Task: "fetch", Queue: "gpu",
		State: store.TaskRunning, WorkerID: "w", Attempts: 1, CreatedAt: at(2)}
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{stale, claimed}})
	resent := claimed
	resent.State, resent.WorkerID = store.TaskPending, ""
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{resent}})
	list, err = s.TaskRunList(ctx, store.TaskRunListParams{RunID: "run-1"})
	if err != nil || len(list) != 2 {
		t.Fatalf("TaskRunList: %v %v", list, err)
	}
	checkTaskRun(t, "after a stale rewrite of a final task run", list[0], want2)
	checkTaskRun(t, "after a resent dispatch of a claimed task run", list[1], claimed)

	// Many rows in one batch round-trip too (backends may chunk them).
	var many []store.TaskRun
	for i := range 300 {
		many = append(many, store.TaskRun{ID: fmt.Sprintf("m-%03d", i), RunID: "run-m",
			Key: fmt.Sprintf("k/%d", i), State: store.TaskPending, Attempts: i, CreatedAt: at(i)})
	}
	write(t, s, store.Batch{TaskRuns: many})
	list, err = s.TaskRunList(ctx, store.TaskRunListParams{RunID: "run-m"})
	if err != nil {
		t.Fatalf("TaskRunList: %v", err)
	}
	if len(list) != len(many) {
		t.Fatalf("TaskRunList: %d rows, want %d", len(list), len(many))
	}
	for i := range many {
		checkTaskRun(t, "batch row", list[i], many[i])
	}
}

func testRunGetNotFound(t *testing.T, s store.Store) {
	_, err := s.RunGet(context.Background(), "nope")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RunGet missing: err = %v, want ErrNotFound", err)
	}
}

func testRunList(t *testing.T, s store.Store) {
	ctx := context.Background()
	runs := []store.Run{
		{ID: "r1", Flow: "a", State: store.RunCompleted, CreatedAt: at(1), Queue: "q1"},
		{ID: "r2", Flow: "b", State: store.RunRunning, CreatedAt: at(2), Queue: "q2"},
		{ID: "r3", Flow: "a", State: store.RunRunning, CreatedAt: at(3), Queue: "q1"},
		{ID: "r4", Flow: "a", State: store.RunRunning, CreatedAt: at(4), ParentRunID: "r3", ParentStepKey: "s/1"},
		{ID: "r5", Flow: "b", State: store.RunFailed, CreatedAt: at(5), ParentRunID: "r3", ParentStepKey: "s/2"},
	}
	write(t, s, store.Batch{Runs: runs})
	for _, tc := range []struct {
		p    store.RunListParams
		want []string
	}{
		{store.RunListParams{}, []string{"r5", "r4", "r3", "r2", "r1"}},
		{store.RunListParams{Flow: "a"}, []string{"r4", "r3", "r1"}},
		{store.RunListParams{State: store.RunRunning}, []string{"r4", "r3", "r2"}},
		{store.RunListParams{Flow: "a", State: store.RunRunning}, []string{"r4", "r3"}},
		{store.RunListParams{ParentRunID: "r3"}, []string{"r5", "r4"}},
		{store.RunListParams{ParentRunID: "r3", Flow: "b"}, []string{"r5"}},
		{store.RunListParams{Limit: 2}, []string{"r5", "r4"}},
		{store.RunListParams{Flow: "a", Limit: 1}, []string{"r4"}},
		{store.RunListParams{Flow: "none"}, []string{}},
		{store.RunListParams{Queue: "q1"}, []string{"r3", "r1"}},
		{store.RunListParams{Queue: "q1", State: store.RunRunning}, []string{"r3"}},
		{store.RunListParams{Queue: "q2", Flow: "a"}, []string{}},
	} {
		got, err := s.RunList(ctx, tc.p)
		if err != nil {
			t.Fatalf("RunList(%+v): %v", tc.p, err)
		}
		if ids := runIDs(got); !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("RunList(%+v) = %v, want %v", tc.p, ids, tc.want)
		}
	}
	got, err := s.RunList(ctx, store.RunListParams{ParentRunID: "r3", Flow: "a"})
	if err != nil {
		t.Fatalf("RunList: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("RunList: %d runs, want 1", len(got))
	}
	checkRun(t, "listed run", got[0], runs[3])
}

func testRunListDefaultLimit(t *testing.T, s store.Store) {
	var runs []store.Run
	for i := range 105 {
		runs = append(runs, store.Run{ID: fmt.Sprintf("r%03d", i), Flow: "f", CreatedAt: at(i)})
	}
	write(t, s, store.Batch{Runs: runs})
	got, err := s.RunList(context.Background(), store.RunListParams{})
	if err != nil {
		t.Fatalf("RunList: %v", err)
	}
	if len(got) != 100 {
		t.Fatalf("RunList default limit: %d runs, want 100", len(got))
	}
	if got[0].ID != "r104" || got[99].ID != "r005" {
		t.Errorf("RunList: first %s last %s, want r104 and r005", got[0].ID, got[99].ID)
	}
}

func testRunTransition(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := fullRun()
	r.State = store.RunPending
	r.WorkerID, r.LeaseUntil = "", time.Time{}
	run2 := store.Run{ID: "run-2", Flow: "f", State: store.RunRunning, Attempt: 1, Queue: "q1",
		Result: raw(`"partial"`), ResultRef: "ref-partial", CreatedAt: at(1), UpdatedAt: at(1), StartedAt: at(2),
		OwnerHost: "h2", OwnerPID: 2, OwnerStart: 22, WorkerID: "w2", LeaseUntil: at(60)}
	write(t, s, store.Batch{Runs: []store.Run{r, run2}})

	// step applies p, checks the returned and stored rows against want and
	// returns the new row.
	step := func(what string, p store.RunTransitionParams, want store.Run) store.Run {
		t.Helper()
		got, err := s.RunTransition(ctx, p)
		if err != nil {
			t.Fatalf("%s: RunTransition: %v", what, err)
		}
		checkRun(t, what+": returned run", got, want)
		stored, err := s.RunGet(ctx, p.ID)
		if err != nil {
			t.Fatalf("%s: RunGet: %v", what, err)
		}
		checkRun(t, what+": stored run", stored, got)
		return got
	}

	// Entering RUNNING with an owner: StartedAt is kept (not zero), EndedAt,
	// Result, ResultRef and Error are cleared.
	owner := &store.Owner{Host: "host-b", PID: 7, Start: 99, WorkerID: "w1", LeaseUntil: at(200)}
	want := r
	want.State, want.UpdatedAt = store.RunRunning, at(100)
	want.OwnerHost, want.OwnerPID, want.OwnerStart, want.WorkerID, want.LeaseUntil = "host-b", 7, 99, "w1", at(200)
	want.EndedAt, want.Result, want.ResultRef, want.Error = time.Time{}, nil, "", nil
	step("PENDING -> RUNNING", store.RunTransitionParams{ID: r.ID,
		From: []store.RunState{store.RunScheduled, store.RunPending}, To: store.RunRunning, Attempt: r.Attempt,
		Owner: owner, Cause: "engine", Message: "starting", At: at(100)}, want)

	// AWAITING_RETRY records the error; the lease stays. Steps are the
	// counts of the attempt that ends (3).
	e1 := &store.ErrorInfo{Message: "boom", Type: "*errors.errorString", Chain: []string{"boom"}}
	want.State, want.Error, want.UpdatedAt = store.RunAwaitingRetry, e1, at(101)
	want.Attempts = append(slices.Clone(r.Attempts), store.AttemptInfo{Attempt: 3, Steps: &store.StepCounts{Reused: 7, Ran: 1}})
	step("RUNNING -> AWAITING_RETRY", store.RunTransitionParams{ID: r.ID, From: []store.RunState{store.RunRunning},
		To: store.RunAwaitingRetry, Error: e1, Cause: "policy", Message: "retry", At: at(101),
		Steps: &store.StepCounts{Reused: 7, Ran: 1}}, want)

	// The next attempt: Attempt+1, the error is cleared. New parameters
	// replace the old ones, and the edit is recorded on the new attempt.
	want.State, want.Attempt, want.Error, want.UpdatedAt = store.RunRunning, r.Attempt+1, nil, at(102)
	want.Parameters = raw(`{"n":2,"s":"x"}`)
	want.Attempts = append(slices.Clone(want.Attempts), store.AttemptInfo{Attempt: 4,
		Edit: &store.ParamsEdit{From: r.Parameters, To: want.Parameters, By: "bob", At: at(102)}})
	step("AWAITING_RETRY -> RUNNING", store.RunTransitionParams{ID: r.ID,
		From: []store.RunState{store.RunAwaitingRetry}, To: store.RunRunning, NextAttempt: true, Cause: "policy",
		Message: "attempt 4", At: at(102), Parameters: raw(`{"n":2,"s":"x"}`), EditBy: "bob"}, want)

	// COMPLETED stores the result, sets EndedAt and clears the lease (the
	// worker stays, as the record of who ran it). A result in the blob
	// store (ResultRef) is never recorded with an inline value beside it.
	want.State, want.Result, want.ResultRef = store.RunCompleted, nil, "ref-result"
	want.EndedAt, want.LeaseUntil, want.UpdatedAt = at(103), time.Time{}, at(103)
	step("RUNNING -> COMPLETED", store.RunTransitionParams{ID: r.ID, From: []store.RunState{store.RunRunning},
		To: store.RunCompleted, Attempt: r.Attempt + 1, Result: raw(`{"ok":true}`), ResultRef: "ref-result",
		Cause: "engine", Message: "done", At: at(103)}, want)

	// FAILED stores the error and clears the result.
	e2 := &store.ErrorInfo{Message: "bad", Kind: "permanent"}
	want2 := run2
	want2.State, want2.Error, want2.Result, want2.ResultRef = store.RunFailed, e2, nil, ""
	want2.EndedAt, want2.LeaseUntil, want2.UpdatedAt = at(50), time.Time{}, at(50)
	step("RUNNING -> FAILED", store.RunTransitionParams{ID: run2.ID, From: []store.RunState{store.RunRunning},
		To: store.RunFailed, Error: e2, Cause: "engine", At: at(50)}, want2)

	// Back to SCHEDULED on another queue: owner, worker and lease cleared,
	// EndedAt cleared, the error of the last attempt kept.
	want2.State, want2.Attempt, want2.Queue, want2.EndedAt, want2.UpdatedAt = store.RunScheduled, 2, "q2", time.Time{}, at(51)
	want2.OwnerHost, want2.OwnerPID, want2.OwnerStart, want2.WorkerID = "", 0, 0, ""
	step("FAILED -> SCHEDULED", store.RunTransitionParams{ID: run2.ID,
		From: []store.RunState{store.RunFailed, store.RunCrashed}, To: store.RunScheduled, NextAttempt: true,
		Queue: "q2", Cause: "user", Message: "retry", At: at(51)}, want2)

	// CANCELLED and CRASHED store the error too.
	want2.State, want2.Error, want2.EndedAt, want2.UpdatedAt = store.RunCancelled, nil, at(52), at(52)
	step("SCHEDULED -> CANCELLED", store.RunTransitionParams{ID: run2.ID, From: []store.RunState{store.RunScheduled},
		To: store.RunCancelled, Cause: "user", At: at(52)}, want2)

	// A worker starting the run it claimed never shortens its lease, which
	// heartbeats may have extended since the claim; another worker's lease
	// is replaced.
	run3 := store.Run{ID: "run-3", Flow: "f", State: store.RunPending, Attempt: 1, Queue: "q",
		WorkerID: "w5", LeaseUntil: at(300), CreatedAt: at(1), UpdatedAt: at(1)}
	write(t, s, store.Batch{Runs: []store.Run{run3}})
	want3 := run3
	want3.State, want3.StartedAt, want3.UpdatedAt, want3.OwnerHost, want3.OwnerPID = store.RunRunning, at(60), at(60), "h5", 5
	step("claimed PENDING -> RUNNING", store.RunTransitionParams{ID: run3.ID, From: []store.RunState{store.RunPending},
		To: store.RunRunning, Attempt: 1, Owner: &store.Owner{Host: "h5", PID: 5, WorkerID: "w5", LeaseUntil: at(250)},
		Cause: "worker:w5", At: at(60)}, want3)
	want3.State, want3.UpdatedAt, want3.WorkerID, want3.LeaseUntil = store.RunPending, at(61), "w6", at(100)
	step("RUNNING -> PENDING, another worker", store.RunTransitionParams{ID: run3.ID,
		From: []store.RunState{store.RunRunning}, To: store.RunPending,
		Owner: &store.Owner{Host: "h5", PID: 5, WorkerID: "w6", LeaseUntil: at(100)}, Cause: "test", At: at(61)}, want3)

	evs, err := s.EventList(ctx, r.ID)
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	wantEvs := []store.Event{
		{RunID: r.ID, From: "PENDING", To: "RUNNING", Cause: "engine", Message: "starting", At: at(100)},
		{RunID: r.ID, From: "RUNNING", To: "AWAITING_RETRY", Cause: "policy", Message: "retry", At: at(101)},
		{RunID: r.ID, From: "AWAITING_RETRY", To: "RUNNING", Cause: "policy", Message: "attempt 4", At: at(102)},
		{RunID: r.ID, From: "RUNNING", To: "COMPLETED", Cause: "engine", Message: "done", At: at(103)},
	}
	checkEvents(t, "events of "+r.ID, evs, wantEvs)
	evs, err = s.EventList(ctx, run2.ID)
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	checkEvents(t, "events of "+run2.ID, evs, []store.Event{
		{RunID: run2.ID, From: "RUNNING", To: "FAILED", Cause: "engine", At: at(50)},
		{RunID: run2.ID, From: "FAILED", To: "SCHEDULED", Cause: "user", Message: "retry", At: at(51)},
		{RunID: run2.ID, From: "SCHEDULED", To: "CANCELLED", Cause: "user", At: at(52)},
	})

	// A zero At means now, for UpdatedAt, StartedAt and the event.
	write(t, s, store.Batch{Runs: []store.Run{{ID: "run-now", State: store.RunPending, Attempt: 1}}})
	before := time.Now()
	got, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-now", From: []store.RunState{store.RunPending},
		To: store.RunRunning, Cause: "engine"})
	if err != nil {
		t.Fatalf("RunTransition without At: %v", err)
	}
	after := time.Now()
	about := func(what string, tm time.Time) {
		t.Helper()
		if tm.Before(before.Add(-time.Second)) || tm.After(after.Add(time.Second)) {
			t.Errorf("%s = %v, want about now (%v)", what, tm, before)
		}
	}
	about("UpdatedAt", got.UpdatedAt)
	about("StartedAt", got.StartedAt)
	evs, err = s.EventList(ctx, "run-now")
	if err != nil || len(evs) != 1 {
		t.Fatalf("EventList = %v, %v; want 1 event", evs, err)
	}
	about("event At", evs[0].At)
}

// checkEvents compares events ignoring their IDs.
func checkEvents(t *testing.T, what string, got, want []store.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d:\n got  %v\n want %v", what, len(got), len(want), got, want)
		return
	}
	for i := range want {
		g := normEvent(got[i])
		g.ID = 0
		if w := normEvent(want[i]); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: event %d:\n got  %s\n want %s", what, i, show(g), show(w))
		}
	}
}

func testRunTransitionConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := store.Run{ID: "run-c", Flow: "f", State: store.RunCompleted, Attempt: 2, CreatedAt: at(1), UpdatedAt: at(1)}
	write(t, s, store.Batch{Runs: []store.Run{r}})
	_, err := s.RunTransition(ctx, store.RunTransitionParams{
		ID: r.ID, From: []store.RunState{store.RunPending, store.RunRunning}, To: store.RunFailed, Cause: "engine",
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RunTransition from wrong state: err = %v, want ErrConflict", err)
	}
	if !strings.Contains(err.Error(), string(store.RunCompleted)) {
		t.Errorf("conflict error %q does not name the current state %s", err, store.RunCompleted)
	}
	// The right state at the wrong attempt conflicts too.
	_, err = s.RunTransition(ctx, store.RunTransitionParams{
		ID: r.ID, From: []store.RunState{store.RunCompleted}, To: store.RunScheduled, Attempt: 1, Cause: "user",
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RunTransition at the wrong attempt: err = %v, want ErrConflict", err)
	}
	got, err := s.RunGet(ctx, r.ID)
	if err != nil {
		t.Fatalf("RunGet: %v", err)
	}
	checkRun(t, "run after conflict", got, r)
	evs, err := s.EventList(ctx, r.ID)
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	if len(evs) != 0 {
		t.Errorf("conflict recorded events: %+v", evs)
	}
}

func testRunTransitionNotFound(t *testing.T, s store.Store) {
	_, err := s.RunTransition(context.Background(), store.RunTransitionParams{
		ID: "missing", From: store.RunStates, To: store.RunRunning, Cause: "engine",
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RunTransition missing run: err = %v, want ErrNotFound", err)
	}
}

func testRunTransitionConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	write(t, s, store.Batch{Runs: []store.Run{{ID: "run-x", State: store.RunPending, Attempt: 1}}})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.RunTransition(ctx, store.RunTransitionParams{
				ID: "run-x", From: []store.RunState{store.RunPending}, To: store.RunRunning, Attempt: 1,
				Owner: &store.Owner{PID: i + 1}, Cause: fmt.Sprintf("worker:%d", i),
			})
		})
	}
	wg.Wait()
	ok, winner := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
			winner = i + 1
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("transition %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent transitions from PENDING succeeded, want exactly 1", ok)
	}
	evs, err := s.EventList(ctx, "run-x")
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	if len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
	if r, err := s.RunGet(ctx, "run-x"); err != nil || r.OwnerPID != winner {
		t.Errorf("RunGet = pid %d, %v; want the winner's pid %d", r.OwnerPID, err, winner)
	}
}

func testRunChildGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	child := store.Run{ID: "child", Flow: "sub", State: store.RunRunning, ParentRunID: "parent",
		ParentStepKey: "call/1", Parameters: raw(`{"x":1}`), CreatedAt: at(2)}
	write(t, s, store.Batch{Runs: []store.Run{
		{ID: "parent", Flow: "main", CreatedAt: at(1)},
		child,
		{ID: "other", Flow: "sub", ParentRunID: "parent", ParentStepKey: "call/2", CreatedAt: at(3)},
	}})
	got, err := s.RunChildGet(ctx, "parent", "call/1")
	if err != nil {
		t.Fatalf("RunChildGet: %v", err)
	}
	checkRun(t, "child", got, child)
	for _, q := range [][2]string{{"parent", "call/9"}, {"nobody", "call/1"}, {"child", "call/1"}} {
		if _, err := s.RunChildGet(ctx, q[0], q[1]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RunChildGet(%q, %q): err = %v, want ErrNotFound", q[0], q[1], err)
		}
	}
}

func testTaskRunList(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Written out of order; t2 and t3 share a creation time, so the ID
	// breaks the tie (engine IDs are time ordered).
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		{ID: "t4", RunID: "r", Key: "b", CreatedAt: at(4)},
		{ID: "t1", RunID: "r", Key: "a", CreatedAt: at(1)},
		{ID: "t3", RunID: "r", Key: "b", CreatedAt: at(2)},
		{ID: "t2", RunID: "r", Key: "a", CreatedAt: at(2)},
		{ID: "x1", RunID: "other", Key: "a", CreatedAt: at(0)},
	}})
	// An update later does not move a row.
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		{ID: "t3", RunID: "r", Key: "b", State: store.TaskCompleted, CreatedAt: at(2), Input: raw(`{"n":1}`), InputHash: "h",
			Result: raw(`2`), ResultRef: "ref", Error: &store.ErrorInfo{Message: "m"},
			History: []store.Transition{{At: at(2), To: "COMPLETED"}}},
	}})
	// Brief leaves the large parts out and keeps the rest.
	brief, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: "r", ID: "t3", Brief: true})
	if err != nil || len(brief) != 1 {
		t.Fatalf("TaskRunList brief: %v, %v", brief, err)
	}
	if b := brief[0]; b.Input != nil || b.Result != nil || b.History != nil || b.InputHash != "h" || b.ResultRef != "ref" ||
		b.Error == nil || b.State != store.TaskCompleted || !b.CreatedAt.Equal(at(2)) {
		t.Errorf("TaskRunList brief: %+v", b)
	}
	for _, tc := range []struct {
		p    store.TaskRunListParams
		want []string
	}{
		{store.TaskRunListParams{RunID: "r"}, []string{"t1", "t2", "t3", "t4"}},
		{store.TaskRunListParams{RunID: "r", Key: "b"}, []string{"t3", "t4"}},
		{store.TaskRunListParams{RunID: "r", Key: "zzz"}, []string{}},
		{store.TaskRunListParams{RunID: "r", ID: "t3"}, []string{"t3"}},
		{store.TaskRunListParams{RunID: "r", ID: "x1"}, []string{}}, // another run's
		{store.TaskRunListParams{RunID: "r", Key: "a", ID: "t3"}, []string{}},
		{store.TaskRunListParams{RunID: "none"}, []string{}},
	} {
		got, err := s.TaskRunList(ctx, tc.p)
		if err != nil {
			t.Fatalf("TaskRunList(%+v): %v", tc.p, err)
		}
		if ids := taskRunIDs(got); !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("TaskRunList(%+v) = %v, want %v", tc.p, ids, tc.want)
		}
	}
}

// testTaskRunListPagedAndCounted: the reads `runs show` summarises a large
// run with, without reading every row.
func testTaskRunListPagedAndCounted(t *testing.T, s store.Store) {
	ctx := context.Background()
	tr := func(id, task string, state store.TaskState, created, started, ended int) store.TaskRun {
		r := store.TaskRun{ID: id, RunID: "p", Key: id, Task: task, State: state, CreatedAt: at(created)}
		if started > 0 {
			r.StartedAt = at(started)
		}
		if ended > 0 {
			r.EndedAt = at(ended)
		}
		return r
	}
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		tr("a1", "fetch", store.TaskCompleted, 1, 1, 3), // 2s
		tr("a2", "fetch", store.TaskFailed, 2, 2, 12),   // 10s
		tr("a3", "fetch", store.TaskCompleted, 3, 3, 8), // 5s
		tr("a4", "load", store.TaskTimedOut, 4, 4, 14),  // 10s, created after a2
		tr("a5", "load", store.TaskRunning, 5, 5, 0),    // not ended
		tr("a6", "load", store.TaskPending, 6, 0, 0),    // not started
		tr("a7", "fetch", store.TaskCompleted, 7, 7, 8), // 1s
		{ID: "o1", RunID: "other", Key: "o1", Task: "fetch", State: store.TaskFailed, CreatedAt: at(0)},
	}})
	failed := []store.TaskState{store.TaskFailed, store.TaskTimedOut, store.TaskCancelled, store.TaskCrashed}
	for _, tc := range []struct {
		name string
		p    store.TaskRunListParams
		want []string
	}{
		{"page", store.TaskRunListParams{RunID: "p", Offset: 2, Limit: 3}, []string{"a3", "a4", "a5"}},
		{"limit only", store.TaskRunListParams{RunID: "p", Limit: 2}, []string{"a1", "a2"}},
		{"offset only", store.TaskRunListParams{RunID: "p", Offset: 5}, []string{"a6", "a7"}},
		{"offset past the end", store.TaskRunListParams{RunID: "p", Offset: 50, Limit: 5}, []string{}},
		{"states", store.TaskRunListParams{RunID: "p", States: failed}, []string{"a2", "a4"}},
		{"states paged", store.TaskRunListParams{RunID: "p", States: failed, Limit: 1}, []string{"a2"}},
		{"slowest", store.TaskRunListParams{RunID: "p", Slowest: true}, []string{"a2", "a4", "a3", "a1", "a7"}},
		{"slowest 3", store.TaskRunListParams{RunID: "p", Slowest: true, Limit: 3}, []string{"a2", "a4", "a3"}},
	} {
		got, err := s.TaskRunList(ctx, tc.p)
		if err != nil {
			t.Fatalf("%s: TaskRunList(%+v): %v", tc.name, tc.p, err)
		}
		if ids := taskRunIDs(got); !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("%s: TaskRunList(%+v) = %v, want %v", tc.name, tc.p, ids, tc.want)
		}
	}
	counts, err := s.TaskRunCounts(ctx, "p")
	if err != nil {
		t.Fatalf("TaskRunCounts: %v", err)
	}
	want := []store.TaskRunCount{
		{Task: "fetch", State: store.TaskCompleted, N: 3}, {Task: "fetch", State: store.TaskFailed, N: 1},
		{Task: "load", State: store.TaskPending, N: 1}, {Task: "load", State: store.TaskRunning, N: 1},
		{Task: "load", State: store.TaskTimedOut, N: 1},
	}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("TaskRunCounts = %+v, want %+v", counts, want)
	}
	if counts, err := s.TaskRunCounts(ctx, "none"); err != nil || len(counts) != 0 {
		t.Errorf("TaskRunCounts of a run without task runs = %v, %v", counts, err)
	}
}

func testJournalList(t *testing.T, s store.Store) {
	ctx := context.Background()
	tr := func(id, key string, state store.TaskState, created int, result string) store.TaskRun {
		t := store.TaskRun{ID: id, RunID: "r", Key: key, Task: "task-" + key, Identity: "id-" + id, State: state,
			InputHash: "h-" + id, Result: raw(result), CreatedAt: at(created)}
		if id == "a3" || id == "e2" { // in the blob store: no inline result
			t.Result, t.ResultRef = nil, "ref-"+id
		}
		if strings.HasPrefix(key, "sub") {
			t.ChildRunID = "c-" + id
		}
		return t
	}
	remote := func(t store.TaskRun) store.TaskRun { t.Queue = "q"; return t }
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		tr("a1", "a", store.TaskCompleted, 1, `1`),
		tr("a2", "a", store.TaskFailed, 2, `2`),
		tr("a3", "a", store.TaskCompleted, 3, `3`), // latest success of a
		tr("a4", "a", store.TaskFailed, 4, `4`),    // later failure ignored
		tr("b1", "b", store.TaskFailed, 1, `1`),    // b never succeeded
		tr("b2", "b", store.TaskRunning, 2, `2`),   // a local task in flight is not journaled
		tr("c1", "c", store.TaskCached, 1, `"cached"`),
		tr("d2", "d", store.TaskCompleted, 5, `"newer"`),
		tr("d1", "d", store.TaskCompleted, 4, `"older, written later"`),
		tr("e1", "e", store.TaskCompleted, 6, `"first"`),
		tr("e2", "e", store.TaskCompleted, 6, `"same time, written later"`),
		tr("q1", "q", store.TaskCompleted, 1, `1`),
		remote(tr("q2", "q", store.TaskPending, 2, `null`)), // distributed, in flight after a success
		remote(tr("r1", "r", store.TaskRunning, 1, `null`)), // distributed, in flight only
		remote(tr("s1", "s", store.TaskPending, 1, `null`)), // in flight, then superseded by a success
		tr("s2", "s", store.TaskCompleted, 2, `2`),
		tr("f1", "sub1", store.TaskFailed, 1, `null`),  // a subflow step that failed: its child is resumed
		tr("f2", "sub2", store.TaskCompleted, 1, `1`),  // a subflow step that succeeded,
		tr("f3", "sub2", store.TaskRunning, 2, `null`), // then ran again (another input under its key)
		tr("f4", "sub3", store.TaskFailed, 1, `null`),  // a failure superseded by a success
		tr("f5", "sub3", store.TaskCompleted, 2, `5`),
		{ID: "o1", RunID: "other", Key: "a", State: store.TaskCompleted, Result: raw(`0`), CreatedAt: at(9)},
	}})
	// Rewriting a row unchanged keeps it; a nil result stays nil.
	f := tr("c1", "c", store.TaskCached, 1, `"cached"`)
	g := tr("g1", "g", store.TaskCompleted, 1, `null`)
	g.Result = nil
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{f, g}})

	got, err := s.JournalList(ctx, "r")
	if err != nil {
		t.Fatalf("JournalList: %v", err)
	}
	var want []store.JournalEntry
	for _, w := range []store.TaskRun{
		tr("a3", "a", store.TaskCompleted, 3, `3`),
		tr("c1", "c", store.TaskCached, 1, `"cached"`),
		tr("d2", "d", store.TaskCompleted, 5, `"newer"`),
		tr("e2", "e", store.TaskCompleted, 6, `"same time, written later"`),
		g,
		tr("q1", "q", store.TaskCompleted, 1, `1`),
		tr("q2", "q", store.TaskPending, 2, `null`),
		tr("r1", "r", store.TaskRunning, 1, `null`),
		tr("s2", "s", store.TaskCompleted, 2, `2`),
		tr("f1", "sub1", store.TaskFailed, 1, `null`),
		tr("f2", "sub2", store.TaskCompleted, 1, `1`),
		tr("f3", "sub2", store.TaskRunning, 2, `null`),
		tr("f5", "sub3", store.TaskCompleted, 2, `5`),
	} {
		if !w.State.Succeeded() {
			w.Result = nil
		}
		want = append(want, store.JournalEntry{Key: w.Key, Task: w.Task, Identity: w.Identity, InputHash: w.InputHash,
			Result: w.Result, ResultRef: w.ResultRef, ChildRunID: w.ChildRunID, ID: w.ID, State: w.State})
	}
	if len(got) != len(want) {
		t.Fatalf("JournalList: %d entries, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if string(g.Result) == "null" {
			g.Result = nil
		}
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("JournalList[%d]:\n got  %s\n want %s", i, show(g), show(want[i]))
		}
	}

	// A final task run cannot be rewritten: the journal keeps its success.
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{tr("c1", "c", store.TaskFailed, 1, `"cached"`)}})
	got, err = s.JournalList(ctx, "r")
	if err != nil {
		t.Fatalf("JournalList: %v", err)
	}
	found := false
	for _, e := range got {
		found = found || (e.Key == "c" && e.State == store.TaskCached)
	}
	if !found {
		t.Errorf("JournalList lost the CACHED entry of key c after a rewrite of its final task run")
	}
	if got, err := s.JournalList(ctx, "empty"); err != nil || len(got) != 0 {
		t.Errorf("JournalList of unknown run = %v, %v; want empty", got, err)
	}
}

func testEventList(t *testing.T, s store.Store) {
	ctx := context.Background()
	evs := []store.Event{
		{RunID: "r", From: "PENDING", To: "RUNNING", Cause: "engine", At: at(1)},
		{RunID: "r", TaskRunID: "tr1", TaskKey: "k/1", From: "PENDING", To: "RUNNING", Cause: "worker:a", At: at(2)},
		{RunID: "other", From: "A", To: "B", At: at(3)},
		{RunID: "r", TaskRunID: "tr1", TaskKey: "k/1", From: "RUNNING", To: "FAILED", Cause: "worker:a",
			Message: "boom", At: at(2)},
	}
	paused := store.Event{RunID: "r", From: "RUNNING", To: "PAUSED", Cause: "user", At: at(0)}
	write(t, s, store.Batch{Events: evs[:2]})
	write(t, s, store.Batch{Events: evs[2:]})
	write(t, s, store.Batch{Events: []store.Event{paused}})
	// Task-run transitions kept in the row's History join the history.
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{{ID: "tr2", RunID: "r", Key: "k/2", State: store.TaskCompleted,
		History: []store.Transition{
			{At: at(1), To: "RUNNING", Cause: "engine", Message: "attempt 1"},
			{At: at(5), From: "RUNNING", To: "COMPLETED", Cause: "engine"},
		}}}})
	got, err := s.EventList(ctx, "r")
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	want := []store.Event{paused, evs[0],
		{RunID: "r", TaskRunID: "tr2", TaskKey: "k/2", To: "RUNNING", Cause: "engine", Message: "attempt 1", At: at(1)},
		evs[1], evs[3],
		{RunID: "r", TaskRunID: "tr2", TaskKey: "k/2", From: "RUNNING", To: "COMPLETED", Cause: "engine", At: at(5)},
	}
	if len(got) != len(want) {
		t.Fatalf("EventList: %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := normEvent(got[i])
		g.ID = 0
		if w := normEvent(want[i]); !reflect.DeepEqual(g, w) {
			t.Errorf("event %d:\n got  %s\n want %s", i, show(g), show(w))
		}
	}
	if got, err := s.EventList(ctx, "none"); err != nil || len(got) != 0 {
		t.Errorf("EventList of unknown run = %v, %v; want empty", got, err)
	}
}

func testLogList(t *testing.T, s store.Store) {
	ctx := context.Background()
	logs := []store.LogRecord{
		{RunID: "r", Level: "INFO", Message: "flow start", Attrs: raw(`{"a":1}`), At: at(1)},
		{RunID: "r", TaskRunID: "tr1", TaskKey: "k/1", Level: "DEBUG", Message: "task 1", At: at(2)},
		{RunID: "other", TaskKey: "k/1", Level: "INFO", Message: "elsewhere", At: at(2)},
		{RunID: "r", TaskRunID: "tr2", TaskKey: "k/2", Level: "WARN", Message: "task 2", Attrs: raw(`{}`), At: at(3)},
		{RunID: "r", TaskRunID: "tr1", TaskKey: "k/1", Level: "ERROR", Message: "task 1 again", At: at(4)},
	}
	write(t, s, store.Batch{Logs: logs})
	check := func(p store.LogListParams, want ...store.LogRecord) {
		t.Helper()
		got, err := s.LogList(ctx, p)
		if err != nil {
			t.Fatalf("LogList(%+v): %v", p, err)
		}
		if len(got) != len(want) {
			t.Fatalf("LogList(%+v): %d records, want %d: %+v", p, len(got), len(want), got)
		}
		var last int64
		for i := range want {
			if got[i].ID <= last {
				t.Errorf("LogList(%+v)[%d]: ID %d not increasing", p, i, got[i].ID)
			}
			last = got[i].ID
			g := normLog(got[i])
			g.ID = 0
			if w := normLog(want[i]); !reflect.DeepEqual(g, w) {
				t.Errorf("LogList(%+v)[%d]:\n got  %s\n want %s", p, i, show(g), show(w))
			}
		}
	}
	check(store.LogListParams{RunID: "r"}, logs[0], logs[1], logs[3], logs[4])
	check(store.LogListParams{RunID: "r", TaskKey: "k/1"}, logs[1], logs[4])
	check(store.LogListParams{RunID: "r", TaskKey: "k/1", Limit: 1}, logs[1])
	check(store.LogListParams{RunID: "r", Limit: 2}, logs[0], logs[1])
	check(store.LogListParams{RunID: "r", TaskKey: "nope"})
	check(store.LogListParams{RunID: "none"})
}

func testCache(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.CacheGet(ctx, "missing", at(0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CacheGet missing: err = %v, want ErrNotFound", err)
	}
	forever := store.CacheEntry{Key: "k-forever", Task: "t", ResultRef: "ref",
		RunID: "r", TaskRunID: "tr", CreatedAt: at(1)}
	expiring := store.CacheEntry{Key: "k-exp", Task: "t", Result: raw(`2`), RunID: "r", TaskRunID: "tr2",
		CreatedAt: at(1), ExpiresAt: at(10)}
	write(t, s, store.Batch{Cache: []store.CacheEntry{forever, expiring}})

	get := func(key string, now time.Time, want *store.CacheEntry) {
		t.Helper()
		got, err := s.CacheGet(ctx, key, now)
		if want == nil {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("CacheGet(%q, %v): err = %v, want ErrNotFound", key, now, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("CacheGet(%q, %v): %v", key, now, err)
		}
		if g, w := normCache(got), normCache(*want); !reflect.DeepEqual(g, w) {
			t.Errorf("CacheGet(%q):\n got  %s\n want %s", key, show(g), show(w))
		}
	}
	get("k-forever", at(1_000_000), &forever)
	get("k-exp", at(9), &expiring)
	get("k-exp", at(10), nil) // expiry is exclusive: at ExpiresAt it is gone
	get("k-exp", at(11), nil)

	// Upsert by key replaces the entry, including its expiry.
	renewed := store.CacheEntry{Key: "k-exp", Task: "t", Result: raw(`3`), RunID: "r2", TaskRunID: "tr3",
		CreatedAt: at(20), ExpiresAt: at(30)}
	write(t, s, store.Batch{Cache: []store.CacheEntry{renewed}})
	get("k-exp", at(25), &renewed)
	noExpiry := renewed
	noExpiry.ExpiresAt = time.Time{}
	noExpiry.Result = nil
	write(t, s, store.Batch{Cache: []store.CacheEntry{noExpiry}})
	get("k-exp", at(1_000_000), &noExpiry)
}

func testConcurrentBatchWrite(t *testing.T, s store.Store) {
	ctx := context.Background()
	const (
		writers = 6
		batches = 10
		rows    = 40
	)
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var batch store.Batch
				runID := fmt.Sprintf("run-%d", w)
				batch.Runs = []store.Run{{ID: runID, State: store.RunRunning, Attempt: b, CreatedAt: at(w)}}
				for i := range rows {
					id := fmt.Sprintf("w%d-b%d-%d", w, b, i)
					batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: id, RunID: runID,
						Key: fmt.Sprintf("k/%d/%d", b, i), State: store.TaskCompleted, Result: raw(`1`),
						CreatedAt: at(b*rows + i)})
					batch.Events = append(batch.Events, store.Event{RunID: runID, TaskRunID: id,
						From: "RUNNING", To: "COMPLETED", At: at(b)})
				}
				batch.Logs = []store.LogRecord{{RunID: runID, Message: "batch", At: at(b)}}
				batch.Cache = []store.CacheEntry{{Key: fmt.Sprintf("c-%d", w), RunID: runID, CreatedAt: at(b)}}
				if err := s.BatchWrite(ctx, batch); err != nil {
					errs <- fmt.Errorf("writer %d batch %d: %w", w, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range writers {
		runID := fmt.Sprintf("run-%d", w)
		r, err := s.RunGet(ctx, runID)
		if err != nil {
			t.Fatalf("RunGet: %v", err)
		}
		if r.Attempt != batches-1 {
			t.Errorf("%s: Attempt %d, want %d (last batch wins)", runID, r.Attempt, batches-1)
		}
		trs, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: runID})
		if err != nil {
			t.Fatalf("TaskRunList: %v", err)
		}
		if len(trs) != batches*rows {
			t.Errorf("%s: %d task runs, want %d", runID, len(trs), batches*rows)
		}
		j, err := s.JournalList(ctx, runID)
		if err != nil {
			t.Fatalf("JournalList: %v", err)
		}
		if len(j) != batches*rows {
			t.Errorf("%s: %d journal entries, want %d", runID, len(j), batches*rows)
		}
		evs, err := s.EventList(ctx, runID)
		if err != nil {
			t.Fatalf("EventList: %v", err)
		}
		if len(evs) != batches*rows {
			t.Errorf("%s: %d events, want %d", runID, len(evs), batches*rows)
		}
		logs, err := s.LogList(ctx, store.LogListParams{RunID: runID})
		if err != nil {
			t.Fatalf("LogList: %v", err)
		}
		if len(logs) != batches {
			t.Errorf("%s: %d logs, want %d", runID, len(logs), batches)
		}
		if _, err := s.CacheGet(ctx, fmt.Sprintf("c-%d", w), at(0)); err != nil {
			t.Errorf("CacheGet: %v", err)
		}
	}
}
