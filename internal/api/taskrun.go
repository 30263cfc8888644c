package api

import (
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// TaskRunDetailJSON converts a task run of run for its detail: the task
// run (input and result read with load, as TaskRunJSON does, with their
// blob references), its tries and its state changes.
func TaskRunDetailJSON(run store.Run, tr store.TaskRun, load ResultLoader) apitype.TaskRunDetail {
	d := apitype.TaskRunDetail{TaskRun: TaskRunJSON(tr, load), RunID: run.ID, Flow: run.Flow, FlowAttempt: max(tr.FlowAttempt, 1),
		CreatedAt: tr.CreatedAt, ResultRef: tr.ResultRef, WorkerID: tr.WorkerID, Tries: TaskTries(tr),
		History: make([]apitype.Event, len(tr.History))}
	for i, h := range tr.History {
		d.History[i] = apitype.Event{At: h.At, TaskKey: tr.Key, From: h.From, To: h.To, Cause: h.Cause, Message: h.Message}
	}
	return d
}

// TaskTries splits a task run's state changes into its tries: each change
// to RUNNING starts one, the next change ends it with its state and
// message (the error of a try that failed). A task run that never ran (a
// cached one, one cancelled while pending) has none.
func TaskTries(tr store.TaskRun) []apitype.TaskTry {
	tries := []apitype.TaskTry{}
	var cur *apitype.TaskTry
	end := func(h store.Transition) {
		at := h.At
		ms := at.Sub(cur.StartedAt).Milliseconds()
		cur.EndedAt, cur.DurationMS, cur.Outcome, cur.Message = &at, &ms, h.To, h.Message
		tries = append(tries, *cur)
		cur = nil
	}
	for _, h := range tr.History {
		switch {
		case h.To == string(store.TaskRunning):
			if cur != nil { // RUNNING again without an end (a taken-back lease)
				end(store.Transition{At: h.At, To: "INTERRUPTED", Message: h.Message})
			}
			cur = &apitype.TaskTry{Try: len(tries) + 1, StartedAt: h.At}
		case cur != nil:
			end(h)
		}
	}
	if cur != nil {
		tries = append(tries, *cur)
	}
	if n := len(tries); n > 0 && tr.Error != nil && tries[n-1].Message == "" && !tr.State.Succeeded() {
		tries[n-1].Message = tr.Error.Message
	}
	return tries
}
