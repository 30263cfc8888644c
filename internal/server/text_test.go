package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
	"github.com/batonhq/baton/internal/transport"
)

// TestEngineProtocolRefusesInvalidIdentifiers: identifiers with a NUL byte
// in engine-protocol records are refused with a 400 naming the field (the
// rule of store.CheckIdentifier), before anything is written; free text
// with NUL bytes is stored.
func TestEngineProtocolRefusesInvalidIdentifiers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name, method, path, body, field string
	}{
		{"task run key", "POST", "/engine/batch",
			`{"TaskRuns":[{"ID":"tr1","RunID":"r1","Key":"k\u0000ey","Task":"t","State":"RUNNING"}]}`, `TaskRuns[0].Key`},
		{"task name", "POST", "/engine/batch",
			`{"TaskRuns":[{"ID":"tr1","RunID":"r1","Key":"k","Task":"t\u0000","State":"RUNNING"}]}`, `TaskRuns[0].Task`},
		{"log step key", "POST", "/engine/batch",
			`{"Logs":[{"RunID":"r1","TaskKey":"\u0000","Message":"m"}]}`, `Logs[0].TaskKey`},
		{"flow of a batch run", "POST", "/engine/batch",
			`{"Runs":[{"ID":"r1","Flow":"f\u0000","State":"RUNNING"}]}`, `Runs[0].Flow`},
		{"subflow step key", "POST", "/engine/runs",
			`{"Run":{"ID":"r2","Flow":"f","State":"RUNNING","ParentRunID":"r1","ParentStepKey":"s\u0000"}}`, `Run.ParentStepKey`},
		{"idempotency key", "POST", "/engine/runs",
			`{"Run":{"ID":"r3","Flow":"f","State":"RUNNING","IdempotencyKey":"i\u0000"}}`, `Run.IdempotencyKey`},
		{"child key", "GET", "/engine/runs/r1/child?key=a%00b", "", `key`},
		{"cache key", "GET", "/engine/cache?key=a%00b", "", `key`},
		{"transition queue", "POST", "/engine/runs/r1/transition", `{"To":"SCHEDULED","Queue":"q\u0000"}`, `Queue`},
		{"worker name", "POST", "/workers", `{"name":"w\u0000","queues":["q"]}`, `name`},
		{"worker queue", "POST", "/workers", `{"name":"w","queues":["q","\u0000"]}`, `queues[1]`},
	}
	for _, tc := range tests {
		code, body := b.call(t, tc.method, apitype.Prefix+tc.path, tc.body)
		e, _ := body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, `field "`+tc.field+`"`) || !strings.Contains(msg, "must not contain a NUL byte") {
			t.Errorf("%s: %d %v; want 400 naming field %s", tc.name, code, body, tc.field)
		}
	}
	ctx := context.Background()
	if runs, _ := b.st.RunList(ctx, store.RunListParams{}); len(runs) != 0 {
		t.Errorf("refused requests wrote runs: %v", runs)
	}

	// Free text with NUL bytes is stored and reads back.
	code, body := b.call(t, "POST", apitype.Prefix+"/engine/batch",
		`{"Logs":[{"RunID":"r1","TaskKey":"k","Message":"nul \u0000 here"}],"Events":[{"RunID":"r1","To":"RUNNING","Message":"e\u0000"}]}`)
	if code != http.StatusNoContent {
		t.Fatalf("batch with NUL in free text: %d %v", code, body)
	}
	logs, err := b.st.LogList(ctx, store.LogListParams{RunID: "r1"})
	if err != nil || len(logs) != 1 || logs[0].Message != "nul \x00 here" {
		t.Errorf("logs %+v, %v", logs, err)
	}
}

// TestBlobUploadLimit: blob uploads are bounded by MaxBlobBytes, not by the
// JSON body limit, and stream into the blob store.
func TestBlobUploadLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler),
		MaxBodyBytes: 64 << 10, MaxBlobBytes: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); st.Close() })
	c, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	es := c.EngineStore()
	data := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16) // above the JSON limit, below the blob limit
	ref, err := es.Put(data)
	if err != nil {
		t.Fatalf("Put of %d bytes: %v", len(data), err)
	}
	if got, err := es.Get(ref); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get(%s) = %d bytes, %v; want the %d bytes put", ref, len(got), err, len(data))
	}
	if local, err := blobs.Get(ref); err != nil || !bytes.Equal(local, data) {
		t.Errorf("blob store holds %d bytes, %v", len(local), err)
	}
	_, err = es.Put(make([]byte, 600<<10))
	var ce *transport.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusRequestEntityTooLarge || !strings.Contains(ce.Message, "blob limit of 524288 bytes") {
		t.Errorf("Put above the blob limit: %v; want 413 naming the limit", err)
	}
}

// trickle yields n chunks of data, waiting gap before each.
type trickle struct {
	n   int
	gap time.Duration
}

func (t *trickle) Read(b []byte) (int, error) {
	if t.n == 0 {
		return 0, io.EOF
	}
	t.n--
	time.Sleep(t.gap)
	return copy(b, "0123456789abcdef"), nil
}

// TestBlobUploadOutlastsReadTimeout: a blob upload that keeps making
// progress may take longer than the HTTP server's read timeout.
func TestBlobUploadOutlastsReadTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := httptest.NewUnstartedServer(b.srv.Handler())
	ts.Config.ReadTimeout = 300 * time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	body := &trickle{n: 8, gap: 100 * time.Millisecond} // 800ms in all
	req, err := http.NewRequest("PUT", ts.URL+apitype.Prefix+"/blobs", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("slow upload: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("slow upload: %d %s", resp.StatusCode, raw)
	}
}

// TestEngineStoreFreeTextExact: free text a worker's engine writes through
// the API (log lines, errors, events, histories, transitions, completions)
// is stored byte for byte, also bytes that are not UTF-8, which JSON alone
// would replace with U+FFFD.
func TestEngineStoreFreeTextExact(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	es := b.w.EngineStore()
	const text = "bad \xff\xfe byte, NUL \x00, DLE \x10 and é"
	now := time.Now()
	batch := store.Batch{
		Runs: []store.Run{{ID: "r1", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: now}},
		TaskRuns: []store.TaskRun{{ID: "tr1", RunID: "r1", Key: "k", Task: "t", State: store.TaskFailed, CreatedAt: now,
			Error:   &store.ErrorInfo{Message: text, Chain: []string{text}},
			History: []store.Transition{{At: now, To: "FAILED", Cause: "engine", Message: text}}}},
		Events: []store.Event{{RunID: "r1", To: "RUNNING", Cause: "engine", Message: text, At: now}},
		Logs:   []store.LogRecord{{RunID: "r1", TaskKey: "k", Level: "INFO", Message: text, At: now}},
	}
	if err := es.BatchWrite(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if batch.Logs[0].Message != text {
		t.Error("BatchWrite changed the caller's batch")
	}
	if _, err := es.RunTransition(ctx, store.RunTransitionParams{ID: "r1", From: []store.RunState{store.RunRunning},
		To: store.RunFailed, Attempt: 1, Error: &store.ErrorInfo{Message: text}, Cause: "engine", Message: text}); err != nil {
		t.Fatal(err)
	}
	logs, err := b.st.LogList(ctx, store.LogListParams{RunID: "r1"})
	if err != nil || len(logs) != 1 || logs[0].Message != text {
		t.Errorf("log stored as %+v, %v; want %q", logs, err, text)
	}
	trs, err := b.st.TaskRunList(ctx, store.TaskRunListParams{RunID: "r1"})
	if err != nil || len(trs) != 1 || trs[0].Error.Message != text || trs[0].Error.Chain[0] != text || trs[0].History[0].Message != text {
		t.Errorf("task run stored as %+v, %v", trs, err)
	}
	run, err := b.st.RunGet(ctx, "r1")
	if err != nil || run.Error == nil || run.Error.Message != text {
		t.Errorf("run error stored as %+v, %v", run.Error, err)
	}
	evs, err := b.st.EventList(ctx, "r1")
	var msgs []string
	for _, e := range evs {
		msgs = append(msgs, e.Message)
	}
	if err != nil || !slices.Contains(msgs, text) {
		t.Errorf("events stored as %q, %v", msgs, err)
	}
	for _, m := range msgs {
		if strings.Contains(m, "\uFFFD") {
			t.Errorf("event message %q lost bytes", m)
		}
	}

	// A worker's completion of a distributed task run.
	reg, err := b.w.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"q"}, Tasks: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.st.BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "r2", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: now}},
		TaskRuns: []store.TaskRun{{ID: "tr2", RunID: "r2", Key: "k", Task: "t", Queue: "q", State: store.TaskPending, CreatedAt: now}}}); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.w.Claim(ctx, reg.ID, api.Claim{Tasks: map[string]int{"q": 1}})
	if err != nil || len(claimed.TaskRuns) != 1 {
		t.Fatalf("claim: %+v, %v", claimed, err)
	}
	if _, err := b.w.Complete(ctx, reg.ID, []store.TaskRunCompletion{{Ref: store.TaskRunRef{RunID: "r2", Key: "k", ID: "tr2"},
		State: store.TaskFailed, Attempts: 1, Error: &store.ErrorInfo{Message: text}, At: now}}); err != nil {
		t.Fatal(err)
	}
	trs, err = b.st.TaskRunList(ctx, store.TaskRunListParams{RunID: "r2"})
	if err != nil || len(trs) != 1 || trs[0].Error == nil || trs[0].Error.Message != text {
		t.Errorf("completed task run stored as %+v, %v", trs, err)
	}
}
