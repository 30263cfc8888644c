package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/store"
)

// TestRunHistoryAPI: creating, cancelling and retrying a run through the
// API are history entries by the actor the X-Baton-Actor header names,
// unverified; GET /runs/{id}/history pages them by seq; an unknown run is a
// 404 and bad paging parameters a 400.
func TestRunHistoryAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	alice, err := client.New(b.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	alice.SetActor("alice")
	run, _, err := alice.CreateRun(ctx, apitype.CreateRunRequest{Flow: "f", Parameters: []byte(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CancelRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	// b.c sends no actor: anonymous.
	if _, err := b.c.RetryRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	page, err := alice.RunHistory(ctx, run.ID, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.History) != 2 || page.NextAfter != page.History[1].Seq {
		t.Fatalf("first page = %+v; want 2 entries and the cursor of the next page", page)
	}
	rest, err := alice.RunHistory(ctx, run.ID, page.NextAfter, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rest.NextAfter != 0 {
		t.Errorf("last page has a next cursor %d", rest.NextAfter)
	}
	all := append(page.History, rest.History...)
	type entry struct {
		actor    string
		verified bool
		action   string
	}
	var got []entry
	for _, e := range all {
		got = append(got, entry{e.Actor, e.Verified, e.Action})
	}
	want := []entry{{"alice", false, store.ActionCreated}, {"alice", false, store.ActionCancelled},
		{"anonymous", false, store.ActionRetried}}
	if len(got) != len(want) {
		t.Fatalf("history = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !strings.Contains(string(all[0].Payload), `"flow":"f"`) || all[0].Time.IsZero() {
		t.Errorf("created entry = %+v; want its time and the flow in its payload", all[0])
	}

	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/runs/nope/history", http.StatusNotFound},
		{"/runs/" + run.ID + "/history?limit=0", http.StatusBadRequest},
		{"/runs/" + run.ID + "/history?limit=10001", http.StatusBadRequest},
		{"/runs/" + run.ID + "/history?after=-1", http.StatusBadRequest},
		{"/runs/" + run.ID + "/history?after=x", http.StatusBadRequest},
		{"/runs/" + run.ID + "/history?offset=1", http.StatusBadRequest},
	} {
		if status, body := b.call(t, "GET", apitype.Prefix+tc.path, ""); status != tc.status || errCode(body) == "" {
			t.Errorf("GET %s = %d %v, want %d with an error body", tc.path, status, body, tc.status)
		}
	}
	if status, body := b.call(t, "GET", apitype.Prefix+"/runs/"+run.ID+"/history", ""); status != 200 ||
		len(body["history"].([]any)) != 3 {
		t.Errorf("GET history = %d %v; want the 3 entries", status, body)
	}
}

// TestActorHeaderValidated: an actor name that is not a valid identifier
// is refused with 400 and nothing is recorded.
func TestActorHeaderValidated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req, err := http.NewRequest("POST", b.ts.URL+apitype.Prefix+"/runs", strings.NewReader(`{"flow":"f"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(apitype.ActorHeader, strings.Repeat("x", 2000))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("create with a 2000-byte actor: %d, want 400", resp.StatusCode)
	}
	if runs, err := b.c.ListRuns(context.Background(), client.ListRunsParams{}); err != nil || len(runs) != 0 {
		t.Errorf("runs after the refusal: %d, %v; want none", len(runs), err)
	}
}
