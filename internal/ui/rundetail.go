package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/batonhq/baton/apitype"
)

// Sizes of the run page's history and attempt comparison.
const (
	historyPageSize = 100
	attemptSteps    = 50 // steps listed per attempt and list
	maxValueShown   = 64 << 10
)

// runDetail is what the run page shows besides the run and its task runs:
// its logs (filtered on the server), its history, the comparison of its
// attempts and the form of a retry with edited parameters.
type runDetail struct {
	Log         logView
	History     []apitype.HistoryEntry
	HistoryFrom int64  // the seq after which the page's entries start
	HistoryLast int64  // the seq of the last entry shown
	HistoryNext string // the next page, "" when none
	// Compare is the comparison of the attempts, read for a run retried
	// at least once.
	Compare *apitype.AttemptsComparison
	// Retry is the form of a retry with edited parameters.
	Retry    retryForm
	Pausable bool
	// Resumable is set when the run waits for a resume (a pause, not an
	// input): the Resume button sends it.
	Resumable bool
}

// retryForm is the form of a retry with edited parameters, generated from
// the flow's parameter schema, starting from the run's parameters.
type retryForm struct {
	ID     string
	Fields []field
	Whole  bool
	Schema string // the JSON Schema the browser checks, "" when none
}

// logView is a page of a run's (or a task run's) log lines as the server
// filtered them, with the form that filters them.
type logView struct {
	RunID    string
	TaskRun  string // the task run whose lines these are ("": the run's)
	Q, Level string
	Levels   []string
	Lines    []apitype.Log
	From     int64  // the id after which the page's lines start
	After    int64  // the id of the last line shown
	Next     string // the next page, "" when none
	First    string // the first page, "" on it
	Action   string // the page the filter form is sent to
	Download string // the download of every matching line
	API      string // GET /api/v1/runs/{id}/logs with the page's filter
	Filtered bool
}

// logPage reads the page of logs the query in asks for (logs_q,
// logs_level, logs_after) on the page self.
func (h *Handler) logPage(ctx context.Context, runID, taskRun string, in url.Values, self, anchor string) (logView, error) {
	v := logView{RunID: runID, TaskRun: taskRun, Q: strings.TrimSpace(in.Get("logs_q")), Levels: apitype.LogLevels, Action: self}
	if l := strings.TrimSpace(in.Get("logs_level")); l != "" {
		if !slices.Contains(apitype.LogLevels, strings.ToUpper(l)) {
			return v, badRequest("query parameter \"logs_level\" must be one of %s, got %q", strings.Join(apitype.LogLevels, ", "), l)
		}
		v.Level = strings.ToUpper(l)
	}
	if a := in.Get("logs_after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			return v, badRequest("query parameter \"logs_after\" must be a non-negative integer, got %q", a)
		}
		v.From = n
	}
	v.Filtered = v.Q != "" || v.Level != ""
	filter := url.Values{}
	page := url.Values{}
	for k, x := range map[string][2]string{"task_run": {"", taskRun}, "q": {"logs_q", v.Q}, "level": {"logs_level", v.Level}} {
		if x[1] != "" {
			filter.Set(k, x[1])
			if x[0] != "" {
				page.Set(x[0], x[1])
			}
		}
	}
	base := apitype.Prefix + "/runs/" + url.PathEscape(runID) + "/logs"
	v.Download = base + "/download"
	if len(filter) > 0 {
		v.Download += "?" + filter.Encode()
		v.API = base + "?" + filter.Encode()
	} else {
		v.API = base
	}
	q := url.Values{"after": {strconv.FormatInt(v.From, 10)}, "limit": {strconv.Itoa(logsPageSize + 1)}}
	for k, x := range filter {
		q[k] = x
	}
	lines, err := h.src.Logs(ctx, runID, q)
	if err != nil {
		return v, err
	}
	link := func(after int64) string {
		l := url.Values{}
		for k, x := range page {
			l[k] = x
		}
		if after > 0 {
			l.Set("logs_after", strconv.FormatInt(after, 10))
		}
		if len(l) == 0 {
			return self + anchor
		}
		return self + "?" + l.Encode() + anchor
	}
	if len(lines) > logsPageSize {
		lines = lines[:logsPageSize]
		v.Next = link(lines[len(lines)-1].ID)
	}
	if v.From > 0 {
		v.First = link(0)
	}
	v.Lines, v.After = lines, v.From
	if len(lines) > 0 {
		v.After = lines[len(lines)-1].ID
	}
	return v, nil
}

// runDetail reads the run page's logs, history and attempt comparison.
func (h *Handler) runDetail(r *http.Request, page apitype.RunPage, d *runDetail) error {
	ctx := r.Context()
	in := r.URL.Query()
	self := "/runs/" + url.PathEscape(page.ID)
	var err error
	if d.Log, err = h.logPage(ctx, page.ID, "", in, self, "#logs"); err != nil {
		return err
	}
	if a := in.Get("history_after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			return badRequest("query parameter \"history_after\" must be a non-negative integer, got %q", a)
		}
		d.HistoryFrom = n
	}
	hist, err := h.src.History(ctx, page.ID, d.HistoryFrom, historyPageSize)
	if err != nil {
		return err
	}
	d.History, d.HistoryLast = hist.History, d.HistoryFrom
	if n := len(hist.History); n > 0 {
		d.HistoryLast = hist.History[n-1].Seq
	}
	if hist.NextAfter > 0 {
		d.HistoryNext = self + "?history_after=" + strconv.FormatInt(hist.NextAfter, 10) + "#history"
	}
	if page.Attempt > 1 {
		cmp, err := h.src.Attempts(ctx, page.ID, url.Values{"limit": {strconv.Itoa(attemptSteps)}})
		if err != nil {
			return err
		}
		d.Compare = &cmp
	}
	d.Retry = retryForm{ID: "retry-" + safeID(page.ID)}
	d.Retry.Fields, d.Retry.Whole = schemaFields(d.Retry.ID, page.ParametersSchema, page.Parameters)
	if len(page.ParametersSchema) > 0 {
		d.Retry.Schema = string(page.ParametersSchema)
	}
	switch page.State {
	case apitype.RunScheduled, apitype.RunPending, apitype.RunRunning, apitype.RunAwaitingRetry:
		d.Pausable = page.PauseRequest == nil
	}
	return nil
}

type taskRunData struct {
	apitype.TaskRunDetail
	Log        logView
	Input      string // the input shown, "" when none
	Output     string
	InputBlob  string // the link to a large part kept in the blob store
	OutputBlob string
	Truncated  bool
	CachedLink string // the task run a CACHED result came from
	Stream     string // the run's event stream of this step's lines, "" once it ended
}

func (h *Handler) taskRun(r *http.Request) (string, view, error) {
	ctx := r.Context()
	id, trID := r.PathValue("id"), r.PathValue("tr")
	tr, err := h.src.TaskRun(ctx, id, trID)
	if err != nil {
		return "", view{}, err
	}
	d := taskRunData{TaskRunDetail: tr}
	self := "/runs/" + url.PathEscape(tr.RunID) + "/tasks/" + url.PathEscape(tr.ID)
	if d.Log, err = h.logPage(ctx, tr.RunID, tr.ID, r.URL.Query(), self, "#logs"); err != nil {
		return "", view{}, err
	}
	show := func(raw []byte) string {
		s := pretty(raw)
		if len(s) > maxValueShown {
			d.Truncated = true
			return s[:maxValueShown] + "\n…"
		}
		return s
	}
	d.Input, d.Output = show(tr.Input), show(tr.Result)
	blobPath := func(ref string) string {
		if ref == "" {
			return ""
		}
		return apitype.Prefix + "/blobs/" + url.PathEscape(ref)
	}
	d.InputBlob, d.OutputBlob = blobPath(tr.InputRef), blobPath(tr.ResultRef)
	if tr.CachedFromRun != "" && tr.CachedFrom != "" {
		d.CachedLink = "/runs/" + url.PathEscape(tr.CachedFromRun) + "/tasks/" + url.PathEscape(tr.CachedFrom)
	}
	if !taskEnded(tr.State) && d.Log.Next == "" {
		d.Stream = apitype.Prefix + "/runs/" + url.PathEscape(tr.RunID) + "/stream?" +
			url.Values{"task_run": {tr.ID}, "after": {strconv.FormatInt(d.Log.After, 10)}}.Encode()
	}
	return "taskrun", view{Title: tr.Task + " " + tr.Key, Nav: "runs", Page: "taskrun", Data: d}, nil
}

// taskEnded reports whether a task run's state is final.
func taskEnded(state string) bool {
	switch state {
	case "COMPLETED", "FAILED", "TIMED_OUT", "CACHED", "CANCELLED", "CRASHED":
		return true
	}
	return false
}
