package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// get sends a GET and returns the status, the headers and the body.
func (b *bundle) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(b.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(raw)
}

// TestRunLogsSearch: GET /runs/{id}/logs filters by text and minimum level
// on the server and pages the matches; the download streams every match as
// text, past the size of one read; bad filters are 400s naming the field.
func TestRunLogsSearch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	run, _, err := b.c.CreateRun(ctx, apitype.CreateRunRequest{Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var logs []store.LogRecord
	for i := range 2500 {
		l := store.LogRecord{RunID: run.ID, Level: "INFO", Message: fmt.Sprintf("line %04d", i), At: t0.Add(time.Duration(i) * time.Millisecond)}
		if i%100 == 7 {
			l.Level, l.Message, l.TaskKey = "WARN", fmt.Sprintf("Needle %04d\nsecond line", i), "k/1"
		}
		logs = append(logs, l)
	}
	if err := b.st.BatchWrite(ctx, store.Batch{Logs: logs}); err != nil {
		t.Fatal(err)
	}
	list := func(q string) []apitype.Log {
		t.Helper()
		status, _, body := b.get(t, "/api/v1/runs/"+run.ID+"/logs?"+q)
		if status != 200 {
			t.Fatalf("logs?%s: %d %s", q, status, body)
		}
		var out struct{ Logs []apitype.Log }
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		return out.Logs
	}
	if got := list("q=needle"); len(got) != 25 || got[0].Message != "Needle 0007\nsecond line" || got[24].Message != "Needle 2407\nsecond line" {
		t.Fatalf("q=needle: %d lines, first %+v", len(got), got[0])
	}
	if got := list("q=line+2499"); len(got) != 1 {
		t.Errorf("a line far past the first page: %d found", len(got))
	}
	if got := list("level=warn"); len(got) != 25 || got[0].Level != "WARN" {
		t.Errorf("level=warn: %d lines", len(got))
	}
	if got := list("task_run=nope"); len(got) != 0 {
		t.Errorf("task_run=nope: %d lines", len(got))
	}
	if got := list("level=ERROR"); len(got) != 0 {
		t.Errorf("level=ERROR: %d lines", len(got))
	}
	first := list("q=needle&level=WARN&task=k/1&limit=2")
	if len(first) != 2 {
		t.Fatalf("limit=2: %d lines", len(first))
	}
	if next := list(fmt.Sprintf("q=needle&limit=2&after=%d", first[1].ID)); len(next) != 2 || next[0].Message[:11] != "Needle 0207" {
		t.Errorf("the next page: %+v", next)
	}

	status, h, body := b.get(t, "/api/v1/runs/"+run.ID+"/logs/download?level=INFO")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") ||
		!strings.Contains(h.Get("Content-Disposition"), `attachment; filename="baton-`+run.ID+`-logs.txt"`) {
		t.Fatalf("download: %d %v", status, h)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 2500 || lines[0] != "2026-01-02T03:04:05.000Z INFO line 0000" ||
		lines[7] != `2026-01-02T03:04:05.007Z WARN [k/1] Needle 0007\nsecond line` || lines[2499] != "2026-01-02T03:04:07.499Z INFO line 2499" {
		t.Fatalf("download: %d lines; %q, %q, %q", len(lines), lines[0], lines[7], lines[len(lines)-1])
	}
	if _, _, body := b.get(t, "/api/v1/runs/"+run.ID+"/logs/download?q=NEEDLE"); strings.Count(body, "\n") != 25 {
		t.Errorf("download of the matches: %d lines", strings.Count(body, "\n"))
	}

	for _, tc := range []struct {
		path, field string
		status      int
	}{
		{"/logs?level=LOUD", "level", 400},
		{"/logs/download?level=LOUD", "level", 400},
		{"/logs?q=%00", "q", 400},
		{"/logs?task_run=%00", "task_run", 400},
		{"/logs?after=-1", "after", 400},
		{"/logs?limit=0", "limit", 400},
	} {
		status, body := b.call(t, "GET", "/api/v1/runs/"+run.ID+tc.path, "")
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if status != tc.status || !strings.Contains(msg, `"`+tc.field+`"`) {
			t.Errorf("%s: %d %q, want %d naming %q", tc.path, status, msg, tc.status, tc.field)
		}
	}
	if status, _ := b.call(t, "GET", "/api/v1/runs/nope/logs/download", ""); status != 404 {
		t.Errorf("download of an unknown run: %d", status)
	}
}

// TestRunAttemptsAndTaskRun: GET /runs/{id}/attempts tells which steps a
// retried attempt ran and why; GET /runs/{id}/task-runs/{id} shows a task
// run with its tries and their errors.
func TestRunAttemptsAndTaskRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	run, _, err := b.c.CreateRun(ctx, apitype.CreateRunRequest{Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := b.st.RunGet(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.Attempt = 2
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tr := func(id, key, identity, input string, state store.TaskState, attempt, at int) store.TaskRun {
		return store.TaskRun{ID: id, RunID: run.ID, Key: key, Task: "t", Identity: identity, InputHash: input, State: state,
			FlowAttempt: attempt, CreatedAt: t0.Add(time.Duration(at) * time.Second), Input: json.RawMessage(`{"n":1}`)}
	}
	failed := tr("tr-fail", "t/1", "B.0", "i1", store.TaskFailed, 1, 2)
	failed.Attempts, failed.Error = 2, &store.ErrorInfo{Message: "disk full", Kind: "permanent"}
	failed.StartedAt, failed.EndedAt = t0.Add(2*time.Second), t0.Add(5*time.Second)
	failed.History = []store.Transition{
		{At: t0.Add(2 * time.Second), From: "PENDING", To: "RUNNING"},
		{At: t0.Add(3 * time.Second), From: "RUNNING", To: "AWAITING_RETRY", Message: "attempt 1 failed: disk full; retrying in 1s"},
		{At: t0.Add(4 * time.Second), From: "AWAITING_RETRY", To: "RUNNING"},
		{At: t0.Add(5 * time.Second), From: "RUNNING", To: "FAILED", Message: "disk full"},
	}
	if err := b.st.BatchWrite(ctx, store.Batch{Runs: []store.Run{rec}, TaskRuns: []store.TaskRun{
		tr("tr-ok", "t/0", "A.0", "i0", store.TaskCompleted, 1, 1),
		failed,
		tr("tr-again", "t/1", "B.0", "i1", store.TaskCompleted, 2, 10),
	}}); err != nil {
		t.Fatal(err)
	}
	status, _, body := b.get(t, "/api/v1/runs/"+run.ID+"/attempts")
	if status != 200 {
		t.Fatalf("attempts: %d %s", status, body)
	}
	var cmp apitype.AttemptsComparison
	if err := json.Unmarshal([]byte(body), &cmp); err != nil {
		t.Fatal(err)
	}
	if len(cmp.Attempts) != 2 {
		t.Fatalf("attempts: %s", body)
	}
	a2 := cmp.Attempts[1]
	if a2.RanTotal != 1 || a2.Ran[0].TaskRunID != "tr-again" || a2.Ran[0].Reason != apitype.StepFailedBefore ||
		!strings.Contains(a2.Ran[0].Detail, "disk full") || a2.ReusedTotal != 1 || a2.Reused[0].TaskRunID != "tr-ok" {
		t.Errorf("attempt 2: %+v", a2)
	}
	if status, body := b.call(t, "GET", "/api/v1/runs/"+run.ID+"/attempts?limit=0", ""); status != 400 ||
		!strings.Contains(fmt.Sprint(body), `"limit"`) {
		t.Errorf("limit=0: %d %v", status, body)
	}

	status, _, body = b.get(t, "/api/v1/runs/"+run.ID+"/task-runs/tr-fail")
	if status != 200 {
		t.Fatalf("task run: %d %s", status, body)
	}
	var d apitype.TaskRunDetail
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.ID != "tr-fail" || d.RunID != run.ID || d.FlowAttempt != 1 || string(d.Input) != `{"n":1}` || d.Error == nil ||
		d.Error.Kind != "permanent" || len(d.History) != 4 || len(d.Tries) != 2 {
		t.Fatalf("task run: %s", body)
	}
	if tr1 := d.Tries[0]; tr1.Outcome != "AWAITING_RETRY" || *tr1.DurationMS != 1000 || !strings.Contains(tr1.Message, "attempt 1 failed") {
		t.Errorf("try 1: %+v", tr1)
	}
	if tr2 := d.Tries[1]; tr2.Outcome != "FAILED" || tr2.Message != "disk full" {
		t.Errorf("try 2: %+v", tr2)
	}
	other, _, err := b.c.CreateRun(ctx, apitype.CreateRunRequest{Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/runs/" + run.ID + "/task-runs/nope", "/runs/" + other.ID + "/task-runs/tr-fail", "/runs/nope/task-runs/tr-fail", "/runs/nope/attempts"} {
		if status, _ := b.call(t, "GET", "/api/v1"+path, ""); status != 404 {
			t.Errorf("%s: %d, want 404", path, status)
		}
	}
}

// TestRunStreamOfTask: the run stream with task sends only that step's
// log lines (the task run page's live lines).
func TestRunStreamOfTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := b.st.BatchWrite(ctx, store.Batch{
		Runs: []store.Run{{ID: "done", Flow: "f", State: store.RunCompleted, Attempt: 1, CreatedAt: t0, EndedAt: t0}},
		Logs: []store.LogRecord{
			{RunID: "done", TaskKey: "k/1", TaskRunID: "tr1", Level: "INFO", Message: "one of k/1", At: t0},
			{RunID: "done", TaskKey: "k/1", TaskRunID: "tr2", Level: "INFO", Message: "two of k/1", At: t0},
			{RunID: "done", TaskKey: "k/2", Level: "INFO", Message: "one of k/2", At: t0},
			{RunID: "done", Level: "INFO", Message: "of the flow", At: t0},
		},
	}); err != nil {
		t.Fatal(err)
	}
	status, h, body := b.get(t, "/api/v1/runs/done/stream?task=k/1")
	if status != 200 || h.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", status, h)
	}
	if !strings.Contains(body, "one of k/1") || strings.Contains(body, "one of k/2") || strings.Contains(body, "of the flow") ||
		!strings.Contains(body, "event: end") {
		t.Errorf("stream of k/1:\n%s", body)
	}
	if _, _, body := b.get(t, "/api/v1/runs/done/stream?task_run=tr2"); !strings.Contains(body, "two of k/1") || strings.Contains(body, "one of k/1") {
		t.Errorf("stream of task run tr2:\n%s", body)
	}
	if status, _, body := b.get(t, "/api/v1/runs/done/stream?task=%00"); status != 400 || !strings.Contains(body, `\"task\"`) {
		t.Errorf("task=%%00: %d %s", status, body)
	}
}
