package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

type bundle struct {
	srv *server.Server
	ts  *httptest.Server
	st  store.Store
	c   *client.Client // the public API
	w   *remote.Client // the worker and engine protocols
	// clk is the server's clock: it moves only when a test advances it.
	clk *clock.Fake
}

func setup(t *testing.T) *bundle {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	return setupWith(t, st)
}

// setupWith serves st (closed when the test ends).
func setupWith(t *testing.T, st store.Store) *bundle {
	t.Helper()
	dir := t.TempDir()
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, MaxBodyBytes: 1 << 20, LeaseTimeout: 2 * time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener = api.RequestLineListener(ts.Listener) // as the baton command serves it
	ts.Start()
	t.Cleanup(func() { ts.Close(); srv.Stop(); st.Close() })
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	w, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{srv: srv, ts: ts, st: st, c: c, w: w, clk: clk}
}

// call sends a raw request and returns the status and decoded JSON body.
func (b *bundle) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &out) != nil {
		t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	m, _ := e["message"].(string)
	if c == "" || m == "" {
		return ""
	}
	return c
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := `{"flow":"f","parameters":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed json", "POST", "/api/v1/runs", `{"flow": "f",`, 400, apitype.CodeBadRequest},
		{"not an object", "POST", "/api/v1/runs", `[1,2]`, 400, apitype.CodeBadRequest},
		{"empty body", "POST", "/api/v1/runs", ``, 400, apitype.CodeBadRequest},
		{"unknown field", "POST", "/api/v1/runs", `{"flow":"f","bogus":1}`, 400, apitype.CodeBadRequest},
		{"wrong type", "POST", "/api/v1/runs", `{"flow":42}`, 400, apitype.CodeBadRequest},
		{"missing flow", "POST", "/api/v1/runs", `{"queue":"q"}`, 400, apitype.CodeBadRequest},
		{"two values", "POST", "/api/v1/runs", `{"flow":"f"} {"flow":"g"}`, 400, apitype.CodeBadRequest},
		{"oversized", "POST", "/api/v1/runs", big, 413, apitype.CodeTooLarge},
		{"unknown run", "GET", "/api/v1/runs/nope", "", 404, apitype.CodeNotFound},
		{"unknown run logs", "GET", "/api/v1/runs/nope/logs", "", 404, apitype.CodeNotFound},
		{"cancel unknown", "POST", "/api/v1/runs/nope/cancel", "", 404, apitype.CodeNotFound},
		{"retry unknown", "POST", "/api/v1/runs/nope/retry", "", 404, apitype.CodeNotFound},
		{"bad state filter", "GET", "/api/v1/runs?state=SLEEPY", "", 400, apitype.CodeBadRequest},
		{"bad limit", "GET", "/api/v1/runs?limit=-3", "", 400, apitype.CodeBadRequest},
		{"unknown path", "GET", "/api/v1/nothing", "", 404, apitype.CodeNotFound},
		{"bad retention", "POST", "/api/v1/retention", `{"older_than":"soon"}`, 400, apitype.CodeBadRequest},
		{"unknown worker heartbeat", "POST", "/api/v1/workers/ghost/heartbeat", `{}`, 404, apitype.CodeUnknownWorker},
		{"worker without queues", "POST", "/api/v1/workers", `{"name":"w","queues":[]}`, 400, apitype.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := b.call(t, tt.method, tt.path, tt.body)
			if status != tt.status || errCode(body) != tt.code {
				t.Fatalf("%s %s: %d %v; want %d with code %q and a message", tt.method, tt.path, status, body, tt.status, tt.code)
			}
		})
	}
	runs, err := b.st.RunList(context.Background(), store.RunListParams{})
	if err != nil || len(runs) != 0 {
		t.Fatalf("bad input created runs: %v %v", runs, err)
	}
}

func TestCreateCancelRetryStates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	run, created, err := b.c.CreateRun(ctx, apitype.CreateRunRequest{Flow: "nobody-serves-me", Parameters: json.RawMessage(`{"n":1}`), IdempotencyKey: "k1"})
	if err != nil || !created || run.State != "SCHEDULED" || run.Queue != "default" {
		t.Fatalf("create: %+v %v %v", run, created, err)
	}
	if run.WaitingReason != "" {
		t.Errorf("create response: waiting_reason %q; it is left to GET (createdView)", run.WaitingReason)
	}
	if d, err := b.c.GetRun(ctx, run.ID); err != nil || !strings.Contains(d.WaitingReason, "no live worker") {
		t.Fatalf("GET: waiting_reason %q (%v) should say no worker serves the flow", d.WaitingReason, err)
	}
	again, created, err := b.c.CreateRun(ctx, apitype.CreateRunRequest{Flow: "nobody-serves-me", Parameters: json.RawMessage(`{"n":1}`), IdempotencyKey: "k1"})
	if err != nil || created || again.ID != run.ID {
		t.Fatalf("idempotent create: %+v created=%v %v; want run %s", again, created, err, run.ID)
	}
	if _, err := b.c.RetryRun(ctx, run.ID); !isStatus(err, 409) {
		t.Fatalf("retry of a SCHEDULED run: %v; want 409", err)
	}
	cancelled, err := b.c.CancelRun(ctx, run.ID)
	if err != nil || cancelled.State != "CANCELLED" {
		t.Fatalf("cancel: %+v %v", cancelled, err)
	}
	_, err = b.c.CancelRun(ctx, run.ID)
	if !isStatus(err, 409) || !strings.Contains(err.Error(), "CANCELLED") {
		t.Fatalf("second cancel: %v; want 409 saying it is CANCELLED", err)
	}
	retried, err := b.c.RetryRun(ctx, run.ID)
	if err != nil || retried.State != "SCHEDULED" || retried.Attempt != 2 {
		t.Fatalf("retry: %+v %v", retried, err)
	}
	d, err := b.c.GetRun(ctx, run.ID)
	if err != nil || len(d.Events) < 3 {
		t.Fatalf("history: %+v %v", d.Events, err)
	}
}

func isStatus(err error, status int) bool {
	var e *client.Error
	if ce, ok := err.(*client.Error); ok {
		e = ce
	}
	return e != nil && e.Status == status
}

// TestOpenAPIMatchesHandlers checks the document against the live mux: every
// documented operation is routed (no 404/405 from the router), and every
// route the server registers is documented.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, err := http.Get(b.ts.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
		Comps   struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Paths) < 20 {
		t.Fatalf("openapi %q with %d paths", doc.OpenAPI, len(doc.Paths))
	}
	param := regexp.MustCompile(`\{\w+\}`)
	var ops []string
	for path, item := range doc.Paths {
		for method, op := range item {
			ops = append(ops, strings.ToUpper(method)+" "+path)
			// Every referenced schema exists.
			raw, _ := json.Marshal(op)
			for _, m := range regexp.MustCompile(`#/components/schemas/(\w+)`).FindAllStringSubmatch(string(raw), -1) {
				if _, ok := doc.Comps.Schemas[m[1]]; !ok {
					t.Errorf("%s %s references missing schema %s", method, path, m[1])
				}
			}
			// The route exists: the router must not answer "no route".
			req, _ := http.NewRequest(strings.ToUpper(method), b.ts.URL+param.ReplaceAllString(path, "x"), strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") { // a stream does not end
				body, _ = io.ReadAll(r.Body)
			}
			r.Body.Close()
			if r.StatusCode == 405 || (r.StatusCode == 404 && strings.Contains(string(body), "no route")) {
				t.Errorf("documented %s %s is not routed: %d %s", method, path, r.StatusCode, body)
			}
		}
	}
	sort.Strings(ops)
	routes := b.srv.Routes()
	sort.Strings(routes)
	if strings.Join(ops, "\n") != strings.Join(routes, "\n") {
		t.Fatalf("documented operations differ from routes:\ndoc:\n%s\nroutes:\n%s", strings.Join(ops, "\n"), strings.Join(routes, "\n"))
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, _ := b.call(t, "GET", p, ""); status != 200 {
			t.Errorf("%s: %d", p, status)
		}
	}
}

func TestRetryOfLocalRunUsesDefaultQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	run, _, err := b.st.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: "local-1", Flow: "f", State: store.RunFailed, Attempt: 1}})
	if err != nil {
		t.Fatal(err)
	}
	retried, err := b.c.RetryRun(ctx, run.ID)
	if err != nil || retried.Queue != apitype.DefaultQueue || retried.State != "SCHEDULED" {
		t.Fatalf("retry of a local run: %+v %v; want SCHEDULED on queue %q", retried, err, apitype.DefaultQueue)
	}
}

// TestCancelRunStates: what a cancel does depends on who would act on it.
func TestCancelRunStates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	write := func(r store.Run) {
		t.Helper()
		r.Flow, r.Attempt, r.CreatedAt = "f", 1, time.Now()
		if err := b.st.BatchWrite(ctx, store.Batch{Runs: []store.Run{r}}); err != nil {
			t.Fatal(err)
		}
	}
	lease := time.Now().Add(time.Hour)
	write(store.Run{ID: "claimed", State: store.RunPending, Queue: "q", WorkerID: "w1", LeaseUntil: lease})
	write(store.Run{ID: "parent", State: store.RunRunning, Queue: "q", WorkerID: "w1", LeaseUntil: lease})
	write(store.Run{ID: "child", State: store.RunRunning, ParentRunID: "parent", ParentStepKey: "sub/0", WorkerID: "w1"})
	write(store.Run{ID: "held", State: store.RunRunning, Queue: "q", WorkerID: "w1", LeaseUntil: lease})
	tests := []struct {
		id, state string
		status    int
		msg       string
	}{
		{"claimed", "CANCELLED", 200, ""}, // its worker has not started it
		{"child", "", 409, "cancel run parent"},
		{"held", "CANCELLING", 200, ""},
		{"held", "CANCELLING", 200, ""}, // again: no change
	}
	for _, tc := range tests {
		got, err := b.c.CancelRun(ctx, tc.id)
		if tc.status != 200 {
			if !isStatus(err, tc.status) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("cancel %s: %v; want %d saying %q", tc.id, err, tc.status, tc.msg)
			}
			continue
		}
		if err != nil || got.State != tc.state {
			t.Errorf("cancel %s: %+v %v; want %s", tc.id, got.State, err, tc.state)
		}
	}
}

// TestHeartbeatLongPollStops: a held heartbeat answers as soon as a run
// must stop: one being cancelled, or one that ended while distributed task
// runs of it still run; with the attempt to stop.
func TestHeartbeatLongPollStops(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	reg, err := b.w.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"q"}})
	if err != nil {
		t.Fatal(err)
	}
	lease := time.Now().Add(time.Hour)
	if err := b.st.BatchWrite(ctx, store.Batch{
		Runs: []store.Run{
			{ID: "a", Flow: "f", State: store.RunRunning, Attempt: 2, Queue: "q", WorkerID: reg.ID, LeaseUntil: lease, CreatedAt: time.Now()},
			{ID: "b", Flow: "f", State: store.RunRunning, Attempt: 1, Queue: "q", WorkerID: reg.ID, LeaseUntil: lease, CreatedAt: time.Now()},
		},
		TaskRuns: []store.TaskRun{{ID: "t", RunID: "b", Key: "k", Task: "x", Queue: "q", State: store.TaskRunning,
			WorkerID: reg.ID, LeaseUntil: lease, CreatedAt: time.Now()}},
	}); err != nil {
		t.Fatal(err)
	}
	hb, err := b.w.Heartbeat(ctx, reg.ID, api.HeartbeatRequest{})
	if err != nil || len(hb.Cancel) != 0 || hb.Generation == 0 {
		t.Fatalf("first heartbeat: %+v %v; want nothing to stop and a generation", hb, err)
	}
	held := func(act func()) api.Heartbeat {
		t.Helper()
		type answer struct {
			hb  api.Heartbeat
			err error
		}
		ch := make(chan answer, 1)
		go func() {
			hb, err := b.w.Heartbeat(ctx, reg.ID, api.HeartbeatRequest{WaitMS: 10000, Generation: hb.Generation})
			ch <- answer{hb, err}
		}()
		// Held: its timer waits beside the maintenance ticker. The clock
		// never moves, so only the change can answer it.
		b.blockUntil(t, 2)
		act()
		select {
		case a := <-ch:
			if a.err != nil {
				t.Fatal(a.err)
			}
			return a.hb
		case <-time.After(5 * time.Second):
			t.Fatal("the held heartbeat did not answer after the change")
		}
		return api.Heartbeat{}
	}
	hb = held(func() {
		if _, err := b.c.CancelRun(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	})
	if !slices.Equal(hb.Cancel, []string{"a"}) || hb.Attempts["a"] != 2 {
		t.Fatalf("heartbeat after cancel: %+v; want run a at attempt 2", hb)
	}
	hb = held(func() {
		if _, err := b.st.RunTransition(ctx, store.RunTransitionParams{ID: "b", From: []store.RunState{store.RunRunning},
			To: store.RunFailed, Cause: "engine"}); err != nil {
			t.Fatal(err)
		}
	})
	sort.Strings(hb.Cancel)
	if !slices.Equal(hb.Cancel, []string{"a", "b"}) || hb.Attempts["b"] != 1 {
		t.Fatalf("heartbeat after run b failed with a running task run: %+v; want runs a and b", hb)
	}
}

// TestClaimSupersededByShortClaim: a claim that comes back with fewer than
// it asked for makes the same worker's claims with a lower seq answer at
// once (whichever arrives first), and leaves later ones waiting.
func TestClaimSupersededByShortClaim(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	reg, err := b.w.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"default"}, Tasks: []string{"t"},
		Slots: map[string]int{"q": 2}})
	if err != nil {
		t.Fatal(err)
	}
	long := make(chan error, 1)
	go func() {
		_, err := b.w.Claim(ctx, reg.ID, api.Claim{Tasks: map[string]int{"q": 1}, WaitMS: 60000, Seq: 1})
		long <- err
	}()
	// Nothing is queued: this claim is short and supersedes seq 1.
	got, err := b.w.Claim(ctx, reg.ID, api.Claim{Tasks: map[string]int{"q": 1}, Seq: 2})
	if err != nil || len(got.TaskRuns) != 0 {
		t.Fatalf("claim: %v, %d task runs", err, len(got.TaskRuns))
	}
	select {
	case err := <-long:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the claim with seq 1 still waits (for 60 s) after a short claim with seq 2")
	}
	// A later claim is not superseded: it waits out its wait, answering
	// only when the clock has moved by it.
	later := make(chan error, 1)
	go func() {
		_, err := b.w.Claim(ctx, reg.ID, api.Claim{Tasks: map[string]int{"q": 1}, WaitMS: 200, Seq: 3})
		later <- err
	}()
	b.blockUntil(t, 2)
	b.clk.Advance(199 * time.Millisecond)
	b.blockUntil(t, 2) // waits again, for the last millisecond
	select {
	case err := <-later:
		t.Fatalf("the claim with seq 3 answered (%v) before its wait of 200ms", err)
	default:
	}
	b.clk.Advance(time.Millisecond)
	select {
	case err := <-later:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the claim with seq 3 did not answer when its wait was over")
	}
}

// blockUntil waits until n timers or tickers wait on the server's clock
// (its maintenance ticker is one).
func (b *bundle) blockUntil(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.clk.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("%d waiters on the clock: %v", n, err)
	}
}
