package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/store"
)

// This file turns Baton's records into the API's JSON documents (package
// apitype): what GET /api/v1/runs..., `baton runs list --json`, `baton runs
// show --json` and `run --json` print.

// ResultLoader reads a large value stored in the blob store under ref
// (store.Run.ResultRef, store.TaskRun.ResultRef, the large parts of an
// input under store.TaskRun.InputRef). *blob.Store implements it; a nil
// loader (or a nil *blob.Store) leaves such values null.
type ResultLoader interface {
	Get(ref string) ([]byte, error)
}

// ErrorJSON converts a recorded error; nil stays nil (JSON null).
func ErrorJSON(e *store.ErrorInfo) *apitype.ErrorInfo {
	if e == nil {
		return nil
	}
	chain := e.Chain
	if chain == nil {
		chain = []string{}
	}
	return &apitype.ErrorInfo{Message: e.Message, Type: e.Type, Kind: e.Kind, Chain: chain}
}

// AttemptsJSON converts a run's attempt records: one per attempt from 1 to
// the run's, nil when the run has none (recorded before attempts were).
func AttemptsJSON(r store.Run) []apitype.Attempt {
	if len(r.Attempts) == 0 {
		return nil
	}
	out := make([]apitype.Attempt, 0, r.Attempt)
	for n := 1; n <= r.Attempt; n++ {
		v := apitype.Attempt{Attempt: n}
		if a := r.AttemptRecord(n); a != nil {
			if a.Steps != nil {
				v.Steps = &apitype.StepCounts{Reused: a.Steps.Reused, Ran: a.Steps.Ran}
			}
			if e := a.Edit; e != nil {
				v.Edit = &apitype.ParamsEdit{From: viewRaw(e.From), To: viewRaw(e.To), By: e.By, At: e.At}
			}
		}
		out = append(out, v)
	}
	return out
}

// RunJSON converts a run. A result stored in the blob store (ResultRef) is
// read with load; when it cannot be read, the result is null.
func RunJSON(r store.Run, load ResultLoader) apitype.Run {
	v, _ := RunViewOf(r, load)
	return v
}

// LateGrace is how long after its planned start a run that has not
// started is late (apitype.Run.Late), unless a server says otherwise.
const LateGrace = time.Minute

// MarkLate sets v.Late when the run has not started by its planned start
// plus grace, at now.
func MarkLate(v *apitype.Run, now time.Time, grace time.Duration) {
	v.Late = (v.State == apitype.RunScheduled || v.State == apitype.RunAwaitingSlot) && now.After(v.ScheduledAt.Add(grace))
}

// RunViewOf is RunJSON that also returns why a blob result could not be read,
// with a complete view.
func RunViewOf(r store.Run, load ResultLoader) (apitype.Run, error) {
	v := apitype.Run{
		ID:            r.ID,
		Flow:          r.Flow,
		State:         string(r.State),
		Attempt:       r.Attempt,
		CreatedAt:     r.CreatedAt,
		StartedAt:     viewTimePtr(r.StartedAt),
		EndedAt:       viewTimePtr(r.EndedAt),
		ParentRunID:   r.ParentRunID,
		ParentStepKey: r.ParentStepKey,
		Parameters:    viewRaw(r.Parameters),
		Error:         ErrorJSON(r.Error),
		Queue:         r.Queue,
		WorkerID:      r.WorkerID,
		Attempts:      AttemptsJSON(r),
		ScheduledAt:   r.PlannedAt(),
		Deployment:    r.Deployment,
		Schedule:      r.ScheduleID,
	}
	if pr := r.PauseRequest; pr != nil {
		v.PauseRequest = &apitype.PauseRequest{By: pr.By.String(), Reason: pr.Reason, At: pr.At}
	}
	res, err := viewResult(r.Result, r.ResultRef, load)
	v.Result = res
	if err != nil {
		err = fmt.Errorf("load result of run %s: %w", r.ID, err)
	}
	return v, err
}

// TaskRunJSON converts a task run; load is used as in RunJSON.
func TaskRunJSON(tr store.TaskRun, load ResultLoader) apitype.TaskRun {
	v, _ := TaskRunViewOf(tr, load)
	return v
}

// TaskRunViewOf is TaskRunJSON that also returns why a blob result or
// input could not be read.
func TaskRunViewOf(tr store.TaskRun, load ResultLoader) (apitype.TaskRun, error) {
	v := apitype.TaskRun{
		ID:            tr.ID,
		Key:           tr.Key,
		Task:          tr.Task,
		State:         string(tr.State),
		Attempts:      tr.Attempts,
		StartedAt:     viewTimePtr(tr.StartedAt),
		EndedAt:       viewTimePtr(tr.EndedAt),
		CachedFrom:    tr.CachedFrom,
		CachedFromRun: tr.CachedFromRun,
		ChildRunID:    tr.ChildRunID,
		InputRef:      tr.InputRef,
		Error:         ErrorJSON(tr.Error),
		Queue:         tr.Queue,
		Tags:          tr.Tags,
	}
	in, ierr := viewInput(tr.Input, tr.InputRef, load)
	v.Input = in
	if ierr != nil {
		ierr = fmt.Errorf("load input of task run %s (%s): %w", tr.ID, tr.Key, ierr)
	}
	if !tr.StartedAt.IsZero() && !tr.EndedAt.IsZero() {
		ms := tr.EndedAt.Sub(tr.StartedAt).Milliseconds()
		v.DurationMS = &ms
	}
	res, err := viewResult(tr.Result, tr.ResultRef, load)
	v.Result = res
	if err != nil {
		err = fmt.Errorf("load result of task run %s (%s): %w", tr.ID, tr.Key, err)
	}
	return v, errors.Join(ierr, err)
}

// EventJSON converts an event.
func EventJSON(e store.Event) apitype.Event {
	return apitype.Event{At: e.At, TaskKey: e.TaskKey, From: e.From, To: e.To, Cause: e.Cause, Message: e.Message}
}

// RunDetailJSON converts a run with its task runs and events. Results that
// cannot be loaded are null.
func RunDetailJSON(r store.Run, trs []store.TaskRun, evs []store.Event, load ResultLoader) apitype.RunDetail {
	d, _ := RunDetailViewOf(r, trs, evs, load)
	return d
}

// RunDetailViewOf is RunDetailJSON that also returns why results could not be
// read, one line per result.
func RunDetailViewOf(r store.Run, trs []store.TaskRun, evs []store.Event, load ResultLoader) (apitype.RunDetail, error) {
	var errs []string
	rv, err := RunViewOf(r, load)
	if err != nil {
		errs = append(errs, err.Error())
	}
	d := apitype.RunDetail{Run: rv, TaskRuns: make([]apitype.TaskRun, 0, len(trs)), Events: make([]apitype.Event, 0, len(evs))}
	load = onceLoader(load) // the task runs of a fan-out share their inputs' blob
	for _, tr := range trs {
		tv, err := TaskRunViewOf(tr, load)
		if err != nil {
			errs = append(errs, err.Error())
		}
		d.TaskRuns = append(d.TaskRuns, tv)
	}
	for _, e := range evs {
		d.Events = append(d.Events, EventJSON(e))
	}
	if len(errs) > 0 {
		return d, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return d, nil
}

// viewTimePtr returns nil for the zero time.
func viewTimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// viewRaw makes a stored JSON value safe to embed: absent or empty values
// become null, and text that is not valid JSON is embedded as a JSON string
// rather than breaking the whole document.
func viewRaw(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	if !json.Valid(m) {
		s, _ := json.Marshal(string(m))
		return s
	}
	return m
}

// viewInput returns an input whole: the inline piece joined with the
// large parts in the blob ref when it is set, else the inline input.
func viewInput(inline json.RawMessage, ref string, load ResultLoader) (json.RawMessage, error) {
	if ref == "" {
		return viewRaw(inline), nil
	}
	parts, err := viewResult(nil, ref, load)
	if err != nil {
		return nil, err
	}
	whole, err := blob.Join(inline, parts)
	if err != nil {
		return nil, err
	}
	return whole, nil
}

// onceLoader returns load reading each blob once for one view, keeping
// up to onceBytes of them until the view is built. Blobs never change.
func onceLoader(load ResultLoader) ResultLoader {
	if b, ok := load.(*blob.Store); load == nil || (ok && b == nil) {
		return load
	}
	return &memoLoader{load: load, got: map[string][]byte{}}
}

// onceBytes bounds the blobs a view keeps.
const onceBytes = 16 << 20

type memoLoader struct {
	load ResultLoader
	got  map[string][]byte
	size int
}

func (m *memoLoader) Get(ref string) ([]byte, error) {
	if b, ok := m.got[ref]; ok {
		return b, nil
	}
	b, err := m.load.Get(ref)
	if err == nil && m.size+len(b) <= onceBytes {
		m.got[ref] = b
		m.size += len(b)
	}
	return b, err
}

// viewResult returns the result behind ref when it is set (the blob store
// holds the value; an inline value beside it, which older workers recorded
// as JSON null, is ignored), else the inline result.
func viewResult(inline json.RawMessage, ref string, load ResultLoader) (json.RawMessage, error) {
	if ref == "" {
		return viewRaw(inline), nil
	}
	if b, ok := load.(*blob.Store); load == nil || (ok && b == nil) {
		return nil, fmt.Errorf("result %s is in the blob store, which is not available", ref)
	}
	data, err := load.Get(ref)
	if err != nil {
		return nil, err
	}
	return viewRaw(data), nil
}

// LogJSON converts a log record.
func LogJSON(l store.LogRecord) apitype.Log {
	return apitype.Log{ID: l.ID, At: l.At, Level: l.Level, Message: l.Message, TaskKey: l.TaskKey, TaskRunID: l.TaskRunID, Attrs: l.Attrs}
}

// WorkerJSON converts a worker and the runs it holds.
func WorkerJSON(w store.Worker, runs []string) apitype.Worker {
	if runs == nil {
		runs = []string{}
	}
	v := apitype.Worker{ID: w.ID, Name: w.Name, Host: w.Host, PID: w.PID, Queues: nonNil(w.Queues), Flows: nonNil(w.Flows),
		Tasks: nonNil(w.Tasks), Capacity: w.Capacity, Slots: w.Slots, StartedAt: w.StartedAt, LastSeen: w.LastSeen, Runs: runs}
	if !w.Resources.IsZero() {
		v.Resources = &apitype.Resources{CPU: float64(w.Resources.CPUMilli) / 1000, MemoryBytes: w.Resources.Memory,
			GPU: w.Resources.GPU}
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// QueueJSON converts queue statistics.
func QueueJSON(q store.QueueStats) apitype.Queue {
	v := apitype.Queue{Queue: q.Queue, RunsScheduled: q.RunsScheduled, RunsRunning: q.RunsRunning,
		TasksPending: q.TasksPending, TasksRunning: q.TasksRunning, TasksAwaitingSlot: q.TasksAwaitingSlot}
	if !q.OldestWaiting.IsZero() {
		t := q.OldestWaiting
		v.OldestWaiting = &t
	}
	return v
}

// HistoryJSON converts a history entry.
func HistoryJSON(e store.HistoryEntry) apitype.HistoryEntry {
	p := e.Payload
	if len(p) == 0 {
		p = json.RawMessage("null")
	}
	return apitype.HistoryEntry{Seq: e.Seq, Time: e.At, Actor: e.Actor.Name, Verified: e.Actor.Verified,
		Action: e.Action, Reason: e.Reason, Payload: p}
}

// MaxHistoryLimit is the largest page of GET /runs/{id}/history.
const MaxHistoryLimit = 10000

// HistoryPage reads the page of a run's history after the cursor after, of
// at most limit entries (0: store.DefaultHistoryLimit), for the API and the
// command line. An unknown run is store.ErrNotFound.
func HistoryPage(ctx context.Context, st store.Store, runID string, after int64, limit int) (apitype.HistoryPage, error) {
	if limit <= 0 {
		limit = store.DefaultHistoryLimit
	}
	// One more than asked says whether a next page exists.
	es, err := st.HistoryList(ctx, store.HistoryListParams{RunID: runID, After: after, Limit: limit + 1})
	if err != nil {
		return apitype.HistoryPage{}, err
	}
	page := apitype.HistoryPage{History: make([]apitype.HistoryEntry, 0, min(len(es), limit))}
	for i, e := range es {
		if i == limit {
			page.NextAfter = es[i-1].Seq
			break
		}
		page.History = append(page.History, HistoryJSON(e))
	}
	return page, nil
}
