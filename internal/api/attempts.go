package api

import (
	"fmt"
	"strings"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// DefaultAttemptSteps bounds the lists of steps of each attempt of an
// AttemptsComparison, unless the request says otherwise.
const DefaultAttemptSteps = 100

// MaxAttemptSteps is the largest limit of those lists.
const MaxAttemptSteps = 10000

// reasonOrder is the order of AttemptDiff.Reasons.
var reasonOrder = []string{apitype.StepNew, apitype.StepFailedBefore, apitype.StepUnfinished, apitype.StepInputChanged,
	apitype.StepVersionChanged, apitype.StepTaskChanged, apitype.StepRanAgain}

// placeOf is the place of a step in the flow: its key without the "#n"
// that the engine appends when an earlier step holds the key of its place,
// so a call that ran again with another input (a new key, "task/0#2") is
// compared with the call it replaced.
func placeOf(key string) string {
	i := strings.LastIndexByte(key, '#')
	if i < 0 || i == len(key)-1 {
		return key
	}
	for _, c := range key[i+1:] {
		if c < '0' || c > '9' {
			return key
		}
	}
	return key[:i]
}

// identityBase is a step's identity without its occurrence (".k").
func identityBase(id string) string {
	base, _, _ := strings.Cut(id, ".")
	return base
}

func flowAttempt(tr store.TaskRun) int { return max(tr.FlowAttempt, 1) }

// CompareAttempts tells, for each attempt of run, which steps it ran and
// why, and which successful steps of earlier attempts it did not run
// again, from the run's task runs trs in creation order (the journal of
// every attempt): a task run belongs to the attempt that created it. A
// step that ran is compared with the latest task run of an earlier
// attempt with the same identity, else at the same place (the key without
// its "#n" suffix): that one failed, never finished, had another task,
// another input or another version (its identity differs while task and
// input do not). Lists hold at most limit steps each (DefaultAttemptSteps
// when limit is not positive); totals and reasons count them all.
func CompareAttempts(run store.Run, trs []store.TaskRun, limit int) apitype.AttemptsComparison {
	if limit <= 0 {
		limit = DefaultAttemptSteps
	}
	attempts := max(run.Attempt, 1)
	for _, tr := range trs {
		attempts = max(attempts, flowAttempt(tr))
	}
	records := AttemptsJSON(run)
	out := apitype.AttemptsComparison{RunID: run.ID, Attempts: make([]apitype.AttemptDiff, attempts)}
	for n := 1; n <= attempts; n++ {
		d := &out.Attempts[n-1]
		d.Attempt, d.Ran, d.Reused, d.Reasons = n, []apitype.StepChange{}, []apitype.StepChange{}, []apitype.ReasonCount{}
		if n <= len(records) {
			d.Steps, d.Edit = records[n-1].Steps, records[n-1].Edit
		}
	}
	// The latest task run of the attempts so far, by identity and by
	// place; rows are visited attempt by attempt.
	byAttempt := make([][]int, attempts+1)
	for i, tr := range trs {
		byAttempt[flowAttempt(tr)] = append(byAttempt[flowAttempt(tr)], i)
	}
	lastByID, lastByPlace := map[string]int{}, map[string]int{}
	for n := 1; n <= attempts; n++ {
		d := &out.Attempts[n-1]
		counts := map[string]int{}
		touched := map[int]bool{} // earlier rows this attempt superseded
		for _, i := range byAttempt[n] {
			tr := trs[i]
			prev, found := -1, false
			if tr.Identity != "" {
				prev, found = lastByID[tr.Identity]
			}
			if !found {
				prev, found = lastByPlace[placeOf(tr.Key)]
			}
			reason, detail := apitype.StepNew, "no earlier attempt called it"
			if n == 1 {
				detail = "first attempt"
			}
			var ref *apitype.StepRef
			if found {
				p := trs[prev]
				touched[prev] = true
				ref = &apitype.StepRef{TaskRunID: p.ID, Key: p.Key, Task: p.Task, State: string(p.State), Attempt: flowAttempt(p)}
				reason, detail = whyRan(p, tr)
			}
			if tr.State == store.TaskCached && tr.CachedFromRun != "" {
				detail += fmt.Sprintf("; its result came from the cache (run %s)", tr.CachedFromRun)
			}
			counts[reason]++
			d.RanTotal++
			if len(d.Ran) < limit {
				d.Ran = append(d.Ran, apitype.StepChange{TaskRunID: tr.ID, Key: tr.Key, Task: tr.Task, State: string(tr.State),
					Reason: reason, Detail: detail, Previous: ref})
			}
		}
		if n > 1 {
			// Earlier successful steps that this attempt did not run again:
			// the latest one of each place, in creation order.
			places, ids := map[string]bool{}, map[string]bool{}
			for _, i := range byAttempt[n] {
				places[placeOf(trs[i].Key)] = true
				if trs[i].Identity != "" {
					ids[trs[i].Identity] = true
				}
			}
			for i, tr := range trs {
				if flowAttempt(tr) >= n || !tr.State.Succeeded() || touched[i] {
					continue
				}
				place := placeOf(tr.Key)
				if lastByPlace[place] != i {
					continue // a later attempt's task run replaced it
				}
				if places[place] || (tr.Identity != "" && ids[tr.Identity]) {
					continue // this attempt ran it again
				}
				d.ReusedTotal++
				if len(d.Reused) < limit {
					d.Reused = append(d.Reused, apitype.StepChange{TaskRunID: tr.ID, Key: tr.Key, Task: tr.Task, State: string(tr.State),
						Reason: apitype.StepReused, Detail: fmt.Sprintf("recorded by attempt %d with the same task, version and input", flowAttempt(tr))})
				}
			}
		}
		for _, r := range reasonOrder {
			if counts[r] > 0 {
				d.Reasons = append(d.Reasons, apitype.ReasonCount{Reason: r, N: counts[r]})
			}
		}
		for _, i := range byAttempt[n] {
			tr := trs[i]
			if tr.Identity != "" {
				lastByID[tr.Identity] = i
			}
			lastByPlace[placeOf(tr.Key)] = i
		}
	}
	return out
}

// whyRan says why tr ran although the earlier task run p was recorded for
// its identity or its place.
func whyRan(p, tr store.TaskRun) (reason, detail string) {
	was := fmt.Sprintf("attempt %d's %s", flowAttempt(p), p.Key)
	switch {
	case p.State == store.TaskFailed || p.State == store.TaskTimedOut || p.State == store.TaskCancelled:
		msg := string(p.State)
		if p.Error != nil && p.Error.Message != "" {
			msg += ": " + p.Error.Message
		}
		if p.Task == tr.Task && p.InputHash != tr.InputHash {
			msg += "; its input changed too"
		}
		return apitype.StepFailedBefore, fmt.Sprintf("%s did not succeed (%s)", was, msg)
	case !p.State.Succeeded():
		return apitype.StepUnfinished, fmt.Sprintf("%s never finished (%s)", was, p.State)
	case p.Task != tr.Task:
		return apitype.StepTaskChanged, fmt.Sprintf("%s called %s here; the code now calls %s", was, p.Task, tr.Task)
	case p.InputHash != tr.InputHash:
		return apitype.StepInputChanged, fmt.Sprintf("%s had another input", was)
	case identityBase(p.Identity) != identityBase(tr.Identity):
		return apitype.StepVersionChanged, fmt.Sprintf("%s had the same input but another version of %s (new code)", was, tr.Task)
	}
	return apitype.StepRanAgain, fmt.Sprintf("%s succeeded with the same identity", was)
}
