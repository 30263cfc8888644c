package ui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
)

// Page sizes.
const (
	runsPageSize     = 50  // rows of /runs
	taskRunsPageSize = 50  // task runs of a run page
	logsPageSize     = 200 // log lines of a run page
	dashboardRecent  = 500 // runs the dashboard counts by state
	dashboardFailed  = 10  // failures the dashboard lists
)

// runStates are the run states, in the order the UI lists them.
var runStates = []string{"SCHEDULED", "AWAITING_SLOT", "PENDING", "RUNNING", "PAUSED", "AWAITING_RETRY", "CANCELLING",
	"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}

type stateCount struct {
	State string
	N     int
}

type dashboardData struct {
	Recent   int
	ByState  []stateCount
	Failed   []apitype.Run
	Inbox    []apitype.InboxItem
	Workers  []apitype.Worker
	Queues   []apitype.Queue
	Now      time.Time
	DayStart time.Time
	// Stats are the runs of the last day by hour and state (the chart);
	// Late and AwaitingSlot the runs past their planned start and those
	// waiting for a slot of their deployment (which need a person too).
	Stats        statsChart
	Late         []apitype.Run
	AwaitingSlot []apitype.Run
}

func (h *Handler) dashboard(r *http.Request) (string, view, error) {
	ctx := r.Context()
	d := dashboardData{Now: h.now()}
	d.DayStart = d.Now.Add(-24 * time.Hour)
	recent, err := h.src.Runs(ctx, url.Values{"limit": {strconv.Itoa(dashboardRecent)}})
	if err != nil {
		return "", view{}, err
	}
	d.Recent = len(recent)
	counts := map[string]int{}
	for _, run := range recent {
		counts[run.State]++
	}
	for _, s := range runStates {
		if counts[s] > 0 {
			d.ByState = append(d.ByState, stateCount{s, counts[s]})
		}
	}
	failed, err := h.src.Runs(ctx, url.Values{"state": {"FAILED"}, "limit": {strconv.Itoa(dashboardFailed)}})
	if err != nil {
		return "", view{}, err
	}
	for _, run := range failed {
		at := run.CreatedAt
		if run.EndedAt != nil {
			at = *run.EndedAt
		}
		if at.After(d.DayStart) {
			d.Failed = append(d.Failed, run)
		}
	}
	in, err := h.src.Inbox(ctx, "")
	if err != nil {
		return "", view{}, err
	}
	d.Inbox = in.Items
	if d.Workers, err = h.src.Workers(ctx); err != nil {
		return "", view{}, err
	}
	if d.Queues, err = h.src.Queues(ctx); err != nil {
		return "", view{}, err
	}
	if d.Stats.RunStats, err = h.src.RunStats(ctx, statsQuery); err != nil {
		return "", view{}, err
	}
	d.Stats.URL = apitype.Prefix + "/stats/runs?" + statsQuery.Encode()
	if d.Late, err = h.src.Runs(ctx, url.Values{"state": {apitype.RunLate}, "limit": {strconv.Itoa(dashboardFailed)}}); err != nil {
		return "", view{}, err
	}
	if d.AwaitingSlot, err = h.src.Runs(ctx, url.Values{"state": {apitype.RunAwaitingSlot}, "limit": {strconv.Itoa(dashboardFailed)}}); err != nil {
		return "", view{}, err
	}
	return "dashboard", view{Title: "Dashboard", Nav: "dashboard", Page: "dashboard", Data: d}, nil
}

type runsData struct {
	Flow, State, Q string
	Deployment     string
	Tag            string
	CreatedFrom    string // as the datetime-local field shows it
	CreatedTo      string
	States         []string
	Runs           []apitype.Run
	Offset         int
	Prev, Next     string // links to the neighbouring pages, "" when none
	Stream         string // the list's event stream
}

func (h *Handler) runs(r *http.Request) (string, view, error) {
	in := r.URL.Query()
	d := runsData{Flow: strings.TrimSpace(in.Get("flow")), State: strings.ToUpper(strings.TrimSpace(in.Get("state"))),
		Q: strings.TrimSpace(in.Get("q")), Deployment: strings.TrimSpace(in.Get("deployment")), Tag: strings.TrimSpace(in.Get("tag")),
		CreatedFrom: strings.TrimSpace(in.Get("created_from")), CreatedTo: strings.TrimSpace(in.Get("created_to")),
		States: slices.Concat(runStates, []string{apitype.RunLate})}
	if o := in.Get("offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return "", view{}, badRequest("query parameter \"offset\" must be a non-negative integer, got %q", o)
		}
		d.Offset = n
	}
	q := url.Values{}
	for k, v := range map[string]string{"flow": d.Flow, "state": d.State, "q": d.Q, "deployment": d.Deployment, "tag": d.Tag,
		"created_from": d.CreatedFrom, "created_to": d.CreatedTo} {
		if v != "" {
			q.Set(k, v)
		}
	}
	api := url.Values{}
	for k, v := range q {
		api[k] = v
	}
	api.Set("limit", strconv.Itoa(runsPageSize+1))
	if d.Offset > 0 {
		api.Set("offset", strconv.Itoa(d.Offset))
	}
	runs, err := h.src.Runs(r.Context(), api)
	if err != nil {
		return "", view{}, err
	}
	link := func(offset int) string {
		l := url.Values{}
		for k, v := range q {
			l[k] = v
		}
		if offset > 0 {
			l.Set("offset", strconv.Itoa(offset))
		}
		if len(l) == 0 {
			return "/runs"
		}
		return "/runs?" + l.Encode()
	}
	if len(runs) > runsPageSize {
		runs = runs[:runsPageSize]
		d.Next = link(d.Offset + runsPageSize)
	}
	if d.Offset > 0 {
		d.Prev = link(max(d.Offset-runsPageSize, 0))
	}
	d.Runs = runs
	stream := url.Values{}
	for k, v := range api {
		stream[k] = v
	}
	stream.Set("limit", strconv.Itoa(runsPageSize))
	d.Stream = apitype.Prefix + "/runs/stream?" + stream.Encode()
	return "runs", view{Title: "Runs", Nav: "runs", Page: "runs", Data: d}, nil
}

type runData struct {
	apitype.RunPage
	Finished     bool
	Retryable    bool
	Waits        []waitForm
	TaskOffset   int
	TaskPrev     string
	TaskNext     string
	Stream       string
	CountsByTask []taskCounts
	Graph        *graphView // the graph section (graph.go); nil without a GraphSource
	runDetail               // rundetail.go: logs, history, attempts, retry form
}

type taskCounts struct {
	Task   string
	Total  int
	States []stateCount
}

func (h *Handler) run(r *http.Request) (string, view, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	in := r.URL.Query()
	d := runData{}
	if o := in.Get("task_runs_offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return "", view{}, badRequest("query parameter \"task_runs_offset\" must be a non-negative integer, got %q", o)
		}
		d.TaskOffset = n
	}
	page, err := h.src.Run(ctx, id, apitype.PageQuery{Summary: true, TaskRunsOffset: d.TaskOffset, TaskRunsLimit: taskRunsPageSize,
		EventsLimit: 0})
	if err != nil {
		return "", view{}, err
	}
	d.RunPage = page
	d.Finished = apitype.Ended(page.State)
	d.Retryable = page.ParentRunID == "" && slices.Contains([]string{"FAILED", "CANCELLED", "CRASHED"}, page.State)
	if page.Summary != nil {
		for _, c := range page.Summary.Counts {
			if n := len(d.CountsByTask); n == 0 || d.CountsByTask[n-1].Task != c.Task {
				d.CountsByTask = append(d.CountsByTask, taskCounts{Task: c.Task})
			}
			tc := &d.CountsByTask[len(d.CountsByTask)-1]
			tc.Total += c.N
			tc.States = append(tc.States, stateCount{c.State, c.N})
		}
	}
	total := 0
	if page.TaskRunsTotal != nil {
		total = *page.TaskRunsTotal
	}
	self := "/runs/" + url.PathEscape(page.ID)
	if d.TaskOffset > 0 {
		d.TaskPrev = self + "?task_runs_offset=" + strconv.Itoa(max(d.TaskOffset-taskRunsPageSize, 0)) + "#task-runs"
	}
	if d.TaskOffset+taskRunsPageSize < total {
		d.TaskNext = self + "?task_runs_offset=" + strconv.Itoa(d.TaskOffset+taskRunsPageSize) + "#task-runs"
	}
	if err := h.runDetail(r, page, &d.runDetail); err != nil {
		return "", view{}, err
	}
	if page.State == "PAUSED" {
		waits, err := h.src.Inbox(ctx, page.ID)
		if err != nil {
			return "", view{}, err
		}
		for _, it := range waits.Items {
			d.Waits = append(d.Waits, newWaitForm(it))
			d.Resumable = d.Resumable || it.Kind != "input"
		}
	}
	if !d.Finished && d.Log.Next == "" {
		d.Stream = apitype.Prefix + "/runs/" + url.PathEscape(page.ID) + "/stream?after=" + strconv.FormatInt(d.Log.After, 10)
	}
	if d.Graph, err = h.runGraph(r, page.ID, d.Finished); err != nil {
		return "", view{}, err
	}
	title := page.Flow + " " + shortID(page.ID)
	return "run", view{Title: title, Nav: "runs", Page: "run", Data: d}, nil
}

type inboxData struct {
	Items []waitForm
}

func (h *Handler) inbox(r *http.Request) (string, view, error) {
	in, err := h.src.Inbox(r.Context(), "")
	if err != nil {
		return "", view{}, err
	}
	d := inboxData{}
	for _, it := range in.Items {
		d.Items = append(d.Items, newWaitForm(it))
	}
	return "inbox", view{Title: "Needs you", Nav: "inbox", Page: "inbox", Data: d}, nil
}

// uiError is an error of the UI's own query parameters.
type uiError struct {
	status int
	msg    string
}

func (e *uiError) Error() string   { return e.msg }
func (e *uiError) HTTPStatus() int { return e.status }

func badRequest(format string, args ...any) error {
	return &uiError{http.StatusBadRequest, sprintf(format, args...)}
}

// pretty indents a JSON document for display; "" for none.
func pretty(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// shortID is the first 8 characters of an ID, for titles.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
