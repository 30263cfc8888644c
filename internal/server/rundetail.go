package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// This file serves the API of the run detail and task run pages: log
// search and download, the comparison of a run's attempts, and a task
// run's detail.

// runDetailRoutes are the routes of the run and task run pages.
func (s *Server) runDetailRoutes() []route {
	p := apitype.Prefix
	return []route{
		{method: "GET", pattern: p + "/runs/{id}/logs/download", summary: "Download a run's log lines matching task, task_run, q and level (as GET /runs/{id}/logs filters them) as text, one line each, oldest first, streamed", tag: "runs", query: []string{"task", "task_run", "q", "level"}, produces: "text/plain", handle: s.downloadLogs},
		{method: "GET", pattern: p + "/runs/{id}/attempts", summary: "Compare a run's attempts: the steps each attempt ran and why (new, failed_before, unfinished, input_changed, version_changed, task_changed, ran_again), and those of earlier attempts it did not run again (limit: steps listed per attempt, default 100)", tag: "runs", query: []string{"limit"}, response: "AttemptsComparison", handle: s.runAttempts},
		{method: "GET", pattern: p + "/runs/{id}/task-runs/{task_run_id}", summary: "A task run: input, output (large values as blob references), tries with their errors, state changes, the run a cached result came from; its logs are GET /runs/{id}/logs?task_run=ID", tag: "runs", response: "TaskRunDetail", handle: s.getTaskRun},
	}
}

// logParams reads the filters of GET /api/v1/runs/{id}/logs (and of its
// download, withLimit false) for run.
func logParams(run store.Run, q url.Values, withLimit bool) (store.LogListParams, error) {
	p := store.LogListParams{RunID: run.ID, TaskKey: q.Get("task"), TaskRunID: q.Get("task_run"), Search: q.Get("q")}
	for _, k := range []string{"task", "task_run", "q"} {
		if err := store.CheckIdentifier(fmt.Sprintf("query parameter %q", k), q.Get(k)); err != nil {
			return p, errBadRequest("%v", err)
		}
	}
	level, err := store.CheckLogLevel(`query parameter "level"`, q.Get("level"))
	if err != nil {
		return p, errBadRequest("%v", err)
	}
	p.MinLevel = level
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			return p, errBadRequest("query parameter \"after\" must be a non-negative integer (the id of the last log read), got %q", a)
		}
		p.After = n
	}
	if l := q.Get("limit"); l != "" && withLimit {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return p, errBadRequest("query parameter \"limit\" must be an integer from 1 to 10000, got %q", l)
		}
		p.Limit = n
	}
	return p, nil
}

// downloadPage is how many log lines a download reads at a time.
const downloadPage = 1000

// downloadLogs streams the matching log lines of a run as text.
func (s *Server) downloadLogs(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := s.lookupRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	p, err := logParams(run, r.URL.Query(), false)
	if err != nil {
		return err
	}
	p.Limit = downloadPage
	first, err := s.st.LogList(ctx, p)
	if err != nil {
		return err
	}
	// A download may outlast the server's write timeout.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+safeFileName("baton-"+run.ID+"-logs")+`.txt"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	for logs := first; len(logs) > 0; {
		buf.Reset()
		for _, l := range logs {
			writeLogLine(&buf, l)
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return nil // the client went away
		}
		if len(logs) < downloadPage {
			break
		}
		p.After = logs[len(logs)-1].ID
		if logs, err = s.st.LogList(ctx, p); err != nil {
			// The status is sent: say so in the body, which ends short.
			fmt.Fprintf(w, "\nbaton: the download stopped: %v\n", err)
			s.log.Warn("log download stopped", "run", run.ID, "err", err)
			return nil
		}
	}
	return nil
}

// writeLogLine writes a log record as one line of text: the time, the
// level, the step key, the message and the attributes as JSON. Line breaks
// in the message are written as \n, so a line is a record.
func writeLogLine(b *bytes.Buffer, l store.LogRecord) {
	b.WriteString(l.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteByte(' ')
	b.WriteString(l.Level)
	if l.TaskKey != "" {
		b.WriteString(" [" + l.TaskKey + "]")
	}
	b.WriteByte(' ')
	b.WriteString(strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(l.Message))
	if a := bytes.TrimSpace(l.Attrs); len(a) > 0 && string(a) != "{}" && string(a) != "null" {
		b.WriteByte(' ')
		b.Write(a)
	}
	b.WriteByte('\n')
}

// safeFileName keeps the characters of s that are safe in a file name.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// attemptsOf reads GET /api/v1/runs/{id}/attempts.
func (s *Server) attemptsOf(ctx context.Context, id string, q url.Values) (apitype.AttemptsComparison, error) {
	run, err := s.lookupRun(ctx, id)
	if err != nil {
		return apitype.AttemptsComparison{}, err
	}
	limit := api.DefaultAttemptSteps
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > api.MaxAttemptSteps {
			return apitype.AttemptsComparison{}, errBadRequest("query parameter \"limit\" must be an integer from 1 to %d, got %q", api.MaxAttemptSteps, l)
		}
		limit = n
	}
	trs, err := s.st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, Brief: true})
	if err != nil {
		return apitype.AttemptsComparison{}, err
	}
	return api.CompareAttempts(run, trs, limit), nil
}

func (s *Server) runAttempts(w http.ResponseWriter, r *http.Request) error {
	out, err := s.attemptsOf(r.Context(), r.PathValue("id"), r.URL.Query())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, out)
}

// taskRunDetail reads GET /api/v1/runs/{id}/task-runs/{task_run_id}.
func (s *Server) taskRunDetail(ctx context.Context, runID, taskRunID string) (apitype.TaskRunDetail, error) {
	run, err := s.lookupRun(ctx, runID)
	if err != nil {
		return apitype.TaskRunDetail{}, err
	}
	if err := store.CheckIdentifier("task run id", taskRunID); err != nil {
		return apitype.TaskRunDetail{}, errBadRequest("%v", err)
	}
	trs, err := s.st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, ID: taskRunID})
	if err != nil {
		return apitype.TaskRunDetail{}, err
	}
	if len(trs) == 0 {
		return apitype.TaskRunDetail{}, errNotFound("run %s has no task run %q", run.ID, taskRunID)
	}
	return api.TaskRunDetailJSON(run, trs[0], s.cfg.Blobs), nil
}

func (s *Server) getTaskRun(w http.ResponseWriter, r *http.Request) error {
	out, err := s.taskRunDetail(r.Context(), r.PathValue("id"), r.PathValue("task_run_id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, out)
}

// parametersSchema is the JSON Schema of a flow's parameters that its
// latest worker registration recorded, or nil.
func (s *Server) parametersSchema(ctx context.Context, flow string) (json.RawMessage, error) {
	fs, err := s.flowSchema(ctx, flow)
	if err != nil || !fs.known {
		return nil, err
	}
	return fs.info.Parameters, nil
}
