package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
)

// get fetches path and returns the status, content type and body.
func get(t *testing.T, base, path string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, body)
		}
	}
}

// TestPagesWithoutScripts: every page says, in its first HTML, the states,
// names and counts its JSON twin has; bad queries are 400 pages; the API's
// unknown paths keep their JSON errors.
func TestPagesWithoutScripts(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	failed := c.create(t, failingFlow.Name(), "7")
	c.waitState(t, failed, "FAILED")
	paused := c.create(t, approvalFlow.Name(), "")
	c.waitPaused(t, paused)

	status, ct, body := get(t, c.url, "/")
	if status != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET /: %d %s", status, ct)
	}
	mustContain(t, "dashboard", body, "Failures of the last day", failingFlow.Name(), "the ledger does not balance",
		`data-state="FAILED"`, "Needs you <span class=\"n\">1</span>", "approve the batch of plates", "Workers alive <span class=\"n\">1</span>")

	_, _, body = get(t, c.url, "/runs")
	row := func(id string) string { return `<tr data-run="` + id + `">` }
	mustContain(t, "runs", body, row(failed), row(paused), `data-state="PAUSED"`, `data-state="FAILED"`)
	_, _, body = get(t, c.url, "/runs?state=FAILED")
	mustContain(t, "runs?state=FAILED", body, row(failed))
	if strings.Contains(body, row(paused)) {
		t.Errorf("runs?state=FAILED lists the paused run %s", paused)
	}
	_, _, body = get(t, c.url, "/runs?q="+url.QueryEscape("approval"))
	mustContain(t, "runs?q=approval", body, row(paused))
	if strings.Contains(body, row(failed)) {
		t.Errorf("runs?q=approval lists the failed run")
	}
	_, _, body = get(t, c.url, "/runs?flow="+url.QueryEscape(failingFlow.Name()))
	mustContain(t, "runs?flow=", body, row(failed))
	if status, _, body := get(t, c.url, "/runs?state=NOPE"); status != 400 || !strings.Contains(body, "unknown state") {
		t.Errorf("runs?state=NOPE: %d %s; want a 400 page naming the state", status, body)
	}

	_, _, body = get(t, c.url, "/runs/"+failed)
	mustContain(t, "failed run page", body, failingFlow.Name(), `data-state="FAILED"`, "the ledger does not balance",
		"checking the ledger", failStep.Name(), "Retry run")

	_, _, body = get(t, c.url, "/runs/"+paused)
	mustContain(t, "paused run page", body, `data-state="PAUSED"`, "Waiting for you", "approve the batch of plates",
		`name="batch"`, `min="1"`, `name="approve"`, `type="checkbox"`, "How many plates")

	_, _, body = get(t, c.url, "/inbox")
	mustContain(t, "inbox", body, "Needs you <span class=\"n\">1</span>", `data-run="`+paused+`"`, `data-key="approval"`)

	if status, _, body := get(t, c.url, "/runs/no-such-run"); status != 404 || !strings.Contains(body, "unknown run id") {
		t.Errorf("unknown run page: %d %s", status, body)
	}
	for _, p := range []string{"/api/v1/nope", "/api/v1/runs/x/nope", "/nope", "/runs/a/b"} {
		status, ct, body := get(t, c.url, p)
		if status != 404 || ct != "application/json" || !strings.Contains(body, `"not_found"`) {
			t.Errorf("GET %s: %d %s %s; want the API's JSON 404", p, status, ct, body)
		}
	}
	resp, err := http.Post(c.url+"/api/v1/inbox", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST /api/v1/inbox: %d %s; want the API's JSON 405", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if status, ct, _ := get(t, c.url, "/ui/static/app.js"); status != 200 || !strings.Contains(ct, "javascript") {
		t.Errorf("app.js: %d %s", status, ct)
	}

	// The twins say the same.
	var in apitype.Inbox
	_, _, body = get(t, c.url, "/api/v1/inbox")
	if err := json.Unmarshal([]byte(body), &in); err != nil || len(in.Items) != 1 || in.Items[0].Run.ID != paused ||
		in.Items[0].Key != "approval" || !strings.Contains(string(in.Items[0].Schema), `"minimum"`) {
		t.Errorf("GET /api/v1/inbox: %s (%v)", body, err)
	}
	_, _, body = get(t, c.url, "/api/v1/runs?q=approval")
	if !strings.Contains(body, paused) || strings.Contains(body, failed) {
		t.Errorf("GET /api/v1/runs?q=approval: %s", body)
	}
}

// TestRunStream: the run stream sends the run with its counts and its log
// lines, new ones as they are written, and ends with the run.
func TestRunStream(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	name := newGate(t)
	id := c.create(t, gatedFlow.Name(), `{"gate":"`+name+`"}`)
	c.wait(t, id, "at its gate", func(d apitype.RunDetail) bool {
		for _, tr := range d.TaskRuns {
			if tr.Task == gatedStep.Name() && tr.State == "RUNNING" {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.url+"/api/v1/runs/"+id+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	type event struct{ name, id, data string }
	events := make(chan event, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var e event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.name != "" {
					events <- e
				}
				e = event{}
			case strings.HasPrefix(line, "event: "):
				e.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				e.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				e.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	next := func(want string) event {
		t.Helper()
		for e := range events {
			if e.name == want {
				return e
			}
		}
		t.Fatalf("stream ended before a %q event", want)
		return event{}
	}
	logs := next("logs")
	if !strings.Contains(logs.data, "before the gate") || logs.id == "" {
		t.Errorf("first logs event: %+v", logs)
	}
	var run apitype.StreamRun
	if err := json.Unmarshal([]byte(next("run").data), &run); err != nil || run.State != "RUNNING" || run.TaskRunsTotal != 4 {
		t.Fatalf("run event: %+v, %v; want RUNNING with 4 task runs", run, err)
	}
	close(gate(name))
	if l := next("logs"); !strings.Contains(l.data, "after the gate") || strings.Contains(l.data, "before the gate") {
		t.Errorf("logs after the gate: %+v; want only the new line", l)
	}
	for run.State != "COMPLETED" {
		if err := json.Unmarshal([]byte(next("run").data), &run); err != nil {
			t.Fatal(err)
		}
	}
	next("end")
	if _, ok := <-events; ok {
		t.Errorf("the stream goes on after its end event")
	}
}
