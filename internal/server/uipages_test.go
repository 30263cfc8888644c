package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// TestRunsFilters: GET /runs filters by deployment, tag and creation time
// range, and refuses bad values naming the parameter.
func TestRunsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	code, body := b.call(t, "POST", apitype.Prefix+"/deployments", `{"name":"nightly","flow":"etl","tags":["prod"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create deployment: %d %v", code, body)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, r := range []store.Run{
		{ID: "a", Flow: "etl", State: store.RunCompleted, Deployment: "nightly"},
		{ID: "b", Flow: "etl", State: store.RunFailed},
		{ID: "c", Flow: "etl", State: store.RunFailed, Deployment: "nightly"},
	} {
		r.Attempt, r.CreatedAt, r.UpdatedAt = 1, t0.Add(time.Duration(i)*time.Hour), t0
		if _, _, err := b.st.RunCreate(ctx, store.RunCreateParams{Run: r, Cause: "user"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"deployment=nightly", []string{"c", "a"}},
		{"tag=prod&state=FAILED", []string{"c"}},
		{"tag=dev", []string{}},
		{"created_from=2026-03-01T13:00:00Z", []string{"c", "b"}},
		{"created_from=2026-03-01T12:30&created_to=2026-03-01T14:00", []string{"b"}},
		{"created_to=2026-03-02", []string{"c", "b", "a"}},
		{"created_from=2026-03-01T13:00:00%2B01:00", []string{"c", "b", "a"}},
	} {
		code, body := b.call(t, "GET", apitype.Prefix+"/runs?"+tc.q, "")
		if code != 200 {
			t.Errorf("?%s: %d %v", tc.q, code, body)
			continue
		}
		ids := []string{}
		for _, r := range body["runs"].([]any) {
			ids = append(ids, r.(map[string]any)["id"].(string))
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("?%s: %v, want %v", tc.q, ids, tc.want)
		}
	}
	for _, tc := range []struct{ q, field string }{
		{"created_from=yesterday", "created_from"},
		{"created_to=2026-13-01", "created_to"},
		{"created_from=2026-03-02&created_to=2026-03-01", "created_to"},
		{"deployment=" + url.QueryEscape("a\x00b"), "deployment"},
	} {
		code, body := b.call(t, "GET", apitype.Prefix+"/runs?"+tc.q, "")
		msg, _ := json.Marshal(body)
		if code != http.StatusBadRequest || !strings.Contains(string(msg), tc.field) {
			t.Errorf("?%s: %d %s; want 400 naming %s", tc.q, code, msg, tc.field)
		}
	}
}

// TestRunStats: GET /stats/runs counts the runs of the range by bucket and
// state, with every bucket listed, and refuses bad ranges and buckets.
func TestRunStats(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := b.clk.Now()
	var runs []store.Run
	for i, r := range []struct {
		ago   time.Duration
		state store.RunState
	}{{30 * time.Minute, store.RunFailed}, {40 * time.Minute, store.RunCompleted}, {50 * time.Minute, store.RunCompleted},
		{150 * time.Minute, store.RunRunning}, {5 * time.Hour, store.RunFailed}} {
		runs = append(runs, store.Run{ID: string(rune('a' + i)), Flow: "f", State: r.state, Attempt: 1, CreatedAt: now.Add(-r.ago), UpdatedAt: now})
	}
	if err := b.st.BatchWrite(ctx, store.Batch{Runs: runs}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", b.ts.URL+apitype.Prefix+"/stats/runs?since=3h&bucket=1h", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st apitype.RunStats
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, err)
	}
	if len(st.Buckets) != 3 || st.BucketSeconds != 3600 || !slices.Equal(st.States, []string{"RUNNING", "COMPLETED", "FAILED"}) {
		t.Fatalf("stats: %+v", st)
	}
	if b0, b2 := st.Buckets[0], st.Buckets[2]; b0.Total != 1 || b0.Counts["RUNNING"] != 1 ||
		st.Buckets[1].Total != 0 || b2.Total != 3 || b2.Counts["COMPLETED"] != 2 || b2.Counts["FAILED"] != 1 {
		t.Errorf("buckets: %+v", st.Buckets)
	}
	for _, tc := range []struct{ q, field string }{
		{"bucket=1ms", "bucket"},
		{"bucket=fortnight", "bucket"},
		{"since=720h&bucket=1m", "bucket"},
		{"since=-1h", "since"},
		{"since=tomorrow", "since"},
		{"until=2000-01-01", "since"},
	} {
		code, body := b.call(t, "GET", apitype.Prefix+"/stats/runs?"+tc.q, "")
		msg, _ := json.Marshal(body)
		if code != http.StatusBadRequest || !strings.Contains(string(msg), tc.field) {
			t.Errorf("?%s: %d %s; want 400 naming %s", tc.q, code, msg, tc.field)
		}
	}
}
