package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/store"
)

// This file holds the JSON views of Baton's records: the stable shapes that
// `baton runs list --json`, `baton runs show --json` and `run --json` print.
// Field names are a contract with scripts; change them only compatibly.

// ResultLoader reads a large value stored in the blob store under ref
// (store.Run.ResultRef, store.TaskRun.ResultRef, the large parts of an
// input under store.TaskRun.InputRef). *blob.Store implements it; a nil
// loader (or a nil *blob.Store) leaves such values null.
type ResultLoader interface {
	Get(ref string) ([]byte, error)
}

// ErrorView is the JSON form of a recorded error. All four fields are always
// present; chain is an empty array when the error wraps nothing.
type ErrorView struct {
	Message string   `json:"message"`
	Type    string   `json:"type"`
	Kind    string   `json:"kind"`
	Chain   []string `json:"chain"`
}

// ErrorJSON converts a recorded error; nil stays nil (JSON null).
func ErrorJSON(e *store.ErrorInfo) *ErrorView {
	if e == nil {
		return nil
	}
	chain := e.Chain
	if chain == nil {
		chain = []string{}
	}
	return &ErrorView{Message: e.Message, Type: e.Type, Kind: e.Kind, Chain: chain}
}

// RunView is the JSON form of a flow run. Times are RFC 3339 with
// nanoseconds; started_at and ended_at are null until set. parameters and
// result are the stored JSON values, embedded as is (null when absent).
type RunView struct {
	ID            string          `json:"id"`
	Flow          string          `json:"flow"`
	State         string          `json:"state"`
	Attempt       int             `json:"attempt"`
	CreatedAt     time.Time       `json:"created_at"`
	StartedAt     *time.Time      `json:"started_at"`
	EndedAt       *time.Time      `json:"ended_at"`
	ParentRunID   string          `json:"parent_run_id,omitempty"`
	ParentStepKey string          `json:"parent_step_key,omitempty"`
	Parameters    json.RawMessage `json:"parameters"`
	Result        json.RawMessage `json:"result"`
	Error         *ErrorView      `json:"error"`
	Queue         string          `json:"queue,omitempty"`
	WorkerID      string          `json:"worker_id,omitempty"`
	// WaitingReason says why a SCHEDULED run has not started (the server
	// sets it, e.g. when no live worker serves the run's flow and queue).
	WaitingReason string `json:"waiting_reason,omitempty"`
	// Attempts is what the run recorded of its attempts, oldest first;
	// absent for runs recorded before attempts were.
	Attempts []AttemptView `json:"attempts,omitempty"`
}

// AttemptView is what a run recorded of one attempt: how many steps it
// reused from the journal of earlier attempts and how many it ran (null
// until the attempt ended, or when it ended without its process recording
// it), and the parameter edit it was started with.
type AttemptView struct {
	Attempt int             `json:"attempt"`
	Steps   *StepCountsView `json:"steps"`
	Edit    *ParamsEditView `json:"edit,omitempty"`
}

// StepCountsView counts an attempt's steps.
type StepCountsView struct {
	Reused int `json:"reused"`
	Ran    int `json:"ran"`
}

// ParamsEditView is a retry's change of a run's parameters.
type ParamsEditView struct {
	From json.RawMessage `json:"from"`
	To   json.RawMessage `json:"to"`
	By   string          `json:"by"`
	At   time.Time       `json:"at"`
}

// AttemptsJSON converts a run's attempt records: one per attempt from 1 to
// the run's, nil when the run has none (recorded before attempts were).
func AttemptsJSON(r store.Run) []AttemptView {
	if len(r.Attempts) == 0 {
		return nil
	}
	out := make([]AttemptView, 0, r.Attempt)
	for n := 1; n <= r.Attempt; n++ {
		v := AttemptView{Attempt: n}
		if a := r.AttemptRecord(n); a != nil {
			if a.Steps != nil {
				v.Steps = &StepCountsView{Reused: a.Steps.Reused, Ran: a.Steps.Ran}
			}
			if e := a.Edit; e != nil {
				v.Edit = &ParamsEditView{From: viewRaw(e.From), To: viewRaw(e.To), By: e.By, At: e.At}
			}
		}
		out = append(out, v)
	}
	return out
}

// RunJSON converts a run. A result stored in the blob store (ResultRef) is
// read with load; when it cannot be read, the result is null.
func RunJSON(r store.Run, load ResultLoader) RunView {
	v, _ := RunViewOf(r, load)
	return v
}

// RunViewOf is RunJSON that also returns why a blob result could not be read,
// with a complete view.
func RunViewOf(r store.Run, load ResultLoader) (RunView, error) {
	v := RunView{
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
	}
	res, err := viewResult(r.Result, r.ResultRef, load)
	v.Result = res
	if err != nil {
		err = fmt.Errorf("load result of run %s: %w", r.ID, err)
	}
	return v, err
}

// TaskRunView is the JSON form of a task run (or of a subflow step, which has
// child_run_id). duration_ms is null until the task run has ended. input is
// the whole input, also when its large parts are stored as the blob
// input_ref (shared by the task runs whose inputs have the same parts).
type TaskRunView struct {
	ID            string          `json:"id"`
	Key           string          `json:"key"`
	Task          string          `json:"task"`
	State         string          `json:"state"`
	Attempts      int             `json:"attempts"`
	StartedAt     *time.Time      `json:"started_at"`
	EndedAt       *time.Time      `json:"ended_at"`
	DurationMS    *int64          `json:"duration_ms"`
	CachedFrom    string          `json:"cached_from,omitempty"`
	CachedFromRun string          `json:"cached_from_run,omitempty"`
	ChildRunID    string          `json:"child_run_id,omitempty"`
	Input         json.RawMessage `json:"input"`
	InputRef      string          `json:"input_ref,omitempty"`
	Result        json.RawMessage `json:"result"`
	Error         *ErrorView      `json:"error"`
}

// TaskRunJSON converts a task run; load is used as in RunJSON.
func TaskRunJSON(tr store.TaskRun, load ResultLoader) TaskRunView {
	v, _ := TaskRunViewOf(tr, load)
	return v
}

// TaskRunViewOf is TaskRunJSON that also returns why a blob result or
// input could not be read.
func TaskRunViewOf(tr store.TaskRun, load ResultLoader) (TaskRunView, error) {
	v := TaskRunView{
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

// EventView is the JSON form of a state-change event. task_key is empty for
// run-level events; from is empty for a creation.
type EventView struct {
	At      time.Time `json:"at"`
	TaskKey string    `json:"task_key"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Cause   string    `json:"cause"`
	Message string    `json:"message"`
}

// EventJSON converts an event.
func EventJSON(e store.Event) EventView {
	return EventView{At: e.At, TaskKey: e.TaskKey, From: e.From, To: e.To, Cause: e.Cause, Message: e.Message}
}

// RunDetailView is the JSON form printed by `baton runs show --json`: the run
// object with its task runs (in creation order) and its events (in order).
type RunDetailView struct {
	RunView
	TaskRuns []TaskRunView `json:"task_runs"`
	Events   []EventView   `json:"events"`
}

// RunDetailJSON converts a run with its task runs and events. Results that
// cannot be loaded are null.
func RunDetailJSON(r store.Run, trs []store.TaskRun, evs []store.Event, load ResultLoader) RunDetailView {
	d, _ := RunDetailViewOf(r, trs, evs, load)
	return d
}

// RunDetailViewOf is RunDetailJSON that also returns why results could not be
// read, one line per result.
func RunDetailViewOf(r store.Run, trs []store.TaskRun, evs []store.Event, load ResultLoader) (RunDetailView, error) {
	var errs []string
	rv, err := RunViewOf(r, load)
	if err != nil {
		errs = append(errs, err.Error())
	}
	d := RunDetailView{RunView: rv, TaskRuns: make([]TaskRunView, 0, len(trs)), Events: make([]EventView, 0, len(evs))}
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
