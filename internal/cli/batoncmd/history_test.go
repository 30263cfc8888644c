package batoncmd

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/store"
)

// TestRunsHistory: `runs history` shows what happened to a run, on the
// store (the user's program) and through a server (baton --server), the
// same entries either way: a local run by the OS user, verified; a retry
// with edited parameters and a cancel through the API by the --as name,
// unverified.
func TestRunsHistory(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	var prepared, fitted atomic.Int32
	prog := trainProgram(&prepared, &fitted)
	c, err := remote.New(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	def := prog.Flows[0]
	if _, err := c.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w", Queues: []string{"other"}, Capacity: 1,
		Flows: []api.FlowInfo{{Name: def.Name, Parameters: params.Schema(def.ParamsType)}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mainRun(t, prog, a.DB, "run", "train", "--param", "epochs=3", "--param", "lr=5", "--json")
	if code != cli.ExitFailed {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	id := runsTestDecode[map[string]any](t, out)["id"].(string)
	if code, _, errOut := apiTestRun(t, nil, "--server", a.URL, "--as", "carol", "runs", "retry", id, "--params", `{"lr":0.5}`); code != cli.ExitOK {
		t.Fatalf("runs retry --as carol: exit %d: %s", code, errOut)
	}
	if code, _, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "cancel", id, "--as", "carol"); code != cli.ExitOK {
		t.Fatalf("runs cancel --as carol: exit %d: %s", code, errOut)
	}

	code, local, errOut := mainRun(t, prog, a.DB, "runs", "history", id, "--json")
	if code != cli.ExitOK {
		t.Fatalf("prog runs history --json: exit %d: %s", code, errOut)
	}
	code, remoteOut, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "history", id, "--json")
	if code != cli.ExitOK {
		t.Fatalf("baton runs history --json: exit %d: %s", code, errOut)
	}
	entries := runsTestDecode[[]apitype.HistoryEntry](t, local)
	if r := runsTestDecode[[]apitype.HistoryEntry](t, remoteOut); !reflect.DeepEqual(r, entries) {
		t.Errorf("through the server:\n%s\non the store:\n%s", remoteOut, local)
	}
	me := engine.CurrentActor()
	type entry struct {
		Actor    string
		Verified bool
		Action   string
	}
	var got []entry
	for _, e := range entries {
		got = append(got, entry{e.Actor, e.Verified, e.Action})
	}
	want := []entry{
		{me.Name, me.Verified, store.ActionCreated},
		{"system", true, store.ActionFailed},
		{"carol", false, store.ActionRetried},
		{"carol", false, store.ActionParametersEdited},
		{"carol", false, store.ActionCancelled},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history = %+v\nwant %+v", got, want)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, entries[3].Payload); err != nil {
		t.Fatal(err)
	}
	if p := compact.String(); !strings.Contains(p, `"from":{"epochs":3,"lr":5}`) || !strings.Contains(p, `"to":{"epochs":3,"lr":0.5}`) {
		t.Errorf("parameters_edited payload = %s", p)
	}
	// The JSON fields the issue names.
	if !strings.Contains(local, `"time"`) || !strings.Contains(local, `"actor"`) || !strings.Contains(local, `"action"`) ||
		!strings.Contains(local, `"payload"`) {
		t.Errorf("--json lacks time, actor, action or payload:\n%s", local)
	}

	code, text, errOut := mainRun(t, prog, a.DB, "runs", "history", id)
	if code != cli.ExitOK {
		t.Fatalf("runs history: exit %d: %s", code, errOut)
	}
	for _, w := range []string{"TIME", "ACTOR", "ACTION", "carol (unverified)", "parameters_edited", "cancelled", "retry requested through the API"} {
		if !strings.Contains(text, w) {
			t.Errorf("runs history does not say %q:\n%s", w, text)
		}
	}
	for _, args := range [][]string{{"runs", "history", "nope"}, {"runs", "history"}} {
		if code, _, _ := mainRun(t, prog, a.DB, args...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "history", "nope"); code != cli.ExitUsage ||
		!strings.Contains(errOut, "unknown run") {
		t.Errorf("baton runs history of an unknown run: exit %d, %q", code, errOut)
	}
}
