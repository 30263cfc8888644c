package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// TestRunsSearchPagingAndLogsAfter: the query parameters the web UI uses
// (q and offset of GET /runs, after and limit of GET /runs/{id}/logs)
// filter and page, and bad values are 400s naming the parameter.
func TestRunsSearchPagingAndLogsAfter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	base := time.Now()
	var runs []store.Run
	for i := range 5 {
		runs = append(runs, store.Run{ID: fmt.Sprintf("run-%d", i), Flow: []string{"etl", "report"}[i%2], State: store.RunCompleted,
			Attempt: 1, CreatedAt: base.Add(time.Duration(i) * time.Second), Parameters: []byte(fmt.Sprintf(`{"city":"c%d"}`, i))})
	}
	logs := []store.LogRecord{{RunID: "run-0", Level: "INFO", Message: "one", At: base}, {RunID: "run-0", Level: "INFO", Message: "two", At: base}}
	if err := b.st.BatchWrite(ctx, store.Batch{Runs: runs, Logs: logs}); err != nil {
		t.Fatal(err)
	}
	ids := func(body map[string]any) string {
		var out []string
		rs, _ := body["runs"].([]any)
		for _, r := range rs {
			out = append(out, r.(map[string]any)["id"].(string))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ path, want string }{
		{"/api/v1/runs?q=REPORT", "run-3,run-1"},
		{"/api/v1/runs?q=c2", "run-2"},
		{"/api/v1/runs?limit=2&offset=1", "run-3,run-2"},
		{"/api/v1/runs?flow=etl&offset=2", "run-0"},
	} {
		status, body := b.call(t, "GET", tc.path, "")
		if status != 200 || ids(body) != tc.want {
			t.Errorf("GET %s: %d %s, want %s", tc.path, status, ids(body), tc.want)
		}
	}
	status, body := b.call(t, "GET", "/api/v1/runs/run-0/logs?limit=1", "")
	ls, _ := body["logs"].([]any)
	if status != 200 || len(ls) != 1 {
		t.Fatalf("logs limit=1: %d %v", status, body)
	}
	first := ls[0].(map[string]any)
	status, body = b.call(t, "GET", fmt.Sprintf("/api/v1/runs/run-0/logs?after=%v", first["id"]), "")
	ls, _ = body["logs"].([]any)
	if status != 200 || len(ls) != 1 || ls[0].(map[string]any)["message"] != "two" {
		t.Errorf("logs after %v: %d %v", first["id"], status, body)
	}
	for _, tc := range []struct{ path, param string }{
		{"/api/v1/runs?offset=-1", "offset"},
		{"/api/v1/runs?offset=x", "offset"},
		{"/api/v1/runs/run-0/logs?after=x", "after"},
		{"/api/v1/runs/run-0/logs?limit=0", "limit"},
		{"/api/v1/runs/run-0/stream?after=-2", "after"},
		{"/api/v1/runs/stream?state=NOPE", "state"},
	} {
		status, body := b.call(t, "GET", tc.path, "")
		e, _ := body["error"].(map[string]any)
		if msg, _ := e["message"].(string); status != 400 || !strings.Contains(msg, `"`+tc.param+`"`) {
			t.Errorf("GET %s: %d %v, want a 400 naming %q", tc.path, status, body, tc.param)
		}
	}
	if status, body := b.call(t, "GET", "/api/v1/runs/nope/stream", ""); status != 404 {
		t.Errorf("stream of an unknown run: %d %v", status, body)
	}
	if status, body := b.call(t, "GET", "/api/v1/inbox?run=nope", ""); status != 404 {
		t.Errorf("inbox of an unknown run: %d %v", status, body)
	}
}
