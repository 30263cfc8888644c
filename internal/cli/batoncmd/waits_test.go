package batoncmd

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

type batchDecision struct {
	Batch int `json:"batch" jsonschema:"minimum=1"`
}

// pausedOnInput records a local run PAUSED on a wait for input key with
// the schema of batchDecision, and returns its ID.
func pausedOnInput(t *testing.T, st store.Store, id, key string) string {
	t.Helper()
	ctx := context.Background()
	if _, _, err := st.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: id, Flow: "campaign",
		State: store.RunRunning, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	schema, _ := json.Marshal(params.SchemaFor(reflect.TypeFor[batchDecision]()))
	spec := store.WaitSpec{Kind: store.WaitInput, Key: key, Schema: schema}
	in, _ := json.Marshal(spec)
	if _, err := st.WaitBegin(ctx, store.WaitBeginParams{Spec: spec, TaskRun: store.TaskRun{ID: id + "-w", RunID: id,
		Key: "input:" + key + "/0", Task: "input:" + key, Input: in}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RunTransition(ctx, store.RunTransitionParams{ID: id, From: []store.RunState{store.RunRunning},
		To: store.RunPaused}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRunsResumeAndEventsSend: `runs resume` and `events send` refuse bad
// input with exit 2 and the same message on the store and through a
// server, deliver good input, and name the first sender of a duplicate.
func TestRunsResumeAndEventsSend(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	id := pausedOnInput(t, a.St, "run-resume", "decision")
	surfaces := map[string][]string{"store": {"--db", a.DB}, "server": {"--server", a.URL}}
	msgs := map[string]string{}
	for name, where := range surfaces {
		code, _, errOut := apiTestRun(t, nil, append(where, "runs", "resume", id, "--key", "decision", "--input", `{"batch":0}`)...)
		if code != cli.ExitUsage || !strings.Contains(errOut, "/batch") {
			t.Fatalf("%s: invalid input: exit %d: %s; want 2 naming /batch", name, code, errOut)
		}
		msgs[name] = errOut
		if code, _, errOut := apiTestRun(t, nil, append(where, "runs", "resume", id, "--input", `{nope`)...); code != cli.ExitUsage ||
			!strings.Contains(errOut, "not JSON") {
			t.Fatalf("%s: input that is not JSON: exit %d: %s", name, code, errOut)
		}
		if code, _, errOut := apiTestRun(t, nil, append(where, "events", "send", "plate", "--payload", `{nope`)...); code != cli.ExitUsage ||
			!strings.Contains(errOut, "not JSON") {
			t.Fatalf("%s: event payload that is not JSON: exit %d: %s", name, code, errOut)
		}
		if code, _, errOut := apiTestRun(t, nil, append(where, "runs", "resume", "nope", "--input", `1`)...); code != cli.ExitUsage {
			t.Fatalf("%s: unknown run: exit %d: %s", name, code, errOut)
		}
	}
	// runs show says what the run waits for and how to give it that.
	for name, where := range surfaces {
		code, out, errOut := apiTestRun(t, nil, append(where, "runs", "show", id)...)
		if code != cli.ExitOK || !strings.Contains(out, "Waiting for:") || !strings.Contains(out, "input decision (input:decision/0)") ||
			!strings.Contains(out, "baton runs resume "+id+" --key decision --input JSON") {
			t.Errorf("%s: runs show of a paused run: exit %d:\n%s%s", name, code, out, errOut)
		}
	}
	if msgs["store"] != msgs["server"] {
		t.Errorf("the refusals differ:\n store:  %s\n server: %s", msgs["store"], msgs["server"])
	}
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "--as", "alice", "runs", "resume", id, "--input", `{"batch":3}`, "--json")
	if code != cli.ExitOK {
		t.Fatalf("resume: exit %d: %s", code, errOut)
	}
	if res := runsTestDecode[apitype.InputResult](t, out); res.Key != "decision" || res.Step != "input:decision/0" || res.Kept {
		t.Errorf("resume answered %+v", res)
	}
	code, _, errOut = apiTestRun(t, nil, "--db", a.DB, "runs", "resume", id, "--key", "decision", "--input", `{"batch":4}`)
	if code != cli.ExitUsage || !strings.Contains(errOut, "alice") {
		t.Errorf("second input: exit %d: %s; want 2 naming alice", code, errOut)
	}
	// An event no one waits for is kept; its answer says so.
	code, out, errOut = apiTestRun(t, nil, "--db", a.DB, "events", "send", "plate", "--payload", `{"plate":1}`)
	if code != cli.ExitOK || !strings.Contains(out, "no run waits for it") {
		t.Errorf("events send: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "events", "send", "plate", "--json")
	if res := runsTestDecode[apitype.EventResult](t, out); code != cli.ExitOK || res.Seq < 2 || res.Delivered == nil {
		t.Errorf("events send --json: exit %d: %s%s", code, out, errOut)
	}
}
